"""A small classroom: six browser sessions train at once on one server with two workers.

Every job must end finished, none may be lost, the waiting ones must show their queue position, and
the server must keep answering throughout.
"""

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.e2e.server import Server

SESSIONS = 6
TINY = (
    "digits=1&training_size=55&rnn_type=SimpleRNN&hidden_size=8&batch_size=16"
    "&iterations=60&test_examples=2"
)


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


def test_six_sessions_share_two_workers_fairly(classroom, browser):
    server, log = classroom
    contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in range(SESSIONS)]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        page.goto(f"{server.url}/?{TINY}")
        expect(page.get_by_role("button", name="Train")).to_be_visible(timeout=60_000)
    for page in pages:
        page.get_by_role("button", name="Train").click()

    # Two run while the others wait in line, each told where it stands.
    expect(pages[-1].get_by_text(re.compile(r"Queued, position \d of \d"))).to_be_visible(timeout=30_000)
    screenshot(pages[-1], "classroom_queued")
    for page in pages:
        expect(page.get_by_text(re.compile("Finished 60 iteration"))).to_be_visible(timeout=240_000)

    # The server still answers its health check after the burst.
    with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=10) as response:
        assert response.read() == b"ok"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    # Every job ended, none was lost, and none failed.
    assert len(records) == SESSIONS
    assert {record["state"] for record in records} == {"finished"}
    # With two workers, at least four of the six jobs had to wait for a free one.
    assert sum(record["queued_seconds"] > 0.1 for record in records) >= SESSIONS - 2

    for context in contexts:
        context.close()
