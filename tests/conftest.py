"""Fixtures shared by every test: where the real MNIST files live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
MNIST_FILE_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST IDX files: `$MNIST_DIR`, else `<repo>/../shared/data/mnist`; fails if missing."""
    configured = os.environ.get("MNIST_DIR")
    directory = Path(configured) if configured else REPOSITORY_ROOT.parent / "shared" / "data" / "mnist"
    missing = [
        f"{name}[.gz]"
        for name in MNIST_FILE_NAMES
        if not ((directory / name).is_file() or (directory / f"{name}.gz").is_file())
    ]
    if missing:
        # Failing, not skipping: without the data the MNIST tests would silently prove nothing.
        pytest.fail(f"MNIST test data missing from {directory}: {', '.join(missing)}; set MNIST_DIR")
    return directory


@pytest.fixture(scope="session", autouse=True)
def app_environment(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point the app at the real MNIST files and a throwaway model store for the whole run."""
    if not os.environ.get("MNIST_DIR"):
        os.environ["MNIST_DIR"] = str(REPOSITORY_ROOT.parent / "shared" / "data" / "mnist")
    # Never write into the developer's own store (~/.local/share/...).
    os.environ["MODEL_STORE_DIR"] = str(tmp_path_factory.mktemp("model-store"))
