"""Tests of a running job's controls: Pause/Resume, Stop while paused, and a learning-rate change."""

import math
import threading

import keras
import numpy as np
import pytest

from core.control import TrainingControl, check_learning_rate
from core.events import (
    BatchEnded,
    LearningRateChanged,
    TrainingPaused,
    TrainingResumed,
    TrainingStopped,
)
from core.jobs import JobRunner, JobState, QueueFullError
from core.training import fit_live

TIMEOUT = 60


def tiny_model(optimizer="sgd"):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(1, name="out")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=optimizer, loss="mse")
    return model


def tiny_data(rows=64):
    return np.ones((rows, 4), dtype="float32"), np.ones((rows, 1), dtype="float32")


class Watch(keras.callbacks.Callback):
    """Records, at each batch start (after the live callback's), the rate and any start while paused."""

    def __init__(self, control, on_batch_end=None, paused=None):
        super().__init__()
        self.control = control
        self.paused = paused or threading.Event()
        self.on_batch_end = on_batch_end
        self.rates = []
        self.begun_while_pausing = []
        self.steps = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        if self.paused.is_set() and self.control.pause_requested:
            self.begun_while_pausing.append(self.steps + 1)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.on_batch_end is not None:
            self.on_batch_end(self.steps)


def recorder(events, *, when=TrainingPaused, then=None):
    """An event sink that keeps every event and calls `then` when one of type `when` arrives."""

    def on_event(event):
        events.append(event)
        if then is not None and isinstance(event, when):
            then()

    return on_event


def train_in_thread(model, control, on_event, *, epochs=2, watch=None):
    x, y = tiny_data()
    outcome = {}

    def run():
        outcome["callback"] = fit_live(
            model,
            x,
            y,
            epochs=epochs,
            batch_size=8,
            validation_data=(x, y),
            on_event=on_event,
            stop=control,
            extra_callbacks=[watch] if watch is not None else (),
        )

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_learning_rate_is_checked_with_a_clear_message():
    assert check_learning_rate(1) == 1.0 and check_learning_rate(1e-4) == 1e-4
    for bad in (0, -0.1, 1.5, math.nan, math.inf, "fast", None):
        with pytest.raises(ValueError, match="learning rate"):
            check_learning_rate(bad)


def test_pause_holds_training_at_a_batch_end_until_resume_which_goes_on_from_there():
    model, control, events = tiny_model(), TrainingControl(), []
    paused = threading.Event()
    watch = Watch(control, paused=paused)
    control.pause()  # Asked before training starts: it pauses after its first batch.
    thread, outcome = train_in_thread(model, control, recorder(events, then=paused.set), watch=watch)
    try:
        assert paused.wait(TIMEOUT)
        # Paused inside the first batch's end: only that batch has begun, and none will until Resume.
        assert control.paused and len(watch.rates) == 1
        assert [event.step for event in events if isinstance(event, BatchEnded)] == [1]
        assert not thread.join(0) and thread.is_alive()
    finally:
        control.resume()
        thread.join(TIMEOUT)
    assert not thread.is_alive()
    # No batch began between the pause and Resume; after Resume every batch ran, in order.
    assert watch.begun_while_pausing == []
    assert watch.steps == 2 * 8
    kinds = [type(event).__name__ for event in events if not isinstance(event, BatchEnded)]
    assert kinds[:2] == ["TrainingPaused", "TrainingResumed"]
    assert events[1] == TrainingPaused(epoch=1, batch=1, batches=8, step=1)
    assert outcome["callback"].stopped_reason is None and len(outcome["callback"].history) == 2


def test_stop_while_paused_ends_training_without_resuming():
    model, control, events = tiny_model(), TrainingControl(), []
    paused = threading.Event()
    control.pause()
    thread, outcome = train_in_thread(model, control, recorder(events, then=paused.set), epochs=50)
    assert paused.wait(TIMEOUT)
    control.set()  # Stop: the paused training wakes and stops at once.
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert not any(isinstance(event, TrainingResumed) for event in events)
    assert [event.step for event in events if isinstance(event, BatchEnded)] == [1]
    stopped = [event for event in events if isinstance(event, TrainingStopped)]
    assert [event.reason for event in stopped] == ["Stopped on request."]
    # Stopped inside its first epoch: no partial epoch is reported and none of the other 49 starts.
    assert outcome["callback"].history == []


