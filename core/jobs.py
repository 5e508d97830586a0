"""The process-wide job runner: a bounded thread pool that trains models off the UI thread.

Port of the web-worker half of tfjs-examples addition-rnn-webworker, for many browser sessions at once:
each job belongs to a session, reports events through a bounded queue, can be cancelled while queued or
running, and a failure becomes a `failed` job with its message instead of a dead worker.

With `LTL_JOB_BACKEND=dask` training jobs (`TrainingSpec`s) run on a Dask cluster instead (see
core/dask_backend.py) while everything else (model loads, conversions) stays in the server's threads; the
jobs, their states, queue positions, events and results look the same to the pages either way.
"""

from __future__ import annotations

import collections
import enum
import functools
import itertools
import json
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from core.control import TrainingControl
from core.settings import env_number
from core.training_spec import TrainingSpec

if TYPE_CHECKING:
    from core.dask_backend import DaskBackend, EventDelay

# Server threads that follow cluster jobs: the most cluster jobs that can run at once.
MAX_CLUSTER_JOBS = 256

# The work a job runs: it gets a function to send events and an Event that asks it to stop.
Work = Callable[[Callable[[Any], None], threading.Event], Any]


class JobState(enum.Enum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        """Whether the job will never run again."""
        return self in (JobState.FINISHED, JobState.FAILED, JobState.CANCELLED)


class QueueFullError(RuntimeError):
    """The server already holds as many waiting jobs as it allows."""


class JobListener(Protocol):
    """Told, in the server process, of every event a job emits and every change of its state.

    Listeners may be called with the runner's lock held: they must return quickly and never call the
    runner back (hand the work to a thread of their own instead).
    """

    def job_event(self, job: Job, event: Any) -> None:
        """Called in the job's thread after `event` was emitted; must return quickly."""

    def job_state(self, job: Job) -> None:
        """Called after `job.state` changed (queued, running, and how it ended); must return quickly."""


def default_workers() -> int:
    """Worker count from `LTL_MAX_JOBS`, else one per core (each job then gets one TensorFlow thread)."""
    return int(env_number("LTL_MAX_JOBS", default=os.cpu_count() or 1, low=1, high=256))


def default_max_queued() -> int:
    """Waiting-job limit from `LTL_MAX_QUEUED`, else 60."""
    return int(env_number("LTL_MAX_QUEUED", default=60, low=0, high=100_000))


class Job:
    """One unit of work owned by a browser session, with its events and its outcome."""

    def __init__(
        self,
        *,
        job_id: str,
        owner: str,
        kind: str,
        max_events: int,
        labels: Mapping[str, Any] | None = None,
        listeners: tuple[JobListener, ...] = (),
    ) -> None:
        self.id = job_id
        self.owner = owner
        self.kind = kind
        # What the submitter wants listeners to know about the job (e.g. its class and student).
        self.labels: Mapping[str, Any] = dict(labels or {})
        self.listeners = listeners
        self.state = JobState.QUEUED
        self.error: str | None = None
        self.result: Any = None
        self.created = time.monotonic()
        self.started: float | None = None
        self.ended: float | None = None
        # The Event that asks the job to stop, with Pause/Resume and a learning-rate request on top;
        # work receives it as its stop Event. A paused job stays RUNNING: it keeps its worker slot.
        self.stop_event = TrainingControl()
        # A bounded buffer: a page that stops reading cannot make a job grow without limit.
        self._events: collections.deque[Any] = collections.deque(maxlen=max_events)
        self.dropped_events = 0
        self._lock = threading.Lock()
        self._future: Future[None] | None = None
        # "local" (the server's threads) or "cluster" (Dask workers): each admits and queues on its own.
        self.lane = "local"
        self.first_event_at: float | None = None
        # How long each event took from its Dask worker to here (cluster jobs only; bench/cluster.py).
        self.event_delays: collections.deque[EventDelay] = collections.deque(maxlen=max_events)

    def emit(self, event: Any) -> None:
        """Append an event for the page; the oldest one goes when the buffer is full."""
        with self._lock:
            if self.first_event_at is None:
                self.first_event_at = time.monotonic()
            if len(self._events) == self._events.maxlen:
                self.dropped_events += 1
            self._events.append(event)
        for listener in self.listeners:
            listener.job_event(self, event)

    def drain(self) -> list[Any]:
        """Take every event sent since the last drain."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events

    def cancel(self) -> None:
        """Ask the job to stop: a queued job never starts, a running one stops at its next batch."""
        self.stop_event.set()
        with self._lock:
            cancelled = self.state is JobState.QUEUED
            if cancelled:
                self._finish(JobState.CANCELLED)
                if self._future is not None:
                    self._future.cancel()
        if cancelled:
            self._state_changed()

    @property
    def control(self) -> TrainingControl:
        """Pause/Resume and the learning rate of this job (the same object as its stop Event)."""
        return self.stop_event

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is done (for tests and scripts); true if it is."""
        future = self._future
        if future is None:
            return self.state.done
        try:
            future.result(timeout=timeout)
        except TimeoutError:
            return False
        except Exception:  # noqa: BLE001 - A cancelled future raises; its state tells the story.
            pass
        return self.state.done

    @property
    def elapsed(self) -> float:
        """Seconds spent running so far (0 while queued)."""
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started

    def _finish(self, state: JobState) -> None:
        self.state = state
        self.ended = time.monotonic()

    def _state_changed(self) -> None:
        # Called outside the job's lock, so a listener may read the job freely.
        for listener in self.listeners:
            listener.job_state(self)

    def _run(self, work: Work) -> None:
        with self._lock:
            if self.state is not JobState.QUEUED:
                return
            self.state = JobState.RUNNING
            self.started = time.monotonic()
        self._state_changed()
        try:
            result = work(self.emit, self.stop_event)
        except Exception as error:  # noqa: BLE001 - Any failure must become a failed job, not a dead worker.
            message = str(error) or type(error).__name__
            self.error = f"{type(error).__name__}: {message}"
            self.traceback = traceback.format_exc()
            with self._lock:
                self._finish(JobState.FAILED)
            self._state_changed()
            return
        self.result = result
        with self._lock:
            self._finish(JobState.CANCELLED if self.stop_event.is_set() else JobState.FINISHED)
        self._state_changed()


class JobRunner:
    """A bounded pool of training threads shared by every session of the process."""

    def __init__(
        self,
        *,
        max_workers: int | None = None,
        max_queued: int | None = None,
        max_events: int = 5_000,
        keep_finished: int = 4,
        log_path: str | os.PathLike[str] | None = None,
        after_job: Callable[[], Any] | None = None,
        cluster: DaskBackend | None = None,
        cluster_from_environment: bool = True,
    ) -> None:
        self.max_workers = max_workers or default_workers()
        self.max_queued = default_max_queued() if max_queued is None else max_queued
        self.max_events = max_events
        # How many finished jobs each session keeps per kind (their results hold models).
        self.keep_finished = keep_finished
        # An optional JSON-lines record of every ended job (`LTL_JOB_LOG`), for operators and benches.
        self.log_path = log_path if log_path is not None else os.environ.get("LTL_JOB_LOG") or None
        self._log_lock = threading.Lock()
        # Called in the worker after each job ends, e.g. to return the job's freed memory to the OS.
        self.after_job = after_job
        self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="ltl-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._listeners: list[JobListener] = []
        # Training on a Dask cluster (`LTL_JOB_BACKEND=dask`), if asked for and reachable; else why not.
        self.start_notice: str | None = None
        if cluster is None and cluster_from_environment:
            from core.dask_backend import backend_from_environment

            cluster, self.start_notice = backend_from_environment()
        self.cluster = cluster
        self._cluster_waiting: collections.deque[tuple[Job, TrainingSpec, Future[None]]] = (
            collections.deque()
        )
        self._cluster_running = 0
        self._closed = threading.Event()
        if cluster is not None:
            # One server thread follows each job running on the cluster; admission bounds how many.
            self._cluster_executor = ThreadPoolExecutor(
                MAX_CLUSTER_JOBS, thread_name_prefix="ltl-cluster-job"
            )
            # Workers that join later add capacity: look for it now and then, not only when jobs end.
            threading.Thread(target=self._watch_capacity, name="ltl-cluster-admit", daemon=True).start()

    @property
    def notice(self) -> str | None:
        """Why training does not run where the settings asked, for a banner on every page; else None."""
        if self.cluster is not None and not self.cluster.available:
            return (
                f"Dask cluster lost: {self.cluster.lost_reason}. New training jobs run on this server's "
                "own threads; restart the app once the scheduler is back."
            )
        return self.start_notice

    def _lane(self, work: Work) -> str:
        """Where a job runs: training specs on the cluster while it is connected, the rest here."""
        if self.cluster is not None and isinstance(work, TrainingSpec) and self.cluster.available:
            return "cluster"
        return "local"

    def capacity(self, lane: str = "local") -> int:
        """Jobs that run at once in a lane: the server's workers, or the cluster's worker threads."""
        if lane == "cluster" and self.cluster is not None:
            return self.cluster.capacity()
        return self.max_workers

    def add_listener(self, listener: JobListener) -> None:
        """Tell `listener` about every job submitted from now on (its events and state changes)."""
        with self._lock:
            self._listeners.append(listener)

    def submit(
        self, work: Work, *, owner: str, kind: str, labels: Mapping[str, Any] | None = None
    ) -> Job:
        """Queue `work` for `owner`; a job of the same owner and kind still going is cancelled first."""
        lane = self._lane(work)
        capacity = self.capacity(lane)
        with self._lock:
            for job in self._jobs.values():
                if job.owner == owner and job.kind == kind and not job.state.done:
                    job.cancel()
            waiting = sum(job.state is JobState.QUEUED for job in self._jobs.values())
            running = sum(
                job.state is JobState.RUNNING and job.lane == lane for job in self._jobs.values()
            )
            if running >= capacity and waiting >= self.max_queued:
                raise QueueFullError(
                    f"The server is busy: {running} jobs are training and {waiting} are waiting, "
                    "the most it allows. Try again in a minute."
                )
            job = Job(
                job_id=f"job-{next(self._ids)}",
                owner=owner,
                kind=kind,
                max_events=self.max_events,
                labels=labels,
                listeners=tuple(self._listeners),
            )
            job.lane = lane
            job._state_changed()  # Queued: listeners hear of the job before it can start.
            self._jobs[job.id] = job
            self._prune(owner=owner, kind=kind)
            if lane == "cluster" and isinstance(work, TrainingSpec):
                # Admitted in order by `_admit_cluster`; until then only this placeholder exists.
                job._future = Future()
                self._cluster_waiting.append((job, work, job._future))
            else:
                job._future = self._executor.submit(self._run, job, work)
            if self.log_path is not None:
                job._future.add_done_callback(functools.partial(self._log_done, job))
        if lane == "cluster":
            self._admit_cluster()
        return job

    def get(self, job_id: str | None) -> Job | None:
        """The job with this id, if the runner still holds it."""
        if job_id is None:
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self, *, owner: str | None = None) -> list[Job]:
        """All held jobs, oldest first, optionally only one owner's."""
        with self._lock:
            return [job for job in self._jobs.values() if owner is None or job.owner == owner]

    def queue_position(self, job: Job) -> tuple[int, int] | None:
        """(1-based position, number waiting) while the job is queued, else None."""
        with self._lock:
            waiting = [
                other
                for other in self._jobs.values()
                if other.state is JobState.QUEUED and other.lane == job.lane
            ]
        if job not in waiting:
            return None
        return waiting.index(job) + 1, len(waiting)

    def estimated_start(self, job: Job, *, typical_seconds: float = 30.0) -> float | None:
        """Rough seconds until a queued job starts, from how long jobs ahead have run."""
        position = self.queue_position(job)
        if position is None:
            return None
        capacity = self.capacity(job.lane)
        with self._lock:
            lane = [other for other in self._jobs.values() if other.lane == job.lane]
            running = [other for other in lane if other.state is JobState.RUNNING]
            done = [o for o in lane if o.state.done and o.started is not None]
        if done:
            typical_seconds = sum(other.elapsed for other in done) / len(done)
        remaining = sorted(max(typical_seconds - other.elapsed, 1.0) for other in running)
        # Jobs ahead start as workers free up, one worker each, in queue order.
        slots = remaining + [0.0] * (capacity - len(remaining))
        if not slots:
            return None  # No worker at all right now: no honest estimate.
        for _ in range(position[0] - 1):
            slots.sort()
            slots[0] += typical_seconds
        return min(slots)

    def cancel_owner(self, owner: str) -> int:
        """Cancel every job of a session that has gone and forget them; returns how many were live."""
        with self._lock:
            owned = [job for job in self._jobs.values() if job.owner == owner]
            for job in owned:
                del self._jobs[job.id]
        live = [job for job in owned if not job.state.done]
        for job in live:
            job.cancel()
        return len(live)

    def shutdown(self) -> None:
        """Cancel everything and wait for the workers to end."""
        self._closed.set()
        for job in self.jobs():
            job.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self.cluster is not None:
            self._cluster_executor.shutdown(wait=True, cancel_futures=True)
            self.cluster.close()

    def _admit_cluster(self) -> None:
        """Start waiting cluster jobs, oldest first, while the cluster has a free worker thread."""
        if self.cluster is None:
            return
        capacity = self.cluster.capacity()
        with self._lock:
            while self._cluster_waiting and self._cluster_running < capacity:
                job, spec, future = self._cluster_waiting.popleft()
                if job.state.done or self._closed.is_set():
                    continue  # Cancelled while it waited.
                self._cluster_running += 1
                self._cluster_executor.submit(self._run_cluster, job, spec, future)

    def _run_cluster(self, job: Job, spec: TrainingSpec, future: Future[None]) -> None:
        cluster = self.cluster
        try:
            if cluster is not None and future.set_running_or_notify_cancel():
                try:
                    job._run(functools.partial(cluster.run, spec, on_delay=job.event_delays.append))
                finally:
                    if self.after_job is not None and job.started is not None:
                        self.after_job()
                    future.set_result(None)
        finally:
            with self._lock:
                self._cluster_running -= 1
            self._admit_cluster()

    def _watch_capacity(self) -> None:
        while not self._closed.wait(1.0):
            try:
                self._admit_cluster()
            except Exception:  # noqa: BLE001 - A hiccup reaching the scheduler must not end the watch.
                continue

    def _run(self, job: Job, work: Work) -> None:
        try:
            job._run(work)
        finally:
            if self.after_job is not None and job.started is not None:
                self.after_job()

    def _log_done(self, job: Job, _future: Future[None]) -> None:
        self._log(job)

    def _log(self, job: Job) -> None:
        if self.log_path is None:
            return
        history = getattr(job.result, "history", ()) or ()
        record = {
            "id": job.id,
            "kind": job.kind,
            "state": job.state.value,
            "error": job.error,
            "queued_seconds": round((job.started or job.ended or job.created) - job.created, 4),
            "run_seconds": round(job.elapsed, 4),
            "epoch_seconds": [round(float(getattr(event, "seconds", 0.0)), 4) for event in history],
        }
        try:
            with self._log_lock, open(self.log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
        except OSError:
            # The log is a convenience; a full disk must not take the runner down with it.
            pass

    def _prune(self, *, owner: str, kind: str) -> None:
        finished = [
            job
            for job in self._jobs.values()
            if job.owner == owner and job.kind == kind and job.state.done
        ]
        for job in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._jobs[job.id]
