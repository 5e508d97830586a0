"""Loading stored Keras models through the shared memory cache, with progress events for the runner."""

from __future__ import annotations

import time
from collections.abc import Callable

import keras

from core.events import LoadFinished, LoadProgress
from core.modelstore.cache import ModelCache
from core.modelstore.store import ModelStore


def load_cached(
    store: ModelStore,
    cache: ModelCache,
    model_id: str,
    *,
    on_progress: Callable[[float], None] | None = None,
) -> keras.Model:
    """The cached Keras model for `model_id`, else loaded through the store with progress and cached."""
    # Asking the index first makes a deleted model fail here even while it is still cached.
    record = store.get(model_id)
    model = cache.get_or_load(
        model_id, lambda: store.load_keras(model_id, on_progress=on_progress), size=record.size_bytes
    )
    if not isinstance(model, keras.Model):
        raise TypeError(f"the cache holds a {type(model).__name__} for {model_id!r}, not a Keras model.")
    return model


def load_with_progress(
    store: ModelStore, cache: ModelCache, model_id: str, *, on_event: Callable[[object], None]
) -> LoadFinished:
    """Load through the cache (for the job runner), sending LoadProgress events and a LoadFinished."""
    misses_before = cache.misses
    started = time.perf_counter()
    load_cached(store, cache, model_id, on_progress=lambda fraction: on_event(LoadProgress(fraction)))
    finished = LoadFinished(
        model_id=model_id,
        seconds=time.perf_counter() - started,
        # Another session's load of another model may count too; good enough for a label.
        from_cache=cache.misses == misses_before,
    )
    on_event(finished)
    return finished
