"""In-memory model cache: a thread-safe LRU of loaded objects, bounded by the bytes of their files.

Kept hand-written rather than built on cachetools (8.0): `LRUCache(maxsize, getsizeof=...)` would
replace only the ten lines of `_insert` (and raises ValueError for an object larger than the budget,
which this cache hands back uncached), while its stampede guard, `cached(..., condition=...)`, wraps
one function with a fixed key and cannot take this cache's per-call loader and size, count a wait as a
hit, or hand a failed load's error to the threads that waited on it. The single-flight futures are
most of this module, so cachetools would not make it shorter.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from core.settings import check_whole, plain_text

# Far above any memory; the bound only keeps the arithmetic in plain integers.
MAX_BYTES = 1 << 60


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of the cache's counters and occupancy."""

    hits: int  # Requests answered without calling a loader, waits on another thread's load included.
    misses: int  # Requests that called their loader.
    evictions: int  # Entries dropped to make room.
    entries: int
    used_bytes: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached object's key and size, as listed by `ModelCache.entries`."""

    model_id: str
    size: int


class ModelCache:
    """Thread-safe LRU of loaded models keyed by model id; concurrent misses on one id load it once."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = check_whole("max_bytes", max_bytes, 1, MAX_BYTES)
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._lock = threading.Lock()
        # Least recently used first; each value is (object, size in bytes).
        self._entries: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self._used_bytes = 0
        # Loads under way: later requests for the same id wait on the future instead of loading again.
        self._loading: dict[str, Future[object]] = {}

    def get_or_load(self, model_id: str, loader: Callable[[], object], *, size: int) -> object:
        """The cached object for `model_id`; `loader` runs (once, across threads) when it is absent."""
        size = check_whole("size", size, 0, MAX_BYTES)
        key = plain_text(model_id)
        if key is None:
            raise ValueError(f"model_id must be a model's id (text), not {type(model_id).__name__}.")
        model_id = key
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is not None:
                self._entries.move_to_end(model_id)
                self.hits += 1
                return entry[0]
            pending = self._loading.get(model_id)
            if pending is None:
                future: Future[object] = Future()
                self._loading[model_id] = future
                self.misses += 1
            else:
                self.hits += 1
        if pending is not None:
            # Another thread is loading this id; its result (or its error) is ours too.
            return pending.result()
        try:
            value = loader()
        except BaseException as error:
            with self._lock:
                del self._loading[model_id]
            future.set_exception(error)
            raise
        with self._lock:
            del self._loading[model_id]
            self._insert(model_id, value, size)
        future.set_result(value)
        return value

    def _insert(self, model_id: str, value: object, size: int) -> None:
        # An object bigger than the whole cache is handed back but not kept: keeping it would evict
        # everything else and then itself on the next insert.
        if size > self.max_bytes:
            return
        while self._entries and self._used_bytes + size > self.max_bytes:
            _, (_, evicted_size) = self._entries.popitem(last=False)
            self._used_bytes -= evicted_size
            self.evictions += 1
        self._entries[model_id] = (value, size)
        self._used_bytes += size

    def discard(self, model_id: str) -> bool:
        """Forget `model_id` (after it was deleted or replaced); True if it was cached."""
        with self._lock:
            entry = self._entries.pop(model_id, None)
            if entry is None:
                return False
            self._used_bytes -= entry[1]
            return True

    def clear(self) -> None:
        """Drop every entry; the counters are kept."""
        with self._lock:
            self._entries.clear()
            self._used_bytes = 0

    def entries(self) -> list[CacheEntry]:
        """The cached ids and sizes, most recently used first."""
        with self._lock:
            return [
                CacheEntry(model_id, size) for model_id, (_, size) in reversed(self._entries.items())
            ]

    def stats(self) -> CacheStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return CacheStats(
                hits=self.hits,
                misses=self.misses,
                evictions=self.evictions,
                entries=len(self._entries),
                used_bytes=self._used_bytes,
                max_bytes=self.max_bytes,
            )

    def __contains__(self, model_id: object) -> bool:
        with self._lock:
            return model_id in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
