"""Reading drawings fast: a float32 TFLite copy of a digits model, used only once it is shown to agree.

A Keras model called on one image costs ~5 ms of Python and TensorFlow dispatch; the same network on the
LiteRT interpreter answers in hundredths of a millisecond. The copy is made once per model (in a job,
when training ends or a saved model is picked) and trusted only if it gives the Keras model's answer on
every image of the evaluation set (the whole MNIST test set); otherwise the reader keeps using Keras.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np

from core.canvas import IMAGE_SIDE, Prediction, check_image, predict_digit, prediction_from_scores
from core.modelstore.convert import TfliteModel, convert_to_tflite

# Rows per forward pass while the copy is checked: large enough to be fast, small enough for memory.
CHECK_BATCH_SIZE = 1_000


@dataclass(frozen=True, slots=True)
class ReaderCheck:
    """How a TFLite copy compared with its Keras model on the evaluation images."""

    images: int  # Images compared.
    agreeing: int  # Images on which both gave the same digit.
    max_probability_difference: float  # Largest difference of any probability, over every image.
    seconds: float  # Conversion plus comparison.

    @property
    def agrees(self) -> bool:
        """Whether the copy gave the same digit on every image."""
        return self.images > 0 and self.agreeing == self.images


class DigitReader:
    """Reads one preprocessed drawing with the fastest runtime that gives the Keras model's answer."""

    def __init__(
        self, model: keras.Model, *, tflite: TfliteModel | None, check: ReaderCheck | None
    ) -> None:
        self.model = model
        self._tflite = tflite if check is not None and check.agrees else None
        self.check = check

    @property
    def runtime(self) -> str:
        """'tflite' when the verified copy answers, else 'keras'."""
        return "keras" if self._tflite is None else "tflite"

    def predict(self, image: np.ndarray) -> Prediction:
        """The model's guess for one (28, 28, 1) or (28, 28) image in [0, 1]."""
        if self._tflite is None:
            return predict_digit(self.model, image)
        check_image(image)
        batch = image.reshape(1, IMAGE_SIDE, IMAGE_SIDE, 1).astype(np.float32)
        return prediction_from_scores(self._tflite(batch))


def keras_reader(model: keras.Model) -> DigitReader:
    """A reader that calls the Keras model itself (before, or instead of, a verified copy)."""
    return DigitReader(model, tflite=None, check=None)


def fast_reader(model: keras.Model, *, images: np.ndarray) -> DigitReader:
    """Convert `model` to float32 TFLite and keep the copy only if it agrees on every one of `images`."""
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise ValueError("images must be a float32 array of shape (N, 28, 28, 1).")
    started = time.perf_counter()
    try:
        copy = TfliteModel(convert_to_tflite(model, quantization="float32"))
    except ValueError:
        # A model TFLite cannot convert is still read correctly, only more slowly.
        return keras_reader(model)
    agreeing, largest = 0, 0.0
    for start in range(0, len(images), CHECK_BATCH_SIZE):
        batch = np.asarray(images[start : start + CHECK_BATCH_SIZE], dtype=np.float32)
        expected = np.asarray(model(batch, training=False))
        found = copy(batch)
        agreeing += int(np.sum(expected.argmax(axis=-1) == found.argmax(axis=-1)))
        largest = max(largest, float(np.max(np.abs(expected - found))))
    check = ReaderCheck(
        images=len(images),
        agreeing=agreeing,
        max_probability_difference=largest,
        seconds=time.perf_counter() - started,
    )
    return DigitReader(model, tflite=copy, check=check)
