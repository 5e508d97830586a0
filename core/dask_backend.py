"""The Dask backend: training jobs run on the workers of a Dask distributed cluster.

The server keeps the job (id, state, queue position, events, cancel, result); a worker runs the
`TrainingSpec`. Its events come back in batches as Dask structured-log events pushed to this server,
Dask `Event`s carry Stop and Pause there and a Dask `Variable` a new learning rate; MNIST is published
once and copied to each worker once, then reused by every job; the trained model returns as `.keras`
bytes and is rebuilt here, so saving, drawing and the Model Cache see an ordinary result.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import hashlib
import ipaddress
import os
import pickle
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from core.control import TrainingControl
from core.events import EpochEnded, SamplesDecoded, TrainingStopped
from core.settings import env_number
from core.training_spec import PortableResult, TrainingSpec, from_portable, to_portable

if TYPE_CHECKING:
    from distributed import Client, Future
    from distributed.security import Security

    from core.mnist import MnistData

# Events wait on the worker at most this long before they are sent (epoch ends go at once).
FLUSH_SECONDS = 0.15
# How often the server looks for a reply while a job runs, and how stale the worker list may be.
POLL_SECONDS = 0.2
WORKERS_REFRESH_SECONDS = 0.5
# Datasets kept on the workers at once (the server's MNIST plus a few sessions' uploads).
MAX_SCATTERED = 4
LOOPBACK_NAMES = ("localhost",)
# How much longer than its connect timeout the app waits for a client that neither connects nor fails.
JOIN_MARGIN_SECONDS = 0.2
# Sent by an epoch's end: the page should see the curve point now, not at the next flush.
URGENT_EVENTS = (EpochEnded, SamplesDecoded, TrainingStopped)


@dataclass(frozen=True, slots=True)
class EventDelay:
    """How long one event took from a worker to the server's job, in seconds (wall clocks)."""

    batched: float  # From its creation to its batch being sent: the deliberate wait (<= FLUSH_SECONDS).
    transit: float  # From the batch being sent to its arrival here: the cluster's own latency.

    @property
    def total(self) -> float:
        """From creation on the worker to arrival here."""
        return self.batched + self.transit


class ClusterUnavailableError(RuntimeError):
    """The Dask scheduler cannot be reached (at start) or was lost (during a job)."""


class WorkerLostError(RuntimeError):
    """The Dask worker that ran a job went away before the job ended."""


def connect_seconds() -> float:
    """The app's whole wait for the scheduler at start, from `LTL_DASK_TIMEOUT` (default 2.5 s)."""
    return env_number("LTL_DASK_TIMEOUT", default=2.5, low=0.5, high=60, whole=False)


def check_scheduler_address(address: str, *, insecure: bool = False) -> str:
    """The address if it is usable: tls:// anywhere, plain tcp:// only on loopback unless `insecure`."""
    parts = urlsplit(address.strip())
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or parts.port is None:
        raise ValueError(
            "LTL_DASK_SCHEDULER must look like tcp://127.0.0.1:8786 or tls://host:8786, "
            f"not {address!r}."
        )
    if parts.scheme == "tcp" and not insecure and not _is_loopback(parts.hostname):
        raise ValueError(
            f"Refusing plain tcp:// to {parts.hostname}: anyone on that network could read the jobs and "
            "run code on the workers. Use tls:// with LTL_DASK_TLS_CA, LTL_DASK_TLS_CERT and "
            "LTL_DASK_TLS_KEY, or set LTL_DASK_INSECURE=1 on a private network you trust."
        )
    return address.strip()


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def security_from_environment(address: str) -> Security | None:
    """TLS settings for a tls:// scheduler from `LTL_DASK_TLS_CA/CERT/KEY`; None for tcp://."""
    if not address.startswith("tls://"):
        return None
    from distributed.security import Security

    files = {name: os.environ.get(f"LTL_DASK_TLS_{name}", "").strip() for name in ("CA", "CERT", "KEY")}
    missing = [f"LTL_DASK_TLS_{name}" for name, path in files.items() if not path]
    if missing:
        raise ValueError(f"A tls:// scheduler needs {', '.join(missing)} (PEM files).")
    unreadable = [path for path in files.values() if not os.path.isfile(path)]
    if unreadable:
        raise ValueError(f"TLS file not found: {', '.join(unreadable)}.")
    return Security(
        tls_ca_file=files["CA"],
        tls_client_cert=files["CERT"],
        tls_client_key=files["KEY"],
        require_encryption=True,
    )


