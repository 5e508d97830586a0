"""Digit Recognizer page: train a CNN on MNIST live, inspect its mistakes, draw digits for it to read."""

import streamlit as st

from core.digits import DigitsConfig, DigitsResult
from core.jobs import QueueFullError
from core.mnist import MnistData
from core.training_spec import TrainingSpec
from ui.class_view import class_labels, digits_link_config, page_lesson
from ui.controls_view import downloads_ui
from ui.digits_view import (
    MODEL_LABELS,
    charts_ui,
    data_ui,
    drawing_ui,
    form_ui,
    results_ui,
    summary_rows,
)
from ui.live import live_run_ui
from ui.resources import get_runner, session_handle, session_runs
from ui.runs import RunRecord
from ui.runs_view import run_picker_ui, train_notice_ui
from ui.saved_models import save_ui
from ui.state import setup_state

st.title("Digit Recognizer")
st.caption(
    "A small CNN learns to read handwritten digits from MNIST while you watch; then draw one for it."
)
setup_state(
    {
        "digits_runs": [],
        "digits_run_count": 0,
        "digits_canvas_version": 0,
        "digits_saved_loaded": None,
        "digits_reader_job": None,
    }
)
runs: list[RunRecord] = session_runs("digits_runs")
runner = get_runner()
handle = session_handle()

# Every part below sits in a container placed on every run, so what a finished run adds never moves
# the drawing canvas at the bottom (a moved canvas is remounted and loses its stroke).
with st.container():
    data = data_ui()
with st.container():
    if data is not None:
        lesson = page_lesson("digits")  # A teacher's lesson link presets, locks or hides fields.
        notice = st.container()  # Filled after Train, so it also covers the run just started.
        config = form_ui(
            len(data.train_images), presets=lesson.presets, locked=lesson.locked, hidden=lesson.hidden
        )
        with st.expander("Model summary"):
            chosen_model = st.session_state.get("digits_model", "seed")
            rows = summary_rows(chosen_model)
            st.dataframe(rows, hide_index=True, width="stretch")
            st.caption(f"{MODEL_LABELS[chosen_model]}: {int(rows['params'].sum()):,} parameters in all.")
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
                st.session_state["digits_run_count"] += 1
                number = st.session_state["digits_run_count"]
                label = f"#{number} {config.model}{' +aug' if config.augment else ''}"
                runs.append(RunRecord(label=label, job_id=job.id, config=config, unit="Epoch"))
        with notice:
            train_notice_ui(runs)

live_run_ui(runs, runner, key="digits_stop", charts=charts_ui)
with st.container():
    chosen = run_picker_ui(runs, key_prefix="digits")
    if chosen is not None and isinstance(chosen.result, DigitsResult) and data is not None:
        results_ui(chosen, data)
        metrics = {"accuracy": chosen.result.test_accuracy}
        save_ui(chosen, task="digits", metrics=metrics, key_prefix="digits")
    if chosen is not None:
        downloads_ui(chosen, key_prefix="digits")
drawing_ui(chosen, data)
