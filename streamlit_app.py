"""Live Training Lab: routes to the three pages."""

import streamlit as st

from ui.process import prepare_process

# Once per process, before any page trains: see ui/process.py for what it tunes and why.
prepare_process()

st.set_page_config(page_title="Live Training Lab", page_icon="🧪", layout="wide")
navigation = st.navigation(
    [
        st.Page(
            "app_pages/addition.py", title="Addition RNN", icon=":material/calculate:", default=True
        ),
        st.Page(
            "app_pages/digits.py", title="Digit Recognizer", icon=":material/draw:", url_path="digits"
        ),
        st.Page(
            "app_pages/model_cache.py", title="Model Cache", icon=":material/storage:", url_path="models"
        ),
    ]
)
navigation.run()
