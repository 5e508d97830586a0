"""AppTest runs of every page: no exception, errors for bad values, a tiny training run end to end."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import JobState
from tests.utils.mnist import mnist_counts
from ui.live import TrackedJob

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
    assert "1 digit allows at most 55 distinct sums" in at.error[0].value
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


def test_addition_fast_preset_fills_the_form_for_its_digits_and_the_link_carries_it():
    from core.addition import fast_config

    at = page("app_pages/addition.py").run()
    at.number_input(key="addition_digits").set_value(3)
    at.button(key="addition_fast_preset").click().run()
    assert not at.exception
    expected = fast_config(3)
    assert at.number_input(key="addition_digits").value == 3
    assert at.number_input(key="addition_training_size").value == expected.training_size
    assert at.number_input(key="addition_batch_size").value == expected.batch_size
    assert at.number_input(key="addition_iterations").value == expected.iterations
    assert at.selectbox(key="addition_rnn_type").value == "LSTM"
    assert at.selectbox(key="addition_recipe").value == "fast"
    assert at.query_params["recipe"] == "fast" and at.query_params["batch_size"] == "512"
    # Filling the form trains nothing; a 1-digit form gets the smallest preset, two digits.
    assert at.session_state["addition_runs"] == []
    at.number_input(key="addition_digits").set_value(1)
    at.button(key="addition_fast_preset").click().run()
    assert at.number_input(key="addition_digits").value == 2
    assert at.number_input(key="addition_batch_size").value == fast_config(2).batch_size


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
    # Loss, accuracy, exact match and seconds-per-iteration charts, the error breakdown by carries and
    # by operand length (ui/addition_errors_view.py), and the table of test sums.
    assert len(at.get("vega_lite_chart")) == 6
    assert any("exact match" in markdown.value for markdown in at.markdown)
    # The model summary, the test sums, then the hardest held-out sums.
    assert len(at.dataframe) == 3 and len(at.dataframe[1].value) == 5


def test_addition_page_charts_exact_match_explains_each_chart_and_shows_the_model_summary():
    import json

    from ui.charts import CHART_HELP
    from ui.resources import get_runner

    at = page("app_pages/addition.py").run()
    # Before any run, the summary shows the model the form's values build.
    assert any("parameters in all" in caption.value for caption in at.caption)
    at.number_input(key="addition_digits").set_value(1)
    at.number_input(key="addition_training_size").set_value(55)
    at.number_input(key="addition_hidden_size").set_value(8)
    at.number_input(key="addition_iterations").set_value(2)
    at.number_input(key="addition_test_examples").set_value(3)
    at.button[0].click().run()
    assert not at.error, [error.value for error in at.error]
    job = get_runner().get(at.session_state["addition_runs"][0].job_id)
    assert job is not None and job.wait(TIMEOUT)
    at.run()
    at.run()
    assert not at.exception
    titles = [json.loads(chart.proto.spec)["title"] for chart in at.get("vega_lite_chart")]
    assert "Exact match (held-out sums)" in titles and "Accuracy (per character)" in titles
    captions = [caption.value for caption in at.caption]
    for name in ("loss", "character accuracy", "exact match"):
        assert CHART_HELP[name] in captions, name
    # The summary follows the last submitted form: a SimpleRNN with 8 units.
    summary = [frame.value for frame in at.dataframe if "params" in frame.value.columns]
    assert summary and "SimpleRNN" in summary[0]["type"].tolist()
    assert "(None, 8)" in summary[0]["output shape"].tolist()


def test_digits_page_shows_data_source_and_summary_and_starts_a_run(mnist_dir):
    from ui.resources import get_runner

    counts = mnist_counts(mnist_dir)
    shown = f"{counts['train_images']:,} train and {counts['test_images']:,} test images"
    at = page("app_pages/digits.py").run()
    assert not at.exception
    assert any(shown in caption.value for caption in at.caption)
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


def test_digits_page_offline_says_so_in_one_line_and_tries_the_download_once(monkeypatch, tmp_path):
    import urllib.request

    from core import mnist

    attempts = []

    def dropping_opener(url, timeout):
        attempts.append(url)
        raise OSError("<urlopen error [Errno 101] Network is unreachable>")

    monkeypatch.delenv("MNIST_DIR")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", dropping_opener)
    mnist.clear_mnist_cache()
    try:
        at = page("app_pages/digits.py").run()
        at.run()  # A second script run (a canvas stroke, another session) must not try again.
    finally:
        mnist.clear_mnist_cache()
    assert not at.exception
    assert len(attempts) == 1
    (warning,) = [warning.value for warning in at.warning if "MNIST" in warning.value]
    assert "\n" not in warning and len(warning) < 200 and "urlopen" not in warning
    assert "MNIST_DIR" in warning and "upload" in warning
    assert len(at.get("file_uploader")) == 1


def finished_digits_run(mnist_dir, *, training_size: int):
    """A finished one-epoch seed-CNN run, as the page keeps it once its job has ended."""
    from core.digits import DigitsConfig, train_digits
    from core.mnist import cached_mnist
    from ui.runs import RunRecord

    config = DigitsConfig(epochs=1, training_size=training_size, seed=3)
    result = train_digits(config, data=cached_mnist(mnist_dir))
    run = RunRecord(label="#1 seed", job_id="gone", config=config, unit="Epoch", state="finished")
    run.model, run.result, run.epochs = result.model, result, list(result.history)
    return run


def drawn_one() -> str:
    """What the drawing square sends for a "1": a PNG data URL of a white bar on the black square."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    from core.canvas import DRAWING_SIDE, PNG_DATA_URL_PREFIX

    pixels = np.zeros((DRAWING_SIDE, DRAWING_SIDE), dtype=np.uint8)
    pixels[40:240, 130:150] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return PNG_DATA_URL_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


