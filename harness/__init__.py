"""Shared by the browser tests and the benchmarks: a real Streamlit server, /proc thread counts."""
