"""The Dask backend on a real loopback cluster: the same jobs, events and results as threads; faults."""

from __future__ import annotations

import collections
import dataclasses
import socket
import threading
import time

import pytest

from core.addition import AdditionConfig, AdditionResult
from core.dask_backend import (
    DaskBackend,
    EventBatcher,
    check_scheduler_address,
    security_from_environment,
)
from core.digits import DigitsConfig, DigitsResult
from core.events import (
    BatchEnded,
    EpochEnded,
    LearningRateChanged,
    TrainingPaused,
    TrainingResumed,
    TrainingStopped,
)
from core.jobs import JobRunner, JobState
from core.local_cluster import WORKER_NICENESS, LoopbackCluster, free_port
from core.mnist import MnistData, cached_mnist
from core.training import TrainingResult
from core.training_spec import TrainingSpec

DEADLINE = 240.0
TINY_DIGITS = DigitsConfig(epochs=1, training_size=300, batch_size=64, seed=3)
TINY_ADDITION = AdditionConfig(
    digits=1, training_size=50, iterations=2, hidden_size=8, test_examples=2, batch_size=16, seed=3
)
# Long enough to be caught mid-run by a cancel or a kill, short enough to finish soon after.
LONGER_DIGITS = DigitsConfig(epochs=6, training_size=2_000, batch_size=32, seed=4)


def wait_for(condition, *, timeout: float = DEADLINE, what: str = "condition") -> None:
    """Check `condition` until it holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    paced = threading.Event()  # Never set: waiting on it only paces the checks.
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        paced.wait(0.05)


def event_shape(events: list) -> list[str]:
    """The kinds of events in order, with runs of per-batch events (their count is timing) folded."""
    kinds: list[str] = []
    for event in events:
        kind = type(event).__name__
        if not (kind == "BatchEnded" and kinds and kinds[-1] == kind):
            kinds.append(kind)
    return kinds


def result_shape(result) -> dict:
    """Type, field names and model input/output shapes: what the pages and the store rely on."""
    return {
        "type": type(result).__name__,
        "fields": [field.name for field in dataclasses.fields(result)],
        "inputs": tuple(result.model.input_shape),
        "outputs": tuple(result.model.output_shape),
        "history": len(result.history),
        "compiled": result.model.optimizer is not None,
    }


@pytest.fixture(scope="module")
def cluster():
    with LoopbackCluster(workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def cluster_runner(cluster):
    runner = JobRunner(max_workers=1, cluster=DaskBackend.connect(cluster.address, timeout=10))
    yield runner
    runner.shutdown()


def run_both(spec: TrainingSpec, cluster_runner: JobRunner):
    """The same spec through the thread backend and through the cluster: (job, events) of each."""
    local = JobRunner(max_workers=1, cluster_from_environment=False)
    try:
        outcomes = []
        for runner in (local, cluster_runner):
            job = runner.submit(spec, owner=f"shape-{id(runner)}", kind=spec.task)
            assert job.wait(DEADLINE), job.state
            outcomes.append((job, job.drain()))
        return outcomes
    finally:
        local.shutdown()


def test_a_digits_job_on_the_cluster_looks_like_one_on_threads(cluster_runner):
    (local, local_events), (remote, remote_events) = run_both(
        TrainingSpec(task="digits", config=TINY_DIGITS), cluster_runner
    )
    assert remote.lane == "cluster" and local.lane == "local"
    assert (local.state, remote.state) == (JobState.FINISHED, JobState.FINISHED), remote.error
    # The first layer's filters are sent before training and after each epoch, on both backends.
    expected = ["FiltersSnapshot", "BatchEnded", "EpochEnded", "FiltersSnapshot"]
    assert event_shape(remote_events) == event_shape(local_events) == expected
    assert isinstance(remote.result, DigitsResult) and isinstance(remote.result, TrainingResult)
    assert result_shape(remote.result) == result_shape(local.result)
    # The confusion matrix counts every one of the 10,000 test images, as on threads.
    assert remote.result.confusion.sum() == local.result.confusion.sum() == 10_000
    # The rebuilt model predicts here, in the server: drawing on the canvas works as today.
    assert remote.result.model.predict(cached_mnist().test_images[:2, ..., None] / 255).shape == (2, 10)
    assert len(remote.event_delays) == len(remote_events)
    # Each delay splits into the wait in its batch and the trip (one machine: one wall clock).
    assert all(0 <= delay.batched < 10 and 0 <= delay.transit < 30 for delay in remote.event_delays)
    assert all(delay.total == delay.batched + delay.transit for delay in remote.event_delays)


def test_an_addition_job_on_the_cluster_looks_like_one_on_threads(cluster_runner):
    (local, local_events), (remote, remote_events) = run_both(
        TrainingSpec(task="addition", config=TINY_ADDITION), cluster_runner
    )
    assert (local.state, remote.state) == (JobState.FINISHED, JobState.FINISHED), remote.error
    assert event_shape(remote_events) == event_shape(local_events)
    assert event_shape(remote_events).count("SamplesDecoded") == 2
    assert isinstance(remote.result, AdditionResult)
    assert result_shape(remote.result) == result_shape(local.result)
    assert len(remote.result.samples.samples) == 2


class Heard:
    """A job listener that sets an Event the first time one owner's job emits an event of each kind."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.events: list = []
        self.kinds: dict[type, threading.Event] = collections.defaultdict(threading.Event)

    def job_event(self, job, event) -> None:
        if job.owner == self.owner:
            self.events.append(event)
            self.kinds[type(event)].set()

    def job_state(self, job) -> None:
        pass


