"""Tests of the shared training callback: events, Stop, and a loss that becomes NaN."""

import contextlib
import gc
import threading
from pathlib import Path

import keras
import numpy as np

from core.events import BatchEnded, TrainingStopped
from core.training import LiveCallback, released_after_training


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
    callback = LiveCallback(epochs=5, on_event=events.append, batch_interval_seconds=0)
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

    callback = LiveCallback(epochs=50, on_event=on_event, stop=stop, batch_interval_seconds=0)
    model.fit(
        np.ones((64, 4)), np.ones((64, 1)), batch_size=8, epochs=50, callbacks=[callback], verbose=0
    )
    batches = [event for event in events if isinstance(event, BatchEnded)]
    assert [event.step for event in batches] == [1, 2, 3]
    assert batches[0].batches == 8
    assert callback.stopped_reason == "Stopped on request."


def gradient_registry_names():
    from tensorflow.python.framework import ops

    return set(ops._gradient_registry._registry)


def traced_graphs():
    from tensorflow.python.framework.func_graph import FuncGraph

    gc.collect()
    return sum(isinstance(thing, FuncGraph) for thing in gc.get_objects())


def tf_data_threads():
    # tf.data iterator pools name their native threads "tf_Compute".
    tasks = Path("/proc/self/task").iterdir()
    return sum((task / "comm").read_text().strip() == "tf_Compute" for task in tasks)


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
