"""The Model Cache page's table, per-model actions, load progress and upload."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.events import LoadFinished, LoadProgress
from core.jobs import Job, JobRunner, JobState, QueueFullError, Work
from core.modelstore.cache import ModelCache
from core.modelstore.derive import compare_stored, derive_tflite
from core.modelstore.formats import FORMAT_LABELS, QUANTIZATIONS, FormatReport
from core.modelstore.store import MAX_UPLOAD_BYTES, ModelStore, StoredModel
from ui.charts import formats_chart
from ui.live import TrackedJob, job_poll_ui
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
    if record.missing:
        export.error("The file is missing from the store.")
    else:
        model_id = record.id
        export.download_button(
            "Export",
            # A callable: the file is read when the button is clicked, not on every rerun.
            lambda: store.read_bytes(model_id),
            file_name=f"{record.id}{EXTENSIONS.get(record.format, '.tflite')}",
            mime="application/octet-stream",
            key="cache_export",
            help=f"Download the {record.format} file ({record.size_bytes:,} bytes).",
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

    def running(job: Job) -> None:
        for event in job.drain():
            match event:
                case LoadProgress():
                    st.session_state["cache_load_progress"] = event.fraction
                case LoadFinished():
                    st.session_state["cache_last_load"] = event
        fraction = st.session_state["cache_load_progress"]
        st.progress(fraction, text=f"Loading… {fraction:.0%} read")

    def ended(job: Job, tracked: TrackedJob) -> None:
        for event in job.drain():
            if isinstance(event, LoadFinished):
                st.session_state["cache_last_load"] = event
        failed = job.state is JobState.FAILED
        st.session_state["cache_load_error"] = job.error if failed else None

    def idle() -> None:
        if st.session_state["cache_load_error"]:
            st.error(st.session_state["cache_load_error"])
            return
        last: LoadFinished | None = st.session_state["cache_last_load"]
        if last is not None:
            where = "memory cache (warm hit)" if last.from_cache else "disk (cold), now cached"
            st.progress(1.0, text=f"Loaded in {last.seconds * 1000:.2f} ms from the {where}.")

    # The full rerun after the load also refreshes the table's "last loaded".
    job_poll_ui("cache_load_job", runner, running=running, ended=ended, idle=idle)


def upload_ui(store: ModelStore) -> None:
    """Upload a .keras file: size-limited, loaded in safe mode, checked to fit a task, then listed."""
    with st.expander("Upload a .keras model"):
        st.caption(
            f"Only `.keras` files up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB with built-in layers; "
            "SavedModel and .h5 files are refused because they can carry code."
        )
        uploaded = st.file_uploader("Model file", type=["keras"], key="cache_upload")
        name = st.text_input("Name for it", max_chars=64, key="cache_upload_name")
        clicked = st.button("Add to the store", key="cache_upload_add", disabled=uploaded is None)
        if clicked and uploaded is not None:
            try:
                record = store.upload_keras(uploaded.getvalue(), name=name.strip() or uploaded.name[:-6])
            except ValueError as error:
                st.error(f"Refused: {error}")
            else:
                st.success(f"Added “{record.name}” as a {record.task} model.")


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
            # The job carries the model it works on: its report is filed under that model.
            st.session_state["cache_formats_job"] = TrackedJob(job_id=job.id, model_id=record.id)
    formats_status_ui(runner)
    reports = st.session_state["cache_reports"].get(record.id)
    if reports:
        formats_table_ui(reports)


def formats_status_ui(runner: JobRunner) -> None:
    """While a quantize or compare job runs, say so; when it ends, keep its outcome."""

    def running(job: Job) -> None:
        st.info(f"Working… {job.elapsed:.0f} s")

    def ended(job: Job, tracked: TrackedJob) -> None:
        if job.state is JobState.FAILED:
            st.session_state["cache_formats_message"] = f"Failed: {job.error}"
        elif isinstance(job.result, StoredModel):
            st.session_state["cache_formats_message"] = (
                f"Stored “{job.result.name}”: {job.result.size_bytes:,} bytes."
            )
        elif isinstance(job.result, list):
            # Filed under the model that was compared, whichever one is selected now.
            st.session_state["cache_reports"][tracked.model_id] = job.result
            st.session_state["cache_formats_message"] = "Compared every format."

    def idle() -> None:
        message = st.session_state["cache_formats_message"]
        if message:
            (st.error if message.startswith("Failed") else st.success)(message)

    job_poll_ui("cache_formats_job", runner, running=running, ended=ended, idle=idle)


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
