"""Digit Recognizer page (coming)."""

import streamlit as st

st.title("Digit Recognizer")
st.info("Coming soon: train a CNN on MNIST live and draw digits for it to read.")
