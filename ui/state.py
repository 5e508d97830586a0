"""Session-state setup: each page names every key it uses, with its first value, at its top."""

from __future__ import annotations

from typing import Any

import streamlit as st


def setup_state(defaults: dict[str, Any]) -> None:
    """Give each key its first value unless this session already has one (convention 14)."""
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value
