"""A `dask worker --preload core.worker_setup` hook: load Keras and size TensorFlow before any job.

Importing TensorFlow holds the GIL for seconds; done in the first task it froze the worker's event loop
(9 s measured) and delayed that job's first curve point. Preloaded, it happens while the worker starts.
"""

from __future__ import annotations

from typing import Any


def dask_setup(worker: Any) -> None:
    """Called by Dask once per worker process, before it takes tasks."""
    prepare_training_process(threads=worker.state.nthreads)


def prepare_training_process(*, threads: int) -> None:
    """Size TensorFlow for `threads` task threads, load the training code and freeze its objects."""
    from core.runtime import configure_tensorflow, freeze_imported_objects

    configure_tensorflow(workers=threads)
    import core.addition  # noqa: F401 - Imported for its side effect: Keras is loaded and ready.
    import core.digits  # noqa: F401

    freeze_imported_objects()
