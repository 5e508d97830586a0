"""Tests for core.mnist: the IDX parser, the loader's search order, uploads and the process cache."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core import mnist
from core.mnist import MnistData, MnistNotFoundError, parse_idx
from tests.utils.mnist import mnist_counts

TYPE_BYTES = {
    "uint8": 0x08,
    "int8": 0x09,
    "int16": 0x0B,
    "int32": 0x0C,
    "float32": 0x0D,
    "float64": 0x0E,
}
OFFICIAL_NAMES = list(mnist.MNIST_FILES.values())


def make_idx(array: np.ndarray) -> bytes:
    """Encode `array` as an IDX file, independently of the parser under test."""
    header = bytes([0, 0, TYPE_BYTES[array.dtype.name], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def small_split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    images = generator.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = generator.integers(0, 10, size=count, dtype=np.uint8)
    return images, labels


def write_small_mnist(directory: Path, *, train_count: int = 12, test_count: int = 7) -> None:
    """Write a tiny but valid MNIST (gzip for images, raw for labels) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = small_split(train_count, seed=1)
    test_images, test_labels = small_split(test_count, seed=2)
    (directory / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(make_idx(train_images)))
    (directory / "train-labels-idx1-ubyte").write_bytes(make_idx(train_labels))
    (directory / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(make_idx(test_images)))
    (directory / "t10k-labels-idx1-ubyte").write_bytes(make_idx(test_labels))


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Keep every test away from the developer's own MNIST_DIR and ~/.keras, and from earlier caches.
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    mnist.clear_mnist_cache()


@pytest.fixture(scope="module")
def real_mnist(mnist_dir: Path) -> MnistData:
    return mnist.load_mnist(mnist_dir, allow_download=False)


# ## parse_idx on well-formed files


@pytest.mark.parametrize("dtype", list(TYPE_BYTES))
def test_parse_idx_round_trips_every_type(dtype: str) -> None:
    generator = np.random.default_rng(0)
    array = (generator.standard_normal((3, 4, 5)) * 100).astype(dtype)
    parsed = parse_idx(make_idx(array))
    np.testing.assert_array_equal(parsed, array)  # Values survive the big-endian encoding.
    assert parsed.dtype == np.dtype(dtype) and parsed.dtype.isnative


def test_parse_idx_reads_images_and_labels_raw_and_gzipped() -> None:
    images, labels = small_split(5, seed=3)
    for encoded in (make_idx(images), gzip.compress(make_idx(images))):
        parsed = parse_idx(encoded)
        assert parsed.shape == (5, 28, 28) and parsed.dtype == np.uint8
        np.testing.assert_array_equal(parsed, images)
    np.testing.assert_array_equal(parse_idx(gzip.compress(make_idx(labels))), labels)


def test_parse_idx_reads_int32_with_negative_values() -> None:
    array = np.array([-2_000_000_000, -1, 0, 1, 2_000_000_000], dtype=np.int32)
    encoded = make_idx(array)
    assert encoded[:4] == b"\x00\x00\x0c\x01"  # The header really is IDX int32, one dimension.
    np.testing.assert_array_equal(parse_idx(encoded), array)


def test_parse_idx_accepts_concatenated_gzip_members_and_returns_writable_arrays() -> None:
    encoded = make_idx(np.arange(100, dtype=np.uint8))
    compressed = gzip.compress(encoded[:50]) + gzip.compress(encoded[50:])
    parsed = parse_idx(compressed)
    np.testing.assert_array_equal(parsed, np.arange(100))
    assert parsed.flags.writeable  # A copy, not a view of the caller's bytes.


# ## parse_idx on broken or foreign input


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (28, 28)).save(buffer, format="PNG")
    return buffer.getvalue()


