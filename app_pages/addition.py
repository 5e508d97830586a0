"""Addition RNN page: configure, train live, stop and compare runs (port of addition-rnn-webworker)."""

import streamlit as st

from core.addition import AdditionConfig
from core.jobs import QueueFullError
from core.training_spec import TrainingSpec
from ui.addition_errors_view import breakdown_ui
from ui.addition_view import ask_ui, form_ui, samples_ui
from ui.charts import epoch_frame, metric_chart
from ui.class_view import class_labels, page_lesson
from ui.links import form_values_from_query, query_from_config
from ui.live import chart_interval, poll_interval, status_ui, sync_run
from ui.resources import get_runner, session_handle, session_runs
from ui.runs import RunRecord
from ui.saved_models import save_ui

st.title("Addition RNN")
st.caption(
    "A recurrent network learns to add integers from example sums: SimpleRNN, GRU or LSTM, trained "
    "live on the server while this page polls it."
)
runs: list[RunRecord] = session_runs("addition_runs")
runner = get_runner()
handle = session_handle()

presets, query_problems = form_values_from_query(st.query_params.to_dict())
for problem in query_problems:
    st.warning(f"Link setting ignored: {problem}")
lesson = page_lesson("addition")  # A teacher's lesson link presets, locks or hides fields.
config = form_ui({**presets, **lesson.presets}, locked=lesson.locked, hidden=lesson.hidden)
if config is not None:
    submitted: AdditionConfig = config
    try:
        job = runner.submit(
            TrainingSpec(task="addition", config=submitted),
            owner=handle.owner,
            kind="addition",
            labels=class_labels("addition", query_from_config(config)),
        )
    except QueueFullError as error:
        st.error(str(error))
    else:
        label = f"#{len(runs) + 1} {config.rnn_type} {config.layers}x{config.hidden_size}"
        runs.append(RunRecord(label=label, job_id=job.id, config=query_from_config(config)))
        st.query_params.from_dict(query_from_config(config))

active = runs[-1] if runs else None


@st.fragment(run_every=poll_interval(active))
def status_live_ui() -> None:
    """Drains the job's events and updates the status line."""
    if active is None:
        st.info("Set the form and press Train. Each iteration is one pass over the training set.")
        return
    sync_run(active, runner)
    status_ui(active, runner, key="addition_stop")


@st.fragment(run_every=chart_interval(active))
def charts_live_ui() -> None:
    """Redraws the charts and the test sums from what the status poll drained."""
    if active is None or not (active.epochs or active.batches):
        return  # Nothing to draw yet (queued, or cancelled before it started): no empty frames.
    shown = st.multiselect(
        "Runs on the charts",
        [run.label for run in runs],
        default=[active.label],
        key="addition_compare",
        help="Overlay runs to compare SimpleRNN, GRU and LSTM.",
    )
    chosen = [run for run in runs if run.label in shown] or [active]
    frame = epoch_frame(chosen)
    left, right = st.columns(2)
    metric_chart(frame, metric="loss", title="Loss", container=left)
    metric_chart(frame, metric="accuracy", title="Accuracy (per character)", container=right)
    metric_chart(frame, metric="seconds", title="Seconds per iteration")
    samples_ui(active)
    breakdown_ui(active)


status_live_ui()
charts_live_ui()
if active is not None and active.model is not None:
    last = active.epochs[-1] if active.epochs else None
    metrics = {"val_accuracy": last.val_accuracy} if last else {}
    if active.samples is not None:
        metrics["exact_match"] = active.samples.exact_match
    save_ui(active, task="addition", metrics=metrics, key_prefix="addition")
ask_ui(active)
