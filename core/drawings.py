"""A seeded set of canvas drawings made from MNIST test digits, to measure how well drawings are read.

Each digit is thinned to its centre line (Zhang-Suen thinning of a 4x upsampled copy, its filled loops
hollowed first so they are traced round, not worn to a line), and the line is drawn again as round
strokes on the page's 280x280 drawing square: a chosen brush width, digit height, position and stroke
colour on the square's black background, anti-aliased as a browser canvas draws.
What the model then reads is what `core.canvas.preprocess_canvas` makes of the drawing, so the set
measures preprocessing and training together, as a person drawing on the page does.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from core.canvas import DRAWING_SIDE

# Brush widths in canvas pixels; the page's own brush is 20.
BRUSH_WIDTHS = (8, 12, 16, 20, 24, 28)
# Digit heights (of the centre line, before the brush) on the 280-px square.
MIN_HEIGHT = 80
MAX_HEIGHT = 240
# A digit at least this many brush widths tall: fatter strokes close the loops of a 6, 8 or 9.
MIN_HEIGHT_PER_BRUSH = 5
# The thinned centre line is traced on the digit upsampled this many times, for smooth strokes.
TRACE_UPSAMPLING = 4
# Strokes are drawn this many times larger, then shrunk, which anti-aliases their edges.
SUPERSAMPLING = 2
# Stroke colours are bright enough (HSV value) to stand out from the black square.
MIN_BRIGHTNESS = 0.6
DEFAULT_COUNT = 500
# Ink this many times deeper than the digit's strokes is a filled loop (a 6's or a 9's closed up by a
# thick pen): thinned as it is, it wears down to a line and the 6 is drawn as a "C", so its middle is cut
# out first and the loop is traced round it, as a person drawing the digit draws it.
FILLED_DEPTH = 2.0
# Fewer filled pixels than this (on the 4x upsampled digit) are a blot where strokes meet, left alone.
MIN_FILLED_PIXELS = 4
# The four neighbours of a pixel, as one erosion step reads them.
_CROSS = ((-1, 0), (1, 0), (0, -1), (0, 1))
# The eight neighbours of a pixel, clockwise from north, as Zhang-Suen thinning reads them.
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


@dataclass(frozen=True, slots=True, eq=False)
class DrawingSet:
    """RGBA drawings (N, 280, 280, 4) uint8, their digits, and the MNIST test image each came from."""

    drawings: np.ndarray
    labels: np.ndarray
    test_indices: np.ndarray
    brushes: np.ndarray
    heights: np.ndarray


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: a boolean mask worn down to lines one pixel wide, keeping connectivity."""
    image = np.pad(mask.astype(bool), 1)
    while True:
        changed = False
        for step in (0, 1):
            around = [
                np.roll(image, (-row, -column), axis=(0, 1)).astype(np.int8)
                for row, column in _NEIGHBOURS
            ]
            north, _, east, _, south, _, west, _ = around
            count = sum(around)
            # How many times the ring of neighbours steps from background to ink.
            crossings = sum(
                ((around[index] == 0) & (around[(index + 1) % 8] == 1)).astype(np.int8)
                for index in range(8)
            )
            if step == 0:
                corner = (north * east * south == 0) & (east * south * west == 0)
            else:
                corner = (north * east * west == 0) & (north * south * west == 0)
            removable = image & (count >= 2) & (count <= 6) & (crossings == 1) & corner
            if removable.any():
                image &= ~removable
                changed = True
        if not changed:
            thinned: np.ndarray = image[1:-1, 1:-1]
            return thinned


def ink_depth(mask: np.ndarray) -> np.ndarray:
    """How many erosions each ink pixel of a mask survives: its city-block distance to the background."""
    depth = np.zeros(mask.shape, dtype=np.int32)
    ink = mask.astype(bool)
    while ink.any():
        depth += ink
        padded = np.pad(ink, 1)
        side_rows, side_columns = ink.shape
        for row, column in _CROSS:
            ink = ink & padded[1 + row : 1 + row + side_rows, 1 + column : 1 + column + side_columns]
    return depth


def hollowed(mask: np.ndarray) -> np.ndarray:
    """`mask` with the middle of each filled loop cut out, so that thinning traces the loop round it."""
    line = thin(mask)
    if not line.any():
        return mask
    depth = ink_depth(mask)
    # The typical stroke's half-width is the depth along its centre line.
    filled = depth > FILLED_DEPTH * float(np.median(depth[line]))
    if np.count_nonzero(filled) < MIN_FILLED_PIXELS:
        return mask
    result: np.ndarray = mask & ~filled
    return result


