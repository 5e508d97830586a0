"""Tests for core.runtime.PacedCollections: full collections on request, at most one per interval."""

from __future__ import annotations

import threading
import time

import pytest

from core.runtime import PacedCollections

DEADLINE = 10.0


class Collector:
    """A stand-in for gc.collect that counts its calls and can be held inside one."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.inside = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self) -> None:
        self.calls.append(threading.current_thread().name)
        self.inside.set()
        assert self.gate.wait(DEADLINE)


def test_a_request_after_a_quiet_spell_is_collected_at_once_off_the_calling_thread():
    collector, after = Collector(), []
    # The interval is an hour: only a first request (none before it) can be served within the test.
    collections = PacedCollections(
        3600, collect=collector, after=lambda: after.append(len(collector.calls))
    )
    try:
        collections.request().result(DEADLINE)
        assert collector.calls == ["ltl-collect"]
        assert after == [1]  # Memory is handed back after the collection, not before.
    finally:
        collections.close()


def test_requests_within_one_interval_share_one_collection():
    collector = Collector()
    collections = PacedCollections(3600, collect=collector)
    try:
        collections.request().result(DEADLINE)
        later = [collections.request() for _ in range(5)]
        # The hour since the first collection has not passed: nothing more is collected yet.
        assert not any(future.done() for future in later) and len(collector.calls) == 1
        started = time.monotonic()
        collections.close()  # Serves what waits, at once.
        for future in later:
            future.result(0)
        assert len(collector.calls) == 2  # One collection for all five.
        assert time.monotonic() - started < DEADLINE
    finally:
        collections.close()


def test_requests_made_during_a_collection_wait_for_the_next_one():
    collector = Collector()
    collections = PacedCollections(0, collect=collector)
    try:
        collector.gate.clear()
        first = collections.request()
        assert collector.inside.wait(DEADLINE)
        during = [collections.request(), collections.request()]
        assert not first.done()
        collector.gate.set()
        first.result(DEADLINE)
        for future in during:
            future.result(DEADLINE)
        # The collection under way may already have walked past their garbage: they get their own.
        assert len(collector.calls) == 2
    finally:
        collector.gate.set()
        collections.close()


def test_a_failed_collection_reaches_its_requests_and_the_next_one_runs():
    calls = []

    def collect() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("no room")

    collections = PacedCollections(0, collect=collect)
    try:
        with pytest.raises(MemoryError, match="no room"):
            collections.request().result(DEADLINE)
        collections.request().result(DEADLINE)  # The thread survived the failure.
        assert len(calls) == 2
    finally:
        collections.close()


def test_no_request_is_taken_once_closed():
    collections = PacedCollections(0, collect=lambda: None)
    collections.close()
    with pytest.raises(RuntimeError, match="closed"):
        collections.request()
