"""Tests of the job runner with fake jobs (no Keras): concurrency, queueing, cancel, failure."""

import threading

import pytest

from core.jobs import JobRunner, JobState, QueueFullError, default_workers

DEADLINE = 10.0


class Gate:
    """A fake job that reports it started, then waits until released or asked to stop."""

    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, emit, stop):
        self.started.set()
        emit("started")
        while not (self.release.is_set() or stop.is_set()):
            self.release.wait(0.01)
        return "done"


@pytest.fixture
def runner():
    runner = JobRunner(max_workers=2, max_queued=3)
    yield runner
    runner.shutdown()


def test_concurrency_is_bounded_and_queue_is_fifo(runner):
    gates = [Gate() for _ in range(5)]
    jobs = [runner.submit(gate, owner=f"s{index}", kind="test") for index, gate in enumerate(gates)]
    assert gates[0].started.wait(DEADLINE) and gates[1].started.wait(DEADLINE)
    # Two workers: two running, three waiting in submission order.
    assert [job.state for job in jobs] == [JobState.RUNNING] * 2 + [JobState.QUEUED] * 3
    assert [runner.queue_position(job) for job in jobs] == [None, None, (1, 3), (2, 3), (3, 3)]
    assert runner.estimated_start(jobs[2]) is not None
    gates[0].release.set()
    # The first waiting job takes the freed worker, not a later one.
    assert gates[2].started.wait(DEADLINE)
    assert jobs[0].wait(DEADLINE) and jobs[0].state is JobState.FINISHED and jobs[0].result == "done"
    assert not gates[3].started.is_set()
    assert [runner.queue_position(job) for job in jobs[3:]] == [(1, 2), (2, 2)]
    for gate in gates:
        gate.release.set()
    assert all(job.wait(DEADLINE) for job in jobs)
    assert all(job.state is JobState.FINISHED for job in jobs)


def test_cancel_a_queued_job_never_runs_it(runner):
    blockers = [Gate(), Gate()]
    for index, gate in enumerate(blockers):
        runner.submit(gate, owner=f"b{index}", kind="test")
    waiting_gate = Gate()
    waiting = runner.submit(waiting_gate, owner="w", kind="test")
    waiting.cancel()
    assert waiting.state is JobState.CANCELLED
    assert runner.queue_position(waiting) is None
    for gate in blockers:
        gate.release.set()
    assert waiting.wait(DEADLINE)
    assert not waiting_gate.started.is_set()


def test_cancel_a_running_job_sets_its_stop_event(runner):
    gate = Gate()
    job = runner.submit(gate, owner="s", kind="test")
    assert gate.started.wait(DEADLINE)
    job.cancel()
    assert job.wait(DEADLINE)
    assert job.state is JobState.CANCELLED
    assert job.drain() == ["started"]


def test_failure_becomes_a_failed_job_and_the_worker_survives(runner):
    def broken(emit, stop):
        raise RuntimeError("the loss exploded")

    failed = runner.submit(broken, owner="s", kind="test")
    assert failed.wait(DEADLINE)
    assert failed.state is JobState.FAILED
    assert failed.error == "RuntimeError: the loss exploded"
    # The same workers still run new jobs.
    results = [runner.submit(lambda emit, stop: 42, owner=f"o{i}", kind="test") for i in range(4)]
    assert all(job.wait(DEADLINE) and job.result == 42 for job in results)


def test_a_new_job_of_the_same_page_replaces_the_old_one(runner):
    first_gate = Gate()
    first = runner.submit(first_gate, owner="s", kind="addition")
    assert first_gate.started.wait(DEADLINE)
    other_page = runner.submit(Gate(), owner="s", kind="digits")
    second = runner.submit(lambda emit, stop: "second", owner="s", kind="addition")
    assert first.wait(DEADLINE) and first.state is JobState.CANCELLED
    assert second.wait(DEADLINE) and second.result == "second"
    # Another page's job of the same session is left alone.
    assert other_page.state is JobState.RUNNING
    other_page.cancel()


def test_queue_limit_refuses_extra_work_with_a_message(runner):
    gates = [Gate() for _ in range(5)]
    for index, gate in enumerate(gates):
        runner.submit(gate, owner=f"s{index}", kind="test")
    with pytest.raises(QueueFullError, match="The server is busy"):
        runner.submit(Gate(), owner="late", kind="test")
    for gate in gates:
        gate.release.set()


def test_closing_a_session_cancels_and_forgets_its_jobs(runner):
    gate = Gate()
    mine = runner.submit(gate, owner="gone", kind="test")
    queued = [runner.submit(Gate(), owner="gone", kind=f"k{i}") for i in range(2)]
    other = runner.submit(lambda emit, stop: 1, owner="stays", kind="test")
    assert gate.started.wait(DEADLINE)
    assert runner.cancel_owner("gone") == 3
    assert mine.wait(DEADLINE) and mine.state is JobState.CANCELLED
    # One of these may have started on the second worker; both end cancelled either way.
    assert all(job.wait(DEADLINE) and job.state is JobState.CANCELLED for job in queued)
    assert runner.jobs(owner="gone") == []
    assert other.wait(DEADLINE) and runner.get(other.id) is other


