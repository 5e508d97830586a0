"""The one job runner per process and the per-session handle, created through `st.cache_resource`."""

from __future__ import annotations

import gc
import uuid
from dataclasses import dataclass

import streamlit as st

from core.jobs import Job, JobRunner, default_workers
from core.runtime import configure_tensorflow


@st.cache_resource(show_spinner=False)
def get_runner() -> JobRunner:
    """The process-wide bounded job runner."""
    workers = default_workers()
    configure_tensorflow(workers=workers)
    import keras  # noqa: F401 - Imported here so the freeze below covers TensorFlow's objects.

    # Streamlit runs a full garbage collection after every script and fragment run (also inside
    # keras.backend.clear_session). With TensorFlow loaded that walks ~400k objects and holds the GIL
    # for ~0.2 s, starving training threads. Freezing the long-lived import-time objects makes each
    # collection skip them (0.2 s -> ~0 ms), so polling no longer slows training.
    gc.freeze()
    return JobRunner(max_workers=workers)


@dataclass
class SessionHandle:
    """Identifies one browser session to the runner; releasing it cancels the session's jobs."""

    owner: str
    runner: JobRunner


def _release_session(handle: SessionHandle) -> None:
    handle.runner.cancel_owner(handle.owner)


@st.cache_resource(scope="session", on_release=_release_session, show_spinner=False)
def session_handle() -> SessionHandle:
    """This browser session's handle, released (and its jobs cancelled) when the session ends."""
    return SessionHandle(owner=uuid.uuid4().hex, runner=get_runner())


def current_job(state_key: str) -> Job | None:
    """The job whose id the page keeps under `state_key`, if the runner still holds it."""
    return get_runner().get(st.session_state.get(state_key))