def test_digits_finished_run_shows_scores_and_reads_a_drawing(mnist_dir):
    run = finished_digits_run(mnist_dir, training_size=2000)
    at = page("app_pages/digits.py")
    at.session_state["digits_runs"] = [run]
    # The drawing square's state, as the browser sets it on pointer-up.
    at.session_state["digits_canvas_0"] = {"png": drawn_one()}
    at.run()
    assert not at.exception
    assert any(metric.label == "Test accuracy" for metric in at.metric)
    assert len(at.get("vega_lite_chart")) >= 2  # Confusion matrix and per-digit accuracy.
    assert any("Finished 1 epoch" in success.value for success in at.success)
    prediction = [metric for metric in at.metric if metric.label == "Prediction"]
    assert len(prediction) == 1 and prediction[0].value in [str(digit) for digit in range(10)]
    assert any("confident" in caption.value for caption in at.caption)


def reader_jobs():
    from ui.resources import get_runner

    return [job for job in get_runner().jobs() if job.kind == "digits-reader"]


def test_digits_drawings_are_read_by_the_verified_tflite_copy_once_it_is_ready(mnist_dir):
    from core.reader import DigitReader

    run = finished_digits_run(mnist_dir, training_size=300)
    at = page("app_pages/digits.py")
    at.session_state["digits_runs"] = [run]
    at.session_state["digits_canvas_0"] = {"png": drawn_one()}
    before = len(reader_jobs())
    at.run()
    assert not at.exception
    # Read at once (by Keras) while the copy is converted and checked in a job.
    assert any(metric.label == "Prediction" for metric in at.metric)
    assert not any("TFLite" in caption.value for caption in at.caption)
    jobs = reader_jobs()
    assert len(jobs) == before + 1 and jobs[-1].wait(TIMEOUT)
    assert isinstance(jobs[-1].result, DigitReader) and jobs[-1].result.model is run.model
    at.run()
    assert not at.exception
    assert any("read by its TFLite copy" in caption.value for caption in at.caption)
    assert len(reader_jobs()) == before + 1  # The same model is not converted again.


@pytest.mark.parametrize(
    "payload",
    [
        "data:image/png;base64,AAAA",
        "data:text/html;base64,PHNjcmlwdD4=",
        "data:image/png;base64," + "A" * 400_000,
        12345,
        ["not", "a", "drawing"],
        {"png": "nested"},
    ],
)
def test_digits_page_refuses_a_hostile_drawing_with_one_line(payload):
    at = page("app_pages/digits.py")
    at.session_state["digits_canvas_0"] = {"png": payload}
    at.run()
    assert not at.exception
    warnings = [warning.value for warning in at.warning if "drawing could not be read" in warning.value]
    assert len(warnings) == 1 and "\n" not in warnings[0] and len(warnings[0]) < 200, warnings
    assert not any(metric.label == "Prediction" for metric in at.metric)
    # Clear gives a new, empty square: the message goes and the page asks for a drawing again.
    at.button(key="digits_clear").click().run()
    assert not at.exception
    assert not any("drawing could not be read" in warning.value for warning in at.warning)
    assert any("Draw a digit on the black square." in info.value for info in at.info)


def saved_digits_model(name: str) -> str:
    """Save a tiny untrained digits model in the app's store; returns its id."""
    from tests.utils.models import tiny_digits_model
    from ui.resources import get_store

    model = tiny_digits_model()
    record = get_store().save_keras(
        model, name=name, task="digits", config={"model": "tiny"}, metrics={"accuracy": 0.5}
    )
    return record.id


def test_model_cache_lists_loads_renames_and_deletes_a_model():
    from ui.resources import get_runner

    model_id = saved_digits_model("cache page model")
    at = page("app_pages/model_cache.py").run()
    assert not at.exception
    assert "cache page model" in at.dataframe[0].value["name"].tolist()
    at.selectbox(key="cache_selected").set_value(model_id).run()
    at.button(key="cache_load").click().run()
    job = get_runner().get(at.session_state["cache_load_job"].job_id)
    assert job is not None and job.wait(TIMEOUT)
    at.run()
    at.run()
    assert not at.exception
    # The load reports where the model came from and how long it took.
    assert any("Loaded in" in (bar.proto.text or "") for bar in at.get("progress"))

    at.text_input(key="cache_rename_name").set_value("../escape")
    at.button(key="cache_rename").click().run()
    assert any("not allowed" in error.value for error in at.error)
    at.text_input(key="cache_rename_name").set_value("renamed model")
    at.button(key="cache_rename").click().run()
    assert "renamed model" in at.dataframe[0].value["name"].tolist()

    at.checkbox(key="cache_delete_sure").check().run()
    at.button(key="cache_delete").click().run()
    assert not at.exception
    names = at.dataframe[0].value["name"].tolist() if at.dataframe else []
    assert "renamed model" not in names


