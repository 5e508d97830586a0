"""A run as a page remembers it: the events drained from its job, folded into plain lists."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.addition import AdditionConfig
from core.digits import DigitsConfig
from core.events import (
    BatchEnded,
    EpochEnded,
    ErrorBreakdown,
    FiltersSnapshot,
    LearningRateChanged,
    SamplesDecoded,
    TrainingEvent,
    TrainingPaused,
    TrainingResumed,
    TrainingStopped,
)
from core.personal import FinetuneConfig

if TYPE_CHECKING:
    import keras

    from core.training import TrainingResult

# A page keeps at most this many batch points per run; older ones are thinned out.
MAX_BATCH_POINTS = 2_000
# The time per epoch in the ETA is the median of this many recent epochs, so one slow epoch (a busy
# server, a garbage collection) does not make the estimate jump.
ETA_WINDOW = 9

RunConfig = AdditionConfig | DigitsConfig | FinetuneConfig


@dataclass
class RunRecord:
    """Everything a page shows about one training run of the session."""

    label: str
    job_id: str
    config: RunConfig  # The typed config the run was trained with (never the link's strings).
    unit: str = "Iteration"  # What one epoch is called on the page.
    epochs: list[EpochEnded] = field(default_factory=list)
    batches: list[BatchEnded] = field(default_factory=list)
    samples: SamplesDecoded | None = None
    state: str = "queued"
    error: str | None = None
    stopped_reason: str | None = None
    stopped: TrainingStopped | None = None  # Where it stopped early (inside an epoch or after one).
    model: keras.Model | None = None  # The trained model once the job is done.
    result: TrainingResult | None = None  # The job's whole result (scores and all) once it is done.
    saved_model_id: str | None = None
    saved_name: str | None = None
    filters: list[FiltersSnapshot] = field(default_factory=list)  # First conv layer, once per epoch.
    breakdowns: list[ErrorBreakdown] = field(default_factory=list)  # Addition errors, once per epoch.
    paused: TrainingPaused | None = None  # Where the run is paused now (None while it trains).
    learning_rates: list[LearningRateChanged] = field(default_factory=list)  # Changes made by hand.

    def apply(self, events: list[TrainingEvent]) -> None:
        """Fold drained events into the record."""
        for event in events:
            match event:
                case EpochEnded():
                    self.epochs.append(event)
                case BatchEnded():
                    self.batches.append(event)
                    if len(self.batches) > MAX_BATCH_POINTS:
                        # Keep every other point so long runs stay cheap to chart.
                        self.batches = self.batches[::2]
                case SamplesDecoded():
                    self.samples = event
                case TrainingStopped():
                    self.stopped_reason = event.reason
                    self.stopped = event
                case FiltersSnapshot():
                    self.filters.append(event)
                case ErrorBreakdown():
                    self.breakdowns.append(event)
                case TrainingPaused():
                    self.paused = event
                case TrainingResumed():
                    self.paused = None
                case LearningRateChanged():
                    self.learning_rates.append(event)

    def release(self) -> None:
        """Drop the model and result (the session ended); the curves stay."""
        self.model = None
        self.result = None
        if not self.done:
            self.state = "cancelled"
            self.stopped_reason = "Stopped: the browser session closed."

    @property
    def reached_goal(self) -> bool:
        """Whether it stopped early because it reached its goal (the fast recipe), not for a problem."""
        return self.stopped is not None and self.stopped.reached_goal

    @property
    def training(self) -> bool:
        """Whether the run's job is training now (a paused run too)."""
        return self.state == "running"

    @property
    def done(self) -> bool:
        """Whether the run's job has ended one way or another."""
        return self.state in ("finished", "failed", "cancelled")

    @property
    def planned_epochs(self) -> int:
        """How many epochs (iterations on the Addition page) the run was asked for."""
        match self.config:
            case AdditionConfig():
                return self.config.iterations
            case DigitsConfig() | FinetuneConfig():
                return self.config.epochs

    def epochs_done(self) -> float:
        """Epochs done so far, the running one counted by its share of batches."""
        finished = self.epochs[-1].epoch if self.epochs else 0
        if self.batches and self.batches[-1].epoch > finished:
            batch = self.batches[-1]
            return (batch.epoch - 1) + batch.batch / max(1, batch.batches)
        return float(finished)

    def fraction_done(self) -> float:
        """Share of the run done, from the last epoch or batch event."""
        return min(1.0, self.epochs_done() / max(1, self.planned_epochs))

    def seconds_per_epoch(self) -> float | None:
        """Typical seconds per epoch: low median of the recent ones, leaving out the first (tracing)."""
        if not self.epochs:
            return None
        timed = self.epochs[1:] or self.epochs
        # The low median: a busy shared core only ever adds time, so of two epochs the faster is the
        # better guess (the plain median of 1 s and 3 s doubled the ETA at the third iteration).
        return statistics.median_low(event.seconds for event in timed[-ETA_WINDOW:])

    def stopped_text(self) -> str:
        """'Stopped during iteration 2 after 37 of 55 batches…' or 'Stopped after 3 iteration(s)…'."""
        unit = self.unit.lower()
        whole = len(self.epochs)
        stop = self.stopped
        if stop is not None and stop.batch:
            return (
                f"Stopped during {unit} {stop.epoch} after {stop.batch:,} of {stop.batches:,} batches "
                f"({whole} whole {unit}(s) before it); what it learned so far is kept."
            )
        return f"Stopped after {whole} {unit}(s); what it learned so far is kept."

    def progress_text(self) -> str:
        """'Epoch i of N — batch b of B — x s/epoch — ETA ~y s' for the status line."""
        parts = []
        batch = self.batches[-1] if self.batches else None
        finished = self.epochs[-1].epoch if self.epochs else 0
        if batch is not None and batch.epoch > finished:
            # Between epoch ends the batches say how far the running epoch is.
            parts.append(f"{self.unit} {batch.epoch} of {self.planned_epochs}")
            parts.append(f"batch {batch.batch} of {batch.batches}")
        elif self.epochs:
            parts.append(f"{self.unit} {finished} of {self.planned_epochs} done")
        else:
            # The data is made and the model built; tracing the graph makes the first batch slow.
            return "Preparing the model (the first batch compiles the graph)…"
        per_epoch = self.seconds_per_epoch()
        if per_epoch is not None:
            remaining = max(0.0, self.planned_epochs - self.epochs_done()) * per_epoch
            parts.append(f"{per_epoch:.2f} s/{self.unit.lower()}")
            parts.append(f"ETA {format_seconds(remaining)}")
        return " — ".join(parts)


def format_seconds(seconds: float) -> str:
    """'42 s', '3 min 5 s' or '1 h 2 min'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
