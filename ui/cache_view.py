"""The Model Cache page's table, per-model actions, load progress and upload."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.events import LoadFinished, LoadProgress
from core.jobs import JobRunner, JobState, QueueFullError, Work
from core.modelstore.cache import ModelCache
from core.modelstore.derive import compare_stored, derive_tflite
from core.modelstore.formats import FORMAT_LABELS, QUANTIZATIONS, FormatReport
from core.modelstore.store import MAX_UPLOAD_BYTES, ModelStore, StoredModel
from ui.charts import formats_chart
from ui.resources import get_runner, session_handle
from ui.saved_models import describe

EXTENSIONS = {"keras": ".keras"}


def models_table(records: list[StoredModel]) -> StoredModel | None:
    """The stored models as a table, and a picker for the one to act on."""
    if not records:
        st.info(
            "No models stored yet. Train one on a training page and press “Save to cache”, or upload."
        )
        return None
    names = {record.id: record.name for record in records}
    rows = []
    for record in records:
        metric = record.metrics.get("accuracy", record.metrics.get("exact_match"))
        rows.append(
            {
                "name": record.name,
                "task": record.task,
                "format": record.format,
                "size (KB)": round(record.size_bytes / 1024, 1),
                "accuracy": metric if isinstance(metric, int | float) else None,
                "created": record.created[:19].replace("T", " "),
                "last loaded": (record.last_loaded or "")[:19].replace("T", " "),
                "derived from": names.get(record.parent_id or "", ""),
                "file": "missing" if record.missing else "ok",
            }
        )
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={"accuracy": st.column_config.NumberColumn(format="percent")},
    )
    by_id = {record.id: record for record in records}
    chosen = st.selectbox(
        "Model to work with",
        list(by_id),
        format_func=lambda model_id: describe(by_id[model_id]),
        key="cache_selected",
    )
    return by_id.get(chosen)


def actions_ui(record: StoredModel, *, store: ModelStore, cache: ModelCache) -> bool:
    """Load, export, rename and delete buttons for one model; true when a load was asked for."""
    load, export, rename, delete = st.columns(4, vertical_alignment="bottom")
    wants_load = load.button(
        "Load",
        key="cache_load",
        disabled=record.format != "keras",
        type="primary",
        help="Load into the shared memory cache (Keras models).",
    )
    try:
        data = store.read_bytes(record.id)
    except ValueError as error:
        export.error(str(error))
    else:
        export.download_button(
            "Export",
            data,
            file_name=f"{record.id}{EXTENSIONS.get(record.format, '.tflite')}",
            key="cache_export",
            help=f"Download the {record.format} file ({len(data):,} bytes).",
        )
    with rename.popover("Rename"):
        new_name = st.text_input("New name", record.name, max_chars=64, key="cache_rename_name")
        if st.button("Rename", key="cache_rename"):
            try:
                store.rename(record.id, new_name.strip())
            except ValueError as error:
                st.error(str(error))
            else:
                st.rerun()
    with delete.popover("Delete"):
        sure = st.checkbox(f"Delete “{record.name}” for good", key="cache_delete_sure")
        if st.button("Delete", key="cache_delete", disabled=not sure):
            store.delete(record.id)
            cache.discard(record.id)
            st.rerun()
    return wants_load


def load_status_ui(runner: JobRunner) -> None:
    """While a load runs, its progress bar; afterwards, how long it took and where it came from."""
    # Defined on every run so the polling rate follows whether a load is under way.
    live = st.session_state.get("cache_load_job_id") is not None

    @st.fragment(run_every=0.5 if live else None)
    def status() -> None:
        job = runner.get(st.session_state.get("cache_load_job_id"))
        if job is not None:
            for event in job.drain():
                match event:
                    case LoadProgress():
                        st.session_state["cache_load_progress"] = event.fraction
                    case LoadFinished():
                        st.session_state["cache_last_load"] = event
            if job.state is JobState.FAILED:
                st.session_state["cache_load_job_id"] = None
                st.error(job.error)
                return
            if not job.state.done:
                fraction = st.session_state.get("cache_load_progress", 0.0)
                st.progress(fraction, text=f"Loading… {fraction:.0%} read")
                return
            st.session_state["cache_load_job_id"] = None
            # A full rerun stops the polling and refreshes the table's "last loaded".
            st.rerun()
        last: LoadFinished | None = st.session_state.get("cache_last_load")
        if last is not None:
            where = "memory cache (warm hit)" if last.from_cache else "disk (cold), now cached"
            st.progress(1.0, text=f"Loaded in {last.seconds * 1000:.2f} ms from the {where}.")

    status()


def upload_ui(store: ModelStore) -> None:
    """Upload a .keras file: checked in a limited child process as a runner job, then listed."""
    runner, owner = get_runner(), session_handle().owner
    with st.expander("Upload a .keras model"):
        st.caption(
            f"Only `.keras` files up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB with built-in layers; "
            "SavedModel and .h5 files are refused because they can carry code. Each file is opened in a "
            "separate, limited process and saved as a fresh copy."
        )
        uploaded = st.file_uploader("Model file", type=["keras"], key="cache_upload")
        name = st.text_input("Name for it", max_chars=64, key="cache_upload_name")
        clicked = st.button("Add to the store", key="cache_upload_add", disabled=uploaded is None)
        if clicked and uploaded is not None:
            data, chosen = uploaded.getvalue(), name.strip() or uploaded.name[:-6]

            def work(emit: Any, stop: Any) -> StoredModel | str:
                # A refusal is an answer, not a failed job: keep its message as the result.
                try:
                    return store.upload_keras(data, name=chosen)
                except ValueError as error:
                    return f"Refused: {error}"

            try:
                job = runner.submit(work, owner=owner, kind="cache-upload")
            except QueueFullError as error:
                st.error(str(error))
            else:
                st.session_state["cache_upload_job_id"] = job.id
                st.session_state["cache_upload_message"] = None
        live = st.session_state.get("cache_upload_job_id") is not None

        @st.fragment(run_every=0.5 if live else None)
        def status() -> None:
            job = runner.get(st.session_state.get("cache_upload_job_id"))
            if job is not None and not job.state.done:
                st.progress(
                    min(job.elapsed / 20, 0.95),
                    text=f"Checking the file in a separate process… {job.elapsed:.0f} s",
                )
                return
            if job is not None:
                st.session_state["cache_upload_job_id"] = None
                if isinstance(job.result, StoredModel):
                    message = f"Added “{job.result.name}” as a {job.result.task} model."
                elif isinstance(job.result, str):
                    message = job.result
                else:
                    message = f"Refused: {job.error or 'the upload was cancelled.'}"
                st.session_state["cache_upload_message"] = message
                # A full rerun stops the polling and lists an added model.
                st.rerun()
            shown = st.session_state.get("cache_upload_message")
            if shown:
                (st.error if shown.startswith("Refused") else st.success)(shown)

        status()


def formats_ui(
    record: StoredModel, *, store: ModelStore, cache: ModelCache, runner: JobRunner, owner: str
) -> None:
    """Quantize a Keras model to TFLite, and compare every format side by side."""
    st.subheader("Formats and quantization")
    if record.format != "keras":
        origin = " derived from a Keras model" if record.parent_id else ""
        st.caption(f"This is a {record.format} file{origin}; quantize and compare from a Keras model.")
        return
    quantize, compare = st.columns(2, vertical_alignment="bottom")
    quantization = quantize.selectbox(
        "Quantize to TFLite", QUANTIZATIONS, index=2, key="cache_quantization"
    )
    work: Work | None = None
    if quantize.button("Quantize", key="cache_quantize"):
        work = lambda emit, stop: derive_tflite(store, cache, record.id, quantization=quantization)  # noqa: E731
    if compare.button("Compare formats", key="cache_compare", help="Takes a few seconds per format."):
        work = lambda emit, stop: compare_stored(store, cache, record.id)  # noqa: E731
    if work is not None:
        try:
            job = runner.submit(work, owner=owner, kind="cache-formats")
        except QueueFullError as error:
            st.error(str(error))
        else:
            st.session_state["cache_formats_job_id"] = job.id
    formats_status_ui(runner)
    reports = st.session_state.get("cache_reports", {}).get(record.id)
    if reports:
        formats_table_ui(reports)


def formats_status_ui(runner: JobRunner) -> None:
    """While a quantize or compare job runs, say so; when it ends, keep its outcome and rerun."""
    live = st.session_state.get("cache_formats_job_id") is not None

    @st.fragment(run_every=0.5 if live else None)
    def status() -> None:
        job = runner.get(st.session_state.get("cache_formats_job_id"))
        if job is None:
            message = st.session_state.get("cache_formats_message")
            if message:
                (st.error if message.startswith("Failed") else st.success)(message)
            return
        if not job.state.done:
            st.info(f"Working… {job.elapsed:.0f} s")
            return
        st.session_state["cache_formats_job_id"] = None
        if job.state is JobState.FAILED:
            st.session_state["cache_formats_message"] = f"Failed: {job.error}"
        elif isinstance(job.result, StoredModel):
            st.session_state["cache_formats_message"] = (
                f"Stored “{job.result.name}”: {job.result.size_bytes:,} bytes."
            )
        elif isinstance(job.result, list):
            reports = st.session_state.setdefault("cache_reports", {})
            reports[st.session_state.get("cache_selected")] = job.result
            st.session_state["cache_formats_message"] = "Compared every format."
        st.rerun()

    status()


def formats_table_ui(reports: list[FormatReport]) -> None:
    """The side-by-side table and chart of formats."""
    frame = pd.DataFrame(
        [
            {
                "format": FORMAT_LABELS.get(report.format, report.format),
                "size (KB)": report.size_bytes / 1024,
                "cold load (ms)": report.cold_load_seconds * 1000,
                "warm load (ms)": report.warm_load_seconds * 1000,
                "latency p50 (ms)": report.latency_ms_per_sample,
                "accuracy": report.accuracy,
                "agreement": report.agreement,
                "notes": report.notes,
            }
            for report in reports
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "size (KB)": st.column_config.NumberColumn(format="%.1f"),
            "cold load (ms)": st.column_config.NumberColumn(format="%.2f"),
            "warm load (ms)": st.column_config.NumberColumn(format="%.4f"),
            "latency p50 (ms)": st.column_config.NumberColumn(format="%.3f"),
            "accuracy": st.column_config.NumberColumn(format="percent"),
            "agreement": st.column_config.NumberColumn(format="percent"),
        },
    )
    st.altair_chart(formats_chart(frame), width="stretch")