def test_a_cluster_job_pauses_takes_a_new_rate_resumes_and_stops(cluster_runner):
    config = dataclasses.replace(TINY_ADDITION, iterations=300)
    heard = Heard("controls")
    cluster_runner.add_listener(heard)
    job = cluster_runner.submit(
        TrainingSpec(task="addition", config=config), owner="controls", kind="addition"
    )
    try:
        assert heard.kinds[BatchEnded].wait(DEADLINE)
        job.control.pause()
        assert heard.kinds[TrainingPaused].wait(DEADLINE)
        # The worker told this server its rate before it paused, so the rate can be changed now.
        assert job.control.learning_rate == pytest.approx(0.001)
        assert job.state is JobState.RUNNING
        assert job.control.request_learning_rate(0.005) == 0.005
        job.control.resume()
        assert heard.kinds[TrainingResumed].wait(DEADLINE)
        assert heard.kinds[LearningRateChanged].wait(DEADLINE)
        (changed,) = [e for e in heard.events if isinstance(e, LearningRateChanged)]
        paused = next(e for e in heard.events if isinstance(e, TrainingPaused))
        assert changed.learning_rate == 0.005 and changed.step > paused.step
    finally:
        job.cancel()
    assert job.wait(DEADLINE) and job.state is JobState.CANCELLED
    assert any(isinstance(event, TrainingStopped) for event in heard.events)


def worker_fetch_counts() -> dict[str, int]:
    """On a worker: how many times it copied each dataset from the cluster."""
    from core.dask_backend import worker_fetches

    return dict(worker_fetches)


def test_mnist_travels_once_per_worker_and_an_upload_works_too(cluster, cluster_runner):
    backend = cluster_runner.cluster
    full = cached_mnist()
    # A session's upload: different images than MNIST_DIR's, which the workers never see as files.
    upload = MnistData(
        train_images=full.train_images[:400].copy(),
        train_labels=full.train_labels[:400].copy(),
        test_images=full.test_images[:250].copy(),
        test_labels=full.test_labels[:250].copy(),
        source="upload",
    )
    specs = [TrainingSpec(task="digits", config=TINY_DIGITS, data=upload) for _ in range(2)]
    jobs = [
        cluster_runner.submit(spec, owner=f"upload-{index}", kind="digits")
        for index, spec in enumerate(specs)
    ]
    assert all(job.wait(DEADLINE) for job in jobs)
    assert [job.state for job in jobs] == [JobState.FINISHED] * 2, [job.error for job in jobs]
    # Scored on the upload's 250 test images: the worker trained on the uploaded arrays.
    assert all(job.result.confusion.sum() == 250 for job in jobs)
    # Each worker copied each dataset at most once, however many jobs used it.
    fetches = backend.client.run(worker_fetch_counts)
    assert all(count == 1 for counts in fetches.values() for count in counts.values()), fetches
    # Both workers trained digits by now (earlier tests too), and the two datasets were both used.
    assert len(set().union(*fetches.values())) == 2, fetches


