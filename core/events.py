"""Training events: small frozen messages a training thread sends to the page that polls it."""

from __future__ import annotations

from dataclasses import dataclass


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


TrainingEvent = BatchEnded | EpochEnded | SamplesDecoded | TrainingStopped


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
