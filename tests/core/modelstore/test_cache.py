"""Tests for core.modelstore.cache: LRU eviction by bytes, counters, one load per key across threads."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from core.modelstore import cache as cache_module
from core.modelstore.cache import CacheEntry, ModelCache


def test_evicts_least_recently_used_entries_by_bytes() -> None:
    cache = ModelCache(max_bytes=100)
    cache.get_or_load("a", lambda: "model a", size=40)
    cache.get_or_load("b", lambda: "model b", size=40)
    cache.get_or_load("a", lambda: "reloaded a", size=40)  # Makes "b" the least recently used.
    cache.get_or_load("c", lambda: "model c", size=40)

    assert "b" not in cache  # 40 + 40 + 40 > 100, so the oldest entry went.
    assert cache.entries() == [CacheEntry("c", 40), CacheEntry("a", 40)]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.evictions) == (1, 3, 1)
    assert stats.used_bytes == 80
    assert stats.entries == 2


def test_one_large_entry_evicts_several_small_ones() -> None:
    cache = ModelCache(max_bytes=100)
    for key in "abcd":
        cache.get_or_load(key, lambda key=key: key, size=25)
    cache.get_or_load("big", lambda: "big", size=60)

    assert [entry.model_id for entry in cache.entries()] == ["big", "d"]  # a, b and c made room.
    assert cache.stats().evictions == 3
    assert cache.stats().used_bytes == 85


def test_warm_get_returns_the_same_object_and_counts_a_hit() -> None:
    cache = ModelCache(max_bytes=1_000)
    loaded = object()
    first = cache.get_or_load("a", lambda: loaded, size=10)
    second = cache.get_or_load("a", lambda: pytest.fail("a warm get must not call the loader"), size=10)

    assert first is loaded and second is loaded
    assert (cache.hits, cache.misses) == (1, 1)


def test_object_larger_than_the_cache_is_returned_but_not_kept() -> None:
    cache = ModelCache(max_bytes=100)
    cache.get_or_load("small", lambda: "small", size=50)

    assert cache.get_or_load("huge", lambda: "huge", size=101) == "huge"
    assert "huge" not in cache
    assert "small" in cache  # Nothing was evicted for an object that could never fit.
    assert cache.stats().evictions == 0


def test_concurrent_requests_for_one_id_load_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    waiters = threading.Semaphore(0)

    class CountingFuture(Future[object]):
        """A future that signals each thread that starts waiting on it."""

        def result(self, timeout: float | None = None) -> object:
            waiters.release()
            return super().result(timeout)

    monkeypatch.setattr(cache_module, "Future", CountingFuture)
    cache = ModelCache(max_bytes=1_000)
    threads_count = 8
    calls = []
    results: list[object] = []

    def loader() -> object:
        calls.append(threading.get_ident())
        # Hold the load until every other thread is waiting on it, so the test really overlaps them.
        for _ in range(threads_count - 1):
            assert waiters.acquire(timeout=30)
        return object()

    def request() -> None:
        results.append(cache.get_or_load("same", loader, size=10))

    threads = [threading.Thread(target=request) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(calls) == 1  # Loaded once.
    assert len(results) == threads_count and all(result is results[0] for result in results)
    assert (cache.hits, cache.misses) == (threads_count - 1, 1)


def test_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache = ModelCache(max_bytes=1_000)

    def failing() -> object:
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        cache.get_or_load("a", failing, size=10)
    assert "a" not in cache
    # The next request tries again instead of replaying the old error.
    assert cache.get_or_load("a", lambda: "fine", size=10) == "fine"
    assert cache.misses == 2


def test_many_threads_keep_the_byte_bound_and_the_counts() -> None:
    cache = ModelCache(max_bytes=50)
    requests_per_thread = 200
    used_bytes_seen: list[int] = []

    def worker(offset: int) -> None:
        for index in range(requests_per_thread):
            key = str((index + offset) % 7)
            cache.get_or_load(key, lambda key=key: key, size=10)
            used_bytes_seen.append(cache.stats().used_bytes)

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    stats = cache.stats()
    assert len(used_bytes_seen) == 6 * requests_per_thread  # Every worker finished.
    assert max(used_bytes_seen) <= 50  # The bound held at every moment observed.
    assert stats.hits + stats.misses == 6 * requests_per_thread  # No request was lost or double counted.
    assert stats.used_bytes == 10 * stats.entries <= 50
    assert stats.misses - stats.evictions == stats.entries


def test_discard_and_clear_free_their_bytes() -> None:
    cache = ModelCache(max_bytes=100)
    cache.get_or_load("a", lambda: "a", size=30)
    cache.get_or_load("b", lambda: "b", size=30)

    assert cache.discard("a") is True
    assert cache.discard("a") is False
    assert cache.stats().used_bytes == 30
    cache.clear()
    assert len(cache) == 0 and cache.stats().used_bytes == 0


@pytest.mark.parametrize("max_bytes", [0, -1, 1.5, True])
def test_refuses_a_bound_that_is_not_a_positive_whole_number(max_bytes: object) -> None:
    with pytest.raises(ValueError, match="max_bytes must be (a whole number|between 1 and)"):
        ModelCache(max_bytes=max_bytes)  # type: ignore[arg-type]


def test_refuses_a_negative_size() -> None:
    cache = ModelCache(max_bytes=100)
    with pytest.raises(ValueError, match="size must be"):
        cache.get_or_load("a", lambda: "a", size=-1)
    assert cache.misses == 0
