"""Fixtures shared by every test: where the real MNIST files live, and closed sessions freed at once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.runtime import PacedCollections
from tests.utils.mnist import missing_mnist_files, mnist_directory


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST IDX files: `$MNIST_DIR`, else `<repo>/../shared/data/mnist`; fails if missing."""
    directory = mnist_directory()
    missing = missing_mnist_files(directory)
    if missing:
        # Failing, not skipping: without the data the MNIST tests would silently prove nothing.
        pytest.fail(f"MNIST test data missing from {directory}: {', '.join(missing)}; set MNIST_DIR")
    return directory


@pytest.fixture(scope="session", autouse=True)
def app_environment(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point the app at the real MNIST files and a throwaway model store for the whole run."""
    os.environ["MNIST_DIR"] = str(mnist_directory())
    # Never write into the developer's own store (~/.local/share/...).
    os.environ["MODEL_STORE_DIR"] = str(tmp_path_factory.mktemp("model-store"))


@pytest.fixture
def collections_at_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[PacedCollections]:
    """The app's collector of closed sessions with no pacing, so that a release is freed at once."""
    import ui.resources as resources

    # The app's own waits up to LTL_GC_SECONDS (30 s) after any earlier test's release.
    collections = PacedCollections(0)
    monkeypatch.setattr(resources, "_COLLECTIONS", collections)
    yield collections
    collections.close()
