"""MNIST from its raw IDX files: a strict parser, a loader that searches the usual places, and a cache.

The loader looks in a given path, then `$MNIST_DIR`, then the Keras cache, and only then downloads the
official files (sha256-checked). Every problem with the data is a `ValueError` that says what is wrong.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import re
import struct
import tempfile
import threading
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.tasks import IMAGE_SIDE as IMAGE_SIDE  # Re-exported: other modules import it from here.

# IDX type byte -> big-endian numpy dtype, from the format's description by LeCun et al.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_DIMENSIONS = 4
# Real MNIST has 47 million pixels; this stops a few header bytes from allocating gigabytes.
MAX_ELEMENTS = 100_000_000
MAX_DECOMPRESSED_BYTES = 200_000_000
# The official train-images download is 9.9 MB; anything much larger is not the file we asked for.
MAX_DOWNLOAD_BYTES = 64_000_000
DOWNLOAD_TIMEOUT_SECONDS = 5.0
MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
# Keyed by role; the values are the official file names without ".gz".
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
# Naming a few common formats turns "starts with 89 50" into something a person recognises.
KNOWN_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"PK\x03\x04": "a zip file",
}
TEST_COUNT = 10_000
FIX_HINT = (
    "Set MNIST_DIR=/path/to/dir containing the four IDX files "
    f"({', '.join(name + '[.gz]' for name in MNIST_FILES.values())}), or upload them."
)


class MnistNotFoundError(ValueError):
    """MNIST files could not be found anywhere the loader looked."""

    def __init__(self, message: str, *, summary: str | None = None) -> None:
        super().__init__(message)
        # One line with the fix for a page; the message itself keeps every place looked and why.
        self.summary = summary or message


# Set by the first failed download and kept until clear_mnist_cache(): a network that drops packets
# costs the timeout once per process, not on every page run.
_download_failure: str | None = None
_download_lock = threading.Lock()


def _gunzip(data: bytes) -> bytes:
    """Decompress every gzip member of `data`, refusing output beyond MAX_DECOMPRESSED_BYTES."""
    output = bytearray()
    remaining = data
    while remaining:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            output += decompressor.decompress(remaining, MAX_DECOMPRESSED_BYTES + 1 - len(output))
        except zlib.error as error:
            raise ValueError(f"corrupt gzip data: {error}") from None
        if len(output) > MAX_DECOMPRESSED_BYTES:
            raise ValueError(f"gzip data expands beyond {MAX_DECOMPRESSED_BYTES:,} bytes; refusing it")
        if not decompressor.eof:
            raise ValueError("truncated gzip data: the compressed stream ends early")
        remaining = decompressor.unused_data
        # Trailing zero padding is legal after a gzip member; anything else is not.
        if remaining and not remaining.startswith(b"\x1f\x8b"):
            if remaining.strip(b"\x00"):
                raise ValueError(f"{len(remaining)} unexpected bytes after the gzip data")
            break
    return bytes(output)


def parse_idx(data: bytes) -> np.ndarray:
    """Parse an IDX file, raw or gzip-compressed, into a native-endian numpy array."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"IDX data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data)
    if len(data) < 4:
        raise ValueError(f"not an IDX file: only {len(data)} bytes, and an IDX header needs at least 4")
    for signature, description in KNOWN_SIGNATURES.items():
        if data.startswith(signature):
            raise ValueError(f"not an IDX file: this is {description}")
    if data[:2] != b"\x00\x00":
        raise ValueError(f"not an IDX file: it starts with bytes {data[:2].hex(' ')}, expected 00 00")
    type_byte, dimension_count = data[2], data[3]
    if type_byte not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise ValueError(f"not an IDX file: unknown data type byte 0x{type_byte:02X} (known: {known})")
    if not 1 <= dimension_count <= MAX_DIMENSIONS:
        raise ValueError(
            f"not an IDX file: {dimension_count} dimensions, expected 1 to {MAX_DIMENSIONS}"
        )
    header_length = 4 + 4 * dimension_count
    if len(data) < header_length:
        raise ValueError(
            f"truncated: a {dimension_count}-dimensional IDX header needs {header_length} bytes, "
            f"found {len(data)}"
        )
    shape = struct.unpack(f">{dimension_count}I", data[4:header_length])
    element_count = math.prod(shape)
    if element_count > MAX_ELEMENTS:
        raise ValueError(f"IDX header claims shape {shape}, over {MAX_ELEMENTS:,} elements; refusing it")
    dtype = np.dtype(IDX_DTYPES[type_byte])
    expected = element_count * dtype.itemsize
    found = len(data) - header_length
    what = "pixel data" if dimension_count > 1 else "data"
    if found < expected:
        raise ValueError(
            f"truncated: expected {expected:,} bytes of {what} for shape {shape}, found {found:,}"
        )
    if found > expected:
        raise ValueError(
            f"{found - expected:,} trailing bytes after {expected:,} bytes of {what} for shape {shape}"
        )
    array = np.frombuffer(data, dtype=dtype, count=element_count, offset=header_length)
    # The copy in astype gives a writable array in the machine's own byte order.
    return array.reshape(shape).astype(dtype.newbyteorder("="))


