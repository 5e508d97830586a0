"""Process-wide TensorFlow settings, applied once before the first model is built."""

from __future__ import annotations

import os
import threading

_configured = threading.Lock()
_done = False


def tensorflow_threads(*, workers: int) -> int:
    """Intra-op threads per training job: `LTL_TF_THREADS`, else the cores shared among the workers."""
    value = os.environ.get("LTL_TF_THREADS", "").strip()
    if value:
        try:
            threads = int(value)
        except ValueError:
            raise ValueError(f"LTL_TF_THREADS must be a whole number, not {value!r}.") from None
        if not 1 <= threads <= 256:
            raise ValueError(f"LTL_TF_THREADS must be between 1 and 256, not {threads}.")
        return threads
    return max(1, (os.cpu_count() or 1) // max(1, workers))


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
