"""The browser console while both training pages train: no Vega warnings, and what deep links fetch."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot

# Every test here drives the app in headless Chromium: `-m "not e2e"` leaves them out.
pytestmark = pytest.mark.e2e


def record_console(page):
    """Collect every console message and every failed `_stcore` request of `page`."""
    messages, missing = [], []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on(
        "response",
        lambda response: (
            missing.append(response.url)
            if response.status == 404 and "/_stcore/" in response.url
            else None
        ),
    )
    return messages, missing


def vega_warnings(messages):
    return sorted({message for message in messages if "Infinite extent" in message})


def errors_besides_missing_files(messages):
    # The 404s of Streamlit's base-path probe are logged as "Failed to load resource"; see below.
    return [m for m in messages if m.startswith("error:") and "Failed to load resource" not in m]


def test_training_the_addition_rnn_logs_no_vega_warnings(server, page):
    messages, _ = record_console(page)
    page.goto(f"{server.url}/?digits=1&training_size=50&test_examples=3&iterations=4")
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text(re.compile(r"Finished 4 iteration"))).to_be_visible(timeout=90_000)
    # Every chart of a finished run is on the page, drawn from its first point to its last.
    expect(page.get_by_text("Exact match (held-out sums)").first).to_be_visible()
    screenshot(page, "addition_charts_console")
    assert vega_warnings(messages) == []
    assert errors_besides_missing_files(messages) == []  # The fixed domains are valid Vega-Lite.


def test_a_deep_link_to_the_digit_page_trains_without_vega_warnings(server, page):
    messages, missing = record_console(page)
    page.goto(f"{server.url}/digits")
    expect(page.get_by_role("heading", name="Digit Recognizer")).to_be_visible(timeout=60_000)
    page.get_by_label("Training images (0 = all)").fill("600")
    page.get_by_label("Epochs").fill("2")
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text("Per-batch loss")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Test accuracy")).to_be_visible(timeout=180_000)
    expect(page.get_by_text("Confusion matrix (test set)")).to_be_visible()
    screenshot(page, "digits_charts_console")
    assert vega_warnings(messages) == []
    assert errors_besides_missing_files(messages) == []
    # Streamlit's frontend probes the deep link's path as a base path before the server root: the
    # 404s it gets are expected and harmless (the page above loaded and trained); only those two.
    probed = {re.sub(r"^https?://[^/]+", "", url) for url in missing}
    assert probed <= {"/digits/_stcore/host-config", "/digits/_stcore/health"}, probed