def centre_line(digit: np.ndarray) -> np.ndarray:
    """The (row, column) points of a uint8 28x28 digit's centre line, in 28-px image coordinates."""
    side = digit.shape[0] * TRACE_UPSAMPLING
    large = Image.fromarray(np.asarray(digit, dtype=np.uint8)).resize(
        (side, side), Image.Resampling.BILINEAR
    )
    points = np.argwhere(thin(hollowed(np.asarray(large) >= 128))).astype(np.float64)
    # Pixel centres of the upsampled image, mapped back onto the 28-px grid.
    return (points + 0.5) / TRACE_UPSAMPLING


def render_strokes(
    points: np.ndarray,
    *,
    brush: int,
    height: int,
    top: int,
    left: int,
    colour: tuple[int, int, int],
) -> np.ndarray:
    """Draw the centre line `points` `height` px tall at (`top`, `left`) as round strokes: RGBA."""
    rows, columns = points[:, 0], points[:, 1]
    scale = height / max(float(np.ptp(rows)), 1.0)
    on_canvas = np.stack(
        [(rows - rows.min()) * scale + top, (columns - columns.min()) * scale + left], 1
    )
    scaled = on_canvas * SUPERSAMPLING
    large_side = DRAWING_SIDE * SUPERSAMPLING
    ink = Image.new("L", (large_side, large_side), 0)
    pen = ImageDraw.Draw(ink)
    radius = brush * SUPERSAMPLING / 2
    # Neighbouring pixels of the thinned line are joined, so no gap opens between the dots.
    traced = np.rint(points * TRACE_UPSAMPLING - 0.5).astype(np.int64)
    index_of = {(int(row), int(column)): index for index, (row, column) in enumerate(traced)}
    for index, (row, column) in enumerate(traced):
        y, x = scaled[index]
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
        for step_row, step_column in ((0, 1), (1, -1), (1, 0), (1, 1)):
            other = index_of.get((int(row + step_row), int(column + step_column)))
            if other is not None:
                other_y, other_x = scaled[other]
                pen.line((x, y, other_x, other_y), fill=255, width=round(2 * radius))
    coverage = np.asarray(ink.reduce(SUPERSAMPLING), dtype=np.float32)[..., None] / 255.0
    rgba = np.empty((DRAWING_SIDE, DRAWING_SIDE, 4), dtype=np.uint8)
    # Strokes over the page's black square: the colour in proportion to how much of a pixel they cover.
    rgba[..., :3] = np.rint(coverage * np.asarray(colour, dtype=np.float32)).astype(np.uint8)
    rgba[..., 3] = 255
    return rgba


def make_drawing_set(
    images: np.ndarray, labels: np.ndarray, *, count: int = DEFAULT_COUNT, seed: int = 0
) -> DrawingSet:
    """`count` drawings of distinct digits of uint8 (N, 28, 28) `images`; the same for one seed."""
    if not 1 <= count <= len(images) or len(images) != len(labels):
        raise ValueError(
            f"Need 1 to {len(images):,} drawings of as many labelled images; got {count:,} drawings, "
            f"{len(images):,} images and {len(labels):,} labels."
        )
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(images), size=count, replace=False))
    drawings = np.empty((count, DRAWING_SIDE, DRAWING_SIDE, 4), dtype=np.uint8)
    brushes = np.empty(count, dtype=np.int64)
    heights = np.empty(count, dtype=np.int64)
    for slot, index in enumerate(chosen):
        points = centre_line(images[index])
        aspect = float(np.ptp(points[:, 1])) / max(float(np.ptp(points[:, 0])), 1.0)
        # A wide digit is drawn less tall, so that it fits on the square with the widest brush.
        tallest = min(MAX_HEIGHT, int((DRAWING_SIDE - 2 * BRUSH_WIDTHS[-1]) / max(aspect, 1e-3)))
        height = int(rng.integers(MIN_HEIGHT, max(MIN_HEIGHT, tallest) + 1))
        fitting = [width for width in BRUSH_WIDTHS if width * MIN_HEIGHT_PER_BRUSH <= height]
        brush = int(rng.choice(fitting))
        width = round(height * aspect)
        # The whole stroke, brush included, lies on the square.
        margin = brush // 2 + 2
        top = int(rng.integers(margin, DRAWING_SIDE - margin - height))
        left = int(rng.integers(margin, max(margin + 1, DRAWING_SIDE - margin - width)))
        hue, saturation = rng.random(2)
        value = rng.uniform(MIN_BRIGHTNESS, 1.0)
        red, green, blue = colorsys.hsv_to_rgb(float(hue), float(saturation), float(value))
        colour = (round(red * 255), round(green * 255), round(blue * 255))
        drawings[slot] = render_strokes(
            points, brush=brush, height=height, top=top, left=left, colour=colour
        )
        brushes[slot], heights[slot] = brush, height
    return DrawingSet(
        drawings=drawings,
        labels=np.asarray(labels)[chosen].astype(np.int64),
        test_indices=chosen,
        brushes=brushes,
        heights=heights,
    )