def finished_addition_run():
    from core.addition import AdditionConfig, train_addition
    from ui.runs import RunRecord

    config = AdditionConfig(
        digits=1, training_size=55, hidden_size=8, iterations=1, test_examples=2, seed=1
    )
    result = train_addition(config)
    run = RunRecord(label="#1 SimpleRNN 1x8", job_id="gone", config=config, state="finished")
    run.model, run.result, run.epochs, run.samples = (
        result.model,
        result,
        list(result.history),
        result.samples,
    )
    return run


def test_addition_save_on_a_full_disk_says_so_and_keeps_the_run(monkeypatch):
    import errno
    import os

    from ui.resources import get_store

    run = finished_addition_run()
    at = page("app_pages/addition.py")
    at.session_state["addition_runs"] = [run]
    at.run()
    at.text_input(key="addition_save_name").set_value("no room")

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    at.button(key="FormSubmitter:addition_save_form-Save to cache").click().run()
    monkeypatch.undo()
    assert not at.exception
    message = "Not saved: could not save model 'no room': the disk is full"
    assert any(message in error.value for error in at.error)
    assert [record for record in get_store().list_models() if record.name == "no room"] == []
    # The run keeps its model, so saving again once there is room works.
    at.button(key="FormSubmitter:addition_save_form-Save to cache").click().run()
    assert any("Saved as “no room”" in success.value for success in at.success)


def test_addition_saves_a_finished_run_and_answers_typed_sums():
    from ui.resources import get_store

    run = finished_addition_run()
    at = page("app_pages/addition.py")
    at.session_state["addition_runs"] = [run]
    at.run()
    assert not at.exception
    # The proposed name and the example sum are ones this store and this 1-digit model accept.
    from core.addition import parse_question
    from core.modelstore.store import validate_name

    validate_name(at.text_input(key="addition_save_name").value)
    parse_question(at.text_input(key="addition_question").placeholder, digits=1)
    at.text_input(key="addition_save_name").set_value("my adder")
    at.button(key="FormSubmitter:addition_save_form-Save to cache").click().run()
    assert not at.exception
    assert any("Saved as “my adder”" in success.value for success in at.success)
    saved = [record for record in get_store().list_models("addition") if record.name == "my adder"]
    assert len(saved) == 1 and saved[0].config["digits"] == 1 and "exact_match" in saved[0].metrics

    at.text_input(key="addition_question").set_value("3+4").run()
    assert any("3 + 4 = **" in markdown.value for markdown in at.markdown)
    at.text_input(key="addition_question").set_value("12+4").run()
    assert any("up to 1 digits" in error.value for error in at.error)

    # The saved model answers too, loaded through the shared cache.
    at.radio(key="addition_ask_source").set_value("A saved model").run()
    at.selectbox(key="addition_saved_choice").set_value(saved[0].id)
    at.button(key="addition_saved_load").click().run()
    at.text_input(key="addition_question").set_value("3+4").run()
    assert not at.exception
    assert any("3 + 4 = **" in markdown.value for markdown in at.markdown)


def press_train_with_a_tiny_config(at: AppTest) -> None:
    for key, value in {
        "addition_digits": 1,
        "addition_training_size": 55,
        "addition_hidden_size": 8,
        "addition_batch_size": 16,
        "addition_iterations": 2,
        "addition_test_examples": 2,
    }.items():
        at.number_input(key=key).set_value(value)
    at.button[0].click().run()  # The form's Train button.


def test_addition_queued_run_shows_its_position_and_can_be_cancelled():
    import threading

    from ui.resources import get_runner

    runner = get_runner()
    release = threading.Event()
    started = [threading.Event() for _ in range(runner.max_workers)]

    def occupy(index):
        def work(emit, stop):
            started[index].set()
            release.wait(TIMEOUT)

        return work

    # Other students hold every worker, so this session's job has to wait in line.
    blockers = [
        runner.submit(occupy(index), owner=f"other-{index}", kind="addition")
        for index in range(runner.max_workers)
    ]
    try:
        assert all(event.wait(TIMEOUT) for event in started)
        at = page("app_pages/addition.py").run()
        press_train_with_a_tiny_config(at)
        assert not at.exception
        assert any("Queued, position 1 of 1" in info.value for info in at.info)
        job = runner.get(at.session_state["addition_runs"][0].job_id)
        assert job.state is JobState.QUEUED

        at.button(key="addition_stop_cancel").click().run()
        assert not at.exception
        assert job.state is JobState.CANCELLED
        assert any("Cancelled before training started" in info.value for info in at.info)
        assert at.session_state["addition_runs"][0].state == "cancelled"
    finally:
        release.set()
    assert all(blocker.wait(TIMEOUT) for blocker in blockers)