VALID_IMAGES = make_idx(np.zeros((2, 28, 28), dtype=np.uint8))
BROKEN_INPUTS = {
    "empty": (b"", "not an IDX file: only 0 bytes"),
    "png": (png_bytes(), "not an IDX file: this is a PNG image"),
    "wrong magic": (b"\x01\x02" + VALID_IMAGES[2:], "starts with bytes 01 02, expected 00 00"),
    "bad type byte": (b"\x00\x00\x07" + VALID_IMAGES[3:], "unknown data type byte 0x07"),
    "zero dimensions": (b"\x00\x00\x08\x00", "0 dimensions, expected 1 to 4"),
    "five dimensions": (b"\x00\x00\x08\x05" + b"\x00\x00\x00\x01" * 5 + b"\x00", "5 dimensions"),
    "truncated header": (VALID_IMAGES[:10], "header needs 16 bytes, found 10"),
    "truncated data": (
        VALID_IMAGES[:-100],
        r"truncated: expected 1,568 bytes of pixel data for shape (2, 28, 28), found 1,468",
    ),
    "trailing bytes": (VALID_IMAGES + b"xyz", "3 trailing bytes after 1,568 bytes of pixel data"),
    "absurd sizes": (b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3, "over 100,000,000 elements"),
    "corrupt gzip": (b"\x1f\x8b\x08\x00garbage-not-deflate", "corrupt gzip data"),
    "truncated gzip": (gzip.compress(VALID_IMAGES)[:-12], "truncated gzip data"),
    "garbage after gzip": (gzip.compress(VALID_IMAGES) + b"junk", "4 unexpected bytes after the gzip"),
}


@pytest.mark.parametrize("name", list(BROKEN_INPUTS))
def test_parse_idx_rejects_broken_input_with_a_telling_message(name: str) -> None:
    data, message = BROKEN_INPUTS[name]
    with pytest.raises(ValueError) as raised:
        parse_idx(data)
    assert message in str(raised.value)


def test_parse_idx_rejects_a_gzip_bomb_before_inflating_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "MAX_DECOMPRESSED_BYTES", 10_000)
    bomb = gzip.compress(make_idx(np.zeros((100, 28, 28), dtype=np.uint8)))  # 78 kB once inflated.
    with pytest.raises(ValueError, match="expands beyond 10,000 bytes"):
        parse_idx(bomb)


def test_parse_idx_rejects_non_bytes() -> None:
    with pytest.raises(ValueError, match="must be bytes, not str"):
        parse_idx("\x00\x00\x08\x01")  # type: ignore[arg-type]


idx_like_bytes = st.builds(
    lambda type_byte, dimensions, rest: bytes([0, 0, type_byte, dimensions]) + rest,
    st.sampled_from([*TYPE_BYTES.values(), 0x00, 0x0A, 0xFF]),
    st.integers(0, 6),
    st.binary(max_size=64),
)
any_bytes = st.one_of(st.binary(max_size=200), idx_like_bytes)


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        any_bytes, any_bytes.map(gzip.compress), st.binary(max_size=60).map(b"\x1f\x8b".__add__)
    )
)
def test_parse_idx_raises_only_value_error(data: bytes) -> None:
    try:
        parsed = parse_idx(data)
    except ValueError:
        return
    # Whatever parses must account for every byte after the header.
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    assert 4 + 4 * parsed.ndim + parsed.nbytes == len(raw)


# ## MnistData validation


def test_mnist_data_rejects_inconsistent_arrays() -> None:
    images, labels = small_split(4, seed=5)
    with pytest.raises(ValueError, match="4 train images but 3 train labels"):
        MnistData(images, labels[:3], images, labels, source="test")
    with pytest.raises(ValueError, match=r"test images must have shape \(N, 28, 28\)"):
        MnistData(images, labels, images[:, :27], labels, source="test")
    with pytest.raises(ValueError, match="train labels must be digits 0..9, but include 10"):
        MnistData(images, np.full(4, 10, dtype=np.uint8), images, labels, source="test")
    with pytest.raises(ValueError, match="must be a uint8 numpy array"):
        MnistData(images.astype(np.float32), labels, images, labels, source="test")


# ## load_mnist


def test_load_mnist_reads_the_shared_files(real_mnist: MnistData, mnist_dir: Path) -> None:
    # The counts come from the files' own headers, read apart from the parser under test.
    counts = mnist_counts(mnist_dir)
    assert real_mnist.train_images.shape == (counts["train_images"], 28, 28)
    assert real_mnist.test_images.shape == (counts["test_images"], 28, 28)
    assert real_mnist.train_labels.shape == (counts["train_labels"],)
    assert real_mnist.test_labels.shape == (counts["test_labels"],)
    assert counts["test_images"] == mnist.TEST_COUNT  # The official test set, as the sha256 test shows.
    for array in (real_mnist.train_images, real_mnist.train_labels, real_mnist.test_images):
        assert array.dtype == np.uint8
    assert set(np.unique(real_mnist.train_labels)) == set(range(10))
    assert set(np.unique(real_mnist.test_labels)) == set(range(10))
    # The official files start with train labels 5 0 4 1 9 and test labels 7 2 1 0 4.
    assert real_mnist.train_labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert real_mnist.test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert real_mnist.train_images.max() == 255 and real_mnist.train_images.min() == 0
    assert real_mnist.source == str(mnist_dir)


