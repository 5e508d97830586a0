"""The job backend's notice, shown on every page when training does not run where the settings asked."""

from __future__ import annotations

import streamlit as st

from ui.resources import get_runner


def backend_notice_ui() -> None:
    """A warning at the top of the page while the Dask cluster is unreachable or lost; else nothing."""
    notice = get_runner().notice
    if notice:
        st.warning(notice, icon=":material/cloud_off:")
