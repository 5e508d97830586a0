"""A small classroom: six browser sessions train at once on one server with two workers.

Every job must end finished, none may be lost, the waiting ones must show their queue position, the
server must keep answering throughout, and once the tabs close its threads and memory come back down.
"""

import json
import re
import urllib.request

import psutil
import pytest
from playwright.sync_api import expect

from harness.server import Server
from harness.threads import native_thread_names
from tests.e2e.conftest import screenshot, wait_until

# Every test here drives the app in headless Chromium: `-m "not e2e"` leaves them out.
pytestmark = pytest.mark.e2e

SESSIONS = 6
# Long enough that four of the six jobs wait for a worker, short enough to keep the suite quick.
ITERATIONS = 20
TINY = (
    "digits=1&training_size=55&rnn_type=SimpleRNN&hidden_size=8&batch_size=16"
    f"&iterations={ITERATIONS}&test_examples=2"
)
FINISHED = re.compile(f"Finished {ITERATIONS} iteration")


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("classroom")
    log = workdir / "jobs.jsonl"
    running = Server(
        store_dir=workdir / "store",
        extra_env={"LTL_MAX_JOBS": "2", "LTL_JOB_LOG": str(log), "LTL_POLL_SECONDS": "1"},
    )
    yield running, log
    running.stop()
    assert "Traceback" not in "".join(running.output), "".join(running.output)


def open_session(browser, url):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(url)
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_visible(timeout=60_000)
    return context, page


def test_six_sessions_share_two_workers_fairly_and_leave_nothing_behind(classroom, browser):
    server, log = classroom
    process = psutil.Process(server.process.pid)

    # The first session imports TensorFlow and trains once; the baseline is taken after it has gone.
    context, page = open_session(browser, f"{server.url}/?{TINY}")
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text(FINISHED)).to_be_visible(timeout=120_000)
    context.close()
    baseline_threads = process.num_threads()
    baseline_native = native_thread_names(process.pid)
    baseline_rss = process.memory_info().rss

    sessions = [open_session(browser, f"{server.url}/?{TINY}") for _ in range(SESSIONS)]
    pages = [page for _, page in sessions]
    for page in pages:
        page.get_by_role("button", name="Train", exact=True).click()

    # Two run while the others wait in line, each told where it stands and able to leave.
    expect(pages[-1].get_by_text(re.compile(r"Queued, position \d of \d"))).to_be_visible(timeout=30_000)
    expect(pages[-1].get_by_role("button", name="Cancel")).to_be_visible()
    screenshot(pages[-1], "classroom_queued")
    for page in pages:
        expect(page.get_by_text(FINISHED)).to_be_visible(timeout=240_000)

    # The server still answers its health check after the burst.
    with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=10) as response:
        assert response.read() == b"ok"
    records = [json.loads(line) for line in log.read_text().splitlines()][1:]
    # Every job ended, none was lost, and none failed.
    assert len(records) == SESSIONS
    assert {record["state"] for record in records} == {"finished"}
    # With two workers, at least four of the six jobs had to wait for a free one.
    assert sum(record["queued_seconds"] > 0.1 for record in records) >= SESSIONS - 2

    for context, _ in sessions:
        context.close()
    # TensorFlow's threads go once the released models are collected: the sessions closed together
    # share one full collection, at most LTL_GC_SECONDS (30 s) after the previous one.
    assert wait_until(lambda: native_thread_names(process.pid) == baseline_native, timeout=60)

    # The web server's file-serving pool keeps up to 28 threads from the burst and retires those idle
    # for 10 s whenever it is next used, so visit until it has.
    def visit_and_count() -> bool:
        with urllib.request.urlopen(f"{server.url}/", timeout=10) as response:
            response.read()
        return process.num_threads() <= baseline_threads

    assert wait_until(visit_and_count, timeout=60, interval=1)
    assert process.memory_info().rss <= 1.10 * baseline_rss
