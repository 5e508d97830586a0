"""The Model Cache page's table, per-model actions, load progress and upload."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from core.events import FormatMeasured, LoadFinished, LoadProgress
from core.jobs import Job, JobRunner, JobState, QueueFullError, Work
from core.mnist import MnistData
from core.modelstore.cache import ModelCache
from core.modelstore.compare import FormatReport
from core.modelstore.derive import compare_stored, derive_tflite
from core.modelstore.formats import FORMATS, QUANTIZATIONS
from core.modelstore.store import MAX_UPLOAD_BYTES, ModelStore, StoredModel, allowed_name
from core.tasks import TASKS, score
from ui.charts import formats_chart
from ui.live import TrackedJob, job_poll_ui
from ui.resources import get_runner, session_handle
from ui.saved_models import describe

# The orders the table and the picker can take: label -> (sort key, newest-first order reversed).
SORTS = {
    "newest first": (lambda record: record.created, True),
    "name": (lambda record: record.name.lower(), False),
    "score, best first": (lambda record: score(record.task, record.metrics) or -1.0, True),
    "size, largest first": (lambda record: record.size_bytes, True),
}


@dataclass(frozen=True, slots=True)
class Refused:
    """A quantize or compare job that core refused with a message the user can act on."""

    message: str


def export_file_name(record: StoredModel) -> str:
    """The model's own name as a download file name (names are already path-safe), plus its suffix."""
    return allowed_name(record.name) + FORMATS[record.format].suffix


def _forget_messages() -> None:
    # Status lines describe one action on one model; any other action makes them stale.
    st.session_state["cache_formats_message"] = None


def _on_pick() -> None:
    _forget_messages()
    st.session_state["cache_delete_sure"] = False


