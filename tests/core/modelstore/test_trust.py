"""Hostile uploads refused from the bytes alone, in the server process, and the valid corpus accepted.

Each of the generated cases (see hostile_uploads.py) goes through `ModelStore.upload_keras`, the path
the page uses; all of these are refused before any child process starts. Every refusal's time and the
growth of this process's peak memory are written to test-artifacts/trust_static.json.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import psutil
import pytest

from core.modelstore import importer
from core.modelstore.store import SWEEP_LOCK_FILE_NAME, ModelStore
from core.modelstore.trust import (
    MAX_JSON_DEPTH,
    UploadRefused,
    check_keras_archive,
    detect_task,
    parse_json,
)
from tests.core.modelstore.hostile_uploads import Case, config_of, static_cases, with_config

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
CASES = static_cases()
MEASUREMENTS: dict[str, dict[str, float]] = {}


@contextmanager
def peak_rss_growth() -> Iterator[dict[str, float]]:
    """Samples this process's RSS every millisecond; yields a dict that gets the peak growth in MB."""
    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.001):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result: dict[str, float] = {}
    try:
        yield result
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], process.memory_info().rss)
        result["peak_growth_mb"] = (peak[0] - before) / 2**20


def import_directories() -> set[str]:
    """The child importer's temporary directories that exist now."""
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("ltl-import-")}


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelStore]:
    """One store for every case, holding one model so "unchanged" means something."""
    with ModelStore(tmp_path_factory.mktemp("trust-store")) as store:
        yield store


@pytest.fixture(scope="module")
def seeded_store(shared_store: ModelStore, valid_models: dict[str, keras.Model]) -> ModelStore:
    shared_store.save_keras(
        valid_models["digits-seed"], name="kept", task="digits", config={}, metrics={}
    )
    return shared_store


def test_the_suite_covers_every_class_with_at_least_300_hostile_uploads() -> None:
    kinds = {case.kind for case in CASES}
    assert kinds == {"1-code", "2-archive", "3-bomb", "5-polyglot", "6-metadata"}
    # Class 4 (non-finite weights) needs the weights file read, so it lives in test_trust_child.py.
    assert len(CASES) >= 300
    assert len({case.id for case in CASES}) == len(CASES)  # Every case is a different upload.


def test_every_valid_upload_passes_the_static_checks_with_its_true_size(
    valid_models: dict[str, keras.Model], valid_uploads: dict[str, bytes]
) -> None:
    for name, data in valid_uploads.items():
        report = check_keras_archive(data)
        model = valid_models[name]
        # The parameter count computed from config.json alone is the one Keras builds.
        assert report.parameters == model.count_params(), name
        assert (report.task, report.details) == detect_task(model), name


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_upload_is_refused_from_the_bytes(
    case: Case, valid_uploads: dict[str, bytes], seeded_store: ModelStore
) -> None:
    data = case.build(valid_uploads)
    listing = seeded_store.list_models()
    directories = import_directories()
    started = time.perf_counter()
    with peak_rss_growth() as memory, pytest.raises(ValueError) as refusal:
        seeded_store.upload_keras(data, name=f"hostile {CASES.index(case)}")
    seconds = time.perf_counter() - started
    MEASUREMENTS[case.id] = {"seconds": seconds, **memory}
    message = str(refusal.value)
    assert isinstance(refusal.value, UploadRefused), message
    assert len(message) > 20 and "Traceback" not in message
    assert seeded_store.list_models() == listing  # The store is unchanged.
    assert import_directories() == directories  # No child was needed and nothing was left behind.


def test_the_store_is_intact_after_every_hostile_upload(seeded_store: ModelStore) -> None:
    files = sorted(os.listdir(seeded_store.directory))
    assert [record.name for record in seeded_store.list_models()] == ["kept"]
    assert set(seeded_store.verify_all().values()) == {None}
    # Only the kept model's file, beside the index and the lock that open stores share.
    kept = [name for name in files if not name.startswith(("index.sqlite3", SWEEP_LOCK_FILE_NAME))]
    assert kept == [seeded_store.list_models()[0].file_name]
    artifacts = REPOSITORY_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    by_kind: dict[str, int] = {}
    for case_id in MEASUREMENTS:
        by_kind[case_id.split(":")[0]] = by_kind.get(case_id.split(":")[0], 0) + 1
    slowest = max(MEASUREMENTS.items(), key=lambda item: item[1]["seconds"], default=("", {}))
    (artifacts / "trust_static.json").write_text(
        json.dumps(
            {
                "refused": len(MEASUREMENTS),
                "by_class": by_kind,
                "slowest": {"case": slowest[0], **slowest[1]},
                "peak_growth_mb": max(
                    (value["peak_growth_mb"] for value in MEASUREMENTS.values()), default=0.0
                ),
            },
            indent=1,
        )
    )


def test_json_depth_is_checked_without_recursion() -> None:
    deep = b"[" * 1_000_000 + b"]" * 1_000_000
    with pytest.raises(UploadRefused, match=f"nests deeper than {MAX_JSON_DEPTH} levels"):
        parse_json(deep, what="config.json")
    # Brackets inside strings are text, not nesting.
    assert parse_json(json.dumps({"name": "[" * 100}).encode(), what="config.json") == {
        "name": "[" * 100
    }
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, what="x") is not None


def test_lambda_and_foreign_modules_keep_their_own_messages(valid_uploads: dict[str, bytes]) -> None:
    def lambda_layer(config: dict[str, object]) -> None:
        config["config"]["layers"][1]["class_name"] = "Lambda"  # type: ignore[index]

    def foreign_module(config: dict[str, object]) -> None:
        config["config"]["layers"][1]["module"] = "os"  # type: ignore[index]

    with pytest.raises(ValueError, match="contains a Lambda layer, which can run arbitrary code"):
        check_keras_archive(with_config(valid_uploads["digits-seed"], lambda_layer))
    with pytest.raises(ValueError, match="uses code from 'os', which is not part of Keras"):
        check_keras_archive(with_config(valid_uploads["digits-seed"], foreign_module))


def test_a_benign_edit_still_passes(valid_uploads: dict[str, bytes]) -> None:
    # The mutations are refused for what they change, not because rewriting the zip breaks it.
    rewritten = with_config(valid_uploads["digits-seed"], lambda config: None)
    assert check_keras_archive(rewritten).task == "digits"
    assert config_of(rewritten) == config_of(valid_uploads["digits-seed"])


def test_the_child_is_never_started_for_a_static_refusal(
    monkeypatch: pytest.MonkeyPatch, valid_uploads: dict[str, bytes], seeded_store: ModelStore
) -> None:
    started: list[object] = []
    monkeypatch.setattr(importer.subprocess, "Popen", lambda *a, **k: started.append(a))
    with pytest.raises(ValueError):
        seeded_store.upload_keras(valid_uploads["digits-seed"][:-1], name="cut")
    assert started == []


def test_the_hand_written_zip_of_a_valid_model_passes(valid_uploads: dict[str, bytes]) -> None:
    # The name and layout mutations build their archives this way; unmutated, it is accepted.
    from tests.core.modelstore.hostile_uploads import members_of, raw_zip

    assert check_keras_archive(raw_zip(members_of(valid_uploads["digits-seed"]))).task == "digits"
