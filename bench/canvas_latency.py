"""Drawing latency on the Digit Recognizer: mouse-up to the new prediction on screen, in Chromium.

Trains a small model in the page, waits until the page reads with the model's checked TFLite copy,
then draws `--strokes` digits idle and as many again while two Addition RNN trainings run in two other
browser sessions. Before each stroke the square is cleared (so every
stroke brings a new Prediction metric); the time runs in the browser, from the pointerup event
(performance.now) to the MutationObserver callback that sees the Prediction metric. Also times the
server's part directly: decoding the PNGs the browser sent, preprocessing and the model call. Prints
progress lines, then one JSON object as the last line.

    python bench/canvas_latency.py [--strokes 100]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MNIST_DIR", str(ROOT.parent / "shared" / "data" / "mnist"))

import numpy as np  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from harness.server import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402

# Two long Addition RNN runs (LSTM, 128 units) keep the server's training threads busy while we draw.
LOAD_LINK = (
    "digits=2&training_size=5000&rnn_type=LSTM&layers=1&hidden_size=128&batch_size=128"
    "&iterations=500&test_examples=5"
)
SQUARE = "[class*='st-key-digits_canvas_']"

# Resolves with milliseconds from the next pointerup to the moment the Prediction metric is on screen.
ARM_TIMER = """() => {
  window.__latency = new Promise((resolve) => {
    let up = null;
    const shown = () => [...document.querySelectorAll('[data-testid="stMetric"]')].some(
      (metric) => metric.innerText.startsWith("Prediction")
        && metric.querySelector('[data-testid="stMetricValue"]')?.innerText.trim() !== "");
    const observer = new MutationObserver(() => {
      if (up !== null && shown()) {
        observer.disconnect();
        resolve(performance.now() - up);
      }
    });
    window.addEventListener("pointerup", () => {
      up = performance.now();
      observer.observe(document.body, { childList: true, subtree: true, characterData: true });
    }, { capture: true, once: true });
  });
}"""


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds, with the sample count."""
    return {
        "p50_ms": round(float(np.percentile(samples, 50)), 2),
        "p95_ms": round(float(np.percentile(samples, 95)), 2),
        "max_ms": round(max(samples), 2),
        "strokes": len(samples),
    }


def clear(page: Page, version: int) -> None:
    """Press Clear and wait for the empty square the new version brings."""
    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_text("Draw a digit on the black square.")).to_be_visible()
    expect(page.locator(f"{SQUARE} canvas[data-version='{version}']")).to_be_visible()


def draw_one(page: Page, stroke: int) -> None:
    """Drag a vertical "1" at a position that varies with `stroke`."""
    box = page.locator(SQUARE).first.bounding_box()
    assert box is not None
    x = box["x"] + box["width"] * (0.3 + 0.04 * (stroke % 10))
    top, bottom = box["y"] + box["height"] * 0.15, box["y"] + box["height"] * 0.85
    page.mouse.move(x, top)
    page.mouse.down()
    page.mouse.move(x, bottom, steps=12)
    page.mouse.up()


def warm_up_until_tflite(page: Page, *, most: int = 300) -> int:
    """Draw (each stroke waits for its prediction) until the page reads with the TFLite copy."""
    fast = page.get_by_text("read by its TFLite copy")
    for stroke in range(1, most + 1):
        clear(page, stroke)
        draw_one(page, stroke)
        expect(page.get_by_test_id("stMetric").filter(has_text="Prediction")).to_be_visible()
        if fast.is_visible():
            return stroke
    raise RuntimeError(f"the page still read with Keras after {most} strokes")


def timed_strokes(page: Page, *, strokes: int, first_version: int) -> tuple[list[float], list[str]]:
    """Clear, draw and time `strokes` times; also returns a few of the PNGs the browser sent."""
    timings, payloads = [], []
    for stroke in range(strokes):
        clear(page, first_version + stroke)
        page.evaluate(ARM_TIMER)
        draw_one(page, stroke)
        timings.append(float(page.evaluate("() => window.__latency")))
        if stroke < 20:
            payloads.append(page.locator(f"{SQUARE} canvas").evaluate("c => c.toDataURL('image/png')"))
    return timings, payloads


