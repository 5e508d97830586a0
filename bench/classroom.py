"""A classroom on one server: N browser sessions (default 30) each start a short Addition RNN training.

Measures page render (a fresh session until the form's Train button is visible) and health-endpoint
latency idle vs while the jobs train, peak server RSS, server threads before and after, and how every job
ended. "After" is measured twice: once the pages have closed, and again after one later visitor (the web
server's file-serving thread pool only retires its idle threads when it is next used). Prints JSON.

    python bench/classroom.py [--sessions 30] [--iterations 30] [--class-board] [--dask]

With `--class-board` every session joins one class, a teacher tab keeps the class board open (it polls
itself), and fresh loads of the board are timed alongside the page renders (`board_render_*`); the
teacher's tab is saved as bench/results/class_board_live.png while the class trains and as
class_board_end.png once every job has ended.

With `--dask` the jobs train on a loopback Dask cluster of two single-thread workers at nice 10
(`core.local_cluster`, `LTL_JOB_BACKEND=dask`) instead of the server's own threads, so the server
process keeps its GIL and cores for the pages.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
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

from core.classboard import ClassBoard  # noqa: E402
from core.local_cluster import LoopbackCluster  # noqa: E402
from harness.server import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402
from harness.threads import thread_names  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


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
        expect(page.get_by_role("button", name="Train", exact=True)).to_be_visible(timeout=180_000)
        elapsed = time.perf_counter() - started
    except PlaywrightError:
        # Counted as the worst case: the page did not render within three minutes.
        elapsed = float("inf")
    context.close()
    return elapsed


def board_render_seconds(browser, url: str, *, code: str) -> float:
    """A fresh session: open the class board and wait until its run count is on screen."""
    context = browser.new_context()
    page = context.new_page()
    started = time.perf_counter()
    try:
        page.goto(f"{url}/class?class={code}", timeout=180_000)
        expect(page.get_by_text(re.compile(r"\d+ runs: "))).to_be_visible(timeout=180_000)
        elapsed = time.perf_counter() - started
    except PlaywrightError:
        elapsed = float("inf")  # Counted as the worst case, as for the page renders.
    context.close()
    return elapsed


def queue_shown(page) -> bool:
    """Whether the page tells its student where they stand in the queue (within 30 s)."""
    try:
        expect(page.get_by_text("Queued, position")).to_be_visible(timeout=30_000)
    except AssertionError:
        return False
    return True


def cpu_seconds_by_part(server_pid: int) -> dict[str, float]:
    """CPU seconds so far of the server, the browser's processes and (with --dask) the cluster's."""
    parts = {"server": 0.0, "browser": 0.0, "cluster": 0.0}
    # The server is this process's child too, so it is counted from there, once.
    for process in psutil.Process().children(recursive=True):
        try:
            times = process.cpu_times()
            command = " ".join(process.cmdline())
        except psutil.NoSuchProcess:
            continue
        if process.pid == server_pid:
            part = "server"
        elif "distributed.cli" in command:
            part = "cluster"
        elif "chrom" in command or "node" in process.name():
            part = "browser"
        else:
            continue
        parts[part] += times.user + times.system
    return parts


def first_session(browser, url: str, *, iterations: int) -> None:
    """One student: open the page, train to the end, close the tab."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url, timeout=180_000)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text(f"Finished {iterations} iteration")).to_be_visible(timeout=300_000)
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument(
        "--class-board", action="store_true", help="All sessions in one class; a teacher tab polls."
    )
    parser.add_argument(
        "--dask", action="store_true", help="Train on a loopback Dask cluster of two workers."
    )
    arguments = parser.parse_args()
    query = (
        f"?digits=1&training_size=55&hidden_size=16&batch_size=8&iterations={arguments.iterations}"
        "&test_examples=2"
    )
    with tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as stack:
        log = Path(workdir) / "jobs.jsonl"
        environment = {"LTL_JOB_LOG": str(log)}
        if arguments.dask:
            cluster = stack.enter_context(LoopbackCluster(workers=2))
            environment |= {"LTL_JOB_BACKEND": "dask", "LTL_DASK_SCHEDULER": cluster.address}
        server = Server(
            store_dir=Path(workdir) / "store",
            extra_env=environment,
            extra_args=["--server.disconnectedSessionTTL", "5"],
        )
        code = None
        if arguments.class_board:
            # The same SQLite file the server uses (WAL allows both processes at once).
            with ClassBoard(Path(workdir) / "store" / "classboard.sqlite3") as board:
                code = board.create_class()
            query += f"&class={code}"
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
                # The first session imports TensorFlow and trains once; the baseline is taken after it.
                first_session(browser, server.url + query, iterations=arguments.iterations)
                sampling.wait(12)
                render_seconds(browser, server.url)
                sampling.wait(5)
                threads_before = process.num_threads()
                names_before = thread_names(process.pid)
                rss_after_first = process.memory_info().rss
                idle_render = [render_seconds(browser, server.url) for _ in range(10)]
                idle_health = [health_seconds(server.url) for _ in range(50)]

                teacher = None
                if code is not None:
                    # Tall, so the screenshots show the whole board (the app scrolls inside the page).
                    teacher = browser.new_context(viewport={"width": 1400, "height": 2200}).new_page()
                    teacher.goto(f"{server.url}/class?class={code}", timeout=180_000)
                board_loaded: list[float] = []
                contexts = [browser.new_context() for _ in range(arguments.sessions)]
                pages = [context.new_page() for context in contexts]
                for page in pages:
                    page.goto(server.url + query, timeout=180_000)
                    expect(page.get_by_role("button", name="Train", exact=True)).to_be_visible(
                        timeout=120_000
                    )
                started = time.perf_counter()
                cpu_before = cpu_seconds_by_part(server.process.pid)
                for page in pages:
                    page.get_by_role("button", name="Train", exact=True).click()
                queued_seen = sum(queue_shown(page) for page in pages[-5:])
                if teacher is not None:
                    RESULTS.mkdir(exist_ok=True)
                    teacher.screenshot(path=str(RESULTS / "class_board_live.png"), full_page=True)
                loaded_render, loaded_health = [], []
                probing = threading.Event()

                def probe_health() -> None:
                    while not probing.wait(0.5):
                        loaded_health.append(health_seconds(server.url))

                prober = threading.Thread(target=probe_health, daemon=True)
                prober.start()
                while not log.exists() or len(log.read_text().splitlines()) < arguments.sessions + 1:
                    loaded_render.append(render_seconds(browser, server.url))
                    if code is not None:
                        board_loaded.append(board_render_seconds(browser, server.url, code=code))
                    if time.perf_counter() - started > 1200:
                        break
                probing.set()
                prober.join()
                all_done_seconds = time.perf_counter() - started
                cpu_after = cpu_seconds_by_part(server.process.pid)
                cpu_loaded = {part: round(cpu_after[part] - cpu_before[part], 1) for part in cpu_after}
                board_summary = None
                if teacher is not None:
                    # The teacher's open tab has followed the class by itself to the end.
                    summary = teacher.get_by_text(re.compile(r"\d+ runs: "))
                    expect(summary).to_contain_text(f"{arguments.sessions + 1} runs", timeout=60_000)
                    board_summary = summary.inner_text()
                    teacher.screenshot(path=str(RESULTS / "class_board_end.png"), full_page=True)
                    teacher.context.close()
                for context in contexts:
                    context.close()
                # Closed tabs release their sessions at once (jobs, models); give stragglers time.
                deadline = time.monotonic() + 30
                while process.num_threads() > threads_before and time.monotonic() < deadline:
                    sampling.wait(0.5)
                threads_after_close = process.num_threads()
                names_after_close = thread_names(process.pid)
                # The file-serving pool retires threads idle for 10 s when next used: one later visit.
                sampling.wait(12)
                render_seconds(browser, server.url)
                sampling.wait(8)
                browser.close()
        finally:
            threads_after = process.num_threads()
            names_after = thread_names(process.pid)
            rss_end = process.memory_info().rss
            sampling.set()
            server.stop()
        lines = log.read_text().splitlines() if log.exists() else []
        # The first line is the first session's job, ended before the class arrived.
        records = [json.loads(line) for line in lines[1:]]
        board_states: dict[str, int] = {}
        if code is not None:
            with ClassBoard(Path(workdir) / "store" / "classboard.sqlite3") as board:
                read = board.board(code)
            for run in read.runs if read is not None else ():
                board_states[run.state] = board_states.get(run.state, 0) + 1
    states: dict[str, int] = {}
    for record in records:
        states[record["state"]] = states.get(record["state"], 0) + 1
    print(
        json.dumps(
            {
                "sessions": arguments.sessions,
                "backend": "dask" if arguments.dask else "threads",
                "iterations_per_job": arguments.iterations,
                "jobs_by_state": states,
                "jobs_lost": arguments.sessions - len(records),
                "seconds_until_all_jobs_ended": round(all_done_seconds, 1),
                "queued_message_seen_on_last_5_pages": queued_seen,
                "max_queued_seconds": max(
                    (record["queued_seconds"] for record in records), default=None
                ),
                # From the first Train click until every job had ended, in CPU seconds.
                "cpu_seconds_while_loaded": cpu_loaded,
                "render_idle": percentiles(idle_render),
                "render_loaded": percentiles(loaded_render) if loaded_render else None,
                "health_idle": percentiles(idle_health),
                "health_loaded": percentiles(loaded_health) if loaded_health else None,
                "class_board": code is not None,
                "board_runs_by_state": board_states if code is not None else None,
                "board_summary_in_teacher_tab": board_summary,
                "board_render_loaded": percentiles(board_loaded) if board_loaded else None,
                "peak_rss_mb": round(max(peak_rss) / 2**20, 1),
                "rss_after_first_session_mb": round(rss_after_first / 2**20, 1),
                "rss_at_end_mb": round(rss_end / 2**20, 1),
                "rss_end_over_after_first": round(rss_end / rss_after_first, 3),
                "threads_before": threads_before,
                "threads_after_pages_closed": threads_after_close,
                "threads_after_next_visit": threads_after,
                "thread_names_before": names_before,
                "thread_names_after_pages_closed": names_after_close,
                "thread_names_after_next_visit": names_after,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
