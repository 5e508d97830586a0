"""The backend notice: an unreachable Dask scheduler is said on every page, and threads take over."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.local_cluster import free_port
from ui.resources import get_runner

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
PAGES = ("app_pages/digits.py", "app_pages/model_cache.py")


@pytest.fixture
def unreachable_scheduler(monkeypatch):
    monkeypatch.setenv("LTL_JOB_BACKEND", "dask")
    monkeypatch.setenv("LTL_DASK_SCHEDULER", f"tcp://127.0.0.1:{free_port()}")
    # The runner is one per process: make this test's settings take effect, and not leak out of it.
    get_runner.clear()
    yield
    get_runner().shutdown()
    get_runner.clear()


def notices(at: AppTest) -> list[str]:
    return [warning.value for warning in at.warning if "Dask cluster not used" in warning.value]


def test_every_page_says_training_runs_here_when_the_scheduler_is_unreachable(unreachable_scheduler):
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert len(notices(at)) == 1 and "could not reach the Dask scheduler" in notices(at)[0]
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception
        assert len(notices(at)) == 1, page


def test_no_notice_on_the_default_thread_backend(monkeypatch):
    monkeypatch.delenv("LTL_JOB_BACKEND", raising=False)
    get_runner.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=120).run()
        assert not at.exception
        assert not [warning for warning in at.warning if "Dask" in warning.value]
    finally:
        get_runner().shutdown()
        get_runner.clear()