def server_side(payloads: list[str], *, calls: int) -> dict[str, object]:
    """Decode, preprocess and model-call times of the browser's own PNGs, called directly in core."""
    from core.canvas import decode_drawing, predict_digit, preprocess_canvas
    from core.digits import DigitsConfig, normalize_images, train_digits
    from core.mnist import cached_mnist
    from core.reader import fast_reader

    data = cached_mnist()
    model = train_digits(DigitsConfig(epochs=1, training_size=1000, seed=0), data=data).model
    reader = fast_reader(model, images=normalize_images(data.test_images))
    timings: dict[str, list[float]] = {name: [] for name in ("decode", "keras", "tflite")}
    for call in range(calls):
        payload = payloads[call % len(payloads)]
        started = time.perf_counter()
        pixels = decode_drawing(payload)
        decoded = time.perf_counter()
        image = preprocess_canvas(pixels)
        assert image is not None
        predict_digit(model, image)
        keras_done = time.perf_counter()
        image = preprocess_canvas(pixels)
        assert image is not None
        reader.predict(image)
        tflite_done = time.perf_counter()
        timings["decode"].append((decoded - started) * 1000)
        timings["keras"].append((keras_done - decoded) * 1000)
        timings["tflite"].append((tflite_done - keras_done) * 1000)
    warm = {name: values[20:] for name, values in timings.items()}  # The first calls trace the model.
    return {
        # What the page runs for each stroke once the model's copy is checked: preprocess + TFLite call.
        "p50_ms": round(float(np.median(warm["tflite"])), 3),
        "p95_ms": round(float(np.percentile(warm["tflite"], 95)), 3),
        # Before that (the first seconds after a model is chosen): preprocess + Keras call.
        "preprocess_keras_p50_ms": round(float(np.median(warm["keras"])), 3),
        "decode_png_p50_ms": round(float(np.median(warm["decode"])), 3),
        "tflite_reader_runtime": reader.runtime,
        "payload_bytes_p50": int(np.median([len(payload) for payload in payloads])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strokes", type=int, default=100)
    parser.add_argument("--server-calls", type=int, default=500)
    options = parser.parse_args()
    results: dict[str, object] = {"load_average_start": os.getloadavg()}
    server = Server(store_dir=Path(tempfile.mkdtemp(prefix="canvas-latency-")))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            drawing = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            drawing.goto(f"{server.url}/digits")
            expect(drawing.get_by_role("heading", name="Digit Recognizer")).to_be_visible(timeout=60_000)
            drawing.get_by_label("Training images (0 = all)").fill("1000")
            drawing.get_by_label("Epochs").fill("1")
            drawing.get_by_role("button", name="Train", exact=True).click()
            expect(drawing.get_by_text("Test accuracy")).to_be_visible(timeout=180_000)
            drawing.locator(SQUARE).first.scroll_into_view_if_needed()
            # The first drawing starts the model's TFLite copy; the page reads with it from the first
            # drawing after the copy has passed its check. Warm-up strokes until then are not timed.
            warm_up = warm_up_until_tflite(drawing)
            results["warm_up_strokes_until_tflite"] = warm_up
            print("model trained; timing idle strokes", file=sys.stderr, flush=True)
            idle, payloads = timed_strokes(drawing, strokes=options.strokes, first_version=warm_up + 1)
            results["idle"] = percentiles(idle)
            results["load_average_idle"] = os.getloadavg()

            trainers = []
            for _ in range(2):
                trainer = browser.new_context().new_page()
                trainer.goto(f"{server.url}/?{LOAD_LINK}")
                trainer.get_by_role("button", name="Train", exact=True).click()
                expect(trainer.get_by_text(re.compile(r"Iteration \d+ of 500"))).to_be_visible(
                    timeout=120_000
                )
                trainers.append(trainer)
            print("two trainings running; timing strokes under load", file=sys.stderr, flush=True)
            loaded, _ = timed_strokes(
                drawing, strokes=options.strokes, first_version=warm_up + 1 + options.strokes
            )
            # Both runs must still be training at the end, or part of the sample was idle.
            still = [
                trainer.get_by_text(re.compile(r"Iteration \d+ of 500")).is_visible()
                for trainer in trainers
            ]
            results["training"] = {**percentiles(loaded), "both_still_training_at_end": all(still)}
            results["load_average_training"] = os.getloadavg()
            browser.close()
    finally:
        server.stop()
    print("timing the server's part directly", file=sys.stderr, flush=True)
    results["server"] = server_side(payloads, calls=options.server_calls)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
