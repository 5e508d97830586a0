"""Shared training plumbing: the Keras callback that streams events, honours Stop and catches NaN."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import keras

from core.control import TrainingControl
from core.events import (
    BatchEnded,
    EpochEnded,
    LearningRateChanged,
    TrainingEvent,
    TrainingPaused,
    TrainingResumed,
    TrainingStopped,
)

EventSink = Callable[[TrainingEvent], None]
# A run sends at most this many batch events per epoch, evenly spaced; each averages the batches since
# the one before, so a fast model cannot flood the page's queue and a slow one still shows every batch.
MAX_BATCH_POINTS = 100


@runtime_checkable
class TrainingResult(Protocol):
    """What every training job returns: its model, one event per epoch, and why it stopped early."""

    @property
    def model(self) -> keras.Model: ...

    @property
    def history(self) -> tuple[EpochEnded, ...]: ...

    @property
    def stopped_reason(self) -> str | None: ...

    @property
    def seconds(self) -> float: ...


_traced = threading.local()
_tracking_installed = threading.Lock()


def _track_custom_gradient_names() -> None:
    """Make TensorFlow tell this module each custom-gradient name it registers, per thread."""
    from tensorflow.python.ops import custom_gradient

    with _tracking_installed:
        if getattr(custom_gradient.generate_name, "ltl_tracking", False):
            return
        generate_name = custom_gradient.generate_name

        def tracked_generate_name() -> str:
            name: str = generate_name()
            names = getattr(_traced, "names", None)
            if names is not None:
                names.append(name)
            return name

        tracked_generate_name.ltl_tracking = True  # type: ignore[attr-defined]
        custom_gradient.generate_name = tracked_generate_name


@contextlib.contextmanager
def released_after_training(model: keras.Model) -> Iterator[None]:
    """Train inside; on exit drop what tracing left behind, so a kept model holds only its weights."""
    # Two things outlive `fit` and pin the traced graphs (measured with TF 2.21 / Keras 3.15):
    # - Keras's optimizer all-reduces gradients through tf.custom_gradient, which registers a gradient
    #   function under a fresh name in a process-wide registry for every traced train step and never
    #   removes it: ~18 MB per run, never returned, even after the model is gone.
    # - The model keeps its traced train and test steps, which hold the tf.data iterators and their
    #   two threads for as long as the model lives (a session's finished run keeps its model).
    # The registered names are only looked up while a step is traced, and `compile` resets the
    # steps the same way, so dropping both once this thread's training ends is safe.
    from tensorflow.python.framework import ops

    _track_custom_gradient_names()
    outer = getattr(_traced, "names", None)
    _traced.names = []
    try:
        yield
    finally:
        registry = ops._gradient_registry._registry
        for name in _traced.names:
            registry.pop(name, None)
        _traced.names = outer
        model.train_function = None
        model.test_function = None


class _StoppedInsideEpoch(Exception):
    """Raised to leave `fit` at once after a stop inside an epoch, skipping its validation pass."""


def _ignore(event: TrainingEvent) -> None:
    """Drop an event (used when nobody listens)."""


class LiveCallback(keras.callbacks.Callback):  # type: ignore[misc]  # Keras has no stubs.
    """Sends batch and epoch events, stops on request and stops (keeping weights) on a NaN loss.

    When `stop` is a `TrainingControl` it also pauses at a batch end on request (blocking until Resume
    or Stop) and applies a requested learning rate before the next batch.
    """

    def __init__(
        self,
        *,
        epochs: int,
        on_event: EventSink | None = None,
        stop: threading.Event | None = None,
        on_epoch: Callable[[int], None] | None = None,
        batch_size: int | None = None,
        samples: int | None = None,
        max_batch_points: int = MAX_BATCH_POINTS,
    ) -> None:
        super().__init__()
        self.epochs = epochs
        self.on_event = on_event or _ignore
        self.stop = stop or threading.Event()
        self.on_epoch = on_epoch
        # Keras weighs each batch's loss by its size; known sizes make the last, smaller batch exact.
        self.batch_size = batch_size
        self.samples = samples
        self.max_batch_points = max(1, max_batch_points)
        self.history: list[EpochEnded] = []
        self.stopped_reason: str | None = None
        self._epoch = 0
        self._epoch_started = 0.0
        self._step = 0
        self._batches = 0
        self._stride = 1
        # The epoch's running means, times the samples they cover, at the last batch event.
        self._reported = (0.0, 0.0, 0.0)  # (samples, loss sum, accuracy sum)
        self._epoch_batches = 0  # Batches of the running epoch done so far.
        self._stopped_inside_epoch = False
        self._diverged = False
        self._good_weights: list[Any] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._batches = int(self.params.get("steps") or 0)
        self._stride = max(1, math.ceil(self._batches / self.max_batch_points))
        self._good_weights = self.model.get_weights()
        if isinstance(self.stop, TrainingControl):
            rate, fixed_reason = _settable_learning_rate(self.model.optimizer)
            self.stop.training_started(learning_rate=rate, fixed_reason=fixed_reason)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_reason is not None:
            # Stopped at an epoch's start: not one more batch.
            raise _StoppedInsideEpoch
        if not isinstance(self.stop, TrainingControl):
            return
        rate = self.stop.take_requested_rate()
        if rate is not None:
            # Keras 3 keeps a float rate in a Variable that the compiled train step reads each batch.
            self.model.optimizer.learning_rate.assign(rate)
            changed = LearningRateChanged(epoch=self._epoch, step=self._step + 1, learning_rate=rate)
            self.on_event(changed)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._diverged:
            # The NaN has already reached the weights; go back to the last finite epoch.
            self.model.set_weights(self._good_weights)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch + 1
        self._epoch_started = time.perf_counter()
        self._reported = (0.0, 0.0, 0.0)
        self._epoch_batches = 0
        self._check_stop()

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self._stopped_inside_epoch:
            # Validating a part of an epoch says little and, on a large model, took a minute.
            raise _StoppedInsideEpoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self._step += 1
        self._epoch_batches = batch + 1
        loss = float(logs.get("loss", math.nan))
        if not math.isfinite(loss):
            self._diverged = True
            self._halt(
                inside_epoch=True,
                reason=f"The loss became {loss} at epoch {self._epoch}, batch {batch + 1}: training "
                "stopped and the weights of the last finished epoch are kept. Try a lower learning "
                "rate.",
            )
            return
        if (batch + 1) % self._stride == 0 or batch + 1 == self._batches:
            self._report_batches(batch + 1, loss, float(logs.get("accuracy", math.nan)))
        self._pause_if_asked(batch + 1)
        self._check_stop(inside_epoch=True)

    def _report_batches(self, batch: int, mean_loss: float, mean_accuracy: float) -> None:
        """Send the loss and accuracy of the batches since the last event, not the running mean."""
        # Keras logs running means over the epoch: sum_n = seen_n * mean_n, so the batches between
        # two events scored (sum_n - sum_m) / (seen_n - seen_m).
        seen = float(batch)
        if self.batch_size is not None:
            seen = float(batch * self.batch_size)
            if self.samples is not None:
                seen = float(min(seen, self.samples))
        reported_seen, loss_sum, accuracy_sum = self._reported
        self._reported = (seen, seen * mean_loss, seen * mean_accuracy)
        covered = seen - reported_seen
        self.on_event(
            BatchEnded(
                epoch=self._epoch,
                batch=batch,
                batches=self._batches,
                step=self._step,
                loss=(seen * mean_loss - loss_sum) / covered,
                accuracy=(seen * mean_accuracy - accuracy_sum) / covered,
            )
        )

    def _pause_if_asked(self, batch: int) -> None:
        if not isinstance(self.stop, TrainingControl):
            return
        paused = TrainingPaused(epoch=self._epoch, batch=batch, batches=self._batches, step=self._step)
        started = time.perf_counter()
        if self.stop.wait_while_paused(lambda: self.on_event(paused)):
            # Time spent paused is not training time: leave it out of the epoch's seconds (and ETA).
            self._epoch_started += time.perf_counter() - started
            if not self.stop.is_set():
                self.on_event(TrainingResumed(epoch=self._epoch, step=self._step))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._diverged:
            return
        logs = logs or {}
        self._good_weights = self.model.get_weights()
        event = EpochEnded(
            epoch=epoch + 1,
            epochs=self.epochs,
            loss=float(logs.get("loss", math.nan)),
            accuracy=float(logs.get("accuracy", math.nan)),
            val_loss=float(logs.get("val_loss", math.nan)),
            val_accuracy=float(logs.get("val_accuracy", math.nan)),
            seconds=time.perf_counter() - self._epoch_started,
        )
        self.history.append(event)
        self.on_event(event)
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1)
        self._check_stop()

    def _check_stop(self, *, inside_epoch: bool = False) -> None:
        if self.stop.is_set() and self.stopped_reason is None:
            self._halt(inside_epoch=inside_epoch, reason="Stopped on request.")

    def _halt(self, *, inside_epoch: bool, reason: str) -> None:
        if self.stopped_reason is None:
            self.stopped_reason = reason
            # Inside an epoch, say how much of it ran: that part is trained but never reported as one.
            inside = inside_epoch and self._epoch_batches < self._batches
            self._stopped_inside_epoch = inside
            batch, batches = (self._epoch_batches, self._batches) if inside else (0, 0)
            self.on_event(
                TrainingStopped(epoch=self._epoch, reason=reason, batch=batch, batches=batches)
            )
        self.model.stop_training = True


def _settable_learning_rate(optimizer: Any) -> tuple[float | None, str | None]:
    """(rate, None) when the optimizer's rate is a plain value, else (None, why it cannot be set)."""
    # Keras 3 keeps a schedule (or a callable) in `_learning_rate` and refuses assignments to it.
    current = getattr(optimizer, "_learning_rate", None)
    if isinstance(current, keras.optimizers.schedules.LearningRateSchedule) or callable(current):
        return None, (
            "This run's recipe sets its learning rate by a schedule (warm-up, then cosine decay), so "
            "it cannot be changed by hand; train with the keras recipe to change it."
        )
    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate)), None
    except (AttributeError, TypeError, ValueError):
        return None, "This optimizer's learning rate cannot be read, so it cannot be changed."


def fit_live(
    model: keras.Model,
    x: Any,
    y: Any,
    *,
    epochs: int,
    batch_size: int,
    validation_data: tuple[Any, Any],
    on_event: EventSink | None = None,
    stop: threading.Event | None = None,
    on_epoch: Callable[[int], None] | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> LiveCallback:
    """Fit `model` with the live callback and release what tracing left behind; the one way to train."""
    # Every training path goes through here, so none can skip Stop, NaN handling or the leak fix.
    callback = LiveCallback(
        epochs=epochs,
        on_event=on_event,
        stop=stop,
        on_epoch=on_epoch,
        batch_size=batch_size,
        samples=len(x) if hasattr(x, "__len__") else None,
    )
    with released_after_training(model):
        try:
            model.fit(
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                validation_data=validation_data,
                callbacks=[callback, *extra_callbacks],
                verbose=0,
            )
        except _StoppedInsideEpoch:
            # `fit` was left early: end training as its own end would (weights of a NaN undone).
            callback.on_train_end()
            model._eval_epoch_iterator = None
    return callback
