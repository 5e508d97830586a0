"""Streamlit glue shared by the pages: process-wide resources and chart builders."""
