"""Digit Recognizer page: train a CNN on MNIST live, inspect its mistakes, draw digits for it to read."""

import streamlit as st

from core.digits import DigitsConfig
from core.jobs import QueueFullError
from core.mnist import MnistData
from core.training_spec import TrainingSpec
from ui.charts import batch_chart, epoch_frame, metric_chart
from ui.class_view import class_labels, digits_link_config, page_lesson
from ui.digits_view import MODEL_LABELS, canvas_ui, data_ui, form_ui, reader_ui, results_ui, summary_rows
from ui.explain_view import filters_live_ui
from ui.live import chart_interval, poll_interval, status_ui, sync_run
from ui.personal_view import personal_ui
from ui.resources import get_runner, session_handle, session_runs
from ui.runs import RunRecord
from ui.saved_models import save_ui

st.title("Digit Recognizer")
st.caption(
    "A small CNN learns to read handwritten digits from MNIST while you watch; then draw one for it."
)
runs: list[RunRecord] = session_runs("digits_runs")
runner = get_runner()
handle = session_handle()

data = data_ui()
if data is not None:
    lesson = page_lesson("digits")  # A teacher's lesson link presets, locks or hides fields.
    config = form_ui(
        len(data.train_images), presets=lesson.presets, locked=lesson.locked, hidden=lesson.hidden
    )
    with st.expander("Model summary"):
        chosen = st.session_state.get("digits_model", "seed")
        rows = summary_rows(chosen)
        st.dataframe(rows, hide_index=True, width="stretch")
        st.caption(f"{MODEL_LABELS[chosen]}: {int(rows['params'].sum()):,} parameters in all.")
    if config is not None:
        submitted: DigitsConfig = config
        mnist: MnistData = data
        try:
            job = runner.submit(
                TrainingSpec(task="digits", config=submitted, data=mnist),
                owner=handle.owner,
                kind="digits",
                labels=class_labels("digits", digits_link_config(config)),
            )
        except QueueFullError as error:
            st.error(str(error))
        else:
            label = f"#{len(runs) + 1} {config.model}{' +aug' if config.augment else ''}"
            runs.append(
                RunRecord(label=label, job_id=job.id, config={"epochs": config.epochs}, unit="Epoch")
            )

active = runs[-1] if runs else None


@st.fragment(run_every=poll_interval(active))
def status_live_ui() -> None:
    """Drains the job's events and updates the status line."""
    if active is None:
        return
    sync_run(active, runner)
    status_ui(active, runner, key="digits_stop")


@st.fragment(run_every=chart_interval(active))
def charts_live_ui() -> None:
    """Redraws the per-batch and per-epoch charts from what the status poll drained."""
    if active is None or not (active.epochs or active.batches):
        return  # Nothing to draw yet (queued, or cancelled before it started): no empty frames.
    left, right = st.columns(2)
    batch_chart([active], metric="loss", container=left)
    batch_chart([active], metric="accuracy", container=right)
    frame = epoch_frame([active])
    left, right = st.columns(2)
    metric_chart(frame, metric="loss", title="Loss per epoch", x_title="Epoch", container=left)
    metric_chart(frame, metric="accuracy", title="Accuracy per epoch", x_title="Epoch", container=right)
    filters_live_ui(active)


status_live_ui()
charts_live_ui()
if active is not None and active.result is not None and data is not None:
    results_ui(active, data)
    save_ui(
        active, task="digits", metrics={"accuracy": active.result.test_accuracy}, key_prefix="digits"
    )
finished = [run for run in runs if run.model is not None]
reader = reader_ui(finished[-1] if finished else None)
canvas_ui(reader)
personal_ui(reader, data)
