"""Addition RNN page: configure, train live, stop and compare runs (port of addition-rnn-webworker)."""

import streamlit as st

from core.addition import AdditionConfig
from core.jobs import QueueFullError
from core.training_spec import TrainingSpec
from ui.addition_view import (
    ask_ui,
    charts_ui,
    form_ui,
    link_ui,
    run_metrics,
    summary_ui,
    warm_charts,
)
from ui.class_view import class_labels, page_lesson
from ui.controls_view import downloads_ui
from ui.links import form_values_from_query, link_combination_problem, query_from_config
from ui.live import live_run_ui
from ui.resources import get_runner, session_handle, session_runs
from ui.runs import RunRecord
from ui.runs_view import run_picker_ui, train_notice_ui
from ui.saved_models import save_ui
from ui.state import setup_state

st.title("Addition RNN")
st.caption(
    "A recurrent network learns to add integers from example sums: SimpleRNN, GRU or LSTM, trained "
    "live on the server while this page polls it."
)
setup_state(
    {"addition_runs": [], "addition_run_count": 0, "addition_saved_loaded": None, "addition_link": {}}
)
runs: list[RunRecord] = session_runs("addition_runs")
runner = get_runner()
handle = session_handle()

presets, query_problems = form_values_from_query(link_ui())
for problem in query_problems:
    st.warning(f"Link setting ignored: {problem}")
# The whole link is checked at once, so a combination that cannot train is told before Train.
combination = link_combination_problem(presets)
if combination is not None:
    st.warning(f"This link's settings do not fit together: {combination}")
lesson = page_lesson("addition")  # A teacher's lesson link presets, locks or hides fields.
notice = st.container()  # Filled after Train, so it also covers the run just started.
config = form_ui({**presets, **lesson.presets}, locked=lesson.locked, hidden=lesson.hidden)
summary_ui({**presets, **lesson.presets})
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
        st.session_state["addition_run_count"] += 1
        number = st.session_state["addition_run_count"]
        label = f"#{number} {config.rnn_type} {config.layers}x{config.hidden_size}"
        # The run keeps the typed config it trains with; the link only mirrors it.
        runs.append(RunRecord(label=label, job_id=job.id, config=config))
        st.query_params.from_dict(query_from_config(config))
        st.session_state["addition_link"] = query_from_config(config)

with notice:
    train_notice_ui(runs)
warm_charts()  # Once per process: the first run's first charts cost its iterations nothing extra.
live_run_ui(
    runs,
    runner,
    key="addition_stop",
    charts=lambda active: charts_ui(runs, active),
    idle="Set the form and press Train. Each iteration is one pass over the training set.",
)
chosen = run_picker_ui(runs, key_prefix="addition")
if chosen is not None:
    save_ui(chosen, task="addition", metrics=run_metrics(chosen), key_prefix="addition")
    downloads_ui(chosen, key_prefix="addition")
ask_ui(chosen)
