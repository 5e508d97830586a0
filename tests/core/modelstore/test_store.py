"""Tests for core.modelstore.store: atomic saves, crash recovery, checksums, safe names, uploads."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import keras
import numpy as np
import pytest
from keras import layers

from core.addition import AdditionConfig, build_addition_rnn
from core.modelstore.cache import ModelCache
from core.modelstore.loading import load_cached
from core.modelstore.store import (
    INDEX_FILE_NAME,
    SWEEP_LOCK_FILE_NAME,
    TEMP_PREFIX,
    CorruptModelError,
    ModelNotFoundError,
    ModelStore,
    StoreError,
    default_store_directory,
)
from core.modelstore.trust import detect_task
from tests.utils.models import tiny_digits_model

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
# The smallest bytes the store accepts as a TFLite file: a FlatBuffers header with the "TFL3" identifier.
FAKE_TFLITE = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4


def keras_bytes(model: keras.Model, directory: Path) -> bytes:
    """The bytes of `model` saved as a .keras file."""
    path = directory / "upload.keras"
    model.save(path)
    return path.read_bytes()


def predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The model's outputs for `images` as a NumPy array."""
    return keras.ops.convert_to_numpy(model(images))


def model_files(directory: Path) -> list[str]:
    """The files in a store directory other than the SQLite index, its journals and the sweep lock."""
    return sorted(
        name
        for name in os.listdir(directory)
        if not name.startswith(INDEX_FILE_NAME) and name != SWEEP_LOCK_FILE_NAME
    )


def save_digits(store: ModelStore, model: keras.Model, name: str) -> str:
    """Save a digits model under `name` and return its id."""
    return store.save_keras(
        model, name=name, task="digits", config={"epochs": 1}, metrics={"accuracy": 0.5}
    ).id


@pytest.fixture(scope="module")
def digits_model() -> keras.Model:
    return tiny_digits_model()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ModelStore]:
    with ModelStore(tmp_path / "models") as opened:
        yield opened


@pytest.fixture
def sample_images() -> np.ndarray:
    return np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)


def test_round_trip_gives_identical_predictions(
    store: ModelStore, digits_model: keras.Model, sample_images: np.ndarray
) -> None:
    saved = store.save_keras(
        digits_model,
        name="First digits",
        task="digits",
        config={"epochs": 3},
        metrics={"accuracy": 0.98},
    )
    progress: list[float] = []
    loaded = store.load_keras(saved.id, on_progress=progress.append)

    np.testing.assert_array_equal(predict(loaded, sample_images), predict(digits_model, sample_images))
    file_bytes = (store.directory / saved.file_name).read_bytes()
    assert saved.sha256 == hashlib.sha256(file_bytes).hexdigest()
    assert saved.size_bytes == len(file_bytes)
    assert (saved.config, saved.metrics) == ({"epochs": 3}, {"accuracy": 0.98})
    assert saved.last_loaded is None and store.get(saved.id).last_loaded is not None
    assert progress == sorted(progress) and progress[-1] == 1.0  # Progress only grows, and ends full.


def test_files_are_named_by_id_never_by_the_users_name(
    store: ModelStore, digits_model: keras.Model
) -> None:
    saved = store.save_keras(digits_model, name="My model (v2)", task="digits", config={}, metrics={})

    assert saved.file_name == f"{saved.id}.keras"
    assert model_files(store.directory) == [saved.file_name]


@pytest.mark.parametrize(
    "name",
    ["../x", "a/b", "..", "", "x" * 65, "\x00", "a\\b", ".hidden", "tab\there", " lead", "trail ", 7],
)
def test_refuses_unsafe_names(store: ModelStore, name: object) -> None:
    with pytest.raises(ValueError, match="letters A-Z and a-z, digits"):
        store.save_bytes(
            FAKE_TFLITE, name=name, task="digits", format="tflite-int8", config={}, metrics={}
        )
    assert store.list_models() == []
    assert model_files(store.directory) == []