def test_official_test_files_match_the_known_sha256(mnist_dir: Path) -> None:
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        digest = hashlib.sha256((mnist_dir / name).read_bytes()).hexdigest()
        assert digest == mnist.MNIST_SHA256[name]  # The shared test files are the official ones.


def test_load_mnist_uses_mnist_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_small_mnist(tmp_path / "data")
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "data"))
    data = mnist.load_mnist(allow_download=False)
    assert data.source == str(tmp_path / "data")
    assert len(data.train_images) == 12 and len(data.test_labels) == 7
    np.testing.assert_array_equal(data.train_images, small_split(12, seed=1)[0])


def test_load_mnist_prefers_the_given_path_over_mnist_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_small_mnist(tmp_path / "given", train_count=5)
    write_small_mnist(tmp_path / "environment", train_count=9)
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "environment"))
    assert len(mnist.load_mnist(tmp_path / "given").train_images) == 5


def test_load_mnist_on_a_missing_path_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(MnistNotFoundError) as raised:
        mnist.load_mnist(tmp_path / "nowhere", allow_download=False)
    message = str(raised.value)
    assert str(tmp_path / "nowhere") in message and "is not a directory" in message
    assert "MNIST_DIR=/path/to/dir" in message and "upload" in message


def test_load_mnist_names_the_missing_files(tmp_path: Path) -> None:
    write_small_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(
        MnistNotFoundError, match=r"lacks the MNIST files t10k-labels-idx1-ubyte\[\.gz\]\."
    ):
        mnist.load_mnist(tmp_path)


def test_load_mnist_does_not_fall_back_when_mnist_dir_is_wrong(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_small_mnist(tmp_path / "keras_home" / "datasets")  # A usable cache it must not silently use.
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "empty"))
    with pytest.raises(
        MnistNotFoundError, match=re.escape(f"MNIST_DIR={tmp_path / 'empty'} is not a directory")
    ):
        mnist.load_mnist(allow_download=False)


def test_load_mnist_reports_where_it_looked_when_nothing_is_found(tmp_path: Path) -> None:
    with pytest.raises(MnistNotFoundError) as raised:
        mnist.load_mnist(allow_download=False)
    message = str(raised.value)
    assert "Set MNIST_DIR=/path/to/dir containing the four IDX files" in message
    assert "MNIST_DIR (not set)" in message
    assert str(tmp_path / "keras_home" / "datasets") in message
    assert "download (disabled)" in message
    assert isinstance(raised.value, ValueError)  # Pages catch ValueError for every data problem.


def test_load_mnist_finds_idx_files_in_the_keras_cache(tmp_path: Path) -> None:
    write_small_mnist(tmp_path / "keras_home" / "datasets")
    data = mnist.load_mnist(allow_download=False)
    assert data.source == str(tmp_path / "keras_home" / "datasets") and len(data.train_images) == 12


def test_load_mnist_accepts_keras_own_npz(tmp_path: Path) -> None:
    images, labels = small_split(6, seed=7)
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    np.savez(cache / "mnist.npz", x_train=images, y_train=labels, x_test=images[:2], y_test=labels[:2])
    data = mnist.load_mnist(allow_download=False)
    assert data.source == str(cache / "mnist.npz")
    np.testing.assert_array_equal(data.test_labels, labels[:2])


def test_load_mnist_names_the_file_that_is_corrupt(tmp_path: Path) -> None:
    write_small_mnist(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ValueError, match=re.escape(f"{path}: truncated: expected 12 bytes of data")):
        mnist.load_mnist(tmp_path)