def test_addition_training_that_raises_shows_the_error_and_the_runner_keeps_serving(monkeypatch):
    import core.addition
    from ui.resources import get_runner

    real_train = core.addition.train_addition

    def broken(config, **kwargs):
        raise RuntimeError("the GPU caught fire")

    monkeypatch.setattr(core.addition, "train_addition", broken)
    at = page("app_pages/addition.py").run()
    press_train_with_a_tiny_config(at)
    job = get_runner().get(at.session_state["addition_runs"][0].job_id)
    assert job.wait(TIMEOUT) and job.state is JobState.FAILED
    at.run()
    at.run()
    assert not at.exception
    assert any("Training failed: RuntimeError: the GPU caught fire" in e.value for e in at.error)

    # The same session trains again once the fault is gone: the worker survived.
    monkeypatch.setattr(core.addition, "train_addition", real_train)
    at.button[0].click().run()
    job = get_runner().get(at.session_state["addition_runs"][-1].job_id)
    assert job.wait(TIMEOUT) and job.state is JobState.FINISHED


def model_cache_with(*names: str) -> tuple[AppTest, list[str]]:
    """The Model Cache page after saving tiny digits models under `names`; their ids in order."""
    ids = [saved_digits_model(name) for name in names]
    at = page("app_pages/model_cache.py").run()
    assert not at.exception
    return at, ids


def test_model_cache_delete_confirmation_belongs_to_one_model_and_resets_after_a_delete():
    at, (first, second) = model_cache_with("delete check A", "delete check B")
    at.selectbox(key="cache_selected").set_value(first).run()
    at.checkbox(key="cache_delete_sure").check().run()
    # Picking another model must not carry the tick over to it.
    at.selectbox(key="cache_selected").set_value(second).run()
    assert at.checkbox(key="cache_delete_sure").value is False
    assert at.button(key="cache_delete").disabled
    at.checkbox(key="cache_delete_sure").check().run()
    at.button(key="cache_delete").click().run()
    assert not at.exception
    assert "delete check B" not in at.dataframe[0].value["name"].tolist()
    # After a delete, the next model is not one click from deletion: unticked, popover closed.
    assert at.checkbox(key="cache_delete_sure").value is False
    assert at.session_state["cache_delete_popover"] is False


def test_model_cache_export_is_named_after_the_model(monkeypatch):
    from streamlit.delta_generator import DeltaGenerator

    file_names = []

    def record_download(self, label, data, file_name=None, **kwargs):
        file_names.append(file_name)
        return False

    # The file name reaches the browser only inside the deferred download, so the call is recorded.
    monkeypatch.setattr(DeltaGenerator, "download_button", record_download)
    at, (model_id,) = model_cache_with("export me (v2)")
    at.selectbox(key="cache_selected").set_value(model_id).run()
    assert not at.exception
    assert file_names[-1] == "export me (v2).keras"


def test_model_cache_messages_belong_to_their_model_and_rename_shows_at_once():
    at, (first, second) = model_cache_with("message A", "message B")
    at.selectbox(key="cache_selected").set_value(first).run()
    at.session_state["cache_formats_message"] = (first, "Failed: something", True)
    at.run()
    assert any("Failed: something" in error.value for error in at.error)
    at.selectbox(key="cache_selected").set_value(second).run()
    assert not any("Failed: something" in error.value for error in at.error)
    # A rename shows the new name in the picker in the same run.
    at.text_input(key="cache_rename_name").set_value("message B renamed")
    at.button(key="cache_rename").click().run()
    picker = at.selectbox(key="cache_selected")
    assert any("message B renamed" in option for option in picker.options)