def models_table(records: list[StoredModel]) -> StoredModel | None:
    """The stored models as a table (in the chosen order), and a picker for the one to act on."""
    if not records:
        st.info(
            "No models stored yet. Train one on a training page and press “Save to cache”, or upload."
        )
        return None
    sort_key, descending = SORTS[st.session_state.get("cache_sort") or "newest first"]
    records = sorted(records, key=sort_key, reverse=descending)
    names = {record.id: record.name for record in records}
    rows = []
    for record in records:
        rows.append(
            {
                "name": record.name,
                "task": record.task,
                "format": record.format,
                "size (KB)": round(record.size_bytes / 1024, 1),
                "score": score(record.task, record.metrics),
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
        column_config={
            "score": st.column_config.NumberColumn(
                format="percent",
                help="Digits: test accuracy; addition: exact match. Empty for uploads (not scored).",
            )
        },
    )
    by_id = {record.id: record for record in records}
    pick, order = st.columns([3, 1], vertical_alignment="bottom")
    order.selectbox("Sort by", list(SORTS), key="cache_sort")
    chosen = pick.selectbox(
        "Model to work with",
        list(by_id),
        format_func=lambda model_id: describe(by_id[model_id]),
        key="cache_selected",
        on_change=_on_pick,
    )
    return by_id.get(chosen)


def details_ui(record: StoredModel) -> None:
    """The model's configuration and metrics, as saved with it."""
    with st.expander(f"Details of “{record.name}”"):
        task = TASKS[record.task]
        st.caption(
            f"{task.title} model, {record.format}, {record.size_bytes:,} bytes, sha256 "
            f"{record.sha256[:12]}…, saved {record.created[:19].replace('T', ' ')} UTC."
        )
        left, right = st.columns(2)
        left.markdown("**Configuration**")
        left.json(record.config or {"source": "not recorded"})
        right.markdown("**Metrics**")
        right.json(record.metrics or {"score": "not measured (uploaded models are not scored)"})


def _use_on_page(record: StoredModel) -> None:
    # Runs before the next script run, so the training page finds its widgets preset.
    prefix = record.task
    source_key = "digits_reader_source" if record.task == "digits" else "addition_ask_source"
    st.session_state[source_key] = "A saved model"
    st.session_state[f"{prefix}_saved_choice"] = record.id
    st.session_state[f"{prefix}_saved_loaded"] = record.id
    st.session_state["cache_use_page"] = TASKS[record.task].page


def _rename(record_id: str, store: ModelStore) -> None:
    _forget_messages()
    try:
        store.rename(record_id, st.session_state.get("cache_rename_name", "").strip())
    except ValueError as error:
        st.session_state["cache_rename_error"] = str(error)
    else:
        st.session_state["cache_rename_error"] = None
        st.session_state["cache_rename_popover"] = False


def _delete(record_id: str, store: ModelStore, cache: ModelCache) -> None:
    # A callback, so the confirmation and the popover can be reset before they are drawn again.
    store.delete(record_id)
    cache.discard(record_id)
    _forget_messages()
    st.session_state["cache_delete_sure"] = False
    st.session_state["cache_delete_popover"] = False


def actions_ui(record: StoredModel, *, store: ModelStore, cache: ModelCache) -> bool:
    """Load, export, use, rename and delete buttons for one model; true when a load was asked for."""
    load, export, use, rename, delete = st.columns(5, vertical_alignment="bottom")
    wants_load = load.button(
        "Load",
        key="cache_load",
        disabled=record.format != "keras",
        type="primary",
        help="Load into the shared memory cache (Keras models).",
    )
    # The bytes are read only when the button is clicked, not on every rerun.
    export.download_button(
        "Export",
        lambda: store.read_bytes(record.id),
        file_name=export_file_name(record),
        key="cache_export",
        help=f"Download the {record.format} file ({record.size_bytes:,} bytes).",
    )
    page_title = TASKS[record.task].title
    use.button(
        f"Use on {page_title}",
        key="cache_use",
        disabled=record.format != "keras" or record.missing,
        on_click=_use_on_page,
        args=(record,),
        help=f"Open the {page_title} page with this model chosen (Keras models).",
    )
    target = st.session_state.get("cache_use_page")
    if target:
        st.session_state["cache_use_page"] = None
        st.switch_page(target)
    with rename.popover("Rename", key="cache_rename_popover", on_change="rerun"):
        st.text_input("New name", record.name, max_chars=64, key="cache_rename_name")
        st.button("Rename", key="cache_rename", on_click=_rename, args=(record.id, store))
        if st.session_state.get("cache_rename_error"):
            st.error(st.session_state["cache_rename_error"])
    with delete.popover("Delete", key="cache_delete_popover", on_change="rerun"):
        sure = st.checkbox(f"Delete “{record.name}” for good", key="cache_delete_sure")
        st.button(
            "Delete",
            key="cache_delete",
            disabled=not sure,
            on_click=_delete,
            args=(record.id, store, cache),
        )
    return wants_load


def load_status_ui(runner: JobRunner) -> None:
    """While a load runs, its progress bar; afterwards, how long it took and where it came from."""

    def drain(job: Job) -> None:
        for event in job.drain():
            match event:
                case LoadProgress():
                    st.session_state["cache_load_progress"] = event.fraction
                case LoadFinished():
                    st.session_state["cache_last_load"] = event

    def running(job: Job) -> None:
        drain(job)
        fraction = st.session_state["cache_load_progress"]
        st.progress(fraction, text=f"Loading… {fraction:.0%} read")

    def ended(job: Job, tracked: TrackedJob) -> None:
        drain(job)
        st.session_state["cache_load_error"] = job.error if job.state is JobState.FAILED else None

    def idle() -> None:
        if st.session_state["cache_load_error"]:
            st.error(st.session_state["cache_load_error"])
            return
        last: LoadFinished | None = st.session_state["cache_last_load"]
        if last is not None:
            where = "memory cache (warm hit)" if last.from_cache else "disk (cold), now cached"
            st.progress(1.0, text=f"Loaded in {last.seconds * 1000:.2f} ms from the {where}.")

    # A load takes well under a second warm: a short poll shows its bar and its end promptly.
    job_poll_ui("cache_load_job", runner, running=running, ended=ended, idle=idle, every=0.5)


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
                _forget_messages()
                st.session_state["cache_upload_job"] = TrackedJob(job_id=job.id)
                st.session_state["cache_upload_message"] = None

        def running(job: Job) -> None:
            st.progress(
                min(job.elapsed / 20, 0.95),
                text=f"Checking the file in a separate process… {job.elapsed:.0f} s",
            )

        def ended(job: Job, tracked: TrackedJob) -> None:
            if isinstance(job.result, StoredModel):
                message = f"Added “{job.result.name}” as a {job.result.task} model."
            elif isinstance(job.result, str):
                message = job.result
            else:
                message = f"Refused: {job.error or 'the upload was cancelled.'}"
            st.session_state["cache_upload_message"] = message

        def idle() -> None:
            shown = st.session_state["cache_upload_message"]
            if shown:
                (st.error if shown.startswith("Refused") else st.success)(shown)

        job_poll_ui("cache_upload_job", runner, running=running, ended=ended, idle=idle, every=0.5)


def formats_ui(
    record: StoredModel,
    *,
    store: ModelStore,
    cache: ModelCache,
    runner: JobRunner,
    owner: str,
    mnist: MnistData | None = None,
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
    model_id = record.id
    work: Work | None = None
    if quantize.button("Quantize", key="cache_quantize"):
        work = _refusable(
            lambda emit: derive_tflite(store, cache, model_id, quantization=quantization, mnist=mnist)
        )
    if compare.button("Compare formats", key="cache_compare", help="Takes a few seconds per format."):
        work = _refusable(
            lambda emit: compare_stored(store, cache, model_id, mnist=mnist, on_event=emit)
        )
    if work is not None:
        _forget_messages()
        try:
            job = runner.submit(work, owner=owner, kind="cache-formats")
        except QueueFullError as error:
            st.error(str(error))
        else:
            # The report belongs to this model, whichever is selected when the job ends.
            st.session_state["cache_formats_job"] = TrackedJob(job_id=job.id, model_id=model_id)
    formats_status_ui(runner)
    reports = st.session_state.get("cache_reports", {}).get(record.id)
    if reports:
        formats_table_ui(reports, task=record.task)


def _refusable(action: Callable[[Callable[[object], None]], object]) -> Work:
    """Job work whose ValueError (a refusal with advice) becomes a Refused result, not a failure."""

    def work(emit: Callable[[object], None], stop: object) -> object:
        try:
            return action(emit)
        except ValueError as error:
            return Refused(str(error))

    return work


def formats_status_ui(runner: JobRunner) -> None:
    """While a quantize or compare job runs, its progress; when it ends, keep its outcome."""

    def running(job: Job) -> None:
        for event in job.drain():
            if isinstance(event, FormatMeasured):
                st.session_state["cache_formats_progress"] = event
        progress: FormatMeasured | None = st.session_state["cache_formats_progress"]
        if progress is None or progress.done >= progress.total:
            st.info(f"Working… {job.elapsed:.0f} s")
        else:
            st.progress(
                progress.done / progress.total,
                text=f"Measuring {progress.label} ({progress.done + 1} of {progress.total})… "
                f"{job.elapsed:.0f} s",
            )

    def ended(job: Job, tracked: TrackedJob) -> None:
        st.session_state["cache_formats_progress"] = None
        # Filed under the model the job worked on, whichever one is selected now.
        model_id = tracked.model_id
        if job.state is JobState.FAILED:
            st.session_state["cache_formats_message"] = (model_id, f"Failed: {job.error}", True)
        elif isinstance(job.result, Refused):
            st.session_state["cache_formats_message"] = (model_id, job.result.message, True)
        elif isinstance(job.result, StoredModel):
            text = f"Stored “{job.result.name}”: {job.result.size_bytes:,} bytes."
            st.session_state["cache_formats_message"] = (model_id, text, False)
        elif isinstance(job.result, list):
            st.session_state["cache_reports"][model_id] = job.result
            st.session_state["cache_formats_message"] = (model_id, "Compared every format.", False)

    def idle() -> None:
        # (model id, text, is an error): shown only beside the model it is about.
        message = st.session_state["cache_formats_message"]
        if message and message[0] == st.session_state.get("cache_selected"):
            (st.error if message[2] else st.success)(message[1])

    job_poll_ui("cache_formats_job", runner, running=running, ended=ended, idle=idle, every=0.5)


def formats_table_ui(reports: list[FormatReport], *, task: str) -> None:
    """The side-by-side table and chart of formats, saying what each number measures."""
    frame = pd.DataFrame(
        [
            {
                "format": FORMATS[report.format].label if report.format in FORMATS else report.format,
                "size (KB)": report.size_bytes / 1024,
                "cold load (ms)": report.cold_load_seconds * 1000,
                "warm load (ms)": report.warm_load_seconds * 1000,
                "latency per sample (ms)": report.latency_ms_per_sample,
                "accuracy": report.accuracy,
                "agreement": report.agreement,
                "notes": report.notes,
            }
            for report in reports
        ]
    )
    samples = max(report.samples for report in reports)
    st.caption(
        f"Accuracy and agreement here score the first {samples:,} samples of {TASKS[task].evaluation}, "
        "so they can differ from the score in the list above (measured when the model was saved). "
        "Cold load: a fresh process, imports excluded. Warm load: loading the file again in this "
        "server, runtime already imported. Latency: the median of single-sample calls, per sample."
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "size (KB)": st.column_config.NumberColumn(format="%.1f"),
            "cold load (ms)": st.column_config.NumberColumn(format="%.1f"),
            "warm load (ms)": st.column_config.NumberColumn(format="%.2f"),
            "latency per sample (ms)": st.column_config.NumberColumn(format="%.3f"),
            "accuracy": st.column_config.NumberColumn(format="percent"),
            "agreement": st.column_config.NumberColumn(format="percent"),
        },
    )
    st.altair_chart(formats_chart(frame), width="stretch")