def test_events_are_bounded_per_job():
    runner = JobRunner(max_workers=1, max_events=10)

    def chatty(emit, stop):
        for index in range(100):
            emit(index)

    job = runner.submit(chatty, owner="s", kind="test")
    assert job.wait(DEADLINE)
    # A reader that never came keeps only the newest events; the rest are counted as dropped.
    assert job.drain() == list(range(90, 100))
    assert job.dropped_events == 90
    runner.shutdown()


def test_finished_jobs_are_pruned_per_session_and_kind():
    runner = JobRunner(max_workers=1, keep_finished=2)
    jobs = []
    for _ in range(5):
        job = runner.submit(lambda emit, stop: None, owner="s", kind="test")
        assert job.wait(DEADLINE)
        jobs.append(job)
    # Only the newest finished jobs (and their results) stay held.
    assert [job.id for job in runner.jobs(owner="s")] == [job.id for job in jobs[-3:]]
    runner.shutdown()


def test_worker_count_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LTL_MAX_JOBS", "3")
    assert default_workers() == 3
    monkeypatch.setenv("LTL_MAX_JOBS", "many")
    with pytest.raises(ValueError, match="LTL_MAX_JOBS must be a whole number"):
        default_workers()
    monkeypatch.setenv("LTL_MAX_JOBS", "0")
    with pytest.raises(ValueError, match="between 1 and 256"):
        default_workers()
    # Unset: one worker per core, as many jobs run at once as the machine has cores.
    monkeypatch.delenv("LTL_MAX_JOBS")
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert default_workers() == 6


def test_ended_jobs_are_logged_as_json_lines(tmp_path):
    import json

    log = tmp_path / "jobs.jsonl"
    runner = JobRunner(max_workers=1, log_path=log)

    def broken(emit, stop):
        raise ValueError("bad")

    jobs = [
        runner.submit(lambda emit, stop: 1, owner="a", kind="x"),
        runner.submit(broken, owner="b", kind="y"),
    ]
    assert all(job.wait(DEADLINE) for job in jobs)
    runner.shutdown()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(record["kind"], record["state"]) for record in records] == [
        ("x", "finished"),
        ("y", "failed"),
    ]
    assert records[1]["error"] == "ValueError: bad"


def test_after_job_runs_in_the_worker_once_per_started_job_even_when_it_fails():
    calls = []
    runner = JobRunner(max_workers=1, after_job=lambda: calls.append(threading.current_thread().name))
    try:
        finished = runner.submit(lambda emit, stop: "ok", owner="a", kind="test")
        failed = runner.submit(lambda emit, stop: 1 / 0, owner="b", kind="test")
        assert finished.wait(DEADLINE) and failed.wait(DEADLINE)
        gate = Gate()
        blocking = runner.submit(gate, owner="c", kind="test")
        assert gate.started.wait(DEADLINE)
        never_started = runner.submit(lambda emit, stop: "never", owner="d", kind="test")
        never_started.cancel()
        gate.release.set()
        assert blocking.wait(DEADLINE)
    finally:
        runner.shutdown()
    assert failed.state is JobState.FAILED
    # The finished, the failed and the gated job; not the one cancelled before it started.
    assert len(calls) == 3
    assert all(name.startswith("ltl-job") for name in calls)


class Recording:
    """A job listener that remembers what it was told."""

    def __init__(self):
        self.heard = []

    def job_event(self, job, event):
        self.heard.append((job.id, event))

    def job_state(self, job):
        self.heard.append((job.id, job.state))


def test_listeners_hear_every_event_and_state_change_with_the_labels(runner):
    listener = Recording()
    runner.add_listener(listener)
    gate = Gate()
    gate.release.set()
    job = runner.submit(gate, owner="s", kind="test", labels={"class": "abc123"})
    assert job.wait(DEADLINE)
    assert job.labels == {"class": "abc123"}
    assert listener.heard == [
        (job.id, JobState.QUEUED),
        (job.id, JobState.RUNNING),
        (job.id, "started"),
        (job.id, JobState.FINISHED),
    ]
    blockers = [Gate(), Gate()]
    for index, blocker in enumerate(blockers):
        runner.submit(blocker, owner=f"b{index}", kind="test")
    waiting = runner.submit(Gate(), owner="w", kind="test")
    waiting.cancel()
    assert listener.heard[-1] == (waiting.id, JobState.CANCELLED)
    for blocker in blockers:
        blocker.release.set()