def backend_from_environment() -> tuple[DaskBackend | None, str | None]:
    """(backend, notice): the Dask backend `LTL_JOB_BACKEND` asks for, or None and why not."""
    choice = os.environ.get("LTL_JOB_BACKEND", "").strip().lower() or "threads"
    if choice == "threads":
        return None, None
    fallback = "Training runs on this server's own threads instead."
    if choice != "dask":
        return None, f"LTL_JOB_BACKEND must be threads or dask, not {choice!r}. {fallback}"
    address = os.environ.get("LTL_DASK_SCHEDULER", "").strip()
    if not address:
        return (
            None,
            f"LTL_JOB_BACKEND=dask needs LTL_DASK_SCHEDULER (e.g. tcp://127.0.0.1:8786). {fallback}",
        )
    started = time.monotonic()
    try:
        budget = connect_seconds()
        insecure = os.environ.get("LTL_DASK_INSECURE", "").strip() == "1"
        checked = check_scheduler_address(address, insecure=insecure)
        security = security_from_environment(checked)
        import distributed  # noqa: F401 - Its import (~1 s) is part of the start budget.

        # Whatever the import took comes off the connect timeout: the whole start stays in budget.
        remaining = budget - (time.monotonic() - started) - JOIN_MARGIN_SECONDS
        backend = DaskBackend.connect(checked, security=security, timeout=max(remaining, 0.3))
    except (ValueError, ClusterUnavailableError) as error:
        return None, f"Dask cluster not used: {error} {fallback}"
    return backend, None


