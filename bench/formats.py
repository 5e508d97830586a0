"""Which format should a trained digit model ship in? Trains the seed CNN for 5 epochs on all of MNIST,
saves it (and its TFLite variants) in a throwaway ModelStore, then prints one JSON object: per format its
size, cold load (fresh process), warm load (in this process), single-sample latency, test accuracy on all
10,000 test images and agreement with the float32 Keras model, plus the ratios that decide the choice.

    python bench/formats.py [--epochs 5] [--cold-repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY_ROOT))
# The shared MNIST copy, unless the caller points elsewhere; set before core.mnist is imported.
os.environ.setdefault("MNIST_DIR", str(REPOSITORY_ROOT.parent / "shared" / "data" / "mnist"))

from core.digits import DigitsConfig, normalize_images, train_digits  # noqa: E402
from core.mnist import cached_mnist  # noqa: E402
from core.modelstore.cache import ModelCache  # noqa: E402
from core.modelstore.compare import compare_formats  # noqa: E402
from core.modelstore.convert import convert_to_tflite  # noqa: E402
from core.modelstore.formats import QUANTIZATIONS  # noqa: E402
from core.modelstore.loading import load_cached  # noqa: E402
from core.modelstore.store import ModelStore  # noqa: E402
from core.runtime import configure_tensorflow  # noqa: E402

WARM_REPEATS = 10_000
LATENCY_CALLS = 500
# Targets from the brief: what "fast enough" and "small enough without losing accuracy" mean here.
TARGET_WARM_LOAD_MS = 1.0
TARGET_KERAS_COLD_LOAD_SECONDS = 0.3
TARGET_INT8_SIZE_RATIO = 3.5
TARGET_INT8_ACCURACY_POINTS = 0.5


def store_warm_load_ms(store: ModelStore, model_id: str) -> float:
    """Median milliseconds of a cache hit through `load_cached`, which also asks the SQLite index."""
    cache = ModelCache(1 << 30)
    load_cached(store, cache, model_id)
    timings = []
    for _ in range(WARM_REPEATS // 10):
        started = time.perf_counter()
        load_cached(store, cache, model_id)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def main() -> None:
    """Train, save, measure and print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--cold-repeats", type=int, default=3)
    options = parser.parse_args()
    configure_tensorflow(workers=1)

    data = cached_mnist()
    result = train_digits(DigitsConfig(epochs=options.epochs, seed=0), data=data)
    model = result.model
    images, labels = normalize_images(data.test_images), data.test_labels.astype("int64")

    with (
        tempfile.TemporaryDirectory(prefix="bench-formats-") as temporary,
        ModelStore(temporary) as store,
    ):
        common = {"task": "digits", "config": {"epochs": options.epochs}, "metrics": {}}
        original = store.save_keras(model, name="seed cnn", **common)
        stored_sizes = {"keras": original.size_bytes}
        for quantization in QUANTIZATIONS:
            record = store.save_bytes(
                convert_to_tflite(model, quantization=quantization),
                name=f"seed cnn {quantization}",
                format=f"tflite-{quantization}",
                parent_id=original.id,
                **common,
            )
            stored_sizes[record.format] = record.size_bytes
        warm_through_store_ms = store_warm_load_ms(store, original.id)

    reports = compare_formats(
        model,
        task="digits",
        evaluation=(images, labels),
        samples=len(images),
        latency_calls=LATENCY_CALLS,
        warm_repeats=3,
        cold_repeats=options.cold_repeats,
    )
    by_format = {report.format: report for report in reports}
    keras_report, float32, int8 = (
        by_format[name] for name in ("keras", "tflite-float32", "tflite-int8")
    )
    int8_size_ratio = float32.size_bytes / int8.size_bytes
    int8_points = (int8.accuracy - float32.accuracy) * 100
    output = {
        "model": "seed CNN (53,866 parameters)",
        "epochs": options.epochs,
        "training_seconds": round(result.seconds, 1),
        "test_images": len(images),
        "cold_load_repeats": options.cold_repeats,
        "formats": {
            report.format: {
                "size_bytes": report.size_bytes,
                "stored_size_bytes": stored_sizes.get(report.format),
                "cold_load_ms": round(report.cold_load_seconds * 1000, 2),
                "warm_load_ms": round(report.warm_load_seconds * 1000, 3),
                "latency_ms_p50": round(report.latency_ms_per_sample, 4),
                "latency_ms_p95": round(report.latency_ms_p95, 4),
                "test_accuracy": report.accuracy,
                "agreement_with_float32_keras": report.agreement,
                "accuracy_delta_points_vs_keras": round(
                    (report.accuracy - keras_report.accuracy) * 100, 2
                ),
                "notes": report.notes,
            }
            for report in reports
        },
        "warm_load_through_store_ms": round(warm_through_store_ms, 4),
        "ratios": {
            "tflite_float32_over_int8_size": round(int8_size_ratio, 2),
            "tflite_float32_over_float16_size": round(
                float32.size_bytes / by_format["tflite-float16"].size_bytes, 2
            ),
            "keras_over_tflite_int8_size": round(keras_report.size_bytes / int8.size_bytes, 2),
            "int8_accuracy_delta_points_vs_float32": round(int8_points, 2),
        },
        "targets_met": {
            f"warm_load_through_store <= {TARGET_WARM_LOAD_MS} ms": warm_through_store_ms
            <= TARGET_WARM_LOAD_MS,
            f"keras cold_load <= {TARGET_KERAS_COLD_LOAD_SECONDS} s": keras_report.cold_load_seconds
            <= TARGET_KERAS_COLD_LOAD_SECONDS,
            f"int8 >= {TARGET_INT8_SIZE_RATIO}x smaller than float32": int8_size_ratio
            >= TARGET_INT8_SIZE_RATIO,
            f"int8 accuracy within {TARGET_INT8_ACCURACY_POINTS} points": abs(int8_points)
            <= TARGET_INT8_ACCURACY_POINTS,
        },
    }
    print(json.dumps(output, indent=2))


if __name__ == "__main__":
    main()