def test_a_new_learning_rate_applies_from_the_next_batch():
    control, events = TrainingControl(), []
    model = tiny_model(keras.optimizers.SGD(learning_rate=0.01))

    def at_batch_end(step):
        if step == 2:
            assert control.request_learning_rate(0.5) == 0.5

    watch = Watch(control, on_batch_end=at_batch_end)
    thread, _ = train_in_thread(model, control, recorder(events), epochs=1, watch=watch)
    thread.join(TIMEOUT)
    assert watch.rates[:2] == pytest.approx([0.01, 0.01])
    assert watch.rates[2:] == pytest.approx([0.5] * 6)
    changed = [event for event in events if isinstance(event, LearningRateChanged)]
    assert changed == [LearningRateChanged(epoch=1, step=3, learning_rate=0.5)]
    assert control.learning_rate == 0.5


def test_a_scheduled_learning_rate_refuses_changes_and_says_why():
    control = TrainingControl()
    schedule = keras.optimizers.schedules.CosineDecay(initial_learning_rate=0.01, decay_steps=10)
    model = tiny_model(keras.optimizers.Adam(learning_rate=schedule))
    refusals = []

    def at_batch_end(step):
        if step == 1:
            with pytest.raises(ValueError, match="schedule") as refused:
                control.request_learning_rate(0.1)
            refusals.append(str(refused.value))

    thread, _ = train_in_thread(
        model, control, recorder([]), epochs=1, watch=Watch(control, on_batch_end=at_batch_end)
    )
    thread.join(TIMEOUT)
    assert len(refusals) == 1 and control.fixed_rate_reason == refusals[0]
    assert control.learning_rate is None


def test_a_rate_cannot_be_asked_before_training_starts():
    with pytest.raises(ValueError, match="not started"):
        TrainingControl().request_learning_rate(0.1)


def test_a_paused_job_keeps_its_slot_and_can_still_be_stopped():
    runner = JobRunner(max_workers=1, max_queued=0, cluster_from_environment=False)
    reached, paused = threading.Event(), threading.Event()

    def work(emit, stop):
        reached.wait(TIMEOUT)
        stop.wait_while_paused(paused.set)
        return "ended"

    try:
        job = runner.submit(work, owner="student-a", kind="addition")
        job.control.pause()
        reached.set()
        assert paused.wait(TIMEOUT)
        # Paused counts as running: the only worker is taken, and no one else can queue behind it.
        assert job.state is JobState.RUNNING and job.control.paused
        with pytest.raises(QueueFullError, match="1 jobs are training"):
            runner.submit(lambda emit, stop: None, owner="student-b", kind="addition")
        job.cancel()
        assert job.wait(TIMEOUT)
        assert job.state is JobState.CANCELLED and not job.control.paused
    finally:
        reached.set()
        runner.shutdown()


def test_time_spent_paused_is_not_counted_in_the_epoch_time(monkeypatch):
    import core.training

    # A clock the test moves on by a long pause while training waits, instead of sleeping.
    real_clock = core.training.time.perf_counter
    skipped = []
    monkeypatch.setattr(core.training.time, "perf_counter", lambda: real_clock() + sum(skipped))
    model, control, events = tiny_model(), TrainingControl(), []
    paused = threading.Event()
    control.pause()
    thread, outcome = train_in_thread(model, control, recorder(events, then=paused.set), epochs=1)
    assert paused.wait(TIMEOUT)
    skipped.append(1_000.0)
    control.resume()
    thread.join(TIMEOUT)
    (epoch,) = outcome["callback"].history
    assert epoch.seconds < 1_000.0
