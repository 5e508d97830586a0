"""Explain figures: the deletion test of each saliency method over the whole MNIST test set, and the
time the activation and saliency views add to one prediction (median over 200 images): computing them,
and building their charts' specs as the page does (not the browser's drawing). Prints JSON.

With `--drawings` the timed images are drawings as the page's square sends them (core/drawings.py:
MNIST test digits traced and drawn again as strokes on the 280x280 square), read through
`preprocess_canvas`; without it, MNIST test images.

    python bench/explain.py [--images 200] [--drawings]
"""

from __future__ import annotations

import argparse
import copy
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

from core import explain  # noqa: E402
from core.canvas import predict_digit, preprocess_canvas  # noqa: E402
from core.digits import DigitsConfig, normalize_images, train_digits  # noqa: E402
from core.drawings import make_drawing_set  # noqa: E402
from core.mnist import cached_mnist  # noqa: E402
from ui.explain_view import _grid_frame, dense_chart, overlay_frame, overlay_spec  # noqa: E402


def deletion(model, images: np.ndarray, *, method: str) -> dict[str, float]:
    """Mean drop of the predicted digit's probability: top-10% ink vs a random 10%."""
    probabilities = model.predict(images, batch_size=1000, verbose=0)
    predicted = probabilities.argmax(axis=1)
    rows = np.arange(len(predicted))
    started = time.perf_counter()
    maps = explain.saliency_batch(model, images, predicted, method=method)
    seconds = time.perf_counter() - started
    top = explain.remove_ink(images, maps, fraction=0.1)
    random = explain.remove_ink(images, maps, fraction=0.1, rng=np.random.default_rng(0))
    before = probabilities[rows, predicted]
    top_drop = before - model.predict(top, batch_size=1000, verbose=0)[rows, predicted]
    random_drop = before - model.predict(random, batch_size=1000, verbose=0)[rows, predicted]
    return {
        "top10_drop": round(float(top_drop.mean()), 4),
        "random10_drop": round(float(random_drop.mean()), 4),
        "top_beats_random": round(float(np.mean(top_drop > random_drop)), 4),
        "saliency_seconds_10000": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--drawings", action="store_true", help="time canvas drawings, not MNIST")
    arguments = parser.parse_args()
    data = cached_mnist()
    model = train_digits(DigitsConfig(epochs=1, seed=0), data=data).model
    images = normalize_images(data.test_images)
    methods = {method: deletion(model, images, method=method) for method in explain.SALIENCY_METHODS}
    predict_ms, views_ms, charts_ms = [], [], []
    if arguments.drawings:
        drawn = make_drawing_set(data.test_images, data.test_labels, count=arguments.images)
        timed = [preprocess_canvas(drawing) for drawing in drawn.drawings]
    else:
        timed = list(images[: arguments.images])
    explain.layer_activations(model, images[0])  # Builds the probe once per model, as the page does.
    for image in timed:
        started = time.perf_counter()
        prediction = predict_digit(model, image)
        middle = time.perf_counter()
        activations = explain.layer_activations(model, image)
        towards = explain.saliency(model, image, prediction.digit)
        against = explain.saliency(model, image, explain.runner_up(prediction.probabilities))
        computed = time.perf_counter()
        # The page's charts: two overlays, one grid per conv layer, one bar chart per dense layer.
        for salient, title in ((towards, "Why a 1?"), (against, "Why not a 7?")):
            overlay_frame(image, salient)
            copy.deepcopy(overlay_spec(title=title))
        for name, values in activations.items():
            if values.ndim == 3:
                _grid_frame(np.transpose(values, (2, 0, 1)), [str(i) for i in range(values.shape[2])])
            else:
                dense_chart(name, values)[0].to_dict()
        ended = time.perf_counter()
        predict_ms.append((middle - started) * 1000)
        views_ms.append((computed - middle) * 1000)
        charts_ms.append((ended - computed) * 1000)
    print(
        json.dumps(
            {
                "model": "seed CNN, 1 epoch",
                "deletion": methods,
                "images_timed": len(timed),
                "timed_on": "canvas drawings" if arguments.drawings else "MNIST test images",
                "predict_ms_p50": round(statistics.median(predict_ms), 2),
                "explain_views_ms_p50": round(statistics.median(views_ms), 2),
                "explain_views_ms_p95": round(float(np.percentile(views_ms, 95)), 2),
                "explain_charts_ms_p50": round(statistics.median(charts_ms), 2),
                "explain_total_ms_p50": round(
                    statistics.median(np.add(views_ms, charts_ms).tolist()), 2
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
