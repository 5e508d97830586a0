"""AppTest runs of every page: no exception, errors for bad values, a tiny training run end to end."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import JobState

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / name), default_timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("script", "title"),
    [
        ("streamlit_app.py", "Addition RNN"),
        ("app_pages/addition.py", "Addition RNN"),
        ("app_pages/digits.py", "Digit Recognizer"),
        ("app_pages/model_cache.py", "Model Cache"),
    ],
)
def test_page_runs_without_exception(script, title):
    at = page(script).run()
    assert not at.exception
    assert at.title[0].value == title


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


def test_digits_page_shows_data_source_and_summary_and_starts_a_run():
    from ui.resources import get_runner

    at = page("app_pages/digits.py").run()
    assert not at.exception
    assert any("24,345 train and 10,000 test images" in caption.value for caption in at.caption)
    assert any("53,866 parameters" in caption.value for caption in at.caption)
    at.number_input(key="digits_learning_rate").set_value(0.00001)
    at.number_input(key="digits_batch_size").set_value(4096)
    at.number_input(key="digits_training_size").set_value(150)
    at.button[0].click().run()
    assert not at.exception
    runs = at.session_state["digits_runs"]
    assert len(runs) == 1 and runs[0].unit == "Epoch"
    job = get_runner().get(runs[0].job_id)
    # Stopped at once to keep the test short; the page then says what happened.
    job.cancel()
    assert job.wait(TIMEOUT)
    at.run()
    at.run()
    assert not at.exception
    assert at.session_state["digits_runs"][0].done


def test_digits_page_without_data_explains_how_to_provide_it(monkeypatch, tmp_path):
    from core import mnist

    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    mnist.clear_mnist_cache()
    try:
        at = page("app_pages/digits.py").run()
    finally:
        mnist.clear_mnist_cache()
    assert not at.exception
    assert any("MNIST_DIR" in warning.value for warning in at.warning)
    assert len(at.get("file_uploader")) == 1


def test_digits_finished_run_shows_scores_and_reads_a_drawing(mnist_dir):
    from core.digits import DigitsConfig, train_digits
    from core.mnist import cached_mnist
    from core.runs import RunRecord

    result = train_digits(
        DigitsConfig(epochs=1, training_size=2000, seed=3), data=cached_mnist(mnist_dir)
    )
    run = RunRecord(label="#1 seed", job_id="gone", config={"epochs": 1}, unit="Epoch", state="finished")
    run.model, run.result, run.epochs = result.model, result, list(result.history)
    at = page("app_pages/digits.py")
    at.session_state["digits_runs"] = [run]
    at.run()
    assert not at.exception
    assert any(metric.label == "Test accuracy" for metric in at.metric)
    assert len(at.get("vega_lite_chart")) >= 2  # Confusion matrix and per-digit accuracy.
    assert any("Finished 1 epoch" in success.value for success in at.success)