def test_model_cache_shows_an_unscored_upload_as_empty_never_as_none():
    # An uploaded model has no metrics: its score was shown as a literal "None".
    from tests.utils.models import tiny_digits_model
    from ui.resources import get_store

    record = get_store().save_keras(
        tiny_digits_model(), name="unscored upload", task="digits", config={}, metrics={}
    )
    at = page("app_pages/model_cache.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    row = table[table["name"] == "unscored upload"].iloc[0]
    assert row["score"] is None or row["score"] != row["score"]  # None or NaN: an empty cell.
    at.selectbox(key="cache_selected").set_value(record.id).run()
    picker = at.selectbox(key="cache_selected")
    label = next(option for option in picker.options if "unscored upload" in option)
    assert "None" not in label and "nan" not in label.lower()
    assert not any("None" in str(element.value) for element in [*at.markdown, *at.caption])


def test_model_cache_sorts_shows_details_and_offers_the_training_page():
    at, ids = model_cache_with("sort b", "sort a")
    at.selectbox(key="cache_sort").set_value("name").run()
    names = at.dataframe[0].value["name"].tolist()
    assert names == sorted(names, key=str.lower)
    at.selectbox(key="cache_selected").set_value(ids[0]).run()
    assert any("Details of “sort b”" in expander.label for expander in at.expander)
    assert any('"model"' in str(element.proto) or "tiny" in str(element.proto) for element in at.json)
    assert at.button(key="cache_use").label == "Use on Digit Recognizer"


def test_model_cache_compare_shows_which_format_is_measured_and_what_numbers_mean():
    import threading

    from core.events import FormatMeasured
    from core.modelstore.compare import FormatReport
    from ui.resources import get_runner

    at, (model_id,) = model_cache_with("compare me")
    at.selectbox(key="cache_selected").set_value(model_id).run()
    release = threading.Event()

    def work(emit, stop):
        emit(FormatMeasured(format="tflite-float16", label="TFLite float16 weights", done=3, total=5))
        release.wait(TIMEOUT)
        return []

    job = get_runner().submit(work, owner="test", kind="cache-formats")
    at.session_state["cache_formats_job"] = TrackedJob(job_id=job.id, model_id=model_id)
    at.run()
    release.set()
    texts = [bar.proto.text for bar in at.get("progress")]
    assert any("Measuring TFLite float16 weights (4 of 5)" in text for text in texts), texts
    job.wait(TIMEOUT)

    report = FormatReport(
        format="keras",
        size_bytes=40_000,
        cold_load_seconds=0.9,
        warm_load_seconds=0.05,
        latency_ms_per_sample=0.8,
        latency_ms_p95=1.2,
        accuracy=0.9,
        agreement=1.0,
        samples=2_000,
    )
    at.session_state["cache_formats_job"] = None
    at.session_state["cache_reports"] = {model_id: [report]}
    at.run()
    captions = " ".join(caption.value for caption in at.caption)
    assert "first 2,000 samples" in captions and "per sample" in captions
    assert "latency per sample (ms)" in at.dataframe[-1].value.columns


def test_model_cache_quantize_without_mnist_says_what_to_do(monkeypatch):
    from core import mnist as mnist_module
    from core.modelstore import derive
    from ui.resources import get_runner

    def nowhere(*args, **kwargs):
        raise mnist_module.MnistNotFoundError("MNIST was not found <urlopen error offline>")

    monkeypatch.setattr(derive, "cached_mnist", nowhere)
    at, (model_id,) = model_cache_with("no mnist here")
    at.selectbox(key="cache_selected").set_value(model_id).run()
    at.button(key="cache_quantize").click().run()
    job = get_runner().get(at.session_state["cache_formats_job"].job_id)
    assert job is not None and job.wait(TIMEOUT)
    at.run()
    errors = " ".join(error.value for error in at.error)
    assert "upload the four MNIST files on the Digit Recognizer page" in errors
    assert "MnistNotFoundError" not in errors and "urlopen" not in errors


def gated_addition(monkeypatch, *, emit_first=None):
    """Replace the page's training with one that sends `emit_first`, waits for a release, then trains."""
    import threading

    import core.addition

    real_train = core.addition.train_addition
    sent, release = threading.Event(), threading.Event()

    def gated(config, *, on_event, stop):
        if emit_first is not None:
            on_event(emit_first)
        sent.set()
        while not (release.is_set() or stop.is_set()):
            stop.wait(0.01)
        return real_train(config, on_event=on_event, stop=threading.Event())

    monkeypatch.setattr(core.addition, "train_addition", gated)
    return sent, release


def test_addition_progress_bar_counts_the_planned_iterations(monkeypatch):
    from core.events import BatchEnded

    batch = BatchEnded(epoch=1, batch=5, batches=6, step=5, loss=1.0, accuracy=0.5)
    sent, release = gated_addition(monkeypatch, emit_first=batch)
    try:
        at = page("app_pages/addition.py").run()
        settings = {"addition_digits": 1, "addition_training_size": 55, "addition_test_examples": 2}
        for key, value in {**settings, "addition_iterations": 100}.items():
            at.number_input(key=key).set_value(value)
        at.button[0].click().run()
        assert sent.wait(TIMEOUT)
        at.run()
        assert not at.exception
        bars = [bar.proto for bar in at.get("progress")]
        # Five sixths of iteration 1 of 100 is under 1% of the run (it read 83%).
        assert len(bars) == 1 and bars[0].value <= 1
        assert "Iteration 1 of 100" in bars[0].text
    finally:
        release.set()


def test_pressing_train_while_a_run_trains_says_so_and_every_run_can_be_saved(monkeypatch):
    from ui.resources import get_runner

    sent, release = gated_addition(monkeypatch)
    at = page("app_pages/addition.py").run()
    press_train_with_a_tiny_config(at)
    assert sent.wait(TIMEOUT)
    at.run()
    # Before pressing Train again the page says what it will do to the running run.
    notices = [message.value for message in [*at.info, *at.warning, *at.caption]]
    assert any("#1" in notice and "stops it" in notice for notice in notices)
    release.set()
    at.button[0].click().run()  # Train again: run #1 is stopped, #2 starts.
    runs = at.session_state["addition_runs"]
    for run in runs:
        job = get_runner().get(run.job_id)
        assert job is not None and job.wait(TIMEOUT)
    at.run()
    at.run()
    assert not at.exception
    assert [run.done for run in runs] == [True, True]
    assert runs[0].model is not None  # The stopped run keeps what it learned.

    # Any finished run of the session can be picked to save, ask or delete, not only the latest.
    at.selectbox(key="addition_run_choice").set_value(runs[0].label).run()
    at.text_input(key="addition_question").set_value("3+4").run()  # Asked: the picked run answers.
    assert any("3 + 4 = **" in markdown.value for markdown in at.markdown)
    at.text_input(key="addition_save_name").set_value("first run")
    at.button(key="FormSubmitter:addition_save_form-Save to cache").click().run()
    assert not at.exception
    assert runs[0].saved_name == "first run" and runs[1].saved_name is None
    kept = runs[1].label
    at.button(key="addition_run_delete").click().run()
    assert [run.label for run in at.session_state["addition_runs"]] == [kept]


def test_charts_wait_for_their_first_point_instead_of_drawing_empty_frames():
    from core.addition import AdditionConfig
    from core.digits import DigitsConfig
    from core.events import BatchEnded
    from ui.runs import RunRecord

    batch = BatchEnded(epoch=1, batch=3, batches=10, step=3, loss=2.0, accuracy=0.2)
    # Stopped during the first epoch: batches but no epoch yet.
    digits_run = RunRecord(
        label="#1 seed", job_id="gone", config=DigitsConfig(epochs=1), unit="Epoch", state="cancelled"
    )
    digits_run.batches = [batch]
    at = page("app_pages/digits.py")
    at.session_state["digits_runs"] = [digits_run]
    at.run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 2  # The two per-batch charts, no empty epoch charts.
    assert any("after the first epoch" in caption.value for caption in at.caption)

    addition_run = RunRecord(
        label="#1 SimpleRNN 1x8", job_id="gone", config=AdditionConfig(), state="cancelled"
    )
    addition_run.batches = [batch]
    at = page("app_pages/addition.py")
    at.session_state["addition_runs"] = [addition_run]
    at.run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 0
    assert any("after the first iteration" in caption.value for caption in at.caption)


def test_a_training_run_draws_its_chart_frames_before_the_first_point():
    # The browser builds the views while the run starts; mid-run it then only swaps their rows.
    import threading

    from core.addition import AdditionConfig
    from ui.resources import get_runner
    from ui.runs import RunRecord

    runner = get_runner()
    started, release = threading.Event(), threading.Event()

    def training(emit, stop):
        started.set()
        release.wait(TIMEOUT)

    job = runner.submit(training, owner="frames", kind="addition")
    try:
        assert started.wait(TIMEOUT)
        run = RunRecord(
            label="#1 SimpleRNN 1x8", job_id=job.id, config=AdditionConfig(digits=3), state="running"
        )
        at = page("app_pages/addition.py")
        at.session_state["addition_runs"] = [run]
        at.run()
        assert not at.exception
        # The four metric charts and the two breakdowns: their axes are known before any point.
        specs = [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]
        assert len(specs) == 6
        tops = {spec["title"]: spec["encoding"]["y"]["scale"]["domain"] for spec in specs}
        assert tops["Loss"] == [0.0, 2.5]  # ln 12, an untrained model's loss, rounded up.
        assert tops["Seconds per iteration"] == [0.0, 3.0]
        assert tops["Exact match (held-out sums)"] == [0.0, 1.0]
        assert all(spec["encoding"]["x"]["scale"]["domain"][0] == 1.0 for spec in specs)
        # The test sums' table, with its columns for a 3-digit run's 4 answer characters, and the
        # hardest sums' table: empty, built now so that mid-run they only get their rows.
        sums, hardest = (frame.value for frame in at.dataframe[-2:])
        assert list(sums.columns) == ["Question", "Answer", "#1", "#2", "#3", "#4", "Right"]
        assert list(hardest.columns) == ["Question", "Answer", "Model", "P(right answer)"]
        assert sums.empty and hardest.empty
    finally:
        release.set()
    assert job.wait(TIMEOUT)


def test_digits_page_keeps_the_canvas_in_place_when_a_run_ends(mnist_dir):
    before = page("app_pages/digits.py").run()
    assert not before.exception
    run = finished_digits_run(mnist_dir, training_size=300)
    after = page("app_pages/digits.py")
    after.session_state["digits_runs"] = [run]
    after.run()
    assert not after.exception
    assert any(metric.label == "Test accuracy" for metric in after.metric)
    # What a finished run adds lives in places set up from the start, so nothing after them moves
    # and the canvas (the last one) is not remounted, losing a stroke, when training ends.
    assert len(after.main.children) == len(before.main.children)


def two_saved_models() -> tuple[str, str]:
    return saved_digits_model("compared model"), saved_digits_model("other model")


def test_a_format_comparison_is_filed_under_the_model_compared(monkeypatch):
    import threading

    import ui.cache_view
    from core.modelstore.compare import FormatReport
    from ui.resources import get_runner

    release = threading.Event()
    report = FormatReport(
        format="keras",
        size_bytes=1,
        cold_load_seconds=0.1,
        warm_load_seconds=0.001,
        latency_ms_per_sample=1.0,
        latency_ms_p95=1.0,
        accuracy=0.5,
        agreement=1.0,
    )

    def gated_compare(store, cache, model_id, **options):
        release.wait(TIMEOUT)
        return [report]

    monkeypatch.setattr(ui.cache_view, "compare_stored", gated_compare)
    compared, other = two_saved_models()
    at = page("app_pages/model_cache.py").run()
    at.selectbox(key="cache_selected").set_value(compared).run()
    at.button(key="cache_compare").click().run()
    # The user moves on to another model while the comparison runs.
    at.selectbox(key="cache_selected").set_value(other).run()
    release.set()
    job = [job for job in get_runner().jobs() if job.kind == "cache-formats"][-1]
    assert job.wait(TIMEOUT)
    at.run()
    at.run()
    assert not at.exception
    assert list(at.session_state["cache_reports"]) == [compared]


def test_the_model_file_is_read_for_export_only_when_export_is_clicked(monkeypatch):
    from core.modelstore.store import ModelStore

    reads = []
    real_read = ModelStore.read_bytes

    def counted(self, model_id):
        reads.append(model_id)
        return real_read(self, model_id)

    monkeypatch.setattr(ModelStore, "read_bytes", counted)
    model_id = saved_digits_model("export model")
    at = page("app_pages/model_cache.py").run()
    at.selectbox(key="cache_selected").set_value(model_id).run()
    at.run()
    assert not at.exception
    assert len(at.get("download_button")) == 1
    assert reads == []  # Two reruns with the model selected, and its file was never read.


def test_every_state_key_a_page_uses_is_set_up_by_its_first_run():
    import re

    saved_digits_model("state key model")  # So the Model Cache shows its table and actions.
    sources = "".join(path.read_text() for path in sorted((ROOT / "ui").glob("*.py")))
    for script, prefix, shared in [
        ("app_pages/addition.py", "addition", True),
        ("app_pages/digits.py", "digits", True),
        ("app_pages/model_cache.py", "cache", False),
    ]:
        text = sources + (ROOT / script).read_text()
        # Keys written as f"{key_prefix}_..." belong to the training pages that pass their prefix.
        names = rf"(?:{prefix}|\{{key_prefix\}})" if shared else prefix
        pattern = rf"session_state(?:\[|\.get\(|\.setdefault\()\s*f?\"{names}(_\w+)\""
        used = {prefix + suffix for suffix in re.findall(pattern, text)}
        at = page(script).run()
        assert not at.exception
        assert used, f"no state keys of {prefix} found: the check would prove nothing"
        assert [key for key in sorted(used) if key not in at.session_state] == [], script


def test_digits_model_summary_follows_the_model_choice_before_train(mnist_dir):
    at = page("app_pages/digits.py").run()
    assert any("Seed CNN" in caption.value for caption in at.caption)
    at.selectbox(key="digits_model").set_value("strong").run()
    assert not at.exception
    captions = " ".join(caption.value for caption in at.caption)
    assert "Strong CNN" in captions and "Seed CNN" not in captions


def test_limit_messages_name_the_field_and_its_real_limits(mnist_dir):
    from core.addition import MAX_TRAINING_SIZE
    from core.digits import MIN_TRAINING_SIZE

    # A link's training size of 0: the field's own range, not an internal ceiling.
    at = page("app_pages/addition.py")
    at.query_params["training_size"] = "0"
    at.run()
    warnings = " ".join(warning.value for warning in at.warning)
    assert f"Training size must be between 10 and {MAX_TRAINING_SIZE:,}" in warnings
    # A huge one in a link without digits: the field's maximum, not the distinct sums of 5 digits.
    at = page("app_pages/addition.py")
    at.query_params["training_size"] = "99999999999"
    at.run()
    warnings = " ".join(warning.value for warning in at.warning)
    assert f"between 10 and {MAX_TRAINING_SIZE:,}" in warnings and "distinct sums" not in warnings
    # The Digits form's Training images of 50: the field's name and its minimum.
    at = page("app_pages/digits.py").run()
    at.number_input(key="digits_training_size").set_value(50)
    at.button[0].click().run()
    assert not at.exception
    errors = " ".join(error.value for error in at.error)
    assert f"Training images must be at least {MIN_TRAINING_SIZE:,} (0 means all)" in errors
    assert at.session_state["digits_runs"] == []


def test_a_link_whose_fields_do_not_fit_together_says_so_on_load():
    at = page("app_pages/addition.py")
    at.query_params["digits"] = "1"
    at.query_params["training_size"] = "5000"
    at.run()
    assert not at.exception
    # Before Train: the form is preset as the link says, and the page says why it cannot train.
    assert at.number_input(key="addition_training_size").value == 5000
    messages = " ".join(message.value for message in [*at.warning, *at.error])
    assert "1 digit allows at most 55 distinct sums" in messages


def test_stop_says_stopping_until_the_job_ends_then_reports_the_batches_that_ran(monkeypatch):
    import threading

    import core.addition
    from core.events import BatchEnded, EpochEnded, TrainingStopped
    from ui.resources import get_runner

    started, release = threading.Event(), threading.Event()

    def slow_to_stop(config, *, on_event, stop):
        # Like a large model: Stop is asked early, but the running batch takes a while to end.
        on_event(
            EpochEnded(epoch=1, epochs=2, loss=1, accuracy=0.5, val_loss=1, val_accuracy=0.5, seconds=1)
        )
        on_event(BatchEnded(epoch=2, batch=37, batches=55, step=92, loss=1.0, accuracy=0.5))
        started.set()
        release.wait(TIMEOUT)
        on_event(TrainingStopped(epoch=2, reason="Stopped on request.", batch=37, batches=55))

    monkeypatch.setattr(core.addition, "train_addition", slow_to_stop)
    at = page("app_pages/addition.py").run()
    press_train_with_a_tiny_config(at)
    assert started.wait(TIMEOUT)
    at.run()
    at.button(key="addition_stop").click().run()
    try:
        assert not at.exception
        texts = [bar.proto.text for bar in at.get("progress")] + [info.value for info in at.info]
        assert any(text.startswith("Stopping") for text in texts)
        assert not any(button.key == "addition_stop" for button in at.button)  # No second Stop.
    finally:
        release.set()
    job = get_runner().get(at.session_state["addition_runs"][0].job_id)
    assert job is not None and job.wait(TIMEOUT)
    at.run()
    at.run()
    assert not at.exception
    infos = " ".join(info.value for info in at.info)
    assert "Stopped during iteration 2 after 37 of 55 batches" in infos
    assert "1 whole iteration" in infos


def test_digits_status_moves_with_the_batches_inside_an_epoch(monkeypatch, mnist_dir):
    import threading

    import core.digits
    from core.events import BatchEnded, EpochEnded

    first_sent, second_batch, second_sent = threading.Event(), threading.Event(), threading.Event()
    release = threading.Event()

    def epochs_in_steps(config, *, on_event, stop, data):
        on_event(
            EpochEnded(
                epoch=1, epochs=3, loss=1, accuracy=0.5, val_loss=1, val_accuracy=0.5, seconds=7.4
            )
        )
        on_event(BatchEnded(epoch=2, batch=10, batches=100, step=110, loss=1.0, accuracy=0.5))
        first_sent.set()
        second_batch.wait(TIMEOUT)
        on_event(BatchEnded(epoch=2, batch=60, batches=100, step=160, loss=1.0, accuracy=0.5))
        second_sent.set()
        release.wait(TIMEOUT)

    monkeypatch.setattr(core.digits, "train_digits", epochs_in_steps)
    at = page("app_pages/digits.py").run()
    at.number_input(key="digits_epochs").set_value(3)
    at.button[0].click().run()
    try:
        assert first_sent.wait(TIMEOUT)
        at.run()
        first = [bar.proto.text for bar in at.get("progress")]
        second_batch.set()
        assert second_sent.wait(TIMEOUT)
        at.run()
        later = [bar.proto.text for bar in at.get("progress")]
    finally:
        second_batch.set()
        release.set()
    assert not at.exception
    # The status follows the running epoch's batches, not the last finished epoch.
    assert len(first) == 1 and first[0].startswith("Epoch 2 of 3 — batch 10 of 100")
    assert len(later) == 1 and later[0].startswith("Epoch 2 of 3 — batch 60 of 100"), later


def test_digits_any_finished_run_can_be_picked_saved_and_deleted(mnist_dir):
    import dataclasses

    first = finished_digits_run(mnist_dir, training_size=300)
    second = finished_digits_run(mnist_dir, training_size=300)
    second.label = "#2 seed"
    second.result = dataclasses.replace(second.result, test_accuracy=0.125)
    at = page("app_pages/digits.py")
    at.session_state["digits_runs"] = [first, second]
    at.run()
    assert not at.exception
    # The latest run by default, the earlier one when picked: its scores, its save form.
    assert [metric.value for metric in at.metric] == ["12.50%"]
    at.selectbox(key="digits_run_choice").set_value("#1 seed").run()
    assert [metric.value for metric in at.metric] == [f"{first.result.test_accuracy:.2%}"]
    at.text_input(key="digits_save_name").set_value("first digits run")
    at.button(key="FormSubmitter:digits_save_form-Save to cache").click().run()
    assert not at.exception
    assert first.saved_name == "first digits run" and second.saved_name is None
    at.button(key="digits_run_delete").click().run()
    assert not at.exception
    assert [run.label for run in at.session_state["digits_runs"]] == ["#2 seed"]
    assert first.model is None  # Its model is let go.
