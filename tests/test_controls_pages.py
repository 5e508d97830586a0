"""AppTest runs of the run controls: Pause/Resume, a new learning rate, disabled controls, downloads."""

import csv
import io
import threading

import keras
import numpy as np
import pytest

from core.events import BatchEnded, LearningRateChanged, TrainingPaused, TrainingResumed
from core.jobs import JobState
from tests.test_pages import TIMEOUT, finished_addition_run, finished_digits_run, page

TINY_ADDITION = {
    "addition_digits": 1,
    "addition_training_size": 55,
    "addition_hidden_size": 8,
    "addition_batch_size": 8,
    "addition_iterations": 300,
    "addition_test_examples": 2,
}


def signalled(monkeypatch, module_name, function_name):
    """Wrap a page's training so the test hears (through Events) when it starts, pauses and so on."""
    import importlib

    module = importlib.import_module(module_name)
    real = getattr(module, function_name)
    heard = {kind: threading.Event() for kind in ("any", "paused", "resumed", "rate")}
    kinds = {TrainingPaused: "paused", TrainingResumed: "resumed", LearningRateChanged: "rate"}

    def wrapped(config, *, on_event, stop, **kwargs):
        def relay(event):
            on_event(event)
            heard["any"].set()
            if type(event) in kinds:
                heard[kinds[type(event)]].set()

        return real(config, on_event=relay, stop=stop, **kwargs)

    monkeypatch.setattr(module, function_name, wrapped)
    return heard


def press_train(at, heard, *, prefix):
    """Press the form's Train; the run's job once its training has sent a first event."""
    from ui.resources import get_runner

    at.button[0].click().run()
    job = get_runner().get(at.session_state[f"{prefix}_runs"][0].job_id)
    assert heard["any"].wait(TIMEOUT)
    at.run()
    assert not at.exception
    return job


def press_pause(at, heard, *, prefix):
    """Press Pause and rerun the page once the training says it has paused."""
    at.button(key=f"{prefix}_stop_pause").click().run()
    assert not at.exception
    assert heard["paused"].wait(TIMEOUT)
    at.run()
    assert not at.exception


def test_addition_run_pauses_takes_a_new_rate_resumes_and_stops(monkeypatch):
    heard = signalled(monkeypatch, "core.addition", "train_addition")
    at = page("app_pages/addition.py").run()
    for key, value in TINY_ADDITION.items():
        at.number_input(key=key).set_value(value)
    job = press_train(at, heard, prefix="addition")
    try:
        press_pause(at, heard, prefix="addition")
        assert job.control.pause_requested and job.state is JobState.RUNNING and job.control.paused
        paused = at.session_state["addition_runs"][0].paused
        assert paused is not None
        expected = f"Paused at iteration {paused.epoch} of 300, batch {paused.batch} of"
        assert any(expected in info.value for info in at.info)
        assert at.button(key="addition_stop_resume").label == "Resume"

        # A rate out of range is refused with a message; a good one is taken for the next batch.
        rate_box = at.number_input(key="addition_stop_learning_rate")
        assert not rate_box.disabled and rate_box.value == pytest.approx(0.001)
        rate_box.set_value(0.0)
        at.button(key="addition_stop_learning_rate_apply").click().run()
        assert any("above 0" in error.value for error in at.error)
        at.number_input(key="addition_stop_learning_rate").set_value(0.005)
        at.button(key="addition_stop_learning_rate_apply").click().run()
        assert any("Learning rate 0.005 from the next batch" in c.value for c in at.caption)

        at.button(key="addition_stop_resume").click().run()
        assert not at.exception
        assert heard["resumed"].wait(TIMEOUT) and heard["rate"].wait(TIMEOUT)
        at.run()
        run = at.session_state["addition_runs"][0]
        assert run.paused is None and run.learning_rates[0].learning_rate == 0.005
        assert at.button(key="addition_stop_pause").label == "Pause"
        assert job.control.learning_rate == 0.005
    finally:
        job.cancel()
    assert job.wait(TIMEOUT) and job.state is JobState.CANCELLED


