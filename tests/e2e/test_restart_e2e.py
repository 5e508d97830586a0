"""The server killed with SIGKILL in the middle of training, then restarted on the same model store.

What a student saved before the crash must still be listed and load; the new server must serve and train.
"""

import re

import pytest
from playwright.sync_api import expect

from core.modelstore.store import TEMP_PREFIX, ModelStore
from harness.server import Server
from tests.e2e.conftest import screenshot, train_and_save

# Every test here drives the app in headless Chromium: `-m "not e2e"` leaves them out.
pytestmark = pytest.mark.e2e

TINY = "digits=1&training_size=55&rnn_type=GRU&hidden_size=16&batch_size=8&test_examples=2"


def test_sigkill_during_training_loses_no_saved_model(tmp_path, page):
    store_dir = tmp_path / "store"
    first = Server(store_dir=store_dir)
    try:
        train_and_save(page, f"{first.url}/?{TINY}", iterations=3, name="before the crash")

        page.goto(f"{first.url}/?{TINY}&iterations=1000")
        page.get_by_role("button", name="Train", exact=True).click()
        expect(page.get_by_text(re.compile(r"Iteration \d+ of 1000"))).to_be_visible(timeout=60_000)
        first.process.kill()
        assert first.process.wait(timeout=30) == -9
    finally:
        first.stop()

    second = Server(store_dir=store_dir)
    try:
        page.goto(f"{second.url}/models")
        expect(page.get_by_role("heading", name="Model Cache")).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("stDataFrame").first).to_contain_text("before the crash")
        page.get_by_role("button", name="Load", exact=True).click()
        loaded = page.get_by_text(re.compile(r"Loaded in [\d.]+ ms from the"))
        expect(loaded).to_be_visible(timeout=60_000)
        screenshot(page, "after_restart")

        # The restarted server trains again.
        page.goto(f"{second.url}/?{TINY}&iterations=2")
        page.get_by_role("button", name="Train", exact=True).click()
        expect(page.get_by_text(re.compile(r"Finished 2 iteration"))).to_be_visible(timeout=90_000)
    finally:
        second.stop()
    assert "Traceback" not in "".join(second.output), "".join(second.output)
    with ModelStore(store_dir) as store:
        assert [model.name for model in store.list_models()] == ["before the crash"]
        # Every listed file is whole: its checksum matches the one recorded at save time.
        assert set(store.verify_all().values()) == {None}
    assert not list(store_dir.glob(f"{TEMP_PREFIX}*"))
