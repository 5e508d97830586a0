"""My digits: a session's own handwritten examples, their `.npz` file, and fine-tuning a model on them.

Fine-tuning continues training a copy of a digit CNN on the personal examples mixed with MNIST train
images, so the model learns the student's handwriting without forgetting MNIST. Accuracy on a held-out
part of the personal examples and on the MNIST test set is measured before and after.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from dataclasses import dataclass

import keras
import numpy as np

from core.digits import CLASS_COUNT, IMAGE_SIDE, normalize_images, score
from core.events import EpochEnded
from core.explain import FilterSnapshots
from core.mnist import MnistData, cached_mnist
from core.settings import as_whole, check_number, check_whole, shown_value
from core.training import EventSink, fit_live

MAX_EXAMPLES = 500
# 500 float32 images are 1.6 MB raw; a file much larger than that is not a personal set.
MAX_NPZ_BYTES = 4_000_000
NPZ_KEYS = ("images", "labels")
MIN_FINETUNE_EXAMPLES = 4
MAX_FINETUNE_EPOCHS = 20
MAX_MNIST_EXAMPLES = 20_000
# Each fine-tuning field's limits: float limits take any number in range, int limits whole numbers.
FINETUNE_LIMITS: dict[str, tuple[float, float]] = {
    "epochs": (1, MAX_FINETUNE_EPOCHS),
    "learning_rate": (1e-6, 0.1),
    "batch_size": (1, 1_024),
    "held_out_fraction": (0.05, 0.9),
    "mnist_examples": (0, MAX_MNIST_EXAMPLES),
    "personal_share": (0.01, 1.0),
}
# The form's label of each field, so a message names the field the person sees.
FINETUNE_LABELS = {
    "epochs": "Epochs",
    "learning_rate": "Learning rate",
    "batch_size": "Batch size",
    "held_out_fraction": "Held-out fraction",
    "mnist_examples": "MNIST examples",
    "personal_share": "Personal share",
}


class PersonalDigits:
    """At most 500 labelled 28x28 images in [0, 1]; kept in a session, never shared."""

    def __init__(self) -> None:
        self._images: list[np.ndarray] = []
        self._labels: list[int] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._labels)

    def add(self, image: np.ndarray, label: int) -> None:
        """Add one (28, 28) or (28, 28, 1) image with its digit; ValueError if invalid or full."""
        checked = _checked_image(image)
        checked_label = _checked_label(label)
        with self._lock:
            if len(self._labels) >= MAX_EXAMPLES:
                raise ValueError(
                    f"You already have {MAX_EXAMPLES} examples, the most a session keeps; "
                    "delete some first."
                )
            self._images.append(checked)
            self._labels.append(checked_label)

    def delete_example(self, index: int) -> None:
        """Delete the example at `index`."""
        number = as_whole(index)
        with self._lock:
            if number is None or not 0 <= number < len(self._labels):
                shown = shown_value(index if number is None else number + 1)
                raise ValueError(f"There is no example number {shown}.")
            index = number
            del self._images[index]
            del self._labels[index]

    def clear(self) -> None:
        """Delete every example."""
        with self._lock:
            self._images.clear()
            self._labels.clear()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the images (N, 28, 28) float32 and labels (N,) int64."""
        with self._lock:
            images = (
                np.stack(self._images)
                if self._images
                else np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
            )
            return images, np.array(self._labels, dtype=np.int64)

    def replace(self, images: np.ndarray, labels: np.ndarray) -> None:
        """Swap the examples for validated ones (an import), all or nothing."""
        with self._lock:
            self._images = [np.array(image, dtype=np.float32) for image in images]
            self._labels = [int(label) for label in labels]

    def to_npz(self) -> bytes:
        """The examples as a compressed `.npz`: `images` (N, 28, 28) float32, `labels` (N,) uint8."""
        images, labels = self.arrays()
        buffer = io.BytesIO()
        np.savez_compressed(buffer, images=images, labels=labels.astype(np.uint8))
        return buffer.getvalue()


