"""The Digit Recognizer page training through a real loopback Dask cluster, in a real browser."""

import pytest
from playwright.sync_api import expect

from core.local_cluster import LoopbackCluster
from harness.server import Server
from tests.e2e.conftest import screenshot

# Every test here drives the app in headless Chromium: `-m "not e2e"` leaves them out.
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster():
    with LoopbackCluster(workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def server(cluster, tmp_path_factory):
    running = Server(
        store_dir=tmp_path_factory.mktemp("store"),
        extra_env={"LTL_JOB_BACKEND": "dask", "LTL_DASK_SCHEDULER": cluster.address},
    )
    yield running
    running.stop()
    assert "Traceback" not in "".join(running.output), "".join(running.output)


def trained_on_the_cluster(cluster) -> list[str]:
    """Names of the training tasks the scheduler has seen."""
    from distributed import Client

    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        return client.run_on_scheduler(
            lambda dask_scheduler: [
                prefix for prefix in dask_scheduler.task_prefixes if "ltl-train" in prefix
            ]
        )


def test_the_digit_page_trains_on_the_cluster(server, cluster, page):
    page.goto(f"{server.url}/digits")
    expect(page.get_by_role("heading", name="Digit Recognizer")).to_be_visible(timeout=60_000)
    page.get_by_label("Training images (0 = all)").fill("1000")
    page.get_by_label("Epochs").fill("1")
    page.get_by_role("button", name="Train", exact=True).click()
    # A 1,000-image epoch on the cluster can end before the page first polls, so the test waits
    # for the end state, which needs every event from the worker (CI once missed "Epoch 1").
    expect(page.get_by_text("Finished 1 epoch(s)")).to_be_visible(timeout=240_000)
    expect(page.get_by_text("Test accuracy")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Confusion matrix (test set)")).to_be_visible()
    # The cluster was used: no fallback notice, and the scheduler ran the page's training task.
    expect(page.get_by_text("Dask cluster")).to_have_count(0)
    assert trained_on_the_cluster(cluster) == ["ltl-train-digits"]
    # The model rebuilt in the server can be saved like any other.
    page.get_by_role("textbox", name="Name").fill("cluster-cnn")
    page.get_by_role("button", name="Save to cache").click()
    expect(page.get_by_text("Saved as “cluster-cnn”")).to_be_visible(timeout=60_000)
    screenshot(page, "digits_cluster")
