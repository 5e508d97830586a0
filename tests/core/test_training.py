"""Tests of the shared training callback: events, Stop, and a loss that becomes NaN."""

import threading

import keras
import numpy as np

from core.events import BatchEnded, TrainingStopped
from core.training import LiveCallback


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
