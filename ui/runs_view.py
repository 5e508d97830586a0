"""What a training page shows about the session's runs: the Train notice and the run picker."""

from __future__ import annotations

import streamlit as st

from ui.runs import RunRecord


def train_notice_ui(runs: list[RunRecord]) -> None:
    """Say, before Train is pressed, what it does to a run that is still going."""
    live = [run for run in runs if not run.done]
    if live:
        # One job per page per session: a new run replaces the one going (convention 8).
        st.info(
            f"Run {live[-1].label} is still going: pressing Train stops it (what it learned so far "
            "is kept, and you can still save it or ask it below) and starts a new run."
        )


def run_picker_ui(runs: list[RunRecord], *, key_prefix: str) -> RunRecord | None:
    """Pick any finished run of the session to save, ask or delete; the latest one by default."""
    finished = [run for run in runs if run.done and run.model is not None]
    if not finished:
        return None
    by_label = {run.label: run for run in finished}
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    label = left.selectbox(
        "Run to save, ask or delete",
        list(by_label),
        index=len(by_label) - 1,
        key=f"{key_prefix}_run_choice",
        help="Every finished run of this session keeps its model until you delete it.",
    )
    chosen = by_label.get(label, finished[-1])
    if right.button("Delete run", key=f"{key_prefix}_run_delete", help="Forget it and its model."):
        chosen.release()
        runs[:] = [run for run in runs if run is not chosen]
        st.rerun()
    return chosen
