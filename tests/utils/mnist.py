"""Where the real MNIST IDX files live, and how many images they hold, read without core.mnist."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
# Beside the repository, as on the lead's machine and in .ci/run; MNIST_DIR overrides it.
DEFAULT_MNIST_DIR = REPOSITORY_ROOT.parent / "shared" / "data" / "mnist"
MNIST_FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def mnist_directory() -> Path:
    """`$MNIST_DIR` if set, else `<repo>/../shared/data/mnist`; the files may still be missing."""
    configured = os.environ.get("MNIST_DIR")
    return Path(configured) if configured else DEFAULT_MNIST_DIR


def missing_mnist_files(directory: Path) -> list[str]:
    """The IDX files (raw or .gz) that `directory` lacks, spelled `name[.gz]`."""
    return [
        f"{name}[.gz]"
        for name in MNIST_FILE_NAMES.values()
        if not ((directory / name).is_file() or (directory / f"{name}.gz").is_file())
    ]


def mnist_counts(directory: Path) -> dict[str, int]:
    """Items per file by role ("train_images", ...), from each IDX header's first dimension."""
    counts = {}
    for role, name in MNIST_FILE_NAMES.items():
        compressed = directory / f"{name}.gz"
        # An independent reading of the header (magic, then big-endian sizes), not the parser under test.
        with gzip.open(compressed) if compressed.is_file() else open(directory / name, "rb") as file:
            header = file.read(8)
        counts[role] = struct.unpack(">I", header[4:8])[0]
    return counts
