"""How many of 500 canvas drawings (core/drawings.py: MNIST test digits traced and drawn again as
strokes of several brush widths, sizes, places and colours on the 280-px square) the seed CNN reads
right after the page's default training, with and without augmentation, beside its MNIST test
accuracy. Prints JSON; the last line is one JSON object.

    python bench/drawings.py [--seeds 1 2] [--count 500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MNIST_DIR", str(ROOT.parent / "shared" / "data" / "mnist"))

import numpy as np  # noqa: E402

from core.canvas import preprocess_canvas  # noqa: E402
from core.digits import DigitsConfig, score, train_digits  # noqa: E402
from core.drawings import make_drawing_set  # noqa: E402
from core.jobs import default_workers  # noqa: E402
from core.mnist import cached_mnist  # noqa: E402
from core.runtime import configure_tensorflow  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--count", type=int, default=500)
    arguments = parser.parse_args()
    configure_tensorflow(workers=default_workers())
    data = cached_mnist()
    started = time.perf_counter()
    drawing_set = make_drawing_set(data.test_images, data.test_labels, count=arguments.count)
    generated = time.perf_counter() - started
    timings = []
    images = []
    for drawing in drawing_set.drawings:
        started = time.perf_counter()
        images.append(preprocess_canvas(drawing))
        timings.append((time.perf_counter() - started) * 1000)
    batch = np.stack(images)
    report: dict[str, object] = {
        "drawings": len(batch),
        "generate_seconds": round(generated, 1),
        "preprocess_p50_ms": round(float(np.percentile(timings, 50)), 2),
    }
    for name, augment in (("default", False), ("augment", True)):
        runs = []
        for seed in arguments.seeds:
            result = train_digits(DigitsConfig(augment=augment, seed=seed), data=data)
            runs.append(
                {
                    "seed": seed,
                    "drawings_accuracy": score(result.model, batch, drawing_set.labels).accuracy,
                    "mnist_test_accuracy": round(result.test_accuracy, 4),
                    "train_seconds": round(result.seconds, 1),
                }
            )
            print(json.dumps({name: runs[-1]}), file=sys.stderr, flush=True)
        report[name] = {
            "runs": runs,
            "drawings_median": statistics.median(run["drawings_accuracy"] for run in runs),
            "mnist_median": statistics.median(run["mnist_test_accuracy"] for run in runs),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