class EventBatcher:
    """Collects a worker's events and sends them in batches from its own thread."""

    def __init__(
        self,
        *,
        send: Callable[[tuple[float, list[tuple[float, Any]]]], None],
        on_failure: Callable[[BaseException], None],
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self._send = send
        self._on_failure = on_failure
        self.flush_seconds = flush_seconds
        self._pending: list[tuple[float, Any]] = []
        self._urgent = False
        self._closed = False
        self._last_flush = time.monotonic()
        self._condition = threading.Condition()
        self.sent_batches = 0
        self._thread = threading.Thread(target=self._loop, name="ltl-event-batcher", daemon=True)
        self._thread.start()

    def emit(self, event: Any) -> None:
        """Queue an event (stamped with the wall clock, to measure its delay); never blocks on I/O."""
        with self._condition:
            self._pending.append((time.time(), event))
            if isinstance(event, URGENT_EVENTS):
                self._urgent = True
            self._condition.notify()

    def close(self) -> None:
        """Send whatever is left, then stop the thread."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while True:
                    due = self._last_flush + self.flush_seconds
                    now = time.monotonic()
                    if self._closed or (self._pending and (self._urgent or now >= due)):
                        break
                    self._condition.wait(max(due - now, 0.001) if self._pending else None)
                batch, self._pending = self._pending, []
                self._urgent = False
                self._last_flush = time.monotonic()
                closed = self._closed
            if batch:
                try:
                    self._send((time.time(), batch))
                    self.sent_batches += 1
                except Exception as error:  # noqa: BLE001 - Nobody hears the job any more: stop it.
                    self._on_failure(error)
                    return
            if closed:
                return


# On each worker process: the datasets it has fetched (by fingerprint), and how often it fetched each.
_worker_datasets: collections.OrderedDict[str, MnistData] = collections.OrderedDict()
worker_fetches: collections.Counter[str] = collections.Counter()
_worker_datasets_lock = threading.Lock()


def _worker_dataset(fingerprint: str | None) -> MnistData | None:
    """The dataset on this worker, fetched from the cluster the first time this worker needs it."""
    if fingerprint is None:
        return None
    from distributed import get_client

    with _worker_datasets_lock:
        data = _worker_datasets.get(fingerprint)
        if data is None:
            # Published by the server, held by one worker: copied here once, then kept for later jobs.
            data = get_client().get_dataset(fingerprint).result()
            _worker_datasets[fingerprint] = data
            worker_fetches[fingerprint] += 1
        _worker_datasets.move_to_end(fingerprint)
        while len(_worker_datasets) > MAX_SCATTERED:
            _worker_datasets.popitem(last=False)
        return data


def run_on_worker(
    spec: TrainingSpec, dataset: str | None, *, topic: str, channel: str
) -> PortableResult:
    """The task a worker runs: train `spec`, streaming events to `channel`, obeying Stop, Pause, rate."""
    from distributed import Event, Variable, get_client, get_worker

    from core.runtime import configure_tensorflow, return_freed_memory

    worker = get_worker()
    client = get_client()
    started = Event(f"{channel}-started", client=client)
    if started.is_set():
        # The scheduler re-runs a task whose worker died; the server has already failed this job.
        raise WorkerLostError("This job's first worker was lost; it is not run a second time.")
    started.set()
    configure_tensorflow(workers=worker.state.nthreads)
    data = _worker_dataset(dataset)

    def send(kind: str, payload: Any) -> None:
        # Structured-log events are pushed by the scheduler to the subscribed server: no polling.
        worker.log_event(topic, pickle.dumps((channel, kind, payload)))

    # The worker's own control: the server's Stop, Pause and rate requests arrive through Dask.
    stop = TrainingControl()
    finished = threading.Event()
    send("started", worker.address)
    batcher = EventBatcher(send=lambda batch: send("events", batch), on_failure=lambda _: stop.set())

    def watch_stop() -> None:
        remote_stop = Event(f"{channel}-stop", client=client)
        remote_pause = Event(f"{channel}-pause", client=client)
        remote_rate = Variable(f"{channel}-rate", client=client)
        applied, reported = 0, False
        while not finished.is_set():
            try:
                if remote_stop.wait(timeout=0.5):
                    stop.set()
                    return
                started = stop.learning_rate is not None or stop.fixed_rate_reason is not None
                if started and not reported:
                    # Training has started: the server's control learns the rate (or why it is fixed),
                    # before any pause this loop passes on, so before any TrainingPaused event.
                    send("control", (stop.learning_rate, stop.fixed_rate_reason))
                    reported = True
                if remote_pause.is_set():
                    stop.pause()
                else:
                    stop.resume()
                serial, rate = remote_rate.get(timeout=5)
                if serial > applied:
                    applied = serial
                    with contextlib.suppress(ValueError):  # Checked on the server already.
                        stop.request_learning_rate(rate)
            except Exception:  # noqa: BLE001 - The scheduler is gone: nobody will collect the result.
                stop.set()
                return

    watcher = threading.Thread(target=watch_stop, name="ltl-stop-watcher", daemon=True)
    watcher.start()
    try:
        result = spec.run(on_event=batcher.emit, stop=stop, data=data)
    finally:
        batcher.close()
        finished.set()
    portable = to_portable(spec.task, result)
    del result
    gc.collect()
    return_freed_memory()
    send("done", None)
    return portable


def _fingerprint(data: MnistData) -> str:
    """A digest of the dataset's arrays, so one dataset is scattered once however often it is used."""
    digest = hashlib.blake2b(digest_size=16)
    for array in (data.train_images, data.train_labels, data.test_images, data.test_labels):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


class _RemoteControls:
    """A job's Pause (a Dask Event) and learning-rate request (a Dask Variable), sent from the server."""

    def __init__(self, *, pause: Any, rate: Any) -> None:
        self.pause = pause
        self.rate = rate
        self._pause_sent = False
        self._rates_sent = 0

    def send(self, control: TrainingControl) -> None:
        """Pass on what changed in the job's control since the last call."""
        wanted = control.pause_requested
        if wanted != self._pause_sent:
            if wanted:
                self.pause.set()
            else:
                self.pause.clear()
            self._pause_sent = wanted
        rate = control.take_requested_rate()
        if rate is not None:
            self._rates_sent += 1
            self.rate.set((self._rates_sent, rate))


class DaskBackend:
    """A connected Dask client that runs training specs on the cluster's workers."""

    def __init__(self, client: Client, *, address: str) -> None:
        self.client = client
        self.address = address
        self.lost_reason: str | None = None
        self._lock = threading.Lock()
        self._workers: dict[str, int] = {}
        self._workers_checked = 0.0
        self._scattered: collections.OrderedDict[str, Future[Any]] = collections.OrderedDict()
        self._scatter_lock = threading.Lock()
        # Workers' events for this server arrive on one topic and are sorted into each job's inbox.
        self._topic = f"ltl-events-{client.id}"
        self._inboxes: dict[str, queue.Queue[tuple[str, Any]]] = {}
        client.subscribe_topic(self._topic, self._deliver)
        self._refresh_workers(force=True)

    @classmethod
    def connect(
        cls, address: str, *, security: Security | None = None, timeout: float = 2.0
    ) -> DaskBackend:
        """Connect within `timeout` seconds (a hard deadline), else raise ClusterUnavailableError."""
        import distributed

        outcome: dict[str, Any] = {}
        abandoned = threading.Event()

        def attempt() -> None:
            try:
                client = distributed.Client(
                    address, timeout=timeout, security=security, set_as_default=False
                )
            except Exception as error:  # noqa: BLE001 - Any failure to connect means "not reachable".
                outcome["error"] = error
                return
            if abandoned.is_set():
                client.close(timeout=1)
                return
            outcome["client"] = client

        thread = threading.Thread(target=attempt, name="ltl-dask-connect", daemon=True)
        thread.start()
        # A scheduler that accepts the connection but never answers must not hang the app either.
        thread.join(timeout + JOIN_MARGIN_SECONDS)
        if "client" not in outcome:
            abandoned.set()
            error = outcome.get("error")
            detail = f": {type(error).__name__}: {error}" if error else ""
            raise ClusterUnavailableError(
                f"could not reach the Dask scheduler at {address} within {timeout:g} s{detail}."
            )
        return cls(outcome["client"], address=address)

    @property
    def available(self) -> bool:
        """Whether the scheduler is still connected."""
        if self.lost_reason is None and self.client.status not in ("running", "connecting"):
            self.lost_reason = f"the connection to the Dask scheduler at {self.address} was lost"
        return self.lost_reason is None

    def capacity(self) -> int:
        """Worker threads in the cluster right now (refreshed at most twice a second)."""
        self._refresh_workers()
        with self._lock:
            return sum(self._workers.values())

    def worker_alive(self, address: str) -> bool:
        """Whether the scheduler still lists the worker; an absence is confirmed by a fresh look."""
        self._refresh_workers()
        with self._lock:
            if address in self._workers:
                return True
        # A list fetched just before the worker registered must not fail a healthy job.
        self._refresh_workers(force=True)
        with self._lock:
            return address in self._workers

    def close(self) -> None:
        """Release the scattered data and disconnect."""
        with self._scatter_lock:
            self._scattered.clear()
        try:
            self.client.close(timeout=2)
        except Exception:  # noqa: BLE001 - Closing a client whose scheduler is gone may fail; it is gone.
            pass

    def run(
        self,
        spec: TrainingSpec,
        emit: Callable[[Any], None],
        stop: threading.Event,
        *,
        on_delay: Callable[[EventDelay], None] | None = None,
    ) -> Any:
        """Run `spec` on a worker, relaying its events to `emit` and `stop` to it; returns its result."""
        from distributed import Event, Variable

        if not self.available:
            raise ClusterUnavailableError(f"{self.lost_reason}; press Train again to train here.")
        channel = f"ltl-{uuid.uuid4().hex}"
        inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._inboxes[channel] = inbox
        stop_event = Event(f"{channel}-stop", client=self.client)
        # Pause travels as a Dask Event, a new learning rate as a Variable (serial number, rate).
        controls = _RemoteControls(
            pause=Event(f"{channel}-pause", client=self.client),
            rate=Variable(f"{channel}-rate", client=self.client),
        )
        controls.rate.set((0, 0.0))
        future: Future[Any] | None = None
        try:
            future = self.client.submit(
                run_on_worker,
                spec.without_data(),
                self._dataset(spec),
                topic=self._topic,
                channel=channel,
                key=f"ltl-train-{spec.task}-{channel[4:]}",
                pure=False,
            )
            self._follow(
                future,
                inbox=inbox,
                emit=emit,
                stop=stop,
                stop_event=stop_event,
                controls=controls,
                on_delay=on_delay,
            )
            portable: PortableResult = future.result()
        except WorkerLostError:
            raise  # Its future was cancelled here, on purpose: the cluster itself is fine.
        except Exception as error:
            if future is not None and future.status == "cancelled" and self.lost_reason is None:
                # Dask cancels every future of a client whose scheduler connection broke.
                self.lost_reason = f"the connection to the Dask scheduler at {self.address} was lost"
            if not self.available:
                raise ClusterUnavailableError(
                    f"Training stopped: {self.lost_reason} ({type(error).__name__}). Press Train again "
                    "to train on this server."
                ) from error
            raise
        finally:
            del self._inboxes[channel]
            self._forget(stop_event, channel, controls=controls)
        return from_portable(portable)

    def _follow(
        self,
        future: Future[Any],
        *,
        inbox: queue.Queue[tuple[str, Any]],
        emit: Callable[[Any], None],
        stop: threading.Event,
        stop_event: Any,
        controls: _RemoteControls,
        on_delay: Callable[[EventDelay], None] | None,
    ) -> None:
        """Relay the job's events until its worker says it is done, it fails, or its worker is lost."""
        worker: str | None = None
        stop_sent = False
        done_at: float | None = None
        while True:
            if stop.is_set() and not stop_sent:
                stop_event.set()
                stop_sent = True
            if isinstance(stop, TrainingControl):
                controls.send(stop)
            try:
                kind, payload = inbox.get(timeout=POLL_SECONDS)
            except queue.Empty:
                kind, payload = "", None
            if kind == "started":
                worker = payload
            elif kind == "events":
                now = time.time()
                sent, batch = payload
                for stamped, event in batch:
                    if on_delay is not None:
                        on_delay(EventDelay(batched=sent - stamped, transit=now - sent))
                    emit(event)
            elif kind == "control" and isinstance(stop, TrainingControl):
                rate, fixed_reason = payload
                stop.training_started(learning_rate=rate, fixed_reason=fixed_reason)
            elif kind == "done":
                return
            if future.done():
                if future.status != "finished":
                    return  # Failed or cancelled: `future.result()` raises the reason.
                # Finished: its last events are on their way behind the result; give them a moment.
                done_at = done_at or time.monotonic()
                if time.monotonic() - done_at > 2.0:
                    return
            if not self.available:
                raise ClusterUnavailableError(f"Training stopped: {self.lost_reason}.")
            if worker is not None and not self.worker_alive(worker):
                future.cancel()
                raise WorkerLostError(
                    f"The Dask worker running this job ({worker}) stopped in the middle of training "
                    "(crashed, killed or out of memory). The job was not re-run: press Train to "
                    "try again."
                )

    def _deliver(self, event: tuple[float, Any]) -> None:
        """Sort one pushed message into its job's inbox (runs on the client's event loop: be quick)."""
        try:
            channel, kind, payload = pickle.loads(event[1])
        except Exception:  # noqa: BLE001 - Someone else's message on this topic; not ours to read.
            return
        inbox = self._inboxes.get(channel)
        if inbox is not None:
            inbox.put((kind, payload))

    def _forget(self, stop_event: Any, channel: str, *, controls: _RemoteControls) -> None:
        """Drop the job's events from the scheduler (best effort once it is gone)."""
        if not self.available:
            return
        from distributed import Event

        try:
            stop_event.clear()
            controls.pause.clear()
            controls.rate.delete()
            Event(f"{channel}-started", client=self.client).clear()
        except Exception:  # noqa: BLE001 - Cleanup must not turn a finished job into a failed one.
            pass

    def _dataset(self, spec: TrainingSpec) -> str | None:
        """The name the job's dataset is published under: sent to the cluster once, then reused."""
        if spec.task != "digits":
            return None
        from core.mnist import cached_mnist

        data = spec.data if spec.data is not None else cached_mnist()
        name = f"ltl-mnist-{_fingerprint(data)}"
        with self._scatter_lock:
            if name not in self._scattered:
                # One copy on one worker, published by name; each worker copies it once (see
                # `_worker_dataset`). A broadcast would not last: Dask's memory manager drops replicas.
                future = self.client.scatter(data, hash=False)
                self.client.publish_dataset(future, name=name, override=True)
                self._scattered[name] = future
            self._scattered.move_to_end(name)
            while len(self._scattered) > MAX_SCATTERED:
                old_name, _ = self._scattered.popitem(last=False)
                self.client.unpublish_dataset(old_name)
            return name

    def _refresh_workers(self, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._workers_checked < WORKERS_REFRESH_SECONDS:
                return
            self._workers_checked = now
        try:
            info = self.client.scheduler_info(n_workers=-1)
        except Exception:  # noqa: BLE001 - Leave the last known list; `available` reports the loss.
            return
        workers = {
            address: int(worker.get("nthreads", 1)) for address, worker in info["workers"].items()
        }
        with self._lock:
            self._workers = workers