def test_accepts_names_at_the_limits(store: ModelStore) -> None:
    for name in ["x" * 64, "a", "Model_1-2.(3) b"]:
        store.save_bytes(
            FAKE_TFLITE, name=name, task="digits", format="tflite-int8", config={}, metrics={}
        )
    assert {model.name for model in store.list_models()} == {"x" * 64, "a", "Model_1-2.(3) b"}


def test_refuses_a_name_in_use_whatever_its_case(store: ModelStore) -> None:
    store.save_bytes(
        FAKE_TFLITE, name="Digits", task="digits", format="tflite-int8", config={}, metrics={}
    )
    with pytest.raises(ValueError, match="already exists"):
        store.save_bytes(
            FAKE_TFLITE, name="DIGITS", task="digits", format="tflite-int8", config={}, metrics={}
        )
    assert len(store.list_models()) == 1
    assert len(model_files(store.directory)) == 1


def test_concurrent_saves_lose_nothing(store: ModelStore, digits_model: keras.Model) -> None:
    threads_count, saves_per_thread = 8, 5
    errors: list[BaseException] = []

    def worker(thread_index: int) -> None:
        try:
            for save_index in range(saves_per_thread):
                save_digits(store, digits_model, f"thread {thread_index} save {save_index}")
        except (
            BaseException
        ) as error:  # Reported below; an exception would otherwise die with its thread.
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    listed = store.list_models()
    assert len(listed) == threads_count * saves_per_thread
    assert set(store.verify_all().values()) == {None}  # Every checksum matches.
    assert model_files(store.directory) == sorted(model.file_name for model in listed)  # No temp files.
    for model in listed:
        assert store.load_keras(model.id).output_shape == (None, 10)


CHILD_SAVE_SCRIPT = """
import os, sys
from core.modelstore import store as store_module
from tests.utils.models import tiny_digits_model

def replace_then_block(source, destination):
    # The temp file is complete: tell the parent, then block until it kills this process.
    sys.stdout.write(os.path.basename(source) + "\\n")
    sys.stdout.flush()
    sys.stdin.read()

os.replace = replace_then_block
store = store_module.ModelStore(sys.argv[1])
store.save_keras(tiny_digits_model(), name="half saved", task="digits", config={}, metrics={})
"""


