"""Tests for core.drawings (the seeded set of canvas drawings made from MNIST test digits), and the
figure it measures: how many of the drawings the seed CNN reads right after the page's default training.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from core.canvas import DRAWING_SIDE, preprocess_canvas
from core.digits import DigitsConfig, score, train_digits
from core.drawings import (
    BRUSH_WIDTHS,
    DEFAULT_COUNT,
    hollowed,
    ink_depth,
    make_drawing_set,
    thin,
)
from core.mnist import cached_mnist

# Measured: 96.8% and 97.4% of the 500 drawings with seeds 1 and 2 (bench/drawings.py); the floor
# leaves room for run-to-run noise (one drawing is 0.2 points) and fails on a real regression.
DRAWINGS_FLOOR = 0.96
# The default training's MNIST test accuracy, 98.5% measured; the floor is the docstring's promise.
MNIST_FLOOR = 0.98


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return cached_mnist(mnist_dir)


@pytest.fixture(scope="module")
def drawing_set(mnist):
    return make_drawing_set(mnist.test_images, mnist.test_labels)


def test_thinning_leaves_a_connected_line_one_pixel_wide():
    mask = np.zeros((40, 60), dtype=bool)
    mask[15:25, 5:55] = True  # A bar ten pixels thick.
    mask[5:35, 25:33] = True  # Crossed by an eight-pixel-thick upright.
    line = thin(mask)
    assert line.sum() > 0 and (line <= mask).all()  # Only ink is kept.
    _, pieces = ndimage.label(line, structure=np.ones((3, 3)))
    assert pieces == 1  # Thinning keeps the cross in one piece.
    # No 2x2 block of ink is left: the line is one pixel wide everywhere.
    blocks = line[:-1, :-1] & line[1:, :-1] & line[:-1, 1:] & line[1:, 1:]
    assert not blocks.any()
    # The bar still spans most of its length.
    columns = np.flatnonzero(line.any(axis=0))
    assert columns[-1] - columns[0] >= 35  # Its ends wear back by about half the thickness.


def enclosed_holes(line: np.ndarray) -> int:
    """How many pieces of background `line` closes off from the border (a 0 has one, an 8 two)."""
    _, pieces = ndimage.label(~np.pad(line, 1))  # 4-connected: an 8-connected line seals.
    return pieces - 1  # The piece touching the padded border is the outside.


def test_ink_depth_counts_the_erosions_a_pixel_survives():
    mask = np.zeros((9, 9), dtype=bool)
    mask[1:8, 1:8] = True
    depth = ink_depth(mask)
    assert depth[0, 0] == 0 and depth[1, 1] == 1 and depth[2, 4] == 2 and depth[4, 4] == 4
    np.testing.assert_array_equal(depth > 0, mask)
    # The same as SciPy's city-block distance transform.
    np.testing.assert_array_equal(depth, ndimage.distance_transform_cdt(mask, metric="taxicab"))


def filled_six() -> np.ndarray:
    """A 6 whose loop a thick pen has filled: a stroke 4 px thick ending in a solid disc."""
    rows, columns = np.mgrid[0:80, 0:80]
    disc = (rows - 55) ** 2 + (columns - 40) ** 2 <= 16**2
    stem = (np.abs(columns - 28) <= 2) & (rows >= 10) & (rows <= 55)
    return disc | stem


def test_a_filled_loop_is_traced_round_its_middle():
    six = filled_six()
    assert enclosed_holes(thin(six)) == 0  # Thinned as it is, the loop is lost: a "C", not a 6.
    hollow = hollowed(six)
    assert (hollow <= six).all() and hollow.sum() < six.sum()
    line = thin(hollow)
    assert enclosed_holes(line) == 1  # The loop is drawn round the disc's middle.
    # The loop stays well inside the disc, clear of its centre.
    loop_rows, loop_columns = np.nonzero(line & (np.mgrid[0:80, 0:80][0] >= 45))
    radii = np.hypot(loop_rows - 55, loop_columns - 40)
    assert radii.min() > 4 and radii.max() <= 16


def test_strokes_of_one_thickness_are_not_hollowed():
    rows, columns = np.mgrid[0:80, 0:80]
    radius = np.hypot(rows - 40, columns - 40)
    ring = (radius >= 20) & (radius <= 26)  # A 0 drawn with a 6-px pen.
    bar = (np.abs(columns - 40) <= 3) & (rows >= 5) & (rows <= 75)  # A 1 of the same pen.
    cross = bar | ((np.abs(rows - 40) <= 3) & (columns >= 5) & (columns <= 75))  # Strokes that meet.
    for mask in (ring, bar, cross, np.zeros((10, 10), dtype=bool)):
        np.testing.assert_array_equal(hollowed(mask), mask)
    assert enclosed_holes(thin(ring)) == 1


def test_the_set_is_the_same_for_the_same_seed_and_differs_for_another(mnist):
    images, labels = mnist.test_images[:200], mnist.test_labels[:200]
    first = make_drawing_set(images, labels, count=20, seed=3)
    again = make_drawing_set(images, labels, count=20, seed=3)
    other = make_drawing_set(images, labels, count=20, seed=4)
    np.testing.assert_array_equal(first.drawings, again.drawings)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.test_indices, other.test_indices)


def test_drawings_look_like_the_pages_square(drawing_set, mnist):
    drawings = drawing_set.drawings
    assert len(drawings) == DEFAULT_COUNT >= 500
    assert drawings.shape[1:] == (DRAWING_SIDE, DRAWING_SIDE, 4) and drawings.dtype == np.uint8
    # Distinct MNIST test digits, each drawing labelled with its digit.
    assert len(np.unique(drawing_set.test_indices)) == len(drawings)
    np.testing.assert_array_equal(drawing_set.labels, mnist.test_labels[drawing_set.test_indices])
    assert set(np.unique(drawing_set.labels)) == set(range(10))
    # Opaque, on the square's black background, with strokes of many colours and every brush width.
    assert (drawings[..., 3] == 255).all()
    assert (drawings[:, 0, :, :3] == 0).all() and (drawings[:, :, 0, :3] == 0).all()
    brightest = drawings[..., :3].reshape(len(drawings), -1, 3)
    colours = {tuple(pixels[pixels.sum(axis=1).argmax()] // 32) for pixels in brightest[:100]}
    assert len(colours) >= 20
    assert set(np.unique(drawing_set.brushes)) == set(BRUSH_WIDTHS)
    # Digits of many sizes at many places: the ink's boxes differ.
    ink = drawings[..., :3].max(axis=3) > 0
    tops = [np.flatnonzero(image.any(axis=1))[0] for image in ink]
    heights = [np.ptp(np.flatnonzero(image.any(axis=1))) for image in ink]
    assert np.ptp(tops) > 100 and np.ptp(heights) > 100


def test_a_set_larger_than_its_images_is_refused(mnist):
    images, labels = mnist.test_images[:10], mnist.test_labels[:10]
    with pytest.raises(ValueError, match="1 to 10 drawings"):
        make_drawing_set(images, labels, count=11)
    with pytest.raises(ValueError, match="as many labelled images"):
        make_drawing_set(images, labels[:9], count=5)


def test_drawings_are_read_right_after_the_default_training(mnist, drawing_set):
    # The page's default training, exactly: 5 epochs of the seed CNN on all 60,000 images (~35 s).
    result = train_digits(DigitsConfig(seed=1), data=mnist)
    assert result.test_accuracy >= MNIST_FLOOR
    images = np.stack([preprocess_canvas(drawing) for drawing in drawing_set.drawings])
    drawings = score(result.model, images, drawing_set.labels)
    assert drawings.accuracy >= DRAWINGS_FLOOR, drawings.misclassified
