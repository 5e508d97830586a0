"""Tests of the shared training callback: events, Stop, and a loss that becomes NaN."""

import contextlib
import gc
import threading
from pathlib import Path

import keras
import numpy as np

from core.events import BatchEnded, TrainingStopped
from core.training import LiveCallback, released_after_training
from harness.threads import thread_names


def tiny_model():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(1, name="out")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_nan_loss_stops_with_a_message_and_keeps_the_last_finite_weights():
    model = tiny_model()
    initial = [weight.copy() for weight in model.get_weights()]
    x = np.ones((64, 4), dtype="float32")
    y = np.ones((64, 1), dtype="float32")
    # The fourth batch's targets are NaN, so the loss becomes NaN there, within the first epoch.
    y[48:] = np.nan
    events = []
    callback = LiveCallback(epochs=5, on_event=events.append)
    model.fit(x, y, batch_size=16, epochs=5, callbacks=[callback], verbose=0, shuffle=False)
    stopped = [event for event in events if isinstance(event, TrainingStopped)]
    assert len(stopped) == 1 and "loss became nan" in stopped[0].reason
    assert "batch 4" in stopped[0].reason
    assert callback.history == []
    # The poisoned update is undone: the weights are those of the last finite point (the start).
    for kept, expected in zip(model.get_weights(), initial, strict=True):
        assert np.all(np.isfinite(kept))
        np.testing.assert_array_equal(kept, expected)


def test_stop_event_ends_training_at_the_next_batch_and_batches_are_reported():
    model = tiny_model()
    stop = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, BatchEnded) and event.step == 3:
            stop.set()

    callback = LiveCallback(epochs=50, on_event=on_event, stop=stop)
    model.fit(
        np.ones((64, 4)), np.ones((64, 1)), batch_size=8, epochs=50, callbacks=[callback], verbose=0
    )
    batches = [event for event in events if isinstance(event, BatchEnded)]
    assert [event.step for event in batches] == [1, 2, 3]
    assert batches[0].batches == 8
    assert callback.stopped_reason == "Stopped on request."


def test_a_stop_inside_an_epoch_reports_the_batches_that_ran_and_skips_the_partial_epoch():
    from core.training import fit_live

    model = tiny_model()
    stop = threading.Event()
    events = []
    validations = []

    class StopInEpochTwo(keras.callbacks.Callback):
        # Counts validation passes, and asks for a stop as the third batch of epoch 2 begins.
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 2 and batch == 2:
                stop.set()

        def on_test_begin(self, logs=None):
            validations.append(True)

    x, y = np.ones((64, 4)), np.ones((64, 1))
    callback = fit_live(
        model,
        x,
        y,
        epochs=5,
        batch_size=8,
        validation_data=(x[:8], y[:8]),
        on_event=events.append,
        stop=stop,
        extra_callbacks=[StopInEpochTwo()],
    )
    stopped = [event for event in events if isinstance(event, TrainingStopped)]
    # What really ran: epoch 1 whole, then 3 of epoch 2's 8 batches.
    assert [(event.epoch, event.batch, event.batches) for event in stopped] == [(2, 3, 8)]
    # The partial epoch is not reported as an epoch, and no validation pass is spent on it.
    assert [event.epoch for event in callback.history] == [1]
    assert len(validations) == 1


def gradient_registry_names():
    from tensorflow.python.framework import ops

    return set(ops._gradient_registry._registry)


def traced_graphs():
    from tensorflow.python.framework.func_graph import FuncGraph

    gc.collect()
    return sum(isinstance(thing, FuncGraph) for thing in gc.get_objects())


def tf_data_threads():
    # tf.data iterator pools name their native threads "tf_Compute".
    return thread_names().get("tf_Compute", 0)


def train_tiny_model(*, released):
    model = tiny_model()
    x = np.ones((32, 4), dtype="float32")
    with released_after_training(model) if released else contextlib.nullcontext():
        model.fit(x, x[:, :1], batch_size=8, epochs=2, verbose=0, validation_data=(x, x[:, :1]))
    return model


def test_a_model_kept_after_released_training_holds_no_graph_thread_or_global_gradient():
    names, graphs, threads = gradient_registry_names(), traced_graphs(), tf_data_threads()
    unreleased = train_tiny_model(released=False)
    # What TensorFlow and Keras leave behind: a global gradient per traced step, graphs, threads.
    assert gradient_registry_names() - names, "fit registered no gradient: drop the workaround?"
    assert traced_graphs() > graphs
    assert tf_data_threads() > threads
    del unreleased
    gc.collect()

    names, graphs, threads = gradient_registry_names(), traced_graphs(), tf_data_threads()
    kept = train_tiny_model(released=True)
    assert gradient_registry_names() == names
    assert traced_graphs() == graphs
    assert tf_data_threads() == threads
    # The kept model still predicts: only the traced training steps went.
    assert kept.predict(np.ones((2, 4), dtype="float32"), verbose=0).shape == (2, 1)