def test_load_mnist_downloads_verifies_and_writes_atomically(
    monkeypatch: pytest.MonkeyPatch, mnist_dir: Path, tmp_path: Path
) -> None:
    # A file:// URL stands in for the official server, so the download path runs without a network.
    monkeypatch.setattr(mnist, "MNIST_URL", mnist_dir.as_uri() + "/")
    hashes = {
        name: hashlib.sha256((mnist_dir / name).read_bytes()).hexdigest() for name in mnist.MNIST_SHA256
    }
    monkeypatch.setattr(mnist, "MNIST_SHA256", hashes)
    data = mnist.load_mnist()
    cache = tmp_path / "keras_home" / "datasets"
    assert data.source == str(cache) and len(data.test_images) == mnist_counts(mnist_dir)["test_images"]
    assert sorted(path.name for path in cache.iterdir()) == sorted(hashes)  # No temporary files left.


def test_load_mnist_refuses_a_download_with_the_wrong_sha256(
    monkeypatch: pytest.MonkeyPatch, mnist_dir: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(mnist, "MNIST_URL", mnist_dir.as_uri() + "/")
    # The shared train files hold fewer images than the official 60,000, so their sha256 differs.
    with pytest.raises(
        MnistNotFoundError, match="train-images-idx3-ubyte.gz has sha256 .*, expected 440f"
    ):
        mnist.load_mnist()
    assert list((tmp_path / "keras_home" / "datasets").iterdir()) == []  # Nothing unverified kept.


def test_load_mnist_fails_cleanly_when_the_download_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(mnist, "MNIST_URL", (tmp_path / "offline").as_uri() + "/")
    with pytest.raises(MnistNotFoundError) as raised:
        mnist.load_mnist()
    assert "could not download" in str(raised.value) and "MNIST_DIR=/path/to/dir" in str(raised.value)


# ## load_mnist_from_uploads


def small_uploads(train_count: int = 12, test_count: int = 7) -> dict[str, np.ndarray]:
    train_images, train_labels = small_split(train_count, seed=1)
    test_images, test_labels = small_split(test_count, seed=2)
    return {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }


def test_uploads_with_official_names_from_the_shared_files(mnist_dir: Path) -> None:
    files = {path.name: path.read_bytes() for path in sorted(mnist_dir.glob("*.gz"))}
    data = mnist.load_mnist_from_uploads(files)
    counts = mnist_counts(mnist_dir)
    assert len(data.train_images) == counts["train_images"]
    assert len(data.test_images) == counts["test_images"]
    assert data.source == "upload" and data.test_labels[0] == 7


def test_uploads_are_told_apart_by_content_when_names_say_nothing() -> None:
    arrays = small_uploads(train_count=12, test_count=10_000)
    files = {f"file{index}.bin": make_idx(arrays[role]) for index, role in enumerate(reversed(arrays))}
    data = mnist.load_mnist_from_uploads(files)
    np.testing.assert_array_equal(data.test_images, arrays["test_images"])  # The 10,000 set is test.
    np.testing.assert_array_equal(data.train_labels, arrays["train_labels"])


def test_uploads_without_a_10000_set_take_the_larger_as_train() -> None:
    arrays = small_uploads(train_count=5, test_count=9)
    files = {f"upload{index}": make_idx(array) for index, array in enumerate(arrays.values())}
    data = mnist.load_mnist_from_uploads(files)
    # The split written as "test" holds more items here, so by content it is the training set.
    np.testing.assert_array_equal(data.train_images, arrays["test_images"])
    assert len(data.train_labels) == 9


def test_uploads_mix_names_and_content() -> None:
    arrays = small_uploads()
    files = {
        "t10k-images-idx3-ubyte.gz": gzip.compress(make_idx(arrays["test_images"])),
        "mystery_images": make_idx(arrays["train_images"]),
        "train_labels.idx": make_idx(arrays["train_labels"]),
        "mystery_labels": make_idx(arrays["test_labels"]),
    }
    data = mnist.load_mnist_from_uploads(files)
    np.testing.assert_array_equal(data.train_images, arrays["train_images"])
    np.testing.assert_array_equal(data.test_labels, arrays["test_labels"])


def official_uploads() -> dict[str, bytes]:
    arrays = small_uploads()
    return {name: make_idx(arrays[role]) for role, name in mnist.MNIST_FILES.items()}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda files: files.pop("t10k-labels-idx1-ubyte"), "expected four MNIST files .* got 3"),
        (lambda files: files.update({"notes.txt": b"hello"}), "got 5: notes.txt, t10k-images"),
        (
            lambda files: files.update({"t10k-labels-idx1-ubyte": png_bytes()}),
            "t10k-labels-idx1-ubyte: not an IDX",
        ),
        (
            lambda files: files.update(
                {"t10k-labels-idx1-ubyte": make_idx(np.zeros((3, 4), np.float32))}
            ),
            r"not an MNIST file: it holds a float32 array of shape \(3, 4\)",
        ),
        (
            lambda files: files.update({"t10k-labels-idx1-ubyte": files["t10k-images-idx3-ubyte"]}),
            "named like labels but holds images",
        ),
        (
            lambda files: files.update({"train-labels-copy": files.pop("t10k-labels-idx1-ubyte")}),
            "two uploads are named as the train labels",
        ),
        (
            lambda files: files.update(
                {"extra": files.pop("t10k-labels-idx1-ubyte")[:0] + files["train-images-idx3-ubyte"]}
            ),
            r"expected two images files \(train and test\), got 3",
        ),
    ],
)
def test_uploads_reject_missing_extra_and_foreign_files(
    change: Callable[[dict[str, bytes]], object], message: str
) -> None:
    files = official_uploads()
    change(files)
    with pytest.raises(ValueError, match=message):
        mnist.load_mnist_from_uploads(files)


