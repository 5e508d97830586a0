"""AppTest runs of every page: no exception, errors for bad values, a tiny training run end to end."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import JobState

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / name), default_timeout=TIMEOUT)


@pytest.mark.parametrize("script", ["streamlit_app.py", "app_pages/addition.py"])
def test_page_runs_without_exception(script):
    at = page(script).run()
    assert not at.exception
    assert at.title[0].value == "Addition RNN"


def test_addition_form_shows_defaults_of_the_original():
    at = page("app_pages/addition.py").run()
    values = {
        key: at.number_input(key=key).value
        for key in (
            "addition_digits",
            "addition_training_size",
            "addition_layers",
            "addition_hidden_size",
            "addition_batch_size",
            "addition_iterations",
            "addition_test_examples",
        )
    }
    assert values == {
        "addition_digits": 2,
        "addition_training_size": 5000,
        "addition_layers": 1,
        "addition_hidden_size": 128,
        "addition_batch_size": 128,
        "addition_iterations": 100,
        "addition_test_examples": 20,
    }
    assert at.selectbox(key="addition_rnn_type").value == "SimpleRNN"
    assert at.checkbox(key="addition_reverse").value is True


def test_addition_rejects_a_training_size_larger_than_the_distinct_sums():
    at = page("app_pages/addition.py").run()
    at.number_input(key="addition_digits").set_value(1)
    at.button[0].click().run()  # The form's Train button.
    assert not at.exception
    assert "1 digit allow at most 55 distinct sums" in at.error[0].value
    assert at.session_state["addition_runs"] == []


def test_addition_link_presets_the_form_and_reports_bad_parameters():
    at = page("app_pages/addition.py")
    at.query_params["digits"] = "3"
    at.query_params["rnn_type"] = "lstm"
    at.query_params["iterations"] = "lots"
    at.run()
    assert at.number_input(key="addition_digits").value == 3
    assert at.selectbox(key="addition_rnn_type").value == "LSTM"
    assert at.number_input(key="addition_iterations").value == 100
    assert any(
        "iterations" in warning.value and "whole number" in warning.value for warning in at.warning
    )


def test_addition_tiny_training_run_shows_charts_and_sums():
    from ui.resources import get_runner

    at = page("app_pages/addition.py").run()
    for key, value in {
        "addition_digits": 1,
        "addition_training_size": 55,
        "addition_hidden_size": 8,
        "addition_batch_size": 16,
        "addition_iterations": 3,
        "addition_test_examples": 5,
    }.items():
        at.number_input(key=key).set_value(value)
    at.button[0].click().run()
    assert not at.exception
    runs = at.session_state["addition_runs"]
    assert len(runs) == 1
    job = get_runner().get(runs[0].job_id)
    assert job is not None and job.wait(TIMEOUT)
    assert job.state is JobState.FINISHED
    at.run()  # The page's poll: drains the events of the finished job.
    at.run()
    assert not at.exception
    run = at.session_state["addition_runs"][0]
    assert run.state == "finished" and len(run.epochs) == 3
    assert run.model is not None
    assert any("Finished 3 iteration" in success.value for success in at.success)
    # Loss, accuracy and seconds-per-iteration charts, and the table of test sums.
    assert len(at.get("vega_lite_chart")) == 3
    assert any("exact match" in markdown.value for markdown in at.markdown)
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 5
