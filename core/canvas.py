"""Canvas inference: turn a drawing into an MNIST-style 28x28 image and ask a model which digit it is.

MNIST digits were size-normalised to fit a 20x20 box (keeping their aspect ratio), anti-aliased, and
placed in a 28x28 field so that their centre of mass sits at the centre. `preprocess_canvas` repeats
those steps, so a drawing reaches the model in the same form as the training images.

`decode_drawing` reads what the page's drawing square sends (a PNG data URL). It comes over the websocket
from the browser, so it is checked as hostile input: bounded size, exact prefix, PNG signature, exact
280x280 size read from the header before any pixel is decoded; anything else is a ValueError.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import zlib
from dataclasses import dataclass

import keras
import numpy as np
from PIL import Image

from core.tasks import IMAGE_SIDE as IMAGE_SIDE  # Re-exported: other modules import it from here.

IMAGE_SHAPES = ((IMAGE_SIDE, IMAGE_SIDE, 1), (IMAGE_SIDE, IMAGE_SIDE))
DIGIT_BOX = 20
# Measured on MNIST's test set: the mean centre of mass is (13.99, 14.00) in pixel-index coordinates.
CENTRE_OF_MASS = 14.0
# Ink below this fraction of the strongest ink is treated as background (paper texture, JPEG noise).
INK_FLOOR = 0.1
# The strongest ink must stand out by at least this much (of 255) for the canvas to count as drawn on.
MIN_CONTRAST = 0.1
# Fewer solid ink pixels than this (or than SPECK_FRACTION of the canvas) is a speck, not a digit.
MIN_INK_PIXELS = 5
SPECK_FRACTION = 1e-4
MAX_CANVAS_SIDE = 4096
# Below this confidence the page tells the user the model is unsure.
LOW_CONFIDENCE = 0.6
# The drawing square's side in pixels (10x the 28-px image the model reads).
DRAWING_SIDE = 280
PNG_DATA_URL_PREFIX = "data:image/png;base64,"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A drawn digit's PNG is 3 to 20 KB; even a square full of scribbles stays far below this bound.
MAX_DRAWING_CHARS = 300_000
# What Pillow may raise on a corrupt PNG (truncated chunks, bad CRCs, broken zlib streams).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
    Image.DecompressionBombError,
)
# ITU-R BT.601 luma weights, the same ones Pillow uses for its "L" conversion.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _validated_pixels(rgba: np.ndarray) -> np.ndarray:
    """Check the canvas array and return it as float32 in [0, 1]."""
    if not isinstance(rgba, np.ndarray):
        raise ValueError(f"the canvas must be a numpy array, not {type(rgba).__name__}")
    if rgba.ndim != 3 or rgba.shape[2] not in (1, 3, 4):
        raise ValueError(
            "the canvas must have shape (height, width, 4) or (height, width, 3) or (height, width, 1)"
            f", not {rgba.shape}"
        )
    height, width = rgba.shape[:2]
    if not (1 <= height <= MAX_CANVAS_SIDE and 1 <= width <= MAX_CANVAS_SIDE):
        raise ValueError(
            f"the canvas must be 1 to {MAX_CANVAS_SIDE} pixels on each side, not {height}x{width}"
        )
    if rgba.dtype == np.bool_ or rgba.dtype.kind not in "uif":
        raise ValueError(
            f"the canvas must hold integers or floats from 0 to 255, not {rgba.dtype} values"
        )
    if rgba.dtype.kind == "f" and not np.isfinite(rgba).all():
        raise ValueError("the canvas contains NaN or infinite values")
    low, high = rgba.min(), rgba.max()
    if low < 0 or high > 255:
        raise ValueError(f"the canvas values must lie in 0..255, but range from {low} to {high}")
    return rgba.astype(np.float32) / 255.0


def _ink_map(pixels: np.ndarray) -> np.ndarray:
    """Return how strongly each pixel differs from the background, in [0, 1]."""
    if pixels.shape[2] == 4:
        alpha = pixels[:, :, 3]
        # On a transparent canvas only the strokes are opaque, whatever colour they were drawn in.
        if alpha.max() - alpha.min() >= MIN_CONTRAST:
            return alpha
    # A grey canvas (one channel, as decode_drawing gives) is its own luminance.
    luminance = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels[:, :, :3] @ LUMA_WEIGHTS
    # The border is almost always background, so its median is the background, dark or light.
    border = np.concatenate([luminance[0], luminance[-1], luminance[:, 0], luminance[:, -1]])
    distance: np.ndarray = np.abs(luminance - np.median(border))
    return distance


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    total = float(image.sum())
    rows = np.arange(image.shape[0], dtype=np.float64)
    columns = np.arange(image.shape[1], dtype=np.float64)
    return float(image.sum(axis=1) @ rows) / total, float(image.sum(axis=0) @ columns) / total


def preprocess_canvas(rgba: np.ndarray) -> np.ndarray | None:
    """Turn RGBA, RGB or grey canvas pixels into a (28, 28, 1) MNIST-style image, or None if blank."""
    ink = _ink_map(_validated_pixels(rgba))
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        return None
    # Scaling to the strongest stroke makes grey-on-grey drawings as bold as black-on-white ones.
    ink = ink / peak
    ink[ink < INK_FLOOR] = 0.0
    minimum_pixels = max(MIN_INK_PIXELS, round(ink.size * SPECK_FRACTION))
    if np.count_nonzero(ink >= 0.5) < minimum_pixels:
        return None
    rows = np.flatnonzero(ink.any(axis=1))
    columns = np.flatnonzero(ink.any(axis=0))
    cropped = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    height, width = cropped.shape
    scale = DIGIT_BOX / max(height, width)
    new_height = max(1, min(DIGIT_BOX, round(height * scale)))
    new_width = max(1, min(DIGIT_BOX, round(width * scale)))
    # Pillow's resampling filters widen when shrinking, which is the anti-aliasing MNIST used.
    resized_image = Image.fromarray(np.ascontiguousarray(cropped, dtype=np.float32))
    resized_image = resized_image.resize((new_width, new_height), Image.Resampling.BILINEAR)
    digit = np.clip(np.asarray(resized_image, dtype=np.float32), 0.0, 1.0)
    if not digit.any():
        return None
    centre_row, centre_column = _centre_of_mass(digit)
    # Whole-pixel shifts keep strokes sharp; clipping keeps the whole digit inside the field.
    top = int(np.clip(round(CENTRE_OF_MASS - centre_row), 0, IMAGE_SIDE - new_height))
    left = int(np.clip(round(CENTRE_OF_MASS - centre_column), 0, IMAGE_SIDE - new_width))
    field = np.zeros((IMAGE_SIDE, IMAGE_SIDE, 1), dtype=np.float32)
    field[top : top + new_height, left : left + new_width, 0] = digit
    return field


def decode_drawing(payload: object) -> np.ndarray:
    """Decode the drawing square's PNG data URL into (280, 280, 1) grey uint8 pixels, or ValueError."""
    if not isinstance(payload, str) or not payload.startswith(PNG_DATA_URL_PREFIX):
        raise ValueError(f"the drawing must be a PNG data URL ({PNG_DATA_URL_PREFIX}...)")
    if len(payload) > MAX_DRAWING_CHARS:
        raise ValueError(
            f"the drawing is too large ({len(payload):,} characters; at most {MAX_DRAWING_CHARS:,})"
        )
    try:
        raw = base64.b64decode(payload[len(PNG_DATA_URL_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("the drawing is not valid base64") from error
    if not raw.startswith(PNG_SIGNATURE) or raw[12:16] != b"IHDR" or len(raw) < 24:
        raise ValueError("the drawing is not a PNG image")
    # The size is read from the first chunk's header, so a wrong one is refused before Pillow parses
    # anything or decompresses a single pixel.
    width, height = struct.unpack(">II", raw[16:24])
    if (width, height) != (DRAWING_SIDE, DRAWING_SIDE):
        raise ValueError(
            f"the drawing must be {DRAWING_SIDE}x{DRAWING_SIDE} pixels, not {width}x{height}"
        )
    try:
        with Image.open(io.BytesIO(raw), formats=["PNG"]) as image:
            # Grey is all the preprocessing reads, and the cheapest conversion (white strokes on black).
            pixels = np.asarray(image.convert("L"), dtype=np.uint8)[:, :, np.newaxis]
    except _DECODE_ERRORS as error:
        raise ValueError(f"the drawing could not be decoded ({error})") from error
    if pixels.shape != (DRAWING_SIDE, DRAWING_SIDE, 1):
        raise ValueError(f"the drawing decoded to shape {pixels.shape}, not a {DRAWING_SIDE}-px square")
    return pixels


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's guess for one drawing: the digit, its probability, and all ten probabilities."""

    digit: int
    confidence: float
    probabilities: tuple[float, ...]

    @property
    def is_confident(self) -> bool:
        """Whether the model is sure enough that the page need not warn about the guess."""
        return self.confidence >= LOW_CONFIDENCE


def check_image(image: object) -> None:
    """Refuse anything but a (28, 28, 1) or (28, 28) numpy image."""
    if not isinstance(image, np.ndarray) or image.shape not in IMAGE_SHAPES:
        found = f"shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(
            f"the image must be a numpy array of shape (28, 28, 1) or (28, 28), not {found}"
        )


def predict_digit(model: keras.Model, image: np.ndarray) -> Prediction:
    """Classify one (28, 28, 1) or (28, 28) image in [0, 1] with `model`."""
    check_image(image)
    batch = image.reshape(1, IMAGE_SIDE, IMAGE_SIDE, 1).astype(np.float32)
    # Calling the model directly takes ~5 ms; model.predict sets up a data pipeline and takes ~66 ms.
    return prediction_from_scores(keras.ops.convert_to_numpy(model(batch, training=False)))


def prediction_from_scores(output: np.ndarray) -> Prediction:
    """The Prediction for one image's ten outputs (probabilities, or logits turned into them)."""
    scores = np.asarray(output, dtype=np.float64).reshape(-1)
    if scores.size < 2 or not np.isfinite(scores).all():
        raise ValueError(f"the model must output one finite score per class, not {scores[:10]}")
    # A model trained with from_logits=True outputs raw scores; softmax turns them into probabilities.
    if scores.min() < 0 or abs(scores.sum() - 1.0) > 1e-3:
        exponentials = np.exp(scores - scores.max())
        scores = exponentials / exponentials.sum()
    digit = int(np.argmax(scores))
    return Prediction(
        digit=digit,
        confidence=float(scores[digit]),
        probabilities=tuple(float(score) for score in scores),
    )