def test_both_tasks_train_through_fit_live_with_the_callback_and_the_release(monkeypatch):
    import core.training
    from core.addition import AdditionConfig, train_addition
    from core.digits import DigitsConfig, train_digits
    from core.mnist import MnistData

    released = []
    real_release = core.training.released_after_training

    @contextlib.contextmanager
    def spying_release(model):
        with real_release(model):
            yield
        released.append(model)

    monkeypatch.setattr(core.training, "released_after_training", spying_release)
    addition = train_addition(
        AdditionConfig(digits=1, training_size=20, hidden_size=4, iterations=1, test_examples=1)
    )
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(120, 28, 28), dtype=np.uint8)
    labels = np.arange(120, dtype=np.uint8) % 10
    data = MnistData(images, labels, images[:20], labels[:20], source="test")
    digits = train_digits(DigitsConfig(epochs=1, batch_size=64, augment=True), data=data)
    # Each task's training model went through the release step, and its history came from LiveCallback.
    assert released[0] is addition.model and len(addition.history) == 1
    assert released[1].name == "digits_seed_cnn_augmented" and len(digits.history) == 1
    assert released[0].train_function is None and released[1].train_function is None


def test_no_core_module_calls_fit_outside_fit_live():
    import ast

    root = Path(__file__).resolve().parents[2] / "core"
    callers = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "fit":
                callers.append(path.name)
    assert callers == ["training.py"]  # Only fit_live calls Keras's fit.


def frozen_classifier(x):
    """A softmax classifier that learns nothing (learning rate 0), so each batch's loss is known."""
    inputs = keras.Input((x.shape[1],))
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer="glorot_uniform")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def per_sample_scores(model, x, y):
    """Each sample's cross-entropy and correctness, computed outside Keras's running means."""
    probabilities = model.predict(x, verbose=0).astype("float64")
    losses = -np.log(probabilities[np.arange(len(y)), y])
    return losses, (probabilities.argmax(axis=1) == y).astype("float64")


def batch_events_of(x, y, *, batch_size, epochs, max_batch_points=100):
    model = frozen_classifier(x)
    losses, hits = per_sample_scores(model, x, y)
    events = []
    callback = LiveCallback(
        epochs=epochs,
        on_event=events.append,
        batch_size=batch_size,
        samples=len(x),
        max_batch_points=max_batch_points,
    )
    model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=[callback], verbose=0, shuffle=False)
    return [event for event in events if isinstance(event, BatchEnded)], losses, hits


def test_batch_events_carry_each_batchs_own_loss_and_accuracy_not_the_epochs_running_mean():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(70, 5)).astype("float32")
    y = rng.integers(0, 3, size=70)
    batch_size = 16  # Four full batches and a last one of 6, which Keras weighs by its size.
    batches, losses, hits = batch_events_of(x, y, batch_size=batch_size, epochs=2)
    starts = range(0, len(x), batch_size)
    expected_loss = [losses[start : start + batch_size].mean() for start in starts]
    expected_accuracy = [hits[start : start + batch_size].mean() for start in starts]
    # Every batch of both epochs is reported, and the second epoch starts afresh.
    assert [(event.epoch, event.batch) for event in batches] == [
        (epoch, batch) for epoch in (1, 2) for batch in range(1, len(expected_loss) + 1)
    ]
    np.testing.assert_allclose([event.loss for event in batches], expected_loss * 2, rtol=1e-4)
    np.testing.assert_allclose([event.accuracy for event in batches], expected_accuracy * 2, atol=1e-5)


def test_batch_events_are_bounded_per_epoch_and_each_averages_the_batches_since_the_last():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 5)).astype("float32")
    y = rng.integers(0, 3, size=60)
    # 30 batches of 2, at most 7 points: one every 5 batches, each the mean of those 5 batches.
    batches, losses, _ = batch_events_of(x, y, batch_size=2, epochs=1, max_batch_points=7)
    assert [event.batch for event in batches] == [5, 10, 15, 20, 25, 30]
    expected = [losses[start : start + 10].mean() for start in range(0, 60, 10)]
    np.testing.assert_allclose([event.loss for event in batches], expected, rtol=1e-4)
