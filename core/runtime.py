"""Process-wide TensorFlow settings, applied once before the first model is built."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading

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
