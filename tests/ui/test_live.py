"""The one job poller: a queued run polls its status but not its charts, and starting reruns the page."""

import threading

import pytest

import ui.live as live
from core.addition import AdditionConfig
from core.jobs import JobRunner
from ui.runs import RunRecord

DEADLINE = 10.0


def record(job_id: str, state: str) -> RunRecord:
    return RunRecord(label="#1", job_id=job_id, config=AdditionConfig(), state=state)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["queued"], False),
        (["finished", "queued"], False),
        (["running"], True),
        (["queued", "running"], True),
        (["finished", "cancelled", "failed"], False),
    ],
)
def test_charts_poll_only_while_a_run_trains(states, expected):
    runs = [record(f"job-{index}", state) for index, state in enumerate(states)]
    assert live.charting(runs) is expected


def test_leaving_the_queue_is_seen_only_for_runs_that_were_waiting():
    runs = [record("job-0", "running"), record("job-1", "queued")]
    waiting = live.queued_job_ids(runs)
    assert waiting == {"job-1"}
    assert not live.started_since(waiting, runs)
    runs[0].state = "finished"  # Not one that waited: no rerun for it here.
    assert not live.started_since(waiting, runs)
    runs[1].state = "running"
    assert live.started_since(waiting, runs)
    runs[1].state = "cancelled"  # Cancelled while waiting also leaves the queue.
    assert live.started_since(waiting, runs)


class PollRecorder:
    """Stands in for `poll_ui`: records each fragment's rate and runs it once, as a page run does."""

    def __init__(self):
        self.polls = []

    def __call__(self, step, *, live, every=live.POLL_SECONDS):
        self.polls.append({"step": step, "live": live, "every": every, "first": step()})


@pytest.fixture
def recorder(monkeypatch):
    recording = PollRecorder()
    monkeypatch.setattr(live, "poll_ui", recording)
    return recording


@pytest.fixture
def held():
    """A one-worker runner whose worker is held by a job until `release` is set."""
    runner = JobRunner(max_workers=1, cluster_from_environment=False)
    started, release = threading.Event(), threading.Event()

    def holding(emit, stop):
        started.set()
        release.wait(DEADLINE)

    job = runner.submit(holding, owner="holder", kind="addition")
    assert started.wait(DEADLINE)
    yield runner, job, release
    release.set()
    runner.shutdown()


def test_a_queued_run_polls_its_status_not_its_charts_and_reruns_the_page_when_it_starts(recorder, held):
    runner, _, release = held
    mine = runner.submit(lambda emit, stop: None, owner="mine", kind="addition")
    # As the page makes it at Train: "queued" until the status fragment first drains the job.
    runs = [record(mine.id, "queued")]
    live.live_run_ui(runs, runner, key="test", charts=lambda run: None)
    status, charts = recorder.polls
    assert status["live"] and not status["first"]
    assert not charts["live"], "a queued run's charts must not poll"
    assert status["every"] == live.POLL_SECONDS

    release.set()
    assert mine.wait(DEADLINE)
    # The next status poll sees the job has left the queue: the page reruns once.
    assert status["step"]() is True


def test_a_run_already_training_when_the_page_draws_polls_its_charts_without_a_rerun(recorder, held):
    runner, job, _ = held
    # Just submitted: the record still says "queued", but the job already runs.
    runs = [record(job.id, "queued")]
    live.live_run_ui(runs, runner, key="test", charts=lambda run: None)
    status, charts = recorder.polls
    assert runs[0].state == "running"
    assert charts["live"], "a training run's charts poll"
    assert charts["every"] == live.CHART_POLLS * live.POLL_SECONDS
    # Its later polls do not rerun the page: it never waited while this page was drawn.
    assert status["step"]() is False
