"""Live Training Lab: routes to the four pages."""

import streamlit as st

from ui.cluster_view import backend_notice_ui
from ui.process import prepare_process

# Once per process, before any page trains: see ui/process.py for what it tunes and why.
prepare_process()

st.set_page_config(page_title="Live Training Lab", page_icon="🧪", layout="wide")
backend_notice_ui()
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
        st.Page(
            "app_pages/class_board.py", title="Class board", icon=":material/groups:", url_path="class"
        ),
    ]
)
navigation.run()
