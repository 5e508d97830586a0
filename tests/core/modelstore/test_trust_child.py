"""Uploads that only the child process can judge: the weights' values and stored sizes, limits, time.

Kept to a handful, since each child imports TensorFlow (seconds). The weights checks also run in-process
through `check_weights_file` over every weight of a real model, which is fast.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from core.modelstore import importer
from core.modelstore.importer import MAX_PARAMETERS, check_weights_file
from core.modelstore.store import ModelStore
from core.modelstore.trust import UploadRefused, check_keras_archive
from tests.core.modelstore.hostile_uploads import members_of, replace_member

# The valid corpus that goes through the child as well (the rest passes the static checks in
# test_trust.py): both tasks, an app-compiled model with a schedule; below, a plain Keras Sequential.
CHILD_VALID = ["addition-LSTM", "digits-seed"]


def edited_weights(data: bytes, edit: Callable[[h5py.File], None], directory: Path) -> bytes:
    """The archive with its model.weights.h5 changed by `edit` (through h5py, on a private copy)."""
    path = directory / "weights.h5"
    path.write_bytes(dict(members_of(data))["model.weights.h5"])
    with h5py.File(path, "r+") as weights:
        edit(weights)
    return replace_member(data, "model.weights.h5", path.read_bytes())


def weight_paths(data: bytes, directory: Path) -> list[str]:
    """Every float weight dataset in an archive's weights file."""
    path = directory / "list.h5"
    path.write_bytes(dict(members_of(data))["model.weights.h5"])
    found: list[str] = []
    with h5py.File(path, "r") as weights:
        weights.visititems(
            lambda name, item: (
                found.append(name) if isinstance(item, h5py.Dataset) and item.dtype.kind == "f" else None
            )
        )
    return found


def set_value(dataset_path: str, value: float, *, everywhere: bool) -> Callable[[h5py.File], None]:
    def edit(weights: h5py.File) -> None:
        dataset = weights[dataset_path]
        values = np.array(dataset[()])  # A scalar weight comes back as a NumPy scalar, not an array.
        if everywhere:
            values[...] = value
        else:
            values.flat[0] = value
        dataset[...] = values

    return edit


def unwritten(dataset_path: str, elements: int) -> Callable[[h5py.File], None]:
    """Replace a weight with one that declares `elements` floats but stores no bytes."""

    def edit(weights: h5py.File) -> None:
        del weights[dataset_path]
        weights.create_dataset(dataset_path, shape=(elements,), dtype="float32")

    return edit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ModelStore]:
    with ModelStore(tmp_path / "models") as opened:
        yield opened


def children_left() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("ltl-import-")}


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("everywhere", [True, False], ids=["all", "one"])
def test_non_finite_weights_are_refused_for_every_weight(
    valid_uploads: dict[str, bytes], tmp_path: Path, value: float, everywhere: bool
) -> None:
    for base in ("digits-strong", "addition-GRU"):
        data = valid_uploads[base]
        for dataset_path in weight_paths(data, tmp_path):
            hostile = edited_weights(
                data, set_value(dataset_path, value, everywhere=everywhere), tmp_path
            )
            check_keras_archive(hostile)  # Nothing in the bytes alone gives it away...
            weights = tmp_path / "check.h5"
            weights.write_bytes(dict(members_of(hostile))["model.weights.h5"])
            with pytest.raises(UploadRefused, match="NaN or infinite values"):
                check_weights_file(weights, max_elements=3 * MAX_PARAMETERS)  # ...but the weights do.


def test_declared_weight_shapes_must_match_the_stored_bytes(
    valid_uploads: dict[str, bytes], tmp_path: Path
) -> None:
    data = valid_uploads["digits-seed"]
    weights = tmp_path / "check.h5"
    for elements, message in [(2**26, "holds more than"), (100_000, "but stores 0")]:
        hostile = edited_weights(data, unwritten("layers/conv2d/vars/0", elements), tmp_path)
        weights.write_bytes(dict(members_of(hostile))["model.weights.h5"])
        with pytest.raises(UploadRefused, match=message):
            check_weights_file(weights, max_elements=3 * MAX_PARAMETERS)


