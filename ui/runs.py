"""A run as a page remembers it: the events drained from its job, folded into plain lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.events import (
    BatchEnded,
    EpochEnded,
    ErrorBreakdown,
    FiltersSnapshot,
    SamplesDecoded,
    TrainingEvent,
    TrainingStopped,
)

# A page keeps at most this many batch points per run; older ones are thinned out.
MAX_BATCH_POINTS = 2_000


@dataclass
class RunRecord:
    """Everything a page shows about one training run of the session."""

    label: str
    job_id: str
    config: dict[str, Any]
    unit: str = "Iteration"  # What one epoch is called on the page.
    epochs: list[EpochEnded] = field(default_factory=list)
    batches: list[BatchEnded] = field(default_factory=list)
    samples: SamplesDecoded | None = None
    state: str = "queued"
    error: str | None = None
    stopped_reason: str | None = None
    model: Any = None  # The trained keras.Model once the job is done.
    result: Any = None  # The job's whole result (scores and all) once it is done.
    saved_model_id: str | None = None
    saved_name: str | None = None
    filters: list[FiltersSnapshot] = field(default_factory=list)  # First conv layer, once per epoch.
    breakdowns: list[ErrorBreakdown] = field(default_factory=list)  # Addition errors, once per epoch.

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
                case FiltersSnapshot():
                    self.filters.append(event)
                case ErrorBreakdown():
                    self.breakdowns.append(event)

    def release(self) -> None:
        """Drop the model and result (the session ended); the curves stay."""
        self.model = None
        self.result = None
        if not self.done:
            self.state = "cancelled"
            self.stopped_reason = "Stopped: the browser session closed."

    @property
    def done(self) -> bool:
        """Whether the run's job has ended one way or another."""
        return self.state in ("finished", "failed", "cancelled")

    def fraction_done(self) -> float:
        """Share of the run done, from the last epoch or batch event."""
        if self.batches and (not self.epochs or self.batches[-1].epoch > self.epochs[-1].epoch):
            batch = self.batches[-1]
            epochs = self.epochs[-1].epochs if self.epochs else self.config.get("epochs", 1)
            return min(
                1.0, ((batch.epoch - 1) + batch.batch / max(1, batch.batches)) / max(1, int(epochs))
            )
        if self.epochs:
            return self.epochs[-1].epoch / self.epochs[-1].epochs
        return 0.0

    def progress_text(self) -> str:
        """'Iteration i of N — x s/iteration — ETA ~y s' for the status line."""
        if not self.epochs:
            if self.batches:
                last_batch = self.batches[-1]
                return (
                    f"{self.unit} {last_batch.epoch}: batch {last_batch.batch} of {last_batch.batches}"
                )
            return "Starting…"
        last = self.epochs[-1]
        recent = self.epochs[-5:]
        per_epoch = sum(event.seconds for event in recent) / len(recent)
        remaining = (last.epochs - last.epoch) * per_epoch
        return (
            f"{self.unit} {last.epoch} of {last.epochs} — {per_epoch:.2f} s/{self.unit.lower()} — "
            f"ETA {format_seconds(remaining)}"
        )


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
