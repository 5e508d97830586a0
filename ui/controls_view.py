"""The controls students ask for: Pause/Resume and the learning rate of a running job, and downloads.

Both training pages use them: `run_controls_ui` sits in the live status block (ui/live.py) under Stop,
`downloads_ui` below a finished run. The job's `TrainingControl` (core/control.py) does the work; this
module only draws it and shows its refusals as messages.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence

import streamlit as st

from core.jobs import Job
from core.training_spec import keras_bytes
from ui.runs import RunRecord

EPOCH_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
BATCH_COLUMNS = ("step", "epoch", "batch", "loss", "accuracy")


def run_controls_ui(run: RunRecord, job: Job | None, *, key: str) -> None:
    """Pause or Resume and a learning-rate box for a running job; disabled, with why, where refused."""
    if job is None or job.state.done:
        return
    control = job.control
    unit = run.unit.lower()
    if control.pause_requested and run.paused is not None:
        paused = run.paused
        st.info(
            f"Paused at {unit} {paused.epoch} of {run.planned_epochs}, batch {paused.batch} of "
            f"{paused.batches}. The model and its place are kept; Resume goes on from the next batch."
        )
    elif control.pause_requested:
        st.caption("Pausing at the end of the current batch…")
    left, middle, right = st.columns([1, 2, 1], vertical_alignment="bottom")
    if control.pause_requested:
        left.button(
            "Resume", key=f"{key}_resume", on_click=control.resume, help="Go on from where it paused."
        )
    else:
        left.button(
            "Pause",
            key=f"{key}_pause",
            on_click=control.pause,
            help="Pause at the end of the current batch; the run keeps its place and its model.",
        )
    refused = control.fixed_rate_reason
    current = control.learning_rate
    if refused is None and current is None:
        refused = "The learning rate can be changed once the first batch has run."
    rate = middle.number_input(
        "Learning rate",
        min_value=0.0,
        max_value=1.0,
        value=current if current is not None else 0.001,
        step=0.0001,
        format="%.5f",
        key=f"{key}_learning_rate",
        disabled=refused is not None,
        help=refused or "Used from the next batch on (above 0, at most 1).",
    )
    applied = right.button("Apply rate", key=f"{key}_learning_rate_apply", disabled=refused is not None)
    if refused is not None:
        st.caption(refused)
    elif applied:
        try:
            chosen = control.request_learning_rate(rate)
        except ValueError as error:
            st.error(str(error))
        else:
            st.caption(f"Learning rate {chosen:g} from the next batch on.")


def epochs_csv(run: RunRecord) -> str:
    """The run's per-epoch curves as CSV: one row per epoch (iteration), validation included."""
    rows = [
        (event.epoch, event.loss, event.accuracy, event.val_loss, event.val_accuracy, event.seconds)
        for event in run.epochs
    ]
    return _csv(EPOCH_COLUMNS, rows)


def batches_csv(run: RunRecord) -> str:
    """The run's per-batch curve as CSV: the points the page kept (a few a second, thinned if long)."""
    rows = [(event.step, event.epoch, event.batch, event.loss, event.accuracy) for event in run.batches]
    return _csv(BATCH_COLUMNS, rows)


def _csv(columns: tuple[str, ...], rows: Sequence[tuple[float, ...]]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return text.getvalue()


def file_stem(run: RunRecord, *, page: str) -> str:
    """A file name for the run's downloads, e.g. 'addition-1-simplernn-1x8'."""
    words = re.sub(r"[^a-z0-9]+", "-", run.label.lower()).strip("-")
    return f"{page}-{words}" if words else page


def tflite_bytes(run: RunRecord) -> Callable[[], bytes]:
    """A function that converts the run's model to float32 TFLite when the download is asked for."""

    def convert() -> bytes:
        from core.modelstore.convert import convert_to_tflite

        if run.model is None:
            raise ValueError("This run no longer holds its model.")
        return convert_to_tflite(run.model, quantization="float32")

    return convert


def keras_file(run: RunRecord) -> Callable[[], bytes]:
    """A function that saves the run's model as `.keras` bytes when the download is asked for."""

    def save() -> bytes:
        if run.model is None:
            raise ValueError("This run no longer holds its model.")
        return keras_bytes(run.model)

    return save


def downloads_ui(run: RunRecord, *, key_prefix: str) -> None:
    """Download buttons: the run's curves as CSV and, once trained, its model as .keras or TFLite."""
    stem = file_stem(run, page=key_prefix)
    csv_mime, model_mime = "text/csv", "application/octet-stream"
    # (label, data, file name, mime type, key suffix, help) of each button, in page order.
    buttons: list[tuple[str, str | Callable[[], bytes], str, str, str, str]] = [
        (
            "Curves (CSV)",
            epochs_csv(run),
            f"{stem}-epochs.csv",
            csv_mime,
            "epochs",
            f"One row per {run.unit.lower()}: {', '.join(EPOCH_COLUMNS)}.",
        ),
        (
            "Batches (CSV)",
            batches_csv(run),
            f"{stem}-batches.csv",
            csv_mime,
            "batches",
            f"The batch points the page kept (a few a second): {', '.join(BATCH_COLUMNS)}.",
        ),
    ]
    if run.model is not None:
        # The model files are made only when their button is pressed (a TFLite conversion takes
        # seconds): Streamlit calls these functions on click, in a thread of its own.
        buttons += [
            (
                "Model (.keras)",
                keras_file(run),
                f"{stem}.keras",
                model_mime,
                "keras",
                "The trained model with its weights; open it with keras.saving.load_model.",
            ),
            (
                "Model (TFLite)",
                tflite_bytes(run),
                f"{stem}.tflite",
                model_mime,
                "tflite",
                "A float32 TFLite flatbuffer (built-in ops) for phones and LiteRT.",
            ),
        ]
    for column, (label, data, file_name, mime, suffix, help_text) in zip(
        st.columns(4), buttons, strict=False
    ):
        column.download_button(
            label,
            data,
            file_name=file_name,
            mime=mime,
            key=f"{key_prefix}_download_{suffix}",
            on_click="ignore",
            help=help_text,
        )
