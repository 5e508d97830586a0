"""The session handle: a closed browser session gives back its jobs, models and uploaded data."""

import threading

from core.addition import AdditionConfig
from core.jobs import JobRunner, JobState
from core.runtime import PacedCollections, return_freed_memory
from ui.resources import SessionHandle, release_session
from ui.runs import RunRecord

DEADLINE = 10.0


def test_releasing_a_session_cancels_its_jobs_and_drops_its_models_and_data(collections_at_once):
    runner = JobRunner(max_workers=1)
    started, release = threading.Event(), threading.Event()

    def gated(emit, stop):
        started.set()
        while not (stop.is_set() or release.is_set()):
            stop.wait(0.01)

    try:
        mine = runner.submit(gated, owner="mine", kind="addition")
        assert started.wait(DEADLINE)
        theirs = runner.submit(lambda emit, stop: "kept", owner="theirs", kind="addition")
        finished = RunRecord(label="#1", job_id="job-0", config=AdditionConfig(), state="finished")
        finished.model, finished.result = object(), object()
        running = RunRecord(label="#2", job_id=mine.id, config=AdditionConfig(), state="running")
        handle = SessionHandle(owner="mine", runner=runner, run_lists=[[finished, running]])
        handle.uploaded_mnist = object()

        release_session(handle).result(DEADLINE)

        assert mine.wait(DEADLINE) and mine.state is JobState.CANCELLED
        assert runner.jobs(owner="mine") == []
        assert (finished.model, finished.result, finished.state) == (None, None, "finished")
        assert running.state == "cancelled" and "session closed" in running.stopped_reason
        assert handle.uploaded_mnist is None and handle.run_lists == []
        # Another session's job is untouched.
        assert theirs.wait(DEADLINE) and theirs.state is JobState.FINISHED
    finally:
        release.set()
        runner.shutdown()


def test_a_session_is_cancelled_at_once_and_freed_off_the_calling_thread(monkeypatch):
    # Streamlit calls the release on its event loop: the slow part (a full collection and
    # malloc_trim) must not run there, while the session's jobs must stop at once.
    import ui.resources as resources

    collected_on = []
    gate = threading.Event()

    def collect():
        gate.wait(DEADLINE)  # Held until the caller has seen the release return.
        collected_on.append(threading.current_thread())

    collections = PacedCollections(0, collect=collect)
    monkeypatch.setattr(resources, "_COLLECTIONS", collections)
    runner = JobRunner(max_workers=1)
    try:
        queued = runner.submit(lambda emit, stop: stop.wait(DEADLINE), owner="mine", kind="addition")
        run = RunRecord(label="#1", job_id="job-0", config=AdditionConfig(), state="finished")
        run.model = object()
        handle = SessionHandle(owner="mine", runner=runner, run_lists=[[run]])
        freed = release_session(handle)
        assert queued.stop_event.is_set()  # Cancelled before the call returned.
        assert not freed.done() and collected_on == []
        gate.set()
        freed.result(DEADLINE)
        assert run.model is None
        assert collected_on and collected_on[0] is not threading.current_thread()
    finally:
        gate.set()
        runner.shutdown()
        collections.close()


def test_sessions_closed_together_share_one_collection(monkeypatch):
    import ui.resources as resources

    calls = []
    # An hour between collections: the first release is collected at once, the next ones wait.
    collections = PacedCollections(3600, collect=lambda: calls.append(1))
    monkeypatch.setattr(resources, "_COLLECTIONS", collections)
    runner = JobRunner(max_workers=1)
    try:
        handles = []
        for number in range(4):
            run = RunRecord(
                label=f"#{number}", job_id="job-0", config=AdditionConfig(), state="finished"
            )
            run.model = object()
            handles.append(SessionHandle(owner=f"s{number}", runner=runner, run_lists=[[run]]))
        release_session(handles[0]).result(DEADLINE)
        later = [release_session(handle) for handle in handles[1:]]
        # The release thread takes tasks in order: once this one has run, the three were dropped.
        resources._RELEASES.submit(int).result(DEADLINE)
        assert len(calls) == 1 and not any(future.done() for future in later)
        collections.close()  # Serves the waiting releases at once.
        for future in later:
            future.result(DEADLINE)
        assert len(calls) == 2
        assert all(handle.run_lists == [] for handle in handles)  # Dropped before collecting.
    finally:
        runner.shutdown()
        collections.close()


def test_freed_memory_is_returned_on_glibc():
    # This machine and CI run glibc; elsewhere the call is a harmless no-op that says so.
    assert return_freed_memory() is True
