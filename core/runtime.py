"""Process-wide runtime: TensorFlow's thread pools, the frozen heap, freed memory, paced collections."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from core.settings import env_number

_configured = threading.Lock()
_done = False


def tensorflow_threads(*, workers: int) -> int:
    """Intra-op threads per training job: `LTL_TF_THREADS`, else the cores shared among the workers."""
    default = max(1, (os.cpu_count() or 1) // max(1, workers))
    return int(env_number("LTL_TF_THREADS", default=default, low=1, high=256))


def configure_tensorflow(*, workers: int) -> None:
    """Quiet TensorFlow's logs and size its thread pools so jobs leave cores for the web server."""
    global _done
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _configured:
        if _done:
            return
        import tensorflow as tf

        threads = tensorflow_threads(workers=workers)
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            # Each job is a single chain of ops; running independent ops in parallel buys nothing here.
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            # TensorFlow was already initialised (for example by a test); its pools keep their sizes.
            pass
        _done = True


def freeze_imported_objects() -> None:
    """Keep garbage collection off the long-lived objects that importing TensorFlow and Keras left."""
    import keras  # noqa: F401 - Imported here so that the freeze covers TensorFlow's and Keras's objects.

    # A full collection with TensorFlow loaded walks 300k-400k objects and holds the GIL for 0.15-0.3 s
    # (measured): in the app it starved training threads and page scripts; on a Dask worker its event
    # loop could not send the job's events meanwhile (bench/cluster.py's event p99). Frozen objects
    # are never scanned again (0.15 s -> ~0 ms).
    gc.collect()
    gc.freeze()


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_libc = _load_libc()


def return_freed_memory() -> bool:
    """Hand memory that ended jobs freed back to the OS; false where the C library cannot (non-glibc)."""
    # glibc keeps freed blocks in its per-thread arenas: after 30 jobs the server's RSS stayed at its
    # peak although the models were gone (measured). malloc_trim(0) releases the free pages.
    if _libc is None:
        return False
    _libc.malloc_trim(0)
    return True


class PacedCollections:
    """Full garbage collections on request, on a thread of their own, at most one per `interval` s.

    A full collection holds the GIL throughout: with a class on the server one took 0.11 s on average
    and up to 0.8 s, and ran after every closed tab, 85 in two minutes (logged with `gc.callbacks`),
    stalling the event loop's health check and every page script behind it. Requests that arrive
    within one interval share one collection; a request made after a quiet interval is served at once.
    """

    def __init__(
        self,
        interval: float,
        *,
        collect: Callable[[], object] = gc.collect,
        after: Callable[[], object] | None = None,
    ) -> None:
        self.interval = interval
        self._collect = collect
        self._after = after
        self._changed = threading.Condition()
        self._waiting: list[Future[None]] = []
        self._last = -math.inf  # When the latest collection started (time.monotonic).
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="ltl-collect", daemon=True)
        self._thread.start()

    def request(self) -> Future[None]:
        """A Future that resolves once a full collection has run after this call."""
        future: Future[None] = Future()
        with self._changed:
            if self._closing:
                raise RuntimeError("These collections have been closed.")
            self._waiting.append(future)
            self._changed.notify()
        return future

    def close(self) -> None:
        """Serve the waiting requests at once, then stop the thread."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._thread.join()

    def _serve(self) -> None:
        while True:
            with self._changed:
                while not (self._waiting or self._closing):
                    self._changed.wait()
                # The rest of the interval since the last collection gathers more requests.
                while not self._closing and (rest := self._last + self.interval - time.monotonic()) > 0:
                    self._changed.wait(rest)
                batch, self._waiting = self._waiting, []
                closing = self._closing
                if batch:
                    self._last = time.monotonic()
            if batch:
                self._run(batch)
            if closing:
                return

    def _run(self, batch: list[Future[None]]) -> None:
        try:
            self._collect()
            if self._after is not None:
                self._after()
        except Exception as error:  # Handed to whoever waits on the request, not lost on this thread.
            for future in batch:
                future.set_exception(error)
            return
        for future in batch:
            future.set_result(None)