def frozen_object_count() -> int:
    import gc

    return gc.get_freeze_count()


def test_loopback_workers_run_below_the_scheduler_and_the_app(cluster):
    # Sharing the app's cores, the workers yield to the scheduler and the app, whose event relaying
    # otherwise waited behind training steps (bench/cluster.py's transit p99 66-87 ms, 6-41 with it).
    import psutil

    assert psutil.Process(cluster.scheduler.pid).nice() == psutil.Process().nice()
    for worker in cluster.workers:
        process = psutil.Process(worker.pid)
        assert process.nice() == psutil.Process().nice() + WORKER_NICENESS
        # The PID kept is the worker itself (nice execs it), so a kill by PID still kills the worker.
        assert "distributed.cli.dask_worker" in process.cmdline()


def test_every_worker_starts_with_keras_loaded_and_its_heap_frozen(cluster_runner):
    # Without the freeze a full collection on a worker held its GIL for 0.15-0.3 s and held up the
    # job's events (bench/cluster.py's event p99 was 297-373 ms; 7-9 ms with it).
    frozen = cluster_runner.cluster.client.run(frozen_object_count)
    assert len(frozen) == 2 and all(count > 100_000 for count in frozen.values()), frozen


def test_admission_follows_the_cluster_threads_and_cancel_works_queued_and_running(cluster_runner):
    specs = [TrainingSpec(task="digits", config=LONGER_DIGITS) for _ in range(3)]
    jobs = [
        cluster_runner.submit(spec, owner=f"admit-{index}", kind="digits")
        for index, spec in enumerate(specs)
    ]
    # Two single-thread workers: two jobs run, the third waits first in line.
    wait_for(lambda: all(job.state is JobState.RUNNING for job in jobs[:2]), what="two running jobs")
    assert jobs[2].state is JobState.QUEUED
    assert cluster_runner.queue_position(jobs[2]) == (1, 1)
    assert cluster_runner.estimated_start(jobs[2]) is not None
    jobs[2].cancel()
    assert jobs[2].state is JobState.CANCELLED and cluster_runner.queue_position(jobs[2]) is None
    # Stop a running job once its first curve point has arrived; it ends cancelled with a model.
    wait_for(lambda: jobs[0].first_event_at is not None, what="the first event")
    jobs[0].cancel()
    assert jobs[0].wait(DEADLINE)
    assert jobs[0].state is JobState.CANCELLED
    assert jobs[0].result.stopped_reason == "Stopped on request."
    assert len(jobs[0].result.history) < LONGER_DIGITS.epochs
    jobs[1].cancel()
    assert jobs[1].wait(DEADLINE) and jobs[1].state is JobState.CANCELLED
    assert jobs[2].started is None


def test_a_worker_killed_mid_job_fails_that_job_and_the_other_finishes():
    with LoopbackCluster(workers=2) as cluster:
        runner = JobRunner(max_workers=1, cluster=DaskBackend.connect(cluster.address, timeout=10))
        try:
            spec = TrainingSpec(task="digits", config=LONGER_DIGITS)
            jobs = [runner.submit(spec, owner=f"kill-{index}", kind="digits") for index in range(2)]
            wait_for(
                lambda: all(job.first_event_at is not None for job in jobs), what="both jobs training"
            )
            cluster.kill_worker(0)
            assert all(job.wait(DEADLINE) for job in jobs)
            states = sorted(job.state.value for job in jobs)
            assert states == ["failed", "finished"], [job.error for job in jobs]
            failed = next(job for job in jobs if job.state is JobState.FAILED)
            assert "stopped in the middle of training" in failed.error
            assert "not re-run" in failed.error
        finally:
            runner.shutdown()


