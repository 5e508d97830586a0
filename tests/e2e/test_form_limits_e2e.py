"""Out-of-range numbers typed into a form: Train says which field and what range, never nothing."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e


def test_an_out_of_range_addition_field_gets_a_message_naming_it_and_its_range(server, page):
    page.goto(server.url)
    expect(page.get_by_role("heading", name="Addition RNN")).to_be_visible(timeout=60_000)
    page.get_by_label("Digits").fill("9")
    page.get_by_role("button", name="Train", exact=True).click()
    # The form's error says it (the model summary's caption may repeat it; the error is what counts).
    error = page.get_by_test_id("stAlertContentError")
    expect(error.get_by_text("Digits must be between 1 and 5, not 9.")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_have_count(0)  # Nothing started.


@pytest.mark.parametrize(
    ("label", "typed", "message"),
    [
        ("Epochs", "0", "Epochs must be between 1 and 50, not 0."),
        ("Learning rate", "0", "Learning rate must be between 0.00001 and 1, not 0"),
        # Above the images loaded (never more than MNIST's 60,000): the most the data allows.
        ("Training images (0 = all)", "9999999", "Training images must be at most"),
    ],
)
def test_an_out_of_range_digits_field_gets_a_message_naming_it_and_its_range(
    server, page, label, typed, message
):
    page.goto(f"{server.url}/digits")
    expect(page.get_by_role("heading", name="Digit Recognizer")).to_be_visible(timeout=60_000)
    page.get_by_label(label, exact=True).fill(typed)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_test_id("stAlertContentError").get_by_text(message)).to_be_visible()
    screenshot(page, f"digits_out_of_range_{label.lower().replace(' ', '_')}")
