"""Model Cache page (coming)."""

import streamlit as st

st.title("Model Cache")
st.info("Coming soon: keep trained models, load them fast, compare formats and quantization.")