def test_the_scheduler_going_away_fails_the_job_and_later_jobs_train_here():
    with LoopbackCluster(workers=1) as cluster:
        runner = JobRunner(max_workers=1, cluster=DaskBackend.connect(cluster.address, timeout=10))
        try:
            job = runner.submit(
                TrainingSpec(task="digits", config=LONGER_DIGITS), owner="s", kind="digits"
            )
            wait_for(lambda: job.first_event_at is not None, what="the job training")
            cluster.kill_scheduler()
            assert job.wait(DEADLINE)
            assert job.state is JobState.FAILED
            assert "connection to the Dask scheduler" in job.error
            assert runner.notice is not None and "Dask cluster lost" in runner.notice
            later = runner.submit(
                TrainingSpec(task="addition", config=TINY_ADDITION), owner="t", kind="addition"
            )
            assert later.lane == "local"
            assert later.wait(DEADLINE) and later.state is JobState.FINISHED
        finally:
            runner.shutdown()


@pytest.fixture
def silent_listener():
    """A loopback port that accepts connections and never says a word (a hung scheduler)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("kind", ["nothing listening", "never answers"])
def test_an_unreachable_scheduler_at_start_falls_back_to_threads_within_3_seconds(
    monkeypatch, silent_listener, kind
):
    address = f"tcp://127.0.0.1:{free_port()}" if kind == "nothing listening" else silent_listener
    monkeypatch.setenv("LTL_JOB_BACKEND", "dask")
    monkeypatch.setenv("LTL_DASK_SCHEDULER", address)
    started = time.monotonic()
    runner = JobRunner(max_workers=1)
    elapsed = time.monotonic() - started
    try:
        # A behaviour bound (the app must never hang on a dead scheduler), not a speed benchmark.
        assert elapsed <= 3.0, elapsed
        assert runner.cluster is None
        assert "could not reach the Dask scheduler" in runner.notice and address in runner.notice
        job = runner.submit(
            TrainingSpec(task="addition", config=TINY_ADDITION), owner="o", kind="addition"
        )
        assert job.lane == "local" and job.wait(DEADLINE) and job.state is JobState.FINISHED
    finally:
        runner.shutdown()


def test_threads_stay_the_default_and_bad_settings_say_why(monkeypatch):
    monkeypatch.delenv("LTL_JOB_BACKEND", raising=False)
    runner = JobRunner(max_workers=1)
    assert runner.cluster is None and runner.notice is None
    runner.shutdown()
    monkeypatch.setenv("LTL_JOB_BACKEND", "ray")
    runner = JobRunner(max_workers=1)
    assert "must be threads or dask" in runner.notice
    runner.shutdown()
    monkeypatch.setenv("LTL_JOB_BACKEND", "dask")
    monkeypatch.delenv("LTL_DASK_SCHEDULER", raising=False)
    runner = JobRunner(max_workers=1)
    assert "needs LTL_DASK_SCHEDULER" in runner.notice
    runner.shutdown()
    # A plain address off this machine is refused before any connection is tried.
    monkeypatch.setenv("LTL_DASK_SCHEDULER", "tcp://10.1.2.3:8786")
    runner = JobRunner(max_workers=1)
    assert "Refusing plain tcp://" in runner.notice
    runner.shutdown()


@pytest.mark.parametrize(
    "address",
    [
        "tcp://127.0.0.1:8786",
        "tcp://localhost:8786",
        "tcp://[::1]:8786",
        "tcp://127.8.9.10:1",
        "tls://10.0.0.5:8786",
    ],
)
def test_loopback_and_tls_addresses_are_accepted(address):
    assert check_scheduler_address(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "tcp://10.0.0.5:8786",
        "tcp://192.168.1.2:8786",
        "tcp://scheduler.example:8786",
        "tcp://0.0.0.0:8786",
    ],
)
def test_plain_tcp_off_loopback_is_refused_unless_insecure_is_set(address):
    with pytest.raises(ValueError, match="Refusing plain tcp://"):
        check_scheduler_address(address)
    assert check_scheduler_address(address, insecure=True) == address


@pytest.mark.parametrize(
    "address", ["127.0.0.1:8786", "http://127.0.0.1:8786", "tcp://127.0.0.1", "tcp://:8786", ""]
)
def test_malformed_addresses_are_refused(address):
    with pytest.raises(ValueError, match="must look like"):
        check_scheduler_address(address)


def test_tls_needs_its_three_files(monkeypatch, tmp_path):
    for name in ("CA", "CERT", "KEY"):
        monkeypatch.delenv(f"LTL_DASK_TLS_{name}", raising=False)
    assert security_from_environment("tcp://127.0.0.1:8786") is None
    with pytest.raises(ValueError, match="LTL_DASK_TLS_CA, LTL_DASK_TLS_CERT, LTL_DASK_TLS_KEY"):
        security_from_environment("tls://10.0.0.5:8786")
    for name in ("CA", "CERT", "KEY"):
        monkeypatch.setenv(f"LTL_DASK_TLS_{name}", str(tmp_path / f"{name}.pem"))
    with pytest.raises(ValueError, match="TLS file not found"):
        security_from_environment("tls://10.0.0.5:8786")


def batch(step: int) -> BatchEnded:
    return BatchEnded(epoch=1, batch=step, batches=10, step=step, loss=1.0, accuracy=0.5)


def test_events_are_batched_and_an_epoch_end_is_sent_at_once():
    sent: list[list] = []
    arrived = threading.Event()

    def send(message):
        sent_at, events = message
        # Each event's creation stamp comes before the batch's send stamp: their gap is the wait.
        assert all(stamped <= sent_at for stamped, _ in events)
        sent.append([event for _, event in events])
        arrived.set()

    # A flush interval far longer than the test: only the epoch's end can make it send.
    batcher = EventBatcher(send=send, on_failure=lambda error: None, flush_seconds=600)
    for step in range(1, 6):
        batcher.emit(batch(step))
    epoch = EpochEnded(epoch=1, epochs=1, loss=1, accuracy=0.5, val_loss=1, val_accuracy=0.5, seconds=1)
    batcher.emit(epoch)
    assert arrived.wait(30)
    # One message carried all six events, in order.
    assert sent == [[*(batch(step) for step in range(1, 6)), epoch]]
    batcher.emit(batch(6))
    batcher.close()
    assert sent[-1] == [batch(6)]  # Closing flushes what is left.


def test_a_failing_send_stops_the_batcher_and_reports_it():
    failures: list[BaseException] = []
    reported = threading.Event()

    def broken(events):
        raise OSError("scheduler gone")

    def on_failure(error):
        failures.append(error)
        reported.set()

    batcher = EventBatcher(send=broken, on_failure=on_failure, flush_seconds=0.01)
    batcher.emit(batch(1))
    assert reported.wait(30)
    batcher.close()
    assert isinstance(failures[0], OSError)


def test_a_training_spec_refuses_a_mismatched_task():
    with pytest.raises(ValueError, match="Task must be one of"):
        TrainingSpec(task="poetry", config=TINY_DIGITS)
    with pytest.raises(ValueError, match="A digits job takes a DigitsConfig, not AdditionConfig"):
        TrainingSpec(task="digits", config=TINY_ADDITION)
    with pytest.raises(ValueError, match="takes no dataset"):
        TrainingSpec(task="addition", config=TINY_ADDITION, data=cached_mnist())
    assert (
        TrainingSpec(task="digits", config=TINY_DIGITS, data=cached_mnist()).without_data().data is None
    )
