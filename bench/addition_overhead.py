"""Does Streamlit slow training? The same Addition RNN run (a) bare and (b) through the app's job runner
while a real browser polls the page; prints the ratio of their epoch times as JSON, and where the
polling's CPU goes: the browser's processes and the server's threads, in CPU seconds per run.

The bench waits for the run's end with one cheap DOM query a second: Playwright's own text matcher
(`expect(get_by_text(...))`) walks every node's style and text on each retry and, on these two cores,
cost more renderer CPU than the page's own updates (it is the bench's cost, not a user's).

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

import psutil

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


# The success box the Addition page shows when a run has finished.
FINISHED = "() => document.querySelector('[data-testid=stAlertContentSuccess]') !== null"


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU seconds of a process so far (0 for one that has just gone)."""
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def browser_cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds so far of this process's children other than the server, by Chromium process type."""
    seconds: dict[str, float] = {}
    for child in psutil.Process().children(recursive=True):
        if child.pid == server_pid or server_pid in {parent.pid for parent in child.parents()}:
            continue
        try:
            command = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        kinds = [part.split("=", 1)[1] for part in command if part.startswith("--type=")]
        kind = kinds[0] if kinds else ("playwright driver" if "node" in child.name() else "browser")
        seconds[kind] = seconds.get(kind, 0.0) + cpu_seconds(child)
    return seconds


def app_epoch_seconds(
    config: AdditionConfig, *, workdir: Path
) -> tuple[list[float], int, dict[str, float]]:
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

            server_process = psutil.Process(server.process.pid)
            before = browser_cpu_seconds(server_process.pid)
            server_before = cpu_seconds(server_process)
            page.get_by_role("button", name="Train", exact=True).click()
            page.wait_for_function(FINISHED, polling=1000, timeout=600_000)
            expect(page.get_by_text("Finished")).to_be_visible()
            after = browser_cpu_seconds(server_process.pid)
            cpu = {
                f"browser {kind}": round(seconds - before.get(kind, 0.0), 2)
                for kind, seconds in after.items()
            }
            cpu["server (training included)"] = round(cpu_seconds(server_process) - server_before, 2)
            browser.close()
    finally:
        server.stop()
    record = json.loads(log.read_text().splitlines()[-1])
    return record["epoch_seconds"], polls, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=21, help="21 iterations = 756 batches")
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    # The same TensorFlow thread settings as the server, so both sides train alike.
    configure_tensorflow(workers=default_workers())
    config = AdditionConfig(iterations=arguments.iterations, test_examples=20, seed=1)
    bare_runs, app_runs, frames, cpu_runs = [], [], [], []
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(arguments.repeats):
            # Alternate the two so drift in the machine's speed hits both alike.
            bare_runs.append(bare_epoch_seconds(config))
            seconds, polls, cpu = app_epoch_seconds(config, workdir=Path(workdir))
            app_runs.append(seconds)
            frames.append(polls)
            cpu_runs.append(cpu)
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
                # From the click on Train to the finished message, medians over the app runs.
                "cpu_seconds_per_app_run": {
                    kind: statistics.median(run.get(kind, 0.0) for run in cpu_runs)
                    for kind in sorted({kind for run in cpu_runs for kind in run})
                },
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
