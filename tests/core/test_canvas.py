"""Tests for core.canvas: MNIST-style preprocessing of canvas drawings and direct-call prediction."""

from __future__ import annotations

import base64
import io
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as numpy_strategies
from PIL import Image
from scipy import ndimage

from core import canvas
from core.canvas import Prediction, decode_drawing, predict_digit, preprocess_canvas
from core.mnist import parse_idx
from tests.utils.models import tiny_digits_model


def seven_mask(
    canvas_shape: tuple[int, int], *, top: int, left: int, size: int, thickness: int
) -> np.ndarray:
    """A "7" drawn as a top bar and a diagonal, `size` pixels tall and 0.7 * `size` wide."""
    height, width = canvas_shape
    rows, columns = np.mgrid[:height, :width]
    glyph_width = int(size * 0.7)
    bar = (rows >= top) & (rows < top + thickness) & (columns >= left) & (columns < left + glyph_width)
    # The diagonal runs from the bar's right end down to the bottom, a third of the way in.
    progress = (rows - top) / size
    diagonal_column = left + glyph_width - progress * glyph_width * 0.67
    diagonal = (np.abs(columns - diagonal_column) < thickness / 2) & (rows >= top) & (rows < top + size)
    return bar | diagonal


def transparent(mask: np.ndarray, colour: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """A canvas with a transparent background: opaque strokes only."""
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[mask] = (*colour, 255)
    return rgba


def opaque(mask: np.ndarray, *, background: int, stroke: int) -> np.ndarray:
    rgba = np.full((*mask.shape, 4), background, dtype=np.uint8)
    rgba[mask, :3] = stroke
    rgba[..., 3] = 255
    return rgba


def ink_box(image: np.ndarray, threshold: float = 0.05) -> tuple[int, int]:
    rows = np.flatnonzero((image > threshold).any(axis=1))
    columns = np.flatnonzero((image > threshold).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(columns[-1] - columns[0] + 1)


def assert_mnist_like(result: np.ndarray | None) -> np.ndarray:
    """Check the properties every MNIST image has, and return the 28x28 plane."""
    assert result is not None
    assert result.shape == (28, 28, 1) and result.dtype == np.float32
    assert result.min() >= 0.0 and result.max() <= 1.0 and result.max() > 0.9
    image = result[..., 0]
    assert max(ink_box(image)) in (19, 20, 21)  # Size-normalised to a 20-pixel box, as MNIST was.
    centre_row, centre_column = ndimage.center_of_mass(image)
    assert abs(centre_row - 14) <= 1 and abs(centre_column - 14) <= 1  # Centred by mass, as MNIST was.
    return image


SEVEN = seven_mask((280, 280), top=40, left=60, size=200, thickness=18)


# ## Ink detection and polarity


def test_every_canvas_style_gives_the_same_image() -> None:
    reference = assert_mnist_like(preprocess_canvas(transparent(SEVEN)))
    styles = {
        "coloured strokes on transparent": transparent(SEVEN, colour=(30, 200, 90)),
        "dark on white": opaque(SEVEN, background=255, stroke=0),
        "white on black": opaque(SEVEN, background=0, stroke=255),
        "rgb without alpha": opaque(SEVEN, background=255, stroke=0)[..., :3],
        "float 0..255": transparent(SEVEN).astype(np.float64),
        "grey, one channel": opaque(SEVEN, background=0, stroke=255)[..., :1],
    }
    for name, rgba in styles.items():
        image = assert_mnist_like(preprocess_canvas(rgba))
        np.testing.assert_allclose(image, reference, atol=1e-6, err_msg=name)


def test_grey_strokes_on_grey_are_scaled_to_full_ink() -> None:
    faint = opaque(SEVEN, background=120, stroke=170)
    image = assert_mnist_like(preprocess_canvas(faint))
    np.testing.assert_allclose(image, preprocess_canvas(transparent(SEVEN))[..., 0], atol=1e-6)


def test_output_is_white_ink_on_black() -> None:
    image = assert_mnist_like(preprocess_canvas(opaque(SEVEN, background=255, stroke=0)))
    assert image[0, 0] == 0.0 and image.mean() < 0.3  # Background is zero, as in MNIST.


# ## Size and position normalisation


@pytest.mark.parametrize(
    ("canvas_shape", "top", "left", "size", "thickness"),
    [
        ((280, 280), 40, 60, 200, 18),  # Centred, typical.
        ((280, 280), 5, 170, 90, 10),  # Off-centre in the top-right corner.
        ((280, 280), 200, 10, 60, 6),  # Small, bottom-left.
        ((280, 280), 130, 130, 12, 3),  # Tiny.
        ((280, 280), 0, 0, 279, 24),  # Huge, touching the edges.
        ((400, 300), 50, 40, 300, 20),  # Tall canvas.
        ((300, 400), 30, 250, 200, 20),  # Wide canvas.
    ],
)
def test_digits_are_size_normalised_and_centred(
    canvas_shape: tuple[int, int], top: int, left: int, size: int, thickness: int
) -> None:
    mask = seven_mask(canvas_shape, top=top, left=left, size=size, thickness=thickness)
    assert_mnist_like(preprocess_canvas(transparent(mask)))


def test_position_on_the_canvas_does_not_matter() -> None:
    here = seven_mask((280, 280), top=10, left=10, size=120, thickness=12)
    there = seven_mask((280, 280), top=150, left=140, size=120, thickness=12)
    np.testing.assert_allclose(
        preprocess_canvas(transparent(here)), preprocess_canvas(transparent(there))
    )


def test_size_on_the_canvas_barely_matters() -> None:
    small = preprocess_canvas(
        transparent(seven_mask((280, 280), top=20, left=20, size=100, thickness=10))
    )
    large = preprocess_canvas(
        transparent(seven_mask((280, 280), top=20, left=20, size=250, thickness=25))
    )
    assert small is not None and large is not None
    assert np.corrcoef(small.ravel(), large.ravel())[0, 1] > 0.95


def test_aspect_ratio_is_kept() -> None:
    one = np.zeros((280, 280), dtype=bool)
    one[40:240, 130:150] = True  # A bar 200 tall and 20 wide.
    image = assert_mnist_like(preprocess_canvas(transparent(one)))
    height, width = ink_box(image, threshold=0.3)
    assert height == 20 and width <= 3  # Scaled by 20/200, so two pixels wide, not stretched to 20.
    dash = assert_mnist_like(preprocess_canvas(transparent(one.T.copy())))
    assert ink_box(dash, threshold=0.3) == (width, height)


def test_real_mnist_digits_drawn_on_a_canvas_come_back_as_they_were(mnist_dir: Path) -> None:
    digits = parse_idx((mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes())[:20]
    correlations = []
    for index, digit in enumerate(digits):
        # Upscale by 7 and place off-centre, like a user drawing with a thick pen in one corner.
        drawn = np.kron(digit, np.ones((7, 7), dtype=np.uint8))
        rgba = np.zeros((280, 280, 4), dtype=np.uint8)
        top, left = 4 * index, 80 - 4 * index
        rgba[top : top + 196, left : left + 196, 3] = drawn
        image = assert_mnist_like(preprocess_canvas(rgba))
        correlations.append(np.corrcoef(image.ravel(), digit.ravel() / 255.0)[0, 1])
    assert min(correlations) > 0.9 and np.mean(correlations) > 0.97


# ## Blank canvases and specks


def test_blank_canvases_give_none() -> None:
    assert preprocess_canvas(np.zeros((280, 280, 4), dtype=np.uint8)) is None
    assert preprocess_canvas(np.full((280, 280, 4), 255, dtype=np.uint8)) is None  # All white.
    assert preprocess_canvas(np.full((280, 280, 3), 128, dtype=np.uint8)) is None  # All grey.
    noise = np.random.default_rng(0).integers(0, 15, size=(280, 280, 4)).astype(np.uint8)
    assert preprocess_canvas(noise) is None  # Faint noise is not ink.


def test_a_speck_gives_none_but_a_small_dot_does_not() -> None:
    speck = np.zeros((280, 280), dtype=bool)
    speck[100:102, 100:102] = True
    assert preprocess_canvas(transparent(speck)) is None
    dot = np.zeros((280, 280), dtype=bool)
    dot[100:106, 100:106] = True  # 36 pixels: a deliberate mark, such as a very small "1".
    assert preprocess_canvas(transparent(dot)) is not None


# ## Invalid input


@pytest.mark.parametrize(
    ("rgba", "message"),
    [
        (np.zeros((280, 280), dtype=np.uint8), r"shape \(height, width, 4\)"),
        (np.zeros((280, 280, 2), dtype=np.uint8), r"shape \(height, width, 4\)"),
        (np.zeros((0, 280, 4), dtype=np.uint8), "1 to 4096 pixels on each side, not 0x280"),
        (np.zeros((28, 28, 4), dtype=bool), "not bool values"),
        (np.zeros((28, 28, 4), dtype=np.complex64), "not complex64 values"),
        (np.full((28, 28, 4), -1, dtype=np.int16), "must lie in 0..255"),
        (np.full((28, 28, 4), 256.0), "must lie in 0..255"),
        (np.full((28, 28, 4), np.nan), "NaN or infinite"),
        ([[[0, 0, 0, 0]]], "must be a numpy array, not list"),
    ],
)
def test_bad_canvases_raise_value_error(rgba: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preprocess_canvas(rgba)  # type: ignore[arg-type]


canvas_dtypes = st.sampled_from(
    [np.uint8, np.int16, np.uint16, np.int64, np.float16, np.float32, np.float64]
)


@settings(max_examples=150, deadline=None)
@given(
    rgba=canvas_dtypes.flatmap(
        lambda dtype: numpy_strategies.arrays(
            dtype,
            numpy_strategies.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=40),
            elements=(
                st.floats(-10, 300, width=16) | st.sampled_from([np.nan, np.inf])
                if np.dtype(dtype).kind == "f"
                else st.integers(max(np.iinfo(dtype).min, -5), min(np.iinfo(dtype).max, 300))
            ),
        )
    )
)
def test_preprocess_raises_only_value_error(rgba: np.ndarray) -> None:
    try:
        result = preprocess_canvas(rgba)
    except ValueError:
        return
    if result is not None:
        assert result.shape == (28, 28, 1) and result.dtype == np.float32
        assert 0.0 <= result.min() and result.max() <= 1.0


# ## Prediction


@pytest.fixture(scope="module")
def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return tiny_digits_model()


def test_predict_digit_returns_a_valid_prediction(tiny_model: keras.Model) -> None:
    image = preprocess_canvas(transparent(SEVEN))
    assert image is not None
    prediction = predict_digit(tiny_model, image)
    assert isinstance(prediction, Prediction) and len(prediction.probabilities) == 10
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert prediction.digit == int(np.argmax(prediction.probabilities))
    assert prediction.confidence == max(prediction.probabilities)
    # The direct call agrees with the slower model.predict.
    reference = tiny_model.predict(image[np.newaxis], verbose=0)[0]
    np.testing.assert_allclose(prediction.probabilities, reference, atol=1e-6)
    assert predict_digit(tiny_model, image[..., 0]) == prediction  # A (28, 28) image is accepted too.
    assert prediction.is_confident == (prediction.confidence >= canvas.LOW_CONFIDENCE)


def test_predict_digit_turns_logits_into_probabilities() -> None:
    keras.utils.set_random_seed(1)
    logits_model = tiny_digits_model(softmax=False)
    image = np.random.default_rng(2).random((28, 28, 1), dtype=np.float32)
    logits = np.asarray(logits_model(image[np.newaxis]))[0]
    prediction = predict_digit(logits_model, image)
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-6)
    assert prediction.digit == int(np.argmax(logits))
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(prediction.probabilities, expected, rtol=1e-5)


@pytest.mark.parametrize("image", [np.zeros((28, 28, 3)), np.zeros((1, 28, 28, 1)), np.zeros(784), None])
def test_predict_digit_rejects_wrong_shapes(tiny_model: keras.Model, image: object) -> None:
    with pytest.raises(ValueError, match=r"shape \(28, 28, 1\) or \(28, 28\)"):
        predict_digit(tiny_model, image)  # type: ignore[arg-type]


# ## Decoding what the drawing component sends


def png_data_url(pixels: np.ndarray, *, mode: str | None = None) -> str:
    """What the page's drawing square sends: canvas.toDataURL(), a base64 PNG data URL."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buffer, format="PNG")
    return canvas.PNG_DATA_URL_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


def drawn_square(mask: np.ndarray) -> np.ndarray:
    """White strokes on the opaque black square, as the component paints them."""
    return opaque(mask, background=0, stroke=255)


def test_a_drawing_decodes_to_its_pixels_and_reads_like_the_array() -> None:
    pixels = drawn_square(SEVEN)
    decoded = decode_drawing(png_data_url(pixels))
    assert decoded.shape == (280, 280, 1) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded[..., 0], pixels[..., 0])  # Lossless: every pixel comes back.
    np.testing.assert_allclose(preprocess_canvas(decoded), preprocess_canvas(pixels), atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(["L", "RGB", "RGBA"]),
    seed=st.integers(0, 2**32 - 1),
    density=st.floats(0.0, 0.2),
)
def test_every_png_of_the_square_s_size_is_accepted(mode: str, seed: int, density: float) -> None:
    # Sparse random strokes keep the PNG under the size bound, as a real drawing is.
    rng = np.random.default_rng(seed)
    channels = {"L": (), "RGB": (3,), "RGBA": (4,)}[mode]
    pixels = np.where(rng.random((280, 280, *channels)) < density, 255, 0).astype(np.uint8)
    decoded = decode_drawing(png_data_url(pixels, mode=mode))
    assert decoded.shape == (280, 280, 1) and decoded.dtype == np.uint8
    expected = np.asarray(Image.fromarray(pixels, mode=mode).convert("L"))
    np.testing.assert_array_equal(decoded[..., 0], expected)


def png_bytes(side: tuple[int, int], image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", side).save(buffer, format=image_format)
    return buffer.getvalue()


def data_url(raw: bytes, prefix: str = canvas.PNG_DATA_URL_PREFIX) -> str:
    return prefix + base64.b64encode(raw).decode("ascii")


NOISE = np.random.default_rng(3).integers(0, 256, size=(280, 280, 4), dtype=np.uint8)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "must be a PNG data URL"),
        (b"data:image/png;base64,", "must be a PNG data URL"),
        ({"png": "x"}, "must be a PNG data URL"),
        ("", "must be a PNG data URL"),
        ("data:image/jpeg;base64," + base64.b64encode(b"x").decode(), "must be a PNG data URL"),
        ("DATA:image/png;base64,AAAA", "must be a PNG data URL"),
        (canvas.PNG_DATA_URL_PREFIX + "not base64!", "not valid base64"),
        (canvas.PNG_DATA_URL_PREFIX + "QUJD\nREVG", "not valid base64"),
        (data_url(b"hello, this is not an image"), "not a PNG image"),
        (data_url(png_bytes((280, 280), "JPEG")), "not a PNG image"),
        (data_url(png_bytes((280, 280), "GIF")), "not a PNG image"),
        (data_url(png_bytes((280, 280))[:60]), "could not be decoded"),
        (data_url(png_bytes((279, 280))), "must be 280x280 pixels, not 279x280"),
        (data_url(png_bytes((280, 560))), "must be 280x280 pixels, not 280x560"),
        (data_url(png_bytes((1, 1))), "must be 280x280 pixels, not 1x1"),
        (png_data_url(NOISE), "too large"),  # The right size, but no drawing is this big.
        (canvas.PNG_DATA_URL_PREFIX + "A" * 400_000, "too large"),
    ],
)
def test_malformed_drawings_are_refused(payload: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_drawing(payload)


def test_a_huge_image_is_refused_from_its_header_without_being_decoded() -> None:
    # A 20000x20000 PNG of one colour compresses to a few hundred KB; its header alone gives it away.
    small = png_bytes((280, 280))
    # The IHDR chunk's data (width, height, then 5 bytes) sits at bytes 16..29, its CRC at 29..33.
    chunk = b"IHDR" + (20_000).to_bytes(4, "big") * 2 + small[24:29]
    bomb = small[:12] + chunk + zlib.crc32(chunk).to_bytes(4, "big") + small[33:]
    with pytest.raises(ValueError, match="must be 280x280 pixels, not 20000x20000"):
        decode_drawing(data_url(bomb))


@settings(max_examples=300, deadline=None)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 10_000),
)
def test_a_corrupted_drawing_decodes_whole_or_raises_only_value_error(
    flips: list[tuple[int, int]], cut: int
) -> None:
    encoded = png_data_url(drawn_square(SEVEN)).removeprefix(canvas.PNG_DATA_URL_PREFIX)
    raw = bytearray(base64.b64decode(encoded))
    for position, value in flips:
        raw[position % len(raw)] = value
    try:
        decoded = decode_drawing(data_url(bytes(raw[: max(cut, 8)])))
    except ValueError:
        return
    assert decoded.shape == (280, 280, 1) and decoded.dtype == np.uint8


@settings(max_examples=200, deadline=None)
@given(
    payload=st.text(max_size=300) | st.binary(max_size=300).map(data_url),
    prefixed=st.booleans(),
)
def test_garbage_raises_only_value_error(payload: str, prefixed: bool) -> None:
    with pytest.raises(ValueError):
        decode_drawing(canvas.PNG_DATA_URL_PREFIX + payload if prefixed else payload)
