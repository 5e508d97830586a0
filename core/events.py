"""Training events: small frozen messages a training thread sends to the page that polls it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BatchEnded:
    """One (throttled) training batch finished."""

    epoch: int  # 1-based.
    batch: int  # 1-based, within the epoch.
    batches: int  # Batches per epoch.
    step: int  # 1-based, counted over the whole run.
    loss: float
    accuracy: float


@dataclass(frozen=True, slots=True)
class EpochEnded:
    """One epoch (an "iteration" on the Addition RNN page) finished, with validation."""

    epoch: int  # 1-based.
    epochs: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float  # Wall time of this epoch, validation included.


@dataclass(frozen=True, slots=True)
class DecodedSample:
    """One test question, the model's answer and whether it is right."""

    question: str
    expected: str
    predicted: str
    # The model's probability of each character of `predicted` (empty when not measured).
    confidences: tuple[float, ...] = ()

    @property
    def correct(self) -> bool:
        """Whether the model's answer matches exactly."""
        return self.predicted == self.expected


@dataclass(frozen=True, slots=True)
class SamplesDecoded:
    """Test examples decoded after an epoch (the tfjs worker's `isPredict: false` message)."""

    epoch: int
    samples: tuple[DecodedSample, ...]

    @property
    def exact_match(self) -> float:
        """Fraction of samples answered exactly right."""
        if not self.samples:
            return 0.0
        return sum(sample.correct for sample in self.samples) / len(self.samples)


@dataclass(frozen=True, slots=True)
class TrainingStopped:
    """Training ended early; `reason` says why in words a person can act on."""

    epoch: int
    reason: str
    reached_goal: bool = False  # Stopped because the run reached its goal, not for a problem.
    batch: int = 0  # Batches of `epoch` that ran when it stopped inside it; 0 at an epoch's end.
    batches: int = 0  # Batches per epoch.


@dataclass(frozen=True, slots=True)
class TrainingPaused:
    """Training paused at the end of a batch on request; it keeps its place and its model."""

    epoch: int  # 1-based.
    batch: int  # 1-based, within the epoch: the last batch done.
    batches: int  # Batches per epoch.
    step: int  # 1-based, over the whole run.


@dataclass(frozen=True, slots=True)
class TrainingResumed:
    """A paused run goes on from the batch after the one it paused at."""

    epoch: int
    step: int  # The last step done before the pause.


@dataclass(frozen=True, slots=True)
class LearningRateChanged:
    """The optimizer's learning rate was set on request; `step` is the first step trained with it."""

    epoch: int
    step: int
    learning_rate: float


@dataclass(frozen=True, slots=True)
class FiltersSnapshot:
    """The first conv layer's kernels after an epoch (epoch 0: before training), for the filter view."""

    epoch: int
    # One (height, width) kernel per filter, summed over input channels, as nested tuples of floats.
    filters: tuple[tuple[tuple[float, ...], ...], ...]


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    """Exact-match score of one group of held-out sums (one carry count or one operand length)."""

    group: str  # "carries" or "length".
    value: int
    total: int
    correct: int

    @property
    def exact_match(self) -> float:
        """Share of the group's sums answered exactly right."""
        return self.correct / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class ErrorBreakdown:
    """Held-out sums after an iteration: exact match by carries and by operand length, hardest sums."""

    epoch: int
    rows: tuple[BreakdownRow, ...]
    # (question, expected, predicted, probability of the right answer), least likely first.
    hardest: tuple[tuple[str, str, str, float], ...] = field(default=())

    @property
    def total(self) -> int:
        """Held-out sums scored (each has one carry count: the carries rows cover each sum once)."""
        return sum(row.total for row in self.rows if row.group == "carries")

    @property
    def exact_match(self) -> float | None:
        """Share of all the held-out sums answered exactly right (None when there were none)."""
        correct = sum(row.correct for row in self.rows if row.group == "carries")
        return correct / self.total if self.total else None


TrainingEvent = (
    BatchEnded
    | EpochEnded
    | SamplesDecoded
    | TrainingStopped
    | FiltersSnapshot
    | ErrorBreakdown
    | TrainingPaused
    | TrainingResumed
    | LearningRateChanged
)


@dataclass(frozen=True, slots=True)
class LoadProgress:
    """A stored model is being read: the fraction of its bytes read so far."""

    fraction: float


@dataclass(frozen=True, slots=True)
class LoadFinished:
    """A stored model is loaded: how long it took and whether the memory cache already had it."""

    model_id: str
    seconds: float
    from_cache: bool


@dataclass(frozen=True, slots=True)
class FormatMeasured:
    """A format comparison's progress: `done` of `total` formats measured, `label` the next one."""

    format: str  # The format being measured next; "" once all are done.
    label: str
    done: int
    total: int
