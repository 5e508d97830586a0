"""Process setup for the served app: TensorFlow thread pools, a frozen heap, Keras state kept.

`prepare_process()` is called once at start by `streamlit_app.py`, before any page builds a model. Each
step below exists because a training thread shares the process (and the GIL) with every page script.
"""

from __future__ import annotations

import sys
import threading

from core.jobs import default_workers
from core.runtime import configure_tensorflow, freeze_imported_objects

_prepared = threading.Lock()
_done = False


def prepare_process() -> None:
    """Size TensorFlow's pools, freeze the import-time heap, keep Keras state; later calls do nothing."""
    global _done
    with _prepared:
        if _done:
            return
        # Intra-op threads are shared out among the runner's workers so jobs leave cores for the server.
        configure_tensorflow(workers=default_workers())
        freeze_imported_objects()
        keep_keras_state_between_runs()
        _done = True


def keep_keras_state_between_runs() -> None:
    """Stop Streamlit calling `keras.backend.clear_session()` after every script and fragment run."""
    from streamlit.runtime.scriptrunner import script_runner

    # Streamlit 1.67 has no setting for this. clear_session() clears TensorFlow's eager kernel cache
    # and resets Keras's name counters process-wide, so a page polled every second made a training
    # thread rebuild its kernels each time (3x slower, measured) and concurrent model builds collide
    # on layer names. The app never relies on that reset: models are built in jobs, fully named.
    def clean_problem_modules() -> None:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close("all")

    if not hasattr(script_runner, "_clean_problem_modules"):
        raise RuntimeError("Streamlit's script runner changed; review keep_keras_state_between_runs().")
    script_runner._clean_problem_modules = clean_problem_modules
