"""The Addition RNN page in a real browser: train a tiny config, watch the chart grow, stop it."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot

# Every test here drives the app in headless Chromium: `-m "not e2e"` leaves them out.
pytestmark = pytest.mark.e2e

TINY = (
    "digits=1&training_size=55&rnn_type=GRU&layers=1&hidden_size=16&batch_size=8"
    "&iterations=300&test_examples=5"
)


def test_train_watch_and_stop(server, page):
    page.goto(f"{server.url}/?{TINY}")
    expect(page.get_by_role("heading", name="Addition RNN")).to_be_visible(timeout=60_000)
    # The link preset the form.
    expect(page.get_by_label("Train iterations")).to_have_value("300")
    page.get_by_role("button", name="Train", exact=True).click()

    status = page.get_by_text(re.compile(r"Iteration \d+ of 300"))
    expect(status).to_be_visible(timeout=60_000)
    charts = page.get_by_test_id("stVegaLiteChart")
    # The first chart waits for Streamlit's Vega chunk to load and embed.
    expect(charts.first).to_be_visible(timeout=60_000)
    # The chart updates while training: the status line moves past iteration 3.
    expect(page.get_by_text(re.compile(r"Iteration ([4-9]|\d\d+) of 300"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"exact match \d+%"))).to_be_visible()

    page.get_by_role("button", name="Stop").click()
    # Between iterations or inside one (then the batches that ran are told).
    stopped = re.compile(r"Stopped (after \d+ iteration|during iteration \d+ after \d+ of \d+ batches)")
    expect(page.get_by_text(stopped)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Stop")).to_have_count(0)
    screenshot(page, "addition")
