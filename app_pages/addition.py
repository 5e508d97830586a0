"""Addition RNN page: configure, train live, stop and compare runs (port of addition-rnn-webworker)."""

import pandas as pd
import streamlit as st

from core.addition import (
    MAX_BATCH_SIZE,
    MAX_HIDDEN_SIZE,
    MAX_ITERATIONS,
    MAX_LAYERS,
    MAX_TEST_EXAMPLES,
    MAX_TRAINING_SIZE,
    RNN_TYPES,
    AdditionConfig,
    form_values_from_query,
    query_from_config,
    train_addition,
)
from core.jobs import QueueFullError
from core.runs import RunRecord
from ui.charts import epoch_frame, metric_chart
from ui.live import poll_interval, status_ui, sync_run
from ui.resources import get_runner, session_handle


def form_ui(presets: dict) -> AdditionConfig | None:
    """The eight fields of the original form plus Reverse; returns a config when Train is pressed."""
    base = AdditionConfig()

    def preset(name: str):
        return presets.get(name, getattr(base, name))

    with st.form("addition_form"):
        left, middle, right = st.columns(3)
        digits = left.number_input("Digits", 1, 5, preset("digits"), key="addition_digits")
        training_size = middle.number_input(
            "Training size",
            10,
            MAX_TRAINING_SIZE,
            preset("training_size"),
            step=1000,
            key="addition_training_size",
        )
        rnn_type = right.selectbox(
            "RNN type", RNN_TYPES, RNN_TYPES.index(preset("rnn_type")), key="addition_rnn_type"
        )
        num_layers = left.number_input(
            "RNN layers", 1, MAX_LAYERS, preset("layers"), key="addition_layers"
        )
        hidden_size = middle.number_input(
            "Hidden size", 1, MAX_HIDDEN_SIZE, preset("hidden_size"), key="addition_hidden_size"
        )
        batch_size = right.number_input(
            "Batch size", 1, MAX_BATCH_SIZE, preset("batch_size"), key="addition_batch_size"
        )
        iterations = left.number_input(
            "Train iterations", 1, MAX_ITERATIONS, preset("iterations"), key="addition_iterations"
        )
        test_examples = middle.number_input(
            "# of test examples",
            0,
            MAX_TEST_EXAMPLES,
            preset("test_examples"),
            key="addition_test_examples",
        )
        reverse = right.checkbox(
            "Reverse the question",
            preset("reverse"),
            key="addition_reverse",
            help="Feeding '12+345' as '543+21' shortens what the RNN must remember.",
        )
        if not st.form_submit_button("Train", type="primary"):
            return None
    try:
        return AdditionConfig(
            digits=int(digits),
            training_size=int(training_size),
            rnn_type=rnn_type,
            layers=int(num_layers),
            hidden_size=int(hidden_size),
            batch_size=int(batch_size),
            iterations=int(iterations),
            test_examples=int(test_examples),
            reverse=bool(reverse),
        )
    except ValueError as error:
        st.error(str(error))
        return None


def samples_ui(run: RunRecord) -> None:
    """Test sums of the latest iteration, right ones green and wrong ones red."""
    if run.samples is None:
        return
    table = pd.DataFrame(
        [
            (s.question, s.expected, s.predicted, "right" if s.correct else "wrong")
            for s in run.samples.samples
        ],
        columns=["Question", "Answer", "Model", "Right"],
    )
    st.markdown(
        f"**Test sums after iteration {run.samples.epoch}** — exact match "
        f"{run.samples.exact_match:.0%} ({sum(s.correct for s in run.samples.samples)} of "
        f"{len(run.samples.samples)})"
    )
    colours = [
        "background-color: #d4f7dc" if s.correct else "background-color: #fbd5d5"
        for s in run.samples.samples
    ]
    st.dataframe(
        table.style.apply(lambda column: colours, axis=0, subset=["Model"]),
        hide_index=True,
        key="addition_samples_table",
    )


st.title("Addition RNN")
st.caption(
    "A recurrent network learns to add integers from example sums: SimpleRNN, GRU or LSTM, trained "
    "live on the server while this page polls it."
)
if "addition_runs" not in st.session_state:
    st.session_state["addition_runs"] = []
if "addition_job_id" not in st.session_state:
    st.session_state["addition_job_id"] = None
runs: list[RunRecord] = st.session_state["addition_runs"]
runner = get_runner()
handle = session_handle()

presets, query_problems = form_values_from_query(st.query_params.to_dict())
for problem in query_problems:
    st.warning(f"Link setting ignored: {problem}")
config = form_ui(presets)
if config is not None:
    try:
        job = runner.submit(
            lambda emit, stop: train_addition(config, on_event=emit, stop=stop),
            owner=handle.owner,
            kind="addition",
        )
    except QueueFullError as error:
        st.error(str(error))
    else:
        label = f"#{len(runs) + 1} {config.rnn_type} {config.layers}x{config.hidden_size}"
        runs.append(RunRecord(label=label, job_id=job.id, config=query_from_config(config)))
        st.session_state["addition_job_id"] = job.id
        st.query_params.from_dict(query_from_config(config))

active = runs[-1] if runs else None
if active is not None and not active.done and st.button("Stop", key="addition_stop"):
    job = runner.get(active.job_id)
    if job is not None:
        job.cancel()


@st.fragment(run_every=poll_interval(active))
def live_ui() -> None:
    """Drains the job's events and redraws status, charts and test sums."""
    if active is None:
        st.info("Set the form and press Train. Each iteration is one pass over the training set.")
        return
    sync_run(active, runner)
    status_ui(active, runner)
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
    left.altair_chart(metric_chart(frame, metric="loss", title="Loss"), width="stretch")
    right.altair_chart(
        metric_chart(frame, metric="accuracy", title="Accuracy (per character)"), width="stretch"
    )
    st.altair_chart(
        metric_chart(frame, metric="seconds", title="Seconds per iteration"), width="stretch"
    )
    samples_ui(active)


live_ui()
