"""Does Streamlit slow training? The same Addition RNN run (a) bare and (b) through the app's job runner
while a real browser polls the page; prints the ratio of their epoch times as JSON.

    python bench/addition_overhead.py [--iterations 21] [--repeats 5]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from core.addition import AdditionConfig, train_addition  # noqa: E402
from core.jobs import default_workers  # noqa: E402
from core.runtime import configure_tensorflow  # noqa: E402
from harness.server import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402
from ui.links import query_from_config  # noqa: E402


def bare_epoch_seconds(config: AdditionConfig) -> list[float]:
    """Epoch times of `train_addition` called directly: no runner, no Streamlit."""
    result = train_addition(config)
    return [event.seconds for event in result.history]


def app_epoch_seconds(config: AdditionConfig, *, workdir: Path) -> tuple[list[float], int]:
    """Epoch times of the same run started from the page in Chromium, which polls until it ends."""
    log = workdir / "jobs.jsonl"
    log.unlink(missing_ok=True)
    server = Server(
        store_dir=workdir / "store",
        extra_env={"LTL_JOB_LOG": str(log), "LTL_POLL_SECONDS": os.environ.get("LTL_POLL_SECONDS", "2")},
    )
    polls = 0
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def count(message) -> None:
                nonlocal polls
                polls += 1

            # Count the browser's messages to the server: each poll of the page is one or more.
            page.on("websocket", lambda socket: socket.on("framereceived", count))
            query = "&".join(f"{name}={value}" for name, value in query_from_config(config).items())
            page.goto(f"{server.url}/?{query}")

            page.get_by_role("button", name="Train", exact=True).click()
            expect(page.get_by_text("Finished")).to_be_visible(timeout=600_000)
            browser.close()
    finally:
        server.stop()
    record = json.loads(log.read_text().splitlines()[-1])
    return record["epoch_seconds"], polls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=21, help="21 iterations = 756 batches")
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    # The same TensorFlow thread settings as the server, so both sides train alike.
    configure_tensorflow(workers=default_workers())
    config = AdditionConfig(iterations=arguments.iterations, test_examples=20, seed=1)
    bare_runs, app_runs, frames = [], [], []
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(arguments.repeats):
            # Alternate the two so drift in the machine's speed hits both alike.
            bare_runs.append(bare_epoch_seconds(config))
            seconds, polls = app_epoch_seconds(config, workdir=Path(workdir))
            app_runs.append(seconds)
            frames.append(polls)
    # The first epoch includes tracing the training function; the steady state is what polling affects.
    bare_totals = [sum(run[1:]) for run in bare_runs]
    app_totals = [sum(run[1:]) for run in app_runs]
    bare = statistics.median(bare_totals)
    app = statistics.median(app_totals)
    # This VM's speed drifts by +-20% from run to run; pairs run back to back, and the fastest run of
    # each side, are the steadiest comparisons.
    pair_ratios = [
        round(one_app / one_bare, 3) for one_bare, one_app in zip(bare_totals, app_totals, strict=True)
    ]
    batches_per_epoch = -(-(config.training_size - config.validation_size) // config.batch_size)
    print(
        json.dumps(
            {
                "config": query_from_config(config),
                "batches": batches_per_epoch * config.iterations,
                "bare_seconds": round(bare, 3),
                "app_seconds": round(app, 3),
                "ratio_app_over_bare": round(app / bare, 3),
                "ratio_of_fastest_runs": round(min(app_totals) / min(bare_totals), 3),
                "median_pair_ratio": statistics.median(pair_ratios),
                "pair_ratios": pair_ratios,
                "bare_seconds_per_iteration": round(bare / (config.iterations - 1), 4),
                "app_seconds_per_iteration": round(app / (config.iterations - 1), 4),
                "server_messages_received_by_browser": frames,
                "cpu_count": os.cpu_count(),
                "workers": default_workers(),
                "poll_seconds": float(os.environ.get("LTL_POLL_SECONDS", "2")),
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