def test_uploads_of_equal_size_without_names_are_ambiguous() -> None:
    arrays = small_uploads(train_count=6, test_count=6)
    files = {f"file{index}": make_idx(array) for index, array in enumerate(arrays.values())}
    with pytest.raises(ValueError, match="cannot tell the train images from the test images"):
        mnist.load_mnist_from_uploads(files)


# ## cached_mnist


def test_cached_mnist_loads_once_and_shares_read_only_arrays(tmp_path: Path) -> None:
    write_small_mnist(tmp_path / "data")
    first = mnist.cached_mnist(tmp_path / "data")
    second = mnist.cached_mnist(str(tmp_path / "data" / ".." / "data"))  # Another spelling, same place.
    assert first is second
    for array in (first.train_images, first.train_labels, first.test_images, first.test_labels):
        assert not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first.train_images[0, 0, 0] = 1


def test_cached_mnist_loads_once_under_concurrent_first_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_small_mnist(tmp_path / "data")
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "data"))
    calls = []
    real_load = mnist.load_mnist

    def counting_load(*arguments: object, **keywords: object) -> MnistData:
        calls.append(1)
        return real_load(*arguments, **keywords)  # type: ignore[arg-type]

    monkeypatch.setattr(mnist, "load_mnist", counting_load)
    barrier = threading.Barrier(8)
    results: list[MnistData] = []

    def session() -> None:
        barrier.wait()
        results.append(mnist.cached_mnist())

    threads = [threading.Thread(target=session) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1  # Eight sessions started together, but the files were read once.
    assert len(results) == 8 and all(result is results[0] for result in results)


def test_a_failed_download_is_tried_once_per_process_and_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fake opener stands in for a network that drops packets: each call would block for the timeout.
    attempts: list[str] = []

    def dropping_opener(url: str, timeout: float) -> object:
        attempts.append(url)
        raise TimeoutError("timed out")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", dropping_opener)
    for _ in range(3):  # The page opening, then two canvas strokes.
        with pytest.raises(MnistNotFoundError) as raised:
            mnist.cached_mnist()
    assert len(attempts) == 1  # Only the first lookup went to the network; the others returned at once.
    assert "could not download" in str(raised.value)  # The later errors still say why.
    mnist.clear_mnist_cache()
    with pytest.raises(MnistNotFoundError):
        mnist.cached_mnist()
    assert len(attempts) == 2  # Clearing the cache (files changed, network back) allows one more try.


def test_the_not_found_error_has_a_one_line_summary_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing_opener(url: str, timeout: float) -> object:
        raise OSError("<urlopen error [Errno 101] Network is unreachable>")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", failing_opener)
    with pytest.raises(MnistNotFoundError) as raised:
        mnist.load_mnist()
    summary = raised.value.summary
    assert "\n" not in summary and len(summary) < 200  # One line, not a wall of text.
    assert "MNIST_DIR" in summary and "upload" in summary and "download" in summary
    assert "urlopen" not in summary and "Looked in" not in summary
    assert "urlopen" in str(raised.value)  # The full story stays available for the log and details.
