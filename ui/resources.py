"""The one job runner per process and the per-session handle, created through `st.cache_resource`."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from core.jobs import Job, JobRunner, default_workers
from core.modelstore.cache import ModelCache
from core.modelstore.loading import load_cached
from core.modelstore.store import ModelStore
from core.runtime import PacedCollections, return_freed_memory
from core.settings import env_number
from ui.runs import RunRecord


@st.cache_resource(show_spinner=False)
def get_runner() -> JobRunner:
    """The process-wide bounded job runner (process tuning is `ui.process.prepare_process`)."""
    return JobRunner(max_workers=default_workers(), after_job=return_freed_memory)


@dataclass
class SessionHandle:
    """One browser session's claim on the server; releasing it frees everything the session held."""

    owner: str
    runner: JobRunner
    # The session's run lists (they also live in session state) and its uploaded dataset.
    run_lists: list[list[RunRecord]] = field(default_factory=list)
    uploaded_mnist: Any = None
    # The session's "My digits" sets (core.personal.PersonalDigits; they also live in session state).
    personal_sets: list[Any] = field(default_factory=list)


# Where closed sessions drop their models and data, one session at a time: Streamlit calls `on_release`
# on the web server's event loop, which must not wait for it.
_RELEASES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ltl-release")
# Its thread starts now rather than at the first release, which lands whenever Streamlit notices a
# closed tab: the server's thread count is then steady from the first page on (the classroom test
# compares counts across a burst of sessions and once caught the thread appearing in between).
_RELEASES.submit(int).result()
# Keras models hold reference cycles, so a dropped model's memory comes back only with a full
# collection (and malloc_trim). One per closed tab held the GIL for up to 0.8 s, 85 times in a
# class's two minutes: closed sessions within `LTL_GC_SECONDS` of each other share one.
GC_SECONDS = env_number("LTL_GC_SECONDS", default=30, low=0, high=3600, whole=False)
_COLLECTIONS = PacedCollections(GC_SECONDS, after=return_freed_memory)


def _release_session(handle: SessionHandle) -> None:
    """Cancel the session's jobs now; drop its models and data on the release thread."""
    release_session(handle)


def release_session(handle: SessionHandle) -> Future[None]:
    """As `_release_session`, with a Future that resolves once the session's memory is collected."""
    # Streamlit releases the handle when the browser disconnects, but keeps the session's state for
    # `server.disconnectedSessionTTL` and evicts it only lazily: the models and data must go now.
    handle.runner.cancel_owner(handle.owner)
    freed: Future[None] = Future()

    def collect(dropped: Future[None]) -> None:
        error = dropped.exception()
        if error is not None:
            freed.set_exception(error)
            return
        try:
            collected = _COLLECTIONS.request()
        except RuntimeError as closed:  # Only once the process is shutting down.
            freed.set_exception(closed)
            return
        collected.add_done_callback(lambda outcome: _settle(freed, outcome))

    _RELEASES.submit(_drop_session, handle).add_done_callback(collect)
    return freed


def _settle(future: Future[None], outcome: Future[None]) -> None:
    """Give `future` the outcome of the finished `outcome`: its error, or done."""
    error = outcome.exception()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(None)


def _drop_session(handle: SessionHandle) -> None:
    """Let go of everything the session held: its runs' models and results, uploads, personal digits."""
    for runs in handle.run_lists:
        for run in runs:
            run.release()
    handle.run_lists.clear()
    handle.uploaded_mnist = None
    for personal in handle.personal_sets:
        personal.clear()
    handle.personal_sets.clear()


@st.cache_resource(scope="session", on_release=_release_session, show_spinner=False)
def session_handle() -> SessionHandle:
    """This browser session's handle, released (jobs cancelled, models dropped) when it ends."""
    return SessionHandle(owner=uuid.uuid4().hex, runner=get_runner())


def session_runs(key: str) -> list[RunRecord]:
    """The page's runs in session state, registered so their models go when the session ends."""
    runs = st.session_state.setdefault(key, [])
    handle = session_handle()
    if not any(registered is runs for registered in handle.run_lists):
        handle.run_lists.append(runs)
    return runs


def current_job(state_key: str) -> Job | None:
    """The job whose id the page keeps under `state_key`, if the runner still holds it."""
    return get_runner().get(st.session_state.get(state_key))


def cache_bytes() -> int:
    """Model cache size from `LTL_CACHE_MB` (default 256 MB)."""
    return int(env_number("LTL_CACHE_MB", default=256, low=1, high=65_536)) * 1024 * 1024


@st.cache_resource(show_spinner=False)
def get_store() -> ModelStore:
    """The process-wide model store (files plus SQLite index)."""
    return ModelStore()


@st.cache_resource(show_spinner=False)
def get_model_cache() -> ModelCache:
    """The process-wide in-memory LRU of loaded models, warmed with the most recently used model."""
    cache = ModelCache(cache_bytes())
    store = get_store()
    get_runner()

    def warm() -> None:
        recent = store.most_recent()
        if recent is not None and recent.format == "keras":
            try:
                load_cached(store, cache, recent.id)
            except ValueError:
                # A corrupt file is reported when someone loads it; warming is best effort.
                pass

    # In the background, so the first page does not wait for the load.
    threading.Thread(target=warm, name="ltl-warm-cache", daemon=True).start()
    return cache