def test_sigkill_during_a_save_leaves_the_store_consistent(
    tmp_path: Path, digits_model: keras.Model, sample_images: np.ndarray
) -> None:
    directory = tmp_path / "models"
    with ModelStore(directory) as store:
        kept_id = save_digits(store, digits_model, "kept")
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(tmp_path / "child.log", "w") as log:
        with subprocess.Popen(
            [sys.executable, "-c", CHILD_SAVE_SCRIPT, str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=environment,
            text=True,
        ) as child:
            # A safety net only: if the child hangs before signalling, killing it ends the read below.
            watchdog = threading.Timer(120, child.kill)
            watchdog.start()
            try:
                # Blocks until the child has written its temp file (or exits, which ends the pipe).
                temp_name = child.stdout.readline().strip() if child.stdout else ""
            finally:
                watchdog.cancel()
                child.kill()
    assert temp_name.startswith(TEMP_PREFIX), (tmp_path / "child.log").read_text()[-2_000:]
    assert child.returncode == -9
    assert (directory / temp_name).exists()  # The kill really did interrupt a save.

    with ModelStore(directory) as reopened:
        assert reopened.removed_files == [temp_name]
        assert [model.id for model in reopened.list_models()] == [kept_id]  # No half model listed.
        assert not (directory / temp_name).exists()
        loaded = reopened.load_keras(kept_id)
    np.testing.assert_array_equal(predict(loaded, sample_images), predict(digits_model, sample_images))


def test_reopening_removes_unindexed_files_and_keeps_foreign_ones(store: ModelStore) -> None:
    kept = store.save_bytes(
        FAKE_TFLITE, name="kept", task="digits", format="tflite-int8", config={}, metrics={}
    )
    # What a crash between the rename and the index insert leaves behind, plus a stray temp file.
    unindexed = "0123456789abcdef0123456789abcdef.tflite"
    stray_temp = f"{TEMP_PREFIX}fedcba9876543210fedcba9876543210.keras"
    for name in (unindexed, stray_temp, "notes.txt"):
        (store.directory / name).write_bytes(b"junk")

    with ModelStore(store.directory) as reopened:
        assert sorted(reopened.removed_files) == sorted([stray_temp, unindexed])
        assert model_files(reopened.directory) == sorted([kept.file_name, "notes.txt"])
        assert reopened.read_bytes(kept.id) == FAKE_TFLITE


def test_reopening_leaves_files_of_saves_in_progress_alone(store: ModelStore) -> None:
    in_progress = store.directory / f"{TEMP_PREFIX}00000000000000000000000000000000.keras"
    descriptor = os.open(in_progress, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # What a save holds until its row is committed.
        with ModelStore(store.directory) as reopened:
            assert reopened.removed_files == []
        assert in_progress.exists()
    finally:
        os.close(descriptor)


def test_corrupted_file_is_reported_for_that_model_only(
    store: ModelStore, digits_model: keras.Model, sample_images: np.ndarray
) -> None:
    corrupted_id = save_digits(store, digits_model, "will be corrupted")
    healthy_id = save_digits(store, digits_model, "healthy")
    path = store.directory / store.get(corrupted_id).file_name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # Flip one byte in the middle of the zip.
    path.write_bytes(bytes(data))

    with pytest.raises(CorruptModelError, match="'will be corrupted'.*checksum"):
        store.load_keras(corrupted_id)
    report = store.verify_all()
    assert report[healthy_id] is None
    assert "will be corrupted" in (report[corrupted_id] or "")
    loaded = store.load_keras(healthy_id)
    np.testing.assert_array_equal(predict(loaded, sample_images), predict(digits_model, sample_images))


def test_deleted_file_is_listed_as_missing_not_dropped(
    store: ModelStore, digits_model: keras.Model
) -> None:
    lost_id = save_digits(store, digits_model, "lost")
    healthy_id = save_digits(store, digits_model, "healthy")
    (store.directory / store.get(lost_id).file_name).unlink()

    with ModelStore(store.directory) as reopened:
        missing = {model.id: model.missing for model in reopened.list_models()}
        assert missing == {lost_id: True, healthy_id: False}
        with pytest.raises(CorruptModelError, match="'lost'.*missing its file"):
            reopened.read_bytes(lost_id)
        assert reopened.verify_all()[healthy_id] is None
        assert reopened.most_recent() is not None and reopened.most_recent().id == healthy_id


def test_a_truncated_keras_file_with_a_matching_checksum_is_reported(store: ModelStore) -> None:
    # Bytes that pass the zip magic check and the checksum but are not a loadable model.
    broken = store.save_bytes(
        b"PK\x03\x04not really a zip",
        name="broken",
        task="digits",
        format="keras",
        config={},
        metrics={},
    )
    with pytest.raises(CorruptModelError, match="'broken'.*could not be loaded"):
        store.load_keras(broken.id)
    assert store.get(broken.id).last_loaded is None


@pytest.mark.parametrize(
    ("failing_call", "error_number", "message"),
    [
        ("replace", errno.ENOSPC, "the disk is full"),
        ("fsync", errno.ENOSPC, "the disk is full"),
        ("replace", errno.EROFS, "the store directory is read-only"),
    ],
)
def test_failed_write_raises_store_error_and_leaves_nothing(
    store: ModelStore,
    digits_model: keras.Model,
    monkeypatch: pytest.MonkeyPatch,
    failing_call: str,
    error_number: int,
    message: str,
) -> None:
    def fail(*arguments: object) -> None:
        raise OSError(error_number, os.strerror(error_number))

    monkeypatch.setattr(os, failing_call, fail)
    with pytest.raises(StoreError, match=f"could not save model 'unlucky': {message}"):
        save_digits(store, digits_model, "unlucky")
    monkeypatch.undo()

    assert store.list_models() == []
    assert model_files(store.directory) == []  # Neither the temp file nor a final file remains.


def test_rename_changes_only_the_label(store: ModelStore) -> None:
    first = store.save_bytes(
        FAKE_TFLITE, name="first", task="digits", format="tflite-int8", config={}, metrics={}
    )
    store.save_bytes(
        FAKE_TFLITE, name="second", task="digits", format="tflite-int8", config={}, metrics={}
    )

    renamed = store.rename(first.id, "renamed")
    assert (renamed.name, renamed.file_name) == ("renamed", first.file_name)
    with pytest.raises(ValueError, match="already exists"):
        store.rename(first.id, "second")
    with pytest.raises(ValueError, match="letters A-Z"):
        store.rename(first.id, "../escape")
    with pytest.raises(ModelNotFoundError):
        store.rename("no-such-id", "fresh")
    assert store.rename(first.id, "RENAMED").name == "RENAMED"  # A model may change its own name's case.


def test_delete_keeps_derived_models_and_clears_their_parent(
    store: ModelStore, digits_model: keras.Model
) -> None:
    parent_id = save_digits(store, digits_model, "parent")
    child = store.save_bytes(
        FAKE_TFLITE,
        name="parent int8",
        task="digits",
        format="tflite-int8",
        config={},
        metrics={},
        parent_id=parent_id,
    )
    assert child.parent_id == parent_id
    parent_file = store.directory / store.get(parent_id).file_name

    store.delete(parent_id)

    assert not parent_file.exists()
    with pytest.raises(ModelNotFoundError, match="no model with id"):
        store.get(parent_id)
    assert store.get(child.id).parent_id is None
    assert store.read_bytes(child.id) == FAKE_TFLITE  # The derived file still works.


def test_save_bytes_refuses_bad_arguments(store: ModelStore) -> None:
    common = {"name": "x", "config": {}, "metrics": {}}
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        store.save_bytes(b"\x00" * 64, task="digits", format="tflite-float16", **common)
    with pytest.raises(ValueError, match="task must be one of addition, digits"):
        store.save_bytes(FAKE_TFLITE, task="poetry", format="tflite-float16", **common)
    with pytest.raises(ValueError, match="format must be one of"):
        store.save_bytes(FAKE_TFLITE, task="digits", format="onnx", **common)
    with pytest.raises(ValueError, match="JSON values"):
        store.save_bytes(
            FAKE_TFLITE,
            task="digits",
            format="tflite-float16",
            name="x",
            config={"f": print},
            metrics={},
        )
    with pytest.raises(ModelNotFoundError):
        store.save_bytes(FAKE_TFLITE, task="digits", format="tflite-float16", parent_id="gone", **common)
    assert store.list_models() == [] and model_files(store.directory) == []


def test_lists_newest_first_and_filters_by_task(store: ModelStore) -> None:
    for name, task in [("one", "digits"), ("two", "addition"), ("three", "digits")]:
        store.save_bytes(
            FAKE_TFLITE, name=name, task=task, format="tflite-float32", config={}, metrics={}
        )

    assert [model.name for model in store.list_models()] == ["three", "two", "one"]
    assert [model.name for model in store.list_models("digits")] == ["three", "one"]


def test_most_recent_prefers_the_last_loaded_model(store: ModelStore, digits_model: keras.Model) -> None:
    assert store.most_recent() is None
    older_id = save_digits(store, digits_model, "older")
    newer_id = save_digits(store, digits_model, "newer")
    assert store.most_recent() is not None and store.most_recent().id == newer_id

    store.load_keras(older_id)
    assert store.most_recent() is not None and store.most_recent().id == older_id


def test_load_keras_refuses_a_tflite_file(store: ModelStore) -> None:
    saved = store.save_bytes(
        FAKE_TFLITE, name="lite", task="digits", format="tflite-int8", config={}, metrics={}
    )
    with pytest.raises(ValueError, match="tflite-int8 file; Keras can only load .keras"):
        store.load_keras(saved.id)


def test_default_directory_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODEL_STORE_DIR", str(tmp_path / "chosen"))
    assert default_store_directory() == tmp_path / "chosen"
    monkeypatch.delenv("MODEL_STORE_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_directory() == tmp_path / "data" / "live-training-lab" / "models"


def test_load_cached_loads_once_then_hits(
    store: ModelStore, digits_model: keras.Model, sample_images: np.ndarray
) -> None:
    model_id = save_digits(store, digits_model, "cached")
    cache = ModelCache(max_bytes=10 * 1024 * 1024)
    progress: list[float] = []

    cold = load_cached(store, cache, model_id, on_progress=progress.append)
    warm = load_cached(store, cache, model_id, on_progress=progress.append)

    assert warm is cold
    assert (cache.hits, cache.misses) == (1, 1)
    assert progress[-1] == 1.0 and progress.count(1.0) == 1  # Only the cold load read the file.
    assert cache.stats().used_bytes == store.get(model_id).size_bytes
    np.testing.assert_array_equal(predict(warm, sample_images), predict(digits_model, sample_images))
    store.delete(model_id)
    with pytest.raises(ModelNotFoundError):
        load_cached(store, cache, model_id)  # A deleted model is not served from the cache.


# Uploads.


def test_upload_accepts_a_digits_model(
    store: ModelStore, digits_model: keras.Model, tmp_path: Path, sample_images: np.ndarray
) -> None:
    uploaded = store.upload_keras(keras_bytes(digits_model, tmp_path), name="uploaded")

    assert (uploaded.task, uploaded.format, uploaded.config) == ("digits", "keras", {"source": "upload"})
    loaded = store.load_keras(uploaded.id)
    np.testing.assert_array_equal(predict(loaded, sample_images), predict(digits_model, sample_images))


def test_upload_detects_an_addition_model(store: ModelStore, tmp_path: Path) -> None:
    model = build_addition_rnn(AdditionConfig(digits=2, hidden_size=8))
    uploaded = store.upload_keras(keras_bytes(model, tmp_path), name="adder")
    assert (uploaded.task, uploaded.config) == ("addition", {"source": "upload", "digits": 2})


@pytest.mark.parametrize("digits", [1, 3, 5])
def test_detect_task_reads_the_addition_digits_from_the_shapes(digits: int) -> None:
    inputs = keras.Input(shape=(2 * digits + 1, 12))
    hidden = layers.Dense(12 * (digits + 1))(layers.Flatten()(inputs))
    outputs = layers.Softmax()(layers.Reshape((digits + 1, 12))(hidden))
    assert detect_task(keras.Model(inputs, outputs)) == ("addition", {"digits": digits})


def test_detect_task_refuses_other_shapes() -> None:
    inputs = keras.Input(shape=(28, 28, 1))
    model = keras.Model(inputs, layers.Dense(3)(layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match=r"output shape \(None, 3\) fit neither task"):
        detect_task(model)


def test_upload_refuses_a_lambda_layer(store: ModelStore, tmp_path: Path) -> None:
    inputs = keras.Input(shape=(28, 28, 1))
    hidden = layers.Lambda(lambda images: images * 2.0)(inputs)
    model = keras.Model(inputs, layers.Dense(10, activation="softmax")(layers.Flatten()(hidden)))

    with pytest.raises(
        ValueError, match="contains a Lambda layer, which can run arbitrary code; it was refused"
    ):
        store.upload_keras(keras_bytes(model, tmp_path), name="sneaky")
    assert store.list_models() == []


def test_upload_refuses_code_from_outside_keras(
    store: ModelStore, digits_model: keras.Model, tmp_path: Path
) -> None:
    # Rewrite a valid archive so one layer claims to come from another module, as a crafted file could.
    source = zipfile.ZipFile(io.BytesIO(keras_bytes(digits_model, tmp_path)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member in source.namelist():
            content = source.read(member)
            if member == "config.json":
                content = content.replace(b'"module": "keras.layers"', b'"module": "os"', 1)
            archive.writestr(member, content)

    with pytest.raises(ValueError, match="uses code from 'os', which is not part of Keras"):
        store.upload_keras(buffer.getvalue(), name="crafted")
    assert store.list_models() == []


def test_upload_refuses_an_h5_file(store: ModelStore, digits_model: keras.Model, tmp_path: Path) -> None:
    path = tmp_path / "legacy.h5"
    digits_model.save(path)
    with pytest.raises(ValueError, match=r"HDF5 \(.h5\) file, the legacy Keras format"):
        store.upload_keras(path.read_bytes(), name="legacy")
    assert store.list_models() == []


def test_upload_refuses_random_bytes(store: ModelStore) -> None:
    with pytest.raises(ValueError, match="not a .keras file"):
        store.upload_keras(np.random.default_rng(0).bytes(4_096), name="noise")
    assert store.list_models() == []


def test_upload_refuses_an_oversized_file(
    store: ModelStore, digits_model: keras.Model, tmp_path: Path
) -> None:
    data = keras_bytes(digits_model, tmp_path)
    with pytest.raises(ValueError, match=f"the file is {len(data):,} bytes; the limit is 1,000 bytes"):
        store.upload_keras(data, name="too big", max_bytes=1_000)
    assert store.list_models() == []


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"metadata.json": b"{}"}, "lacks config.json, model.weights.h5"),
        ({"saved_model.pb": b"", "variables/variables.index": b""}, "TensorFlow SavedModel"),
        ({"config.json": b"{not json"}, "lacks metadata.json, model.weights.h5"),
        (
            {"config.json": b"{}", "metadata.json": b"{}", "model.weights.h5": b""},
            "does not say which Keras version",
        ),
        (
            {
                "config.json": b"{not json",
                "metadata.json": b'{"keras_version": "3.15.1"}',
                "model.weights.h5": b"",
            },
            "config.json is not valid JSON",
        ),
        (
            {
                "config.json": b"{}",
                "metadata.json": b'{"keras_version": "3.15.1"}',
                "model.weights.h5": b"",
            },
            "does not name a Keras model class",
        ),
    ],
)
def test_upload_refuses_archives_that_are_not_keras_models(
    store: ModelStore, members: dict[str, bytes], message: str
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member_name, content in members.items():
            archive.writestr(member_name, content)
    with pytest.raises(ValueError, match=message):
        store.upload_keras(buffer.getvalue(), name="archive")
    assert store.list_models() == []


def test_upload_refuses_a_model_that_fits_no_task(store: ModelStore, tmp_path: Path) -> None:
    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="fit neither task"):
        store.upload_keras(keras_bytes(model, tmp_path), name="other")
    assert store.list_models() == []


@hypothesis.given(hypothesis.strategies.text(max_size=200))
def test_allowed_name_turns_any_text_into_a_name_the_store_accepts(text):
    # A proposed save name came from a run label such as "#1 strong +aug" and was refused for its "+".
    from core.modelstore.store import allowed_name, validate_name

    assert validate_name(allowed_name(text)) == allowed_name(text)


@hypothesis.given(
    hypothesis.strategies.from_regex(
        r"[A-Za-z0-9_()\-][A-Za-z0-9 _()\-]{0,62}[A-Za-z0-9_()\-]", fullmatch=True
    )
)
def test_allowed_name_keeps_a_valid_name_as_it_is(name):
    from core.modelstore.store import allowed_name, validate_name

    assert validate_name(name) == name
    assert allowed_name(name) == name