def test_links_and_compressed_weights_are_refused(
    valid_uploads: dict[str, bytes], tmp_path: Path
) -> None:
    data = valid_uploads["digits-seed"]
    weights = tmp_path / "check.h5"

    def soft_link(file: h5py.File) -> None:
        file["layers/extra"] = h5py.SoftLink("/layers/dense")

    def external_link(file: h5py.File) -> None:
        file["layers/extra"] = h5py.ExternalLink("/etc/passwd", "/")

    def compressed(file: h5py.File) -> None:
        values = file["layers/dense/vars/0"][()]
        del file["layers/dense/vars/0"]
        file.create_dataset("layers/dense/vars/0", data=values, compression="gzip")

    def text(file: h5py.File) -> None:
        file.create_dataset("layers/dense/vars/2", data=np.array([b"x" * 100]))

    for edit, message in [
        (soft_link, "holds a link"),
        (external_link, "holds a link"),
        (compressed, "compressed, chunked"),
        (text, "not a number type"),
    ]:
        weights.write_bytes(dict(members_of(edited_weights(data, edit, tmp_path)))["model.weights.h5"])
        with pytest.raises(UploadRefused, match=message):
            check_weights_file(weights, max_elements=3 * MAX_PARAMETERS)


@pytest.mark.parametrize("name", CHILD_VALID)
def test_valid_uploads_are_stored_as_the_childs_canonical_copy(
    name: str,
    store: ModelStore,
    valid_models: dict[str, keras.Model],
    valid_uploads: dict[str, bytes],
) -> None:
    before = children_left()
    record = store.upload_keras(valid_uploads[name], name=name)
    stored = store.read_bytes(record.id)
    # The store keeps the file the child wrote, not the uploaded bytes.
    assert stored != valid_uploads[name]
    assert check_keras_archive(stored).parameters == valid_models[name].count_params()
    loaded = store.load_keras(record.id)
    sample = np.random.default_rng(0).random((2, *valid_models[name].input_shape[1:]), dtype="float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(sample)),
        keras.ops.convert_to_numpy(valid_models[name](sample)),
        rtol=1e-5,
        atol=1e-6,
    )
    assert children_left() == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (set_value("layers/dense_1/vars/1", np.nan, everywhere=False), "NaN or infinite"),
        (set_value("layers/dense/vars/0", np.inf, everywhere=True), "NaN or infinite"),
        (unwritten("layers/conv2d/vars/0", 2**26), "holds more than"),
    ],
    ids=["one-nan-bias", "inf-kernel", "declared-2**26-floats-stored-empty"],
)
def test_hostile_weights_are_refused_by_the_child(
    edit: Callable[[h5py.File], None],
    message: str,
    store: ModelStore,
    valid_uploads: dict[str, bytes],
    tmp_path: Path,
) -> None:
    hostile = edited_weights(valid_uploads["digits-seed"], edit, tmp_path)
    before = children_left()
    listing = sorted(os.listdir(store.directory))
    with pytest.raises(UploadRefused, match=message):
        store.upload_keras(hostile, name="hostile")
    assert store.list_models() == []
    assert sorted(os.listdir(store.directory)) == listing
    assert children_left() == before


def test_a_child_over_its_memory_limit_becomes_a_clear_refusal(
    store: ModelStore, valid_uploads: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1.2 GiB is below what importing TensorFlow needs, so the child dies the way a bomb would.
    monkeypatch.setattr(importer, "CHILD_ADDRESS_SPACE_BYTES", 1_200 * 1024**2)
    with pytest.raises(UploadRefused, match="more memory or time than an upload may use"):
        store.upload_keras(valid_uploads["digits-seed"], name="too big")
    assert store.list_models() == []


def test_a_child_past_its_time_becomes_a_clear_refusal(
    store: ModelStore, valid_uploads: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LTL_IMPORT_TIMEOUT", "1")  # Importing TensorFlow alone takes longer.
    before = children_left()
    with pytest.raises(UploadRefused, match=r"more memory or time .*longer than 1 s"):
        store.upload_keras(valid_uploads["digits-seed"], name="slow")
    assert store.list_models() == []
    assert children_left() == before


def test_the_child_writes_nothing_under_home(
    store: ModelStore, valid_uploads: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(home / ".keras"))
    store.upload_keras(valid_uploads["plain-sequential-digits"], name="quiet")
    assert list(home.iterdir()) == []
    shutil.rmtree(home)
