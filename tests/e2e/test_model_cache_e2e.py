"""The Model Cache in a real browser: save a model from a training page, load it, quantize it."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, train_and_save

# Every test here drives the app in headless Chromium: `-m "not e2e"` leaves them out.
pytestmark = pytest.mark.e2e

TINY = "digits=1&training_size=55&rnn_type=GRU&hidden_size=16&batch_size=8&test_examples=5"


def test_save_list_load_and_quantize(server, page):
    train_and_save(page, f"{server.url}/?{TINY}", iterations=3, name="browser adder")

    page.get_by_role("link", name="Model Cache").click()
    expect(page.get_by_role("heading", name="Model Cache")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stDataFrame")).to_contain_text("browser adder")

    page.get_by_role("button", name="Load", exact=True).click()
    expect(page.get_by_text(re.compile(r"Loaded in [\d.]+ ms from the"))).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stProgress")).to_be_visible()

    page.get_by_role("button", name="Quantize").click()
    stored = page.get_by_text(re.compile(r"Stored “browser adder \(int8\)”"))
    expect(stored).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("stDataFrame").first).to_contain_text("tflite-int8")
    screenshot(page, "model_cache")