@dataclass(frozen=True, slots=True, eq=False)
class MnistData:
    """The MNIST train and test splits as uint8 arrays, and where they were found."""

    train_images: np.ndarray  # (N, 28, 28) uint8, white ink on black.
    train_labels: np.ndarray  # (N,) uint8 digits 0..9.
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            _check_array(f"{split} images", images, (IMAGE_SIDE, IMAGE_SIDE))
            _check_array(f"{split} labels", labels, ())
            if labels.max() > 9:
                raise ValueError(f"{split} labels must be digits 0..9, but include {int(labels.max())}")
            if len(images) != len(labels):
                raise ValueError(f"{len(images):,} {split} images but {len(labels):,} {split} labels")


def _check_array(name: str, array: object, item_shape: tuple[int, ...]) -> None:
    expected = f"(N, {', '.join(map(str, item_shape))})" if item_shape else "(N,)"
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        raise ValueError(
            f"{name} must be a uint8 numpy array of shape {expected}, not {_describe(array)}"
        )
    if array.shape[1:] != item_shape or array.ndim == 0 or len(array) == 0:
        raise ValueError(f"{name} must have shape {expected} with N >= 1, not {array.shape}")


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return type(value).__name__


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets: `$KERAS_HOME/datasets` or `~/.keras/datasets`."""
    keras_home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(keras_home).expanduser() / "datasets"


def _find_files(directory: Path) -> tuple[dict[str, Path], list[str]]:
    """Map each role to its file in `directory`, and list the official names not found."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, name in MNIST_FILES.items():
        # Some mirrors write "train-images.idx3-ubyte"; accept that spelling as well.
        names = (name, name.replace("-idx", ".idx"))
        candidates = [directory / f"{base}{suffix}" for base in names for suffix in ("", ".gz")]
        existing = [candidate for candidate in candidates if candidate.is_file()]
        if existing:
            found[role] = existing[0]
        else:
            missing.append(f"{name}[.gz]")
    return found, missing


