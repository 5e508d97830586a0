"""Digit Recognizer figures: seed CNN epoch time bare vs through the job runner, test accuracy after
5 epochs (seed and strong+augmentation), and canvas-to-prediction latency. Prints JSON.

    python bench/digits.py [--epochs 5] [--skip-strong]
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

from core.canvas import predict_digit, preprocess_canvas  # noqa: E402
from core.digits import DigitsConfig, train_digits  # noqa: E402
from core.jobs import JobRunner, default_workers  # noqa: E402
from core.mnist import cached_mnist  # noqa: E402
from core.runtime import configure_tensorflow  # noqa: E402


def summarize(result, *, samples: int) -> dict[str, float]:
    """Epoch time (first epoch excluded: it traces the graph), samples/s and test accuracy."""
    steady = [event.seconds for event in result.history[1:]] or [result.history[0].seconds]
    epoch_seconds = statistics.median(steady)
    return {
        "epoch_seconds": round(epoch_seconds, 3),
        "samples_per_second": round(samples / epoch_seconds),
        "test_accuracy": round(result.test_accuracy, 4),
        "total_seconds": round(result.seconds, 1),
    }


def canvas_latency(model, data, *, calls: int = 300) -> dict[str, float]:
    """p50/p95 milliseconds from a 280x280 RGBA drawing to a prediction."""
    rng = np.random.default_rng(0)
    timings = []
    for call in range(calls):
        digit = data.test_images[call % len(data.test_images)]
        # A test digit drawn large and off-centre on a transparent 280x280 canvas, as the page gets it.
        canvas = np.zeros((280, 280, 4), dtype=np.uint8)
        big = np.kron(digit, np.ones((8, 8), dtype=np.uint8))
        top, left = rng.integers(0, 280 - 224, size=2)
        canvas[top : top + 224, left : left + 224, :3] = 255
        canvas[top : top + 224, left : left + 224, 3] = big
        started = time.perf_counter()
        image = preprocess_canvas(canvas)
        predict_digit(model, image)
        timings.append((time.perf_counter() - started) * 1000)
    timings = timings[20:]  # Warm-up calls build the model's call graph.
    return {
        "p50_ms": round(float(np.percentile(timings, 50)), 2),
        "p95_ms": round(float(np.percentile(timings, 95)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--skip-strong", action="store_true")
    arguments = parser.parse_args()
    configure_tensorflow(workers=default_workers())
    data = cached_mnist()
    samples = len(data.train_images)
    config = DigitsConfig(epochs=arguments.epochs, seed=1)

    bare = train_digits(config, data=data)
    runner = JobRunner(max_workers=default_workers())
    job = runner.submit(
        lambda emit, stop: train_digits(config, on_event=emit, stop=stop, data=data),
        owner="bench",
        kind="digits",
    )
    job.wait()
    through_runner = job.result
    runner.shutdown()
    report = {
        "train_images": samples,
        "test_images": len(data.test_images),
        "epochs": arguments.epochs,
        "seed_cnn_bare": summarize(bare, samples=samples),
        "seed_cnn_through_runner": summarize(through_runner, samples=samples),
        "canvas_latency": canvas_latency(bare.model, data),
    }
    report["runner_over_bare_epoch_time"] = round(
        report["seed_cnn_through_runner"]["epoch_seconds"] / report["seed_cnn_bare"]["epoch_seconds"], 3
    )
    if not arguments.skip_strong:
        strong = train_digits(
            DigitsConfig(model="strong", epochs=arguments.epochs, augment=True, seed=1), data=data
        )
        report["strong_cnn_augmented"] = summarize(strong, samples=samples)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
