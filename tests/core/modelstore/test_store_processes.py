"""Several processes sharing one store directory: saves, renames, deletes, loads, reopens and a kill."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from core.modelstore.store import SWEEP_LOCK_FILE_NAME, ModelNotFoundError, ModelStore, StoreError

# Seconds of random work once every process is ready (importing Keras in each one comes first).
ACTIVITY_SECONDS = 6.0
READY_TIMEOUT_SECONDS = 300.0
SAVERS = 3
REOPENERS = 2
KILLS = 3


def tflite_bytes(generator: random.Random, size: int) -> bytes:
    """Bytes the store accepts as a TFLite file (FlatBuffers header with "TFL3"), random after that."""
    return b"\x1c\x00\x00\x00TFL3" + generator.randbytes(size)


def saver(directory: str, seed: int, start: Any, stop: Any, results: Any) -> None:
    """Save, rename, delete and read models at random; report what it kept and every failure."""
    try:
        results.put(_save_at_random(directory, seed, start, stop))
    except BaseException as error:  # Reported to the test: a crash must not look like silence.
        start.wait()
        results.put({"kept": {}, "failures": [f"crashed: {type(error).__name__}: {error}"]})


def _save_at_random(directory: str, seed: int, start: Any, stop: Any) -> dict[str, Any]:
    from tests.utils.models import tiny_digits_model

    generator = random.Random(seed)
    store = ModelStore(directory)
    model = tiny_digits_model(softmax=False)
    kept: dict[str, str] = {}  # Model id -> sha256 of its bytes, for the models this process owns.
    failures: list[str] = []
    counter = 0
    start.wait()
    while not stop.is_set():
        counter += 1
        action = generator.random()
        try:
            if action < 0.45 or not kept:
                name = f"p{seed} m{counter}"
                if generator.random() < 0.3:
                    # Keras writes by path: the lock must still cover the file it writes.
                    record = store.save_keras(model, name=name, task="digits", config={}, metrics={})
                else:
                    data = tflite_bytes(generator, generator.randrange(1_000, 200_000))
                    record = store.save_bytes(
                        data, name=name, task="digits", format="tflite-int8", config={}, metrics={}
                    )
                kept[record.id] = record.sha256
            elif action < 0.6:
                model_id = generator.choice(sorted(kept))
                store.rename(model_id, f"p{seed} renamed {counter}")
            elif action < 0.75:
                model_id = generator.choice(sorted(kept))
                store.delete(model_id)
                del kept[model_id]
            else:
                model_id = generator.choice(sorted(kept))
                data = store.read_bytes(model_id)
                if hashlib.sha256(data).hexdigest() != kept[model_id]:
                    failures.append(f"{model_id} read back different bytes")
                # Other processes' models may vanish at any moment; only the kind of error matters.
                others = [other.id for other in store.list_models() if other.id not in kept]
                if others:
                    try:
                        store.read_bytes(generator.choice(others))
                    except (ModelNotFoundError, StoreError) as error:
                        if "corrupt" in str(error):
                            failures.append(str(error))
        except (StoreError, ValueError) as error:
            failures.append(f"{type(error).__name__}: {error}")
    store.close()
    return {"kept": kept, "failures": failures}


def reopener(directory: str, start: Any, stop: Any, results: Any) -> None:
    """Open and close the store in a loop, which sweeps what dead writers left each time."""
    start.wait()
    opened = 0
    failures: list[str] = []
    while not stop.is_set():
        try:
            ModelStore(directory).close()
            opened += 1
        except Exception as error:  # A crashed sweep is a failure too, not a dead process.
            failures.append(f"reopening failed: {type(error).__name__}: {error}")
    results.put({"kept": {}, "failures": failures, "opened": opened})


def victim(directory: str, ready: Any) -> None:
    """Save large models without end, until the test SIGKILLs this process mid-save."""
    generator = random.Random(os.getpid())
    store = ModelStore(directory)
    ready.set()
    counter = 0
    while True:
        counter += 1
        data = tflite_bytes(generator, 2_000_000)
        store.save_bytes(
            data,
            name=f"victim {os.getpid()} {counter}",
            task="digits",
            format="tflite-int8",
            config={},
            metrics={},
        )


def test_processes_sharing_a_store_lose_nothing_and_never_fail_a_save(tmp_path: Path) -> None:
    directory = str(tmp_path / "models")
    ModelStore(directory).close()
    context = multiprocessing.get_context("spawn")
    start, stop = context.Event(), context.Event()
    results = context.Queue()
    workers = [
        context.Process(target=saver, args=(directory, seed, start, stop, results))
        for seed in range(SAVERS)
    ] + [
        context.Process(target=reopener, args=(directory, start, stop, results))
        for _ in range(REOPENERS)
    ]
    for worker in workers:
        worker.start()
    kills = 0
    try:
        # Each victim is killed mid-save while the others work; the first one's import overlaps theirs.
        for _ in range(KILLS):
            ready = context.Event()
            target = context.Process(target=victim, args=(directory, ready))
            target.start()
            assert ready.wait(READY_TIMEOUT_SECONDS), "the victim process never opened the store"
            start.set()
            # Long enough for a few 2 MB saves to start, short enough to land inside one.
            deadline = time.monotonic() + random.uniform(0.3, 1.2)
            while time.monotonic() < deadline and target.is_alive():
                target.join(timeout=deadline - time.monotonic())
            os.kill(target.pid or 0, signal.SIGKILL)
            target.join(timeout=30)
            kills += target.exitcode == -signal.SIGKILL
        deadline = time.monotonic() + ACTIVITY_SECONDS
        while time.monotonic() < deadline:
            workers[0].join(timeout=deadline - time.monotonic())
    finally:
        stop.set()
        start.set()
    reports = [results.get(timeout=READY_TIMEOUT_SECONDS) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)

    assert kills == KILLS  # Every victim really died by SIGKILL, not by an error of its own.
    failures = [failure for report in reports for failure in report["failures"]]
    assert failures == []  # No save, rename, delete or read failed.
    assert all(report["opened"] > 0 for report in reports if "opened" in report)
    kept = {model_id: digest for report in reports for model_id, digest in report["kept"].items()}
    assert kept, "the savers saved nothing"
    with ModelStore(directory) as store:
        listed = {model.id: model for model in store.list_models()}
        # Nothing lost: every model a worker kept is listed with the bytes it saved.
        assert all(listed[model_id].sha256 == digest for model_id, digest in kept.items())
        # Nothing half-written: every listed file (victims' completed saves included) is sound.
        assert set(store.verify_all().values()) == {None}
        # What the killed victims left behind was swept; nothing but listed files and the index remain.
        leftovers = sorted(
            name
            for name in os.listdir(directory)
            if not name.startswith("index.sqlite3")
            and name not in {m.file_name for m in listed.values()}
        )
        assert set(leftovers) <= {SWEEP_LOCK_FILE_NAME}
