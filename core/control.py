"""A running job's controls: Stop, Pause/Resume and a new learning rate, set by a page, read by training.

`TrainingControl` is the job's stop Event itself (every training function already takes `stop`), with a
pause flag and a requested learning rate on top, so a page's control reaches `fit_live` through the same
argument as Stop. Training reads it at each batch (see `LiveCallback` in core/training.py). No Keras
here: the job runner knows this class without loading it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

# The largest learning rate a page may ask for: above 1 every model here diverges at once.
MAX_LEARNING_RATE = 1.0


def check_learning_rate(value: float) -> float:
    """The rate as a float if 0 < rate <= 1 and finite, else ValueError saying what is allowed."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"The learning rate must be a number, not {value!r}.") from None
    if not math.isfinite(rate) or not 0.0 < rate <= MAX_LEARNING_RATE:
        raise ValueError(
            f"The learning rate must be above 0 and at most {MAX_LEARNING_RATE:g}, not {value!r}."
        )
    return rate


class TrainingControl(threading.Event):
    """The Event that asks a job to stop, plus Pause/Resume and a learning rate for the next batch."""

    def __init__(self) -> None:
        super().__init__()
        self._condition = threading.Condition()
        self._pause_requested = False
        self._paused = False
        self._requested_rate: float | None = None
        # Set by training once it starts: the optimizer's rate, or why it cannot be changed.
        self._learning_rate: float | None = None
        self._fixed_rate_reason: str | None = None

    def set(self) -> None:
        """Ask the job to stop; a paused job wakes up to do so."""
        super().set()
        with self._condition:
            self._condition.notify_all()

    def pause(self) -> None:
        """Ask training to pause at the end of its next batch, keeping its place and its model."""
        with self._condition:
            self._pause_requested = True

    def resume(self) -> None:
        """Let a paused (or pausing) job go on from where it stopped."""
        with self._condition:
            self._pause_requested = False
            self._condition.notify_all()

    @property
    def pause_requested(self) -> bool:
        """Whether a pause was asked for and not yet resumed (the job may still be finishing a batch)."""
        with self._condition:
            return self._pause_requested

    @property
    def paused(self) -> bool:
        """Whether training is blocked in a pause here (a cluster job pauses on its worker instead)."""
        with self._condition:
            return self._paused

    def wait_while_paused(self, on_paused: Callable[[], None]) -> bool:
        """Called by training between batches: block while a pause is asked (until Resume or Stop).

        `on_paused` runs once the job counts as paused and before it blocks; true if it paused at all.
        """
        with self._condition:
            if not self._pause_requested or self.is_set():
                return False
            self._paused = True
        try:
            on_paused()
            with self._condition:
                while self._pause_requested and not self.is_set():
                    self._condition.wait()
        finally:
            with self._condition:
                self._paused = False
        return True

    def request_learning_rate(self, value: float) -> float:
        """Ask for `value` (0 < value <= 1) from the next batch on; ValueError if it cannot apply."""
        rate = check_learning_rate(value)
        with self._condition:
            if self._fixed_rate_reason is not None:
                raise ValueError(self._fixed_rate_reason)
            if self._learning_rate is None:
                raise ValueError("Training has not started yet: change the rate once it has.")
            self._requested_rate = rate
        return rate

    @property
    def learning_rate(self) -> float | None:
        """The rate training uses now (None before it starts or when a schedule sets it)."""
        with self._condition:
            return self._learning_rate

    @property
    def fixed_rate_reason(self) -> str | None:
        """Why this run's rate cannot be changed (its recipe schedules it), else None."""
        with self._condition:
            return self._fixed_rate_reason

    def training_started(self, *, learning_rate: float | None, fixed_reason: str | None) -> None:
        """Called by training as it starts: the optimizer's rate, or why it cannot be set."""
        with self._condition:
            self._learning_rate = None if fixed_reason is not None else learning_rate
            self._fixed_rate_reason = fixed_reason
            self._requested_rate = None

    def take_requested_rate(self) -> float | None:
        """Called by training before a batch: the rate to apply now (once), else None."""
        with self._condition:
            rate, self._requested_rate = self._requested_rate, None
            if rate is not None:
                self._learning_rate = rate
            return rate
