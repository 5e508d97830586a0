"""'Save to cache' and 'Use a saved model', shared by the two training pages."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import streamlit as st

from core.modelstore.loading import load_cached
from core.modelstore.store import ModelStore, StoredModel, allowed_name
from ui.resources import get_model_cache, get_store
from ui.runs import RunRecord


def store_or_error() -> ModelStore | None:
    """The model store, or None after showing why it cannot be opened."""
    try:
        return get_store()
    except ValueError as error:
        st.error(f"The model store is not available: {error}. Set MODEL_STORE_DIR to a writable folder.")
        return None


def save_ui(run: RunRecord, *, task: str, metrics: dict[str, float], key_prefix: str) -> None:
    """A name field and 'Save to cache' for a finished run's model."""
    if run.model is None or run.result is None:
        return
    store = store_or_error()
    if store is None:
        return
    if run.saved_model_id is not None:
        st.success(f"Saved as “{run.saved_name}”; find it on the Model Cache page.")
        return
    with st.form(f"{key_prefix}_save_form", border=False):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        name = left.text_input(
            "Name",
            # The run's label may hold characters a name may not (e.g. "+aug"): propose a valid one.
            allowed_name(f"{task} {run.label.lstrip('#')} {time.strftime('%H%M%S')}"),
            max_chars=64,
            key=f"{key_prefix}_save_name",
            help="Letters, digits, spaces and - _ . ( ), up to 64.",
        )
        if not right.form_submit_button("Save to cache"):
            return
    try:
        record = store.save_keras(
            run.model,
            name=name.strip(),
            task=task,
            config=dataclasses.asdict(run.config),
            metrics=metrics,
        )
    except ValueError as error:
        st.error(f"Not saved: {error}")
        return
    run.saved_model_id, run.saved_name = record.id, record.name
    st.success(f"Saved as “{record.name}”; find it on the Model Cache page.")


def describe(record: StoredModel) -> str:
    """'name — 98.1% — 2026-11-21 13:40' for pickers."""
    metric = record.metrics.get("accuracy", record.metrics.get("exact_match"))
    score = f" — {metric:.1%}" if isinstance(metric, int | float) else ""
    return f"{record.name}{score} — {record.created[:16].replace('T', ' ')}"


def use_saved_ui(*, task: str, key_prefix: str) -> tuple[StoredModel, Any] | None:
    """Pick a stored Keras model of this task and load it (cached across sessions) with progress."""
    store = store_or_error()
    if store is None:
        return None
    models = [
        record for record in store.list_models(task) if record.format == "keras" and not record.missing
    ]
    if not models:
        st.caption("No saved models for this page yet: train one and press “Save to cache”.")
        return None
    by_id = {record.id: record for record in models}
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen_id = left.selectbox(
        "Saved model",
        list(by_id),
        format_func=lambda model_id: describe(by_id[model_id]),
        key=f"{key_prefix}_saved_choice",
    )
    if right.button("Load", key=f"{key_prefix}_saved_load"):
        st.session_state[f"{key_prefix}_saved_loaded"] = chosen_id
    loaded_id = st.session_state[f"{key_prefix}_saved_loaded"]
    if loaded_id not in by_id:
        return None
    cache = get_model_cache()
    progress = st.empty()

    def show_progress(fraction: float) -> None:
        progress.progress(fraction, text=f"Reading {fraction:.0%}")

    try:
        model = load_cached(store, cache, loaded_id, on_progress=show_progress)
    except ValueError as error:
        st.session_state[f"{key_prefix}_saved_loaded"] = None
        st.error(str(error))
        return None
    progress.empty()
    return by_id[loaded_id], model
