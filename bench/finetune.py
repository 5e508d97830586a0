"""Fine-tune on "my digits": a seed CNN trained on MNIST, then fine-tuned on 30 strongly slanted digits
(MNIST test digits sheared by one fixed amount: a stand-in for one person's slanted handwriting).
Prints JSON: personal held-out and MNIST test accuracy before and after.

With `--drawn` the slanted digits are drawn as the page's square gets them: each sheared digit traced
to its centre line and drawn again as one person would, white 20-px strokes of one size in the middle
of the 280x280 square (`core.drawings`), then read through `preprocess_canvas` like a real drawing.

    python bench/finetune.py [--examples 30] [--shear 1.0] [--epochs 3] [--drawn]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MNIST_DIR", str(ROOT.parent / "shared" / "data" / "mnist"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from core.canvas import preprocess_canvas  # noqa: E402
from core.digits import DigitsConfig, score, train_digits  # noqa: E402
from core.drawings import DRAWING_SIDE, centre_line, render_strokes  # noqa: E402
from core.mnist import cached_mnist  # noqa: E402
from core.personal import FinetuneConfig, finetune_digits  # noqa: E402


def slanted(image: np.ndarray, *, shear: float) -> np.ndarray:
    """A uint8 28x28 digit sheared to the right by `shear` (pixels per row), as float in [0, 1]."""
    picture = Image.fromarray(image)
    # Output (x, y) samples input (x + shear * (y - 14), y): the top leans right, the bottom left.
    sheared = picture.transform(
        (28, 28), Image.Transform.AFFINE, (1, shear, -shear * 14, 0, 1, 0), Image.Resampling.BILINEAR
    )
    return np.asarray(sheared, dtype=np.float32) / 255


# One person's drawing habit: the page's brush, digits about two thirds of the square tall, centred.
DRAWN_BRUSH, DRAWN_HEIGHT = 20, 180


def drawn(image: np.ndarray) -> np.ndarray:
    """A float [0, 1] 28x28 digit drawn on the page's square in one style, then preprocessed."""
    points = centre_line(np.rint(image * 255).astype(np.uint8))
    aspect = float(np.ptp(points[:, 1])) / max(float(np.ptp(points[:, 0])), 1.0)
    width = round(DRAWN_HEIGHT * aspect)
    top = (DRAWING_SIDE - DRAWN_HEIGHT) // 2
    left = max(DRAWN_BRUSH, (DRAWING_SIDE - width) // 2)
    rgba = render_strokes(
        points, brush=DRAWN_BRUSH, height=DRAWN_HEIGHT, top=top, left=left, colour=(255, 255, 255)
    )
    read = preprocess_canvas(rgba)
    if read is None:  # Never for a traced digit; said so for the type checker and a broken tracer.
        raise RuntimeError("a drawn digit came out blank")
    return read[..., 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=30)
    parser.add_argument("--shear", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--base-epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drawn", action="store_true", help="draw the slanted digits as strokes")
    arguments = parser.parse_args()

    def styled(image: np.ndarray) -> np.ndarray:
        sheared = slanted(image, shear=arguments.shear)
        return drawn(sheared) if arguments.drawn else sheared

    data = cached_mnist()
    base = train_digits(DigitsConfig(epochs=arguments.base_epochs, seed=arguments.seed), data=data)
    # Test digits the base model never trained on, evenly over the digits, all slanted the same way.
    picked = np.concatenate(
        [
            np.flatnonzero(data.test_labels == digit)[: -(-arguments.examples // 10)]
            for digit in range(10)
        ]
    )[: arguments.examples]
    images = np.stack([styled(data.test_images[index]) for index in picked])
    labels = data.test_labels[picked].astype(np.int64)
    # 1,000 other test digits in the same slant: a steadier measure than the few held-out examples.
    others = np.arange(5_000, 6_000)
    style_images = np.stack([styled(data.test_images[index]) for index in others])
    style_images, style_labels = style_images[..., None], data.test_labels[others].astype(np.int64)
    result = finetune_digits(
        FinetuneConfig(epochs=arguments.epochs, seed=arguments.seed),
        model=base.model,
        images=images,
        labels=labels,
        data=data,
    )
    print(
        json.dumps(
            {
                "personal_examples": arguments.examples,
                "shear": arguments.shear,
                "stand_in": (
                    "MNIST test digits sheared by a fixed amount, drawn as 20-px strokes on the square"
                    if arguments.drawn
                    else "MNIST test digits sheared by a fixed amount, not real drawings"
                ),
                "base_epochs": arguments.base_epochs,
                "finetune_epochs": arguments.epochs,
                "held_out": result.held_out,
                "trained_on": result.trained_on,
                "personal_before": round(result.personal_before, 4),
                "personal_after": round(result.personal_after, 4),
                "mnist_before": round(result.mnist_before, 4),
                "mnist_after": round(result.mnist_after, 4),
                "same_style_1000_before": round(
                    score(base.model, style_images, style_labels).accuracy, 4
                ),
                "same_style_1000_after": round(
                    score(result.model, style_images, style_labels).accuracy, 4
                ),
                "finetune_seconds": round(result.seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