def _read_idx_file(path: Path) -> np.ndarray:
    try:
        size = path.stat().st_size
        if size > MAX_DECOMPRESSED_BYTES:
            raise ValueError(f"{size:,} bytes is far larger than any MNIST file")
        return parse_idx(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None


def _build(arrays: dict[str, np.ndarray], source: str) -> MnistData:
    try:
        return MnistData(**arrays, source=source)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


def _load_directory(directory: Path, files: dict[str, Path]) -> MnistData:
    return _build({role: _read_idx_file(path) for role, path in files.items()}, str(directory))


def _load_npz(path: Path) -> MnistData:
    """Load Keras's own `mnist.npz` (x_train, y_train, x_test, y_test)."""
    keys = {
        "train_images": "x_train",
        "train_labels": "y_train",
        "test_images": "x_test",
        "test_labels": "y_test",
    }
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {role: archive[key] for role, key in keys.items()}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable Keras mnist.npz ({error})") from None
    return _build(arrays, str(path))


def _load_explicit(path: Path, label: str) -> MnistData:
    """Load from a path the user chose, failing loudly instead of searching elsewhere."""
    if path.is_file() and path.suffix == ".npz":
        return _load_npz(path)
    if not path.is_dir():
        raise MnistNotFoundError(f"{label} is not a directory (or a Keras mnist.npz file). {FIX_HINT}")
    files, missing = _find_files(path)
    if missing:
        raise MnistNotFoundError(f"{label} lacks the MNIST files {', '.join(missing)}. {FIX_HINT}")
    return _load_directory(path, files)


def _download(directory: Path) -> None:
    """Download the four official gzip files into `directory`, verifying each sha256."""
    # Not keras.utils.get_file (Keras 3.x): it has no timeout or size cap (urlretrieve), raises a bare
    # Exception for HTTP errors and prints a progress bar to stdout; this loop keeps all three right.
    directory.mkdir(parents=True, exist_ok=True)
    for name, expected_sha256 in MNIST_SHA256.items():
        target = directory / name
        if target.is_file():
            continue
        url = MNIST_URL + name
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
                payload = response.read(MAX_DOWNLOAD_BYTES + 1)
        except (OSError, http.client.HTTPException, ValueError) as error:
            # URLError and timeouts are OSErrors; a dropped connection can also surface as HTTPException.
            raise ValueError(f"could not download {url}: {error or type(error).__name__}") from None
        if len(payload) > MAX_DOWNLOAD_BYTES:
            raise ValueError(f"{url} is larger than {MAX_DOWNLOAD_BYTES:,} bytes; refusing it")
        actual_sha256 = hashlib.sha256(payload).hexdigest()
        if actual_sha256 != expected_sha256:
            raise ValueError(f"{url} has sha256 {actual_sha256}, expected {expected_sha256}")
        # Write to a temporary file and rename, so a crash never leaves a half-written file behind.
        descriptor, temporary_name = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as temporary_file:
                temporary_file.write(payload)
            os.replace(temporary_name, target)
        except BaseException:
            Path(temporary_name).unlink(missing_ok=True)
            raise


def load_mnist(path: str | Path | None = None, *, allow_download: bool = True) -> MnistData:
    """Load MNIST from `path`, else `$MNIST_DIR`, else the Keras cache, else download it there."""
    if path is not None:
        return _load_explicit(Path(path).expanduser(), f"The MNIST path {path}")
    environment_dir = os.environ.get("MNIST_DIR")
    if environment_dir:
        return _load_explicit(Path(environment_dir).expanduser(), f"MNIST_DIR={environment_dir}")
    looked = ["MNIST_DIR (not set)"]
    cache_dir = keras_cache_dir()
    files, missing = _find_files(cache_dir)
    if not missing:
        return _load_directory(cache_dir, files)
    npz_path = cache_dir / "mnist.npz"
    if npz_path.is_file():
        return _load_npz(npz_path)
    looked.append(f"{cache_dir} (missing {', '.join(missing)}; no mnist.npz)")
    if allow_download:
        failure = _download_once(cache_dir)
        if failure is None:
            files, _ = _find_files(cache_dir)
            return _load_directory(cache_dir, files)
        looked.append(f"download from {MNIST_URL} ({failure}; not tried again in this process)")
        summary = "MNIST is not on this server and could not be downloaded (offline?)"
    else:
        looked.append("download (disabled)")
        summary = "MNIST is not on this server"
    raise MnistNotFoundError(
        f"MNIST was not found. {FIX_HINT} Looked in: {'; '.join(looked)}.",
        summary=f"{summary}: set MNIST_DIR to a folder with the four MNIST IDX files, or upload them.",
    )


def _download_once(directory: Path) -> str | None:
    """Download into `directory` unless an earlier try in this process failed; return the failure."""
    global _download_failure
    with _download_lock:
        if _download_failure is None:
            try:
                _download(directory)
            except (OSError, ValueError) as error:
                _download_failure = str(error)
        return _download_failure


def _identify_upload(name: str, array: np.ndarray) -> tuple[str, str | None]:
    """Return the upload's kind ("images"/"labels") from its header, and its split if its name says."""
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[1:] == (IMAGE_SIDE, IMAGE_SIDE):
        kind = "images"
    elif array.dtype == np.uint8 and array.ndim == 1:
        kind = "labels"
    else:
        raise ValueError(
            f"{name} is not an MNIST file: it holds {_describe(array)}, "
            "expected (N, 28, 28) uint8 images or (N,) uint8 labels"
        )
    match = re.search(r"(train|t10k|test)[-_.]?(images|labels)", name.lower())
    if match is None:
        return kind, None
    if match.group(2) != kind:
        raise ValueError(
            f"{name} is named like {match.group(2)} but holds {kind} of shape {array.shape}"
        )
    return kind, ("train" if match.group(1) == "train" else "test")


def load_mnist_from_uploads(files: dict[str, bytes]) -> MnistData:
    """Build MnistData from the four uploaded IDX files, identified by name or else by content."""
    if len(files) != 4:
        listed = ", ".join(sorted(files)) or "none"
        raise ValueError(
            f"expected four MNIST files (train/test images and labels), got {len(files)}: {listed}"
        )
    roles: dict[str, np.ndarray] = {}
    unnamed: dict[str, list[np.ndarray]] = {"images": [], "labels": []}
    for name, data in files.items():
        try:
            array = parse_idx(data)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        kind, split = _identify_upload(name, array)
        if split is None:
            unnamed[kind].append(array)
        elif f"{split}_{kind}" in roles:
            raise ValueError(f"two uploads are named as the {split} {kind}; one must be the other split")
        else:
            roles[f"{split}_{kind}"] = array
    for kind in ("images", "labels"):
        open_roles = [f"{split}_{kind}" for split in ("train", "test") if f"{split}_{kind}" not in roles]
        if len(open_roles) != len(unnamed[kind]):
            count = 2 - len(open_roles) + len(unnamed[kind])
            raise ValueError(f"expected two {kind} files (train and test), got {count}")
        if len(open_roles) == 1:
            roles[open_roles[0]] = unnamed[kind][0]
        elif len(open_roles) == 2:
            roles.update(zip(open_roles, _train_then_test(kind, *unnamed[kind]), strict=True))
    return _build(roles, "upload")


def _train_then_test(kind: str, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order two unnamed same-kind uploads: the 10,000-item one is MNIST's test set, else the smaller."""
    if len(first) == len(second):
        raise ValueError(
            f"cannot tell the train {kind} from the test {kind}; name them train-... and t10k-..."
        )
    if TEST_COUNT in (len(first), len(second)):
        return (second, first) if len(first) == TEST_COUNT else (first, second)
    return (first, second) if len(first) > len(second) else (second, first)


_cache: dict[str, MnistData] = {}
_cache_lock = threading.Lock()


def cached_mnist(path: str | Path | None = None, *, allow_download: bool = True) -> MnistData:
    """Load MNIST once per process and source, returning the same read-only arrays to every caller."""
    # Key by the resolved place the loader will read, so equivalent spellings of a path share one copy.
    location = path if path is not None else os.environ.get("MNIST_DIR") or keras_cache_dir()
    key = str(Path(location).expanduser().resolve())
    # One lock for the whole first load: sessions arriving meanwhile wait instead of loading it again.
    with _cache_lock:
        if key not in _cache:
            data = load_mnist(path, allow_download=allow_download)
            for array in (data.train_images, data.train_labels, data.test_images, data.test_labels):
                array.flags.writeable = False
            _cache[key] = data
        return _cache[key]


def clear_mnist_cache() -> None:
    """Forget every cached dataset and download failure (for tests, or after the files change)."""
    global _download_failure
    with _cache_lock, _download_lock:
        _cache.clear()
        _download_failure = None
