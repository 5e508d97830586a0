"""A classroom on one server: N browser sessions (default 30) each start a short Addition RNN training.

Measures page render (first heading visible in a fresh session) and health-endpoint latency idle vs while
the jobs train, peak server RSS, server threads before and after, and how every job ended. Prints JSON.

    python bench/classroom.py [--sessions 30] [--iterations 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402
from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "samples": len(ordered),
    }


def health_seconds(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=60) as response:
        response.read()
    return time.perf_counter() - started


def render_seconds(browser, url: str) -> float:
    """A fresh session: open the app and wait until the Addition RNN form is on screen."""
    context = browser.new_context()
    page = context.new_page()
    started = time.perf_counter()
    try:
        page.goto(url, timeout=180_000)
        expect(page.get_by_role("button", name="Train")).to_be_visible(timeout=180_000)
        elapsed = time.perf_counter() - started
    except PlaywrightError:
        # Counted as the worst case: the page did not render within three minutes.
        elapsed = float("inf")
    context.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=30)
    arguments = parser.parse_args()
    query = (
        f"?digits=1&training_size=55&hidden_size=16&batch_size=8&iterations={arguments.iterations}"
        "&test_examples=2"
    )
    with tempfile.TemporaryDirectory() as workdir:
        log = Path(workdir) / "jobs.jsonl"
        server = Server(
            store_dir=Path(workdir) / "store",
            extra_env={"LTL_JOB_LOG": str(log)},
            extra_args=["--server.disconnectedSessionTTL", "5"],
        )
        process = psutil.Process(server.process.pid)
        peak_rss = [process.memory_info().rss]
        sampling = threading.Event()

        def sample_rss() -> None:
            while not sampling.wait(0.25):
                peak_rss.append(process.memory_info().rss)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                render_seconds(browser, server.url)  # The first visit imports TensorFlow.
                threads_before = process.num_threads()
                rss_after_first = process.memory_info().rss
                idle_render = [render_seconds(browser, server.url) for _ in range(10)]
                idle_health = [health_seconds(server.url) for _ in range(50)]

                contexts = [browser.new_context() for _ in range(arguments.sessions)]
                pages = [context.new_page() for context in contexts]
                for page in pages:
                    page.goto(server.url + query, timeout=180_000)
                    expect(page.get_by_role("button", name="Train")).to_be_visible(timeout=120_000)
                started = time.perf_counter()
                for page in pages:
                    page.get_by_role("button", name="Train").click()
                queued_seen = sum(
                    page.get_by_text("Queued, position").count() > 0 for page in pages[-5:]
                )
                loaded_render, loaded_health = [], []
                while not log.exists() or len(log.read_text().splitlines()) < arguments.sessions:
                    loaded_health.append(health_seconds(server.url))
                    loaded_render.append(render_seconds(browser, server.url))
                    if time.perf_counter() - started > 1200:
                        break
                all_done_seconds = time.perf_counter() - started
                for context in contexts:
                    context.close()
                browser.close()
        finally:
            # Give Streamlit time past the session TTL to release the closed sessions.
            deadline = time.monotonic() + 30
            while process.num_threads() > threads_before and time.monotonic() < deadline:
                sampling.wait(0.5)
            threads_after = process.num_threads()
            rss_end = process.memory_info().rss
            sampling.set()
            server.stop()
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    states: dict[str, int] = {}
    for record in records:
        states[record["state"]] = states.get(record["state"], 0) + 1
    print(
        json.dumps(
            {
                "sessions": arguments.sessions,
                "iterations_per_job": arguments.iterations,
                "jobs_by_state": states,
                "jobs_lost": arguments.sessions - len(records),
                "seconds_until_all_jobs_ended": round(all_done_seconds, 1),
                "queued_message_seen_on_last_5_pages": queued_seen,
                "max_queued_seconds": max(
                    (record["queued_seconds"] for record in records), default=None
                ),
                "render_idle": percentiles(idle_render),
                "render_loaded": percentiles(loaded_render) if loaded_render else None,
                "health_idle": percentiles(idle_health),
                "health_loaded": percentiles(loaded_health) if loaded_health else None,
                "peak_rss_mb": round(max(peak_rss) / 2**20, 1),
                "rss_after_first_session_mb": round(rss_after_first / 2**20, 1),
                "rss_at_end_mb": round(rss_end / 2**20, 1),
                "threads_before": threads_before,
                "threads_after": threads_after,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
