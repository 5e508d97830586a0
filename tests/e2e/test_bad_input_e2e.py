"""Bad input in a real browser: hostile links, files that are not what they claim, oversized uploads."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot

# Every test here drives the app in headless Chromium: `-m "not e2e"` leaves them out.
pytestmark = pytest.mark.e2e

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_a_hostile_link_is_ignored_with_messages_and_never_rendered_as_html(server, page):
    page.goto(
        f"{server.url}/?digits=-3&batch_size=1e9&iterations=99999999999999999999"
        "&rnn_type=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&hidden_size=12.5"
    )
    expect(page.get_by_role("heading", name="Addition RNN")).to_be_visible(timeout=60_000)
    warnings = page.get_by_text(re.compile("Link setting ignored"))
    expect(warnings).to_have_count(5)
    # The form kept its defaults for every ignored setting.
    expect(page.get_by_label("Digits")).to_have_value("2")
    expect(page.get_by_label("Batch size")).to_have_value("128")
    expect(page.get_by_label("Train iterations")).to_have_value("100")
    # The injected markup is shown as text, never turned into an element.
    expect(page.locator("img[src='x']")).to_have_count(0)
    screenshot(page, "hostile_link")


def add_once_uploaded(page, uploader, path, message: str) -> None:
    """Upload `path` into an emptied uploader, press Add once the button is enabled, await `message`."""
    button = page.get_by_role("button", name="Add to the store")
    # Remove the previous file first: the button is then disabled until the new upload's rerun has run,
    # so enabled means the server has the new file (a press before that would add the old one).
    page.get_by_role("button", name=re.compile("^Remove ")).click()
    expect(button).to_be_disabled(timeout=30_000)
    uploader.set_input_files(str(path))
    expect(button).to_be_enabled(timeout=60_000)
    button.click()
    expect(page.get_by_text(message)).to_be_visible(timeout=30_000)


def test_uploads_that_are_not_models_or_too_big_are_refused_with_a_message(server, page, tmp_path):
    fake = tmp_path / "holiday.keras"
    fake.write_bytes(PNG_BYTES)
    over_model_limit = tmp_path / "large.keras"
    with open(over_model_limit, "wb") as handle:
        handle.truncate(21 * 1024 * 1024)  # Past the 20 MB model limit, within the upload limit.
    big = tmp_path / "huge.keras"
    with open(big, "wb") as handle:
        handle.truncate(65 * 1024 * 1024)  # One MB over server.maxUploadSize.

    page.goto(f"{server.url}/models")
    expect(page.get_by_role("heading", name="Model Cache")).to_be_visible(timeout=60_000)
    page.get_by_text("Upload a .keras model").click()
    uploader = page.get_by_test_id("stFileUploaderDropzoneInput")

    uploader.set_input_files(str(fake))
    page.get_by_role("button", name="Add to the store").click()
    expect(page.get_by_text(re.compile(r"Refused: this is not a \.keras file"))).to_be_visible(
        timeout=30_000
    )

    limit = "Refused: the file is 22,020,096 bytes; the limit is 20,971,520 bytes."
    add_once_uploaded(page, uploader, over_model_limit, limit)

    uploader.set_input_files(str(big))
    too_big = page.get_by_text(re.compile(r"File must be 64\.0MB or smaller"))
    expect(too_big).to_be_visible(timeout=60_000)
    screenshot(page, "refused_upload")