def test_digits_run_can_be_paused_and_stopped_while_paused(monkeypatch, mnist_dir):
    heard = signalled(monkeypatch, "core.digits", "train_digits")
    at = page("app_pages/digits.py").run()
    at.number_input(key="digits_training_size").set_value(2000)
    at.number_input(key="digits_epochs").set_value(50)
    job = press_train(at, heard, prefix="digits")
    try:
        press_pause(at, heard, prefix="digits")
        assert any("Paused at epoch" in info.value for info in at.info)
        at.button(key="digits_stop").click().run()  # Stop wakes the paused job.
    finally:
        job.cancel()
    assert job.wait(TIMEOUT) and job.state is JobState.CANCELLED
    at.run()
    at.run()
    assert not at.exception
    assert not heard["resumed"].is_set()
    assert at.session_state["digits_runs"][0].state == "cancelled"


def test_a_run_whose_recipe_schedules_its_rate_shows_the_rate_box_disabled_with_why(monkeypatch):
    heard = signalled(monkeypatch, "core.addition", "train_addition")
    at = page("app_pages/addition.py").run()
    for key, value in TINY_ADDITION.items():
        at.number_input(key=key).set_value(value)
    at.selectbox(key="addition_recipe").set_value("fast")
    job = press_train(at, heard, prefix="addition")
    try:
        # Held by a pause, so the run cannot reach the fast recipe's goal while the test looks.
        press_pause(at, heard, prefix="addition")
        assert at.number_input(key="addition_stop_learning_rate").disabled
        assert at.button(key="addition_stop_learning_rate_apply").disabled
        assert any("by a schedule" in caption.value for caption in at.caption)
        with pytest.raises(ValueError, match="schedule"):
            job.control.request_learning_rate(0.01)
    finally:
        job.cancel()
    assert job.wait(TIMEOUT) and job.state is JobState.CANCELLED


def test_a_finished_addition_run_offers_its_curves_and_its_model_made_only_on_click(monkeypatch):
    import ui.controls_view

    saves = []
    monkeypatch.setattr(ui.controls_view, "keras_bytes", lambda model: saves.append(model) or b"")
    run = finished_addition_run()
    at = page("app_pages/addition.py")
    at.session_state["addition_runs"] = [run]
    at.run()
    at.run()
    assert not at.exception
    keys = {button.key for button in at.get("download_button")}
    assert {
        "addition_download_epochs",
        "addition_download_batches",
        "addition_download_keras",
        "addition_download_tflite",
    } <= keys
    assert saves == []  # Two page runs, and the model was never saved for a download.


def test_the_curves_csv_holds_every_epoch_and_batch_of_the_run():
    from ui.controls_view import BATCH_COLUMNS, EPOCH_COLUMNS, batches_csv, epochs_csv

    run = finished_addition_run()
    epochs = list(csv.DictReader(io.StringIO(epochs_csv(run))))
    assert tuple(epochs[0]) == EPOCH_COLUMNS
    assert [int(row["epoch"]) for row in epochs] == [event.epoch for event in run.epochs]
    assert [float(row["val_loss"]) for row in epochs] == [event.val_loss for event in run.epochs]
    run.batches = [
        BatchEnded(epoch=1, batch=number, batches=3, step=number, loss=1 / number, accuracy=0.5)
        for number in (1, 2, 3)
    ]
    batches = list(csv.reader(io.StringIO(batches_csv(run))))
    assert tuple(batches[0]) == BATCH_COLUMNS
    assert [float(row[3]) for row in batches[1:]] == [1.0, 0.5, 1 / 3]


def test_the_model_downloads_are_a_loadable_keras_file_and_a_tflite_flatbuffer(mnist_dir, tmp_path):
    from core.modelstore.formats import TFLITE_IDENTIFIER
    from ui.controls_view import keras_file, tflite_bytes

    run = finished_digits_run(mnist_dir, training_size=500)
    path = tmp_path / "model.keras"
    path.write_bytes(keras_file(run)())
    loaded = keras.saving.load_model(path)
    images = np.zeros((2, 28, 28, 1), dtype="float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), run.model.predict(images, verbose=0))
    assert tflite_bytes(run)()[4:8] == TFLITE_IDENTIFIER
    at = page("app_pages/digits.py")
    at.session_state["digits_runs"] = [run]
    at.run()
    assert not at.exception
    keys = {button.key for button in at.get("download_button")}
    assert {"digits_download_epochs", "digits_download_keras", "digits_download_tflite"} <= keys