def _checked_image(image: object) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.shape not in ((28, 28), (28, 28, 1)):
        found = f"shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"An example must be a 28x28 image, not {found}.")
    if image.dtype.kind != "f":
        raise ValueError(f"An example's pixels must be floats from 0 to 1, not {image.dtype}.")
    if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        raise ValueError("An example's pixels must be finite floats from 0 to 1.")
    return np.array(image.reshape(IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)


def _checked_label(label: object) -> int:
    number = as_whole(label)
    if number is None or not 0 <= number <= 9:
        raise ValueError(f"A label must be a digit from 0 to 9, not {shown_value(label)}.")
    return number


def load_npz(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Validate a personal-set `.npz` file; its images (N, 28, 28) float32 and labels (N,) int64."""
    if not isinstance(data, bytes | bytearray):
        raise ValueError(f"The file must be bytes, not {type(data).__name__}.")
    if len(data) > MAX_NPZ_BYTES:
        raise ValueError(
            f"The file is {len(data) / 1e6:.1f} MB; a set of {MAX_EXAMPLES} digits is at most "
            f"{MAX_NPZ_BYTES / 1e6:.0f} MB."
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        raise ValueError("This is not a .npz file (a zip of numpy arrays).") from None
    names = sorted(member.filename for member in members)
    if names != sorted(f"{key}.npy" for key in NPZ_KEYS):
        raise ValueError(
            "The file must hold exactly the arrays 'images' and 'labels', not "
            f"{', '.join(names) or 'none'}."
        )
    # Declared sizes bound what zipfile will decompress, so this stops a zip bomb before it expands.
    limit = MAX_EXAMPLES * IMAGE_SIDE * IMAGE_SIDE * 8 + 1024
    if any(member.file_size > limit for member in members):
        raise ValueError(f"An array in the file is larger than {MAX_EXAMPLES} digits can be.")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"The arrays in the file cannot be read: {error}") from None
    if images.ndim == 4 and images.shape[3:] == (1,):
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"'images' must have shape (N, 28, 28), not {images.shape}.")
    if images.dtype.kind != "f":
        raise ValueError(f"'images' must hold floats from 0 to 1, not {images.dtype}.")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(
            f"'labels' must be one whole number per image, not {labels.dtype} {labels.shape}."
        )
    if len(images) != len(labels):
        raise ValueError(f"The file has {len(images)} images but {len(labels)} labels.")
    if not 1 <= len(images) <= MAX_EXAMPLES:
        raise ValueError(f"The file must hold 1 to {MAX_EXAMPLES} digits, not {len(images)}.")
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise ValueError("'images' must be finite floats from 0 to 1.")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"'labels' must be digits 0 to 9, not {labels.min()} to {labels.max()}.")
    return images.astype(np.float32), labels.astype(np.int64)


@dataclass(frozen=True, slots=True)
class FinetuneConfig:
    """Settings of one fine-tuning run on a session's own digits."""

    epochs: int = 3
    learning_rate: float = 0.0005  # Lower than training from scratch, so MNIST is not forgotten.
    batch_size: int = 32
    held_out_fraction: float = 0.3  # Personal examples kept out of training to measure the gain.
    mnist_examples: int = 3_000  # MNIST train images mixed in every epoch.
    personal_share: float = 0.25  # Share of each epoch's images that are personal (by repetition).
    seed: int | None = None

    def __post_init__(self) -> None:
        # Each field is checked with the name the form shows it under and stored as its plain type.
        for field_name, (low, high) in FINETUNE_LIMITS.items():
            label = FINETUNE_LABELS[field_name]
            value = getattr(self, field_name)
            if isinstance(low, float):
                checked: float = check_number(label, value, low, high)
            else:
                checked = check_whole(label, value, int(low), int(high))
            object.__setattr__(self, field_name, checked)
        if self.seed is not None:
            object.__setattr__(self, "seed", check_whole("Seed", self.seed, 0, 2**32 - 1))


@dataclass(frozen=True, slots=True, eq=False)
class FinetuneResult:
    """The fine-tuned copy, its epochs, and accuracy before and after (personal held-out and MNIST)."""

    config: FinetuneConfig
    model: keras.Model
    history: tuple[EpochEnded, ...]
    personal_before: float
    personal_after: float
    mnist_before: float
    mnist_after: float
    held_out: int  # Personal examples used only for measuring.
    trained_on: int  # Personal examples trained on.
    stopped_reason: str | None = None
    seconds: float = 0.0

    @property
    def test_accuracy(self) -> float:
        """MNIST test accuracy after fine-tuning (what the store records)."""
        return self.mnist_after


def split_held_out(
    labels: np.ndarray, *, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out): `fraction` of the examples held out, spread over the digits."""
    count = len(labels)
    held_count = max(1, min(count - 1, round(count * fraction)))
    # Rank each example within its digit in random order, then hold out rank 0 of every digit
    # first, rank 1 next, and so on: every digit drawn at least twice gets measured.
    ranks = np.zeros(count, dtype=np.int64)
    for digit in range(CLASS_COUNT):
        members = rng.permutation(np.flatnonzero(labels == digit))
        ranks[members] = np.arange(len(members))
    order = np.lexsort((rng.random(count), ranks))
    held_out = np.sort(order[:held_count])
    train = np.sort(order[held_count:])
    return train, held_out


def finetune_digits(
    config: FinetuneConfig,
    *,
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    on_event: EventSink | None = None,
    stop: threading.Event | None = None,
    data: MnistData | None = None,
) -> FinetuneResult:
    """Continue training a copy of `model` on the personal examples mixed with MNIST."""
    started = time.perf_counter()
    if len(labels) < MIN_FINETUNE_EXAMPLES or len(images) != len(labels):
        raise ValueError(
            f"Fine-tuning needs at least {MIN_FINETUNE_EXAMPLES} labelled examples; add more digits "
            f"(you have {len(labels)})."
        )
    data = data if data is not None else cached_mnist()
    rng = np.random.default_rng(config.seed)
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    personal = np.asarray(images, dtype=np.float32).reshape(-1, IMAGE_SIDE, IMAGE_SIDE, 1)
    personal_labels = np.asarray(labels, dtype=np.int64)
    train_index, held_index = split_held_out(personal_labels, fraction=config.held_out_fraction, rng=rng)
    x_test, y_test = normalize_images(data.test_images), data.test_labels.astype(np.int64)
    x_held, y_held = personal[held_index], personal_labels[held_index]

    # A copy with the same weights: the original (maybe a saved model shared by many) stays as it is.
    tuned = keras.models.clone_model(model)
    tuned.set_weights(model.get_weights())
    personal_before = score(tuned, x_held, y_held).accuracy
    mnist_before = score(tuned, x_test, y_test).accuracy

    count = min(config.mnist_examples, len(data.train_images))
    chosen = rng.choice(len(data.train_images), size=count, replace=False)
    # Repeat the few personal examples so they make up `personal_share` of what each epoch sees.
    wanted = (
        config.personal_share * count / (1 - config.personal_share) if config.personal_share < 1 else 0
    )
    repeats = max(1, round(wanted / max(1, len(train_index))))
    x_train = np.concatenate(
        [normalize_images(data.train_images[chosen]), np.repeat(personal[train_index], repeats, axis=0)]
    )
    y_train = np.concatenate(
        [data.train_labels[chosen].astype(np.int64), np.repeat(personal_labels[train_index], repeats)]
    )
    tuned.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(config.learning_rate)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # Validating on the held-out personal digits makes the live curve the number the student wants.
    callback = fit_live(
        tuned,
        x_train,
        y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=(x_held, y_held),
        on_event=on_event,
        stop=stop,
        extra_callbacks=[FilterSnapshots(tuned, on_event=on_event)],
    )
    return FinetuneResult(
        config=config,
        model=tuned,
        history=tuple(callback.history),
        personal_before=personal_before,
        personal_after=score(tuned, x_held, y_held).accuracy,
        mnist_before=mnist_before,
        mnist_after=score(tuned, x_test, y_test).accuracy,
        held_out=len(held_index),
        trained_on=len(train_index),
        stopped_reason=callback.stopped_reason,
        seconds=time.perf_counter() - started,
    )
