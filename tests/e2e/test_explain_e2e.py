"""The Digit Recognizer's "why did it say that?" views and "My digits" fine-tuning in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import draw_a_one, draw_stroke, drawing_square, screenshot

# Every test here drives the app in headless Chromium: `-m "not e2e"` leaves them out.
pytestmark = pytest.mark.e2e

SEVEN = [(0.25, 0.2), (0.45, 0.2), (0.75, 0.2), (0.65, 0.45), (0.55, 0.65), (0.5, 0.85)]
ZERO = [(0.5, 0.15), (0.3, 0.3), (0.27, 0.55), (0.35, 0.8), (0.5, 0.85), (0.68, 0.75)]
ZERO += [(0.73, 0.5), (0.68, 0.25), (0.5, 0.15)]
EXPLAIN_CHARTS = "Inside the network: every layer's activations and the first layer's filters"


def draw(page, digit):
    """Draw `digit` (0, 1 or 7) on a fresh drawing square."""
    if digit == 1:
        draw_a_one(page)
    else:
        draw_stroke(page, drawing_square(page), ZERO if digit == 0 else SEVEN)
    expect(page.get_by_text("What the model sees (28×28)")).to_be_visible(timeout=30_000)


def add_to_my_digits(page, label, count):
    """Pick `label` for the drawing and add it; `count` examples are in the set afterwards."""
    page.get_by_label("This drawing is a").click()
    page.get_by_role("option", name=str(label), exact=True).click()
    page.get_by_role("button", name=re.compile(r"Add to my digits")).click()
    expect(page.get_by_role("button", name=re.compile(rf"Add to my digits \({count}/"))).to_be_visible(
        timeout=30_000
    )
    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_text("Draw a digit on the black square.")).to_be_visible(timeout=30_000)


def section_clip(page, top, bottom):
    """The page area from the top of `top` to the bottom of `bottom`, the main column's full width."""
    main = page.get_by_test_id("stMainBlockContainer").bounding_box()
    first, last = top.bounding_box(), bottom.bounding_box()
    scroll = page.evaluate("() => window.scrollY")
    y = first["y"] + scroll - 16
    return {"x": main["x"], "y": y, "width": main["width"], "height": last["y"] + scroll + last["height"] - y + 16}


def test_explain_a_drawing_then_fine_tune_on_my_digits(server, page, mnist_dir):
    page.goto(f"{server.url}/digits")
    expect(page.get_by_role("heading", name="Digit Recognizer")).to_be_visible(timeout=60_000)
    page.get_by_label("Training images (0 = all)").fill("3000")
    page.get_by_label("Epochs").fill("1")
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text("Test accuracy")).to_be_visible(timeout=180_000)

    draw(page, 1)
    prediction = page.get_by_test_id("stMetric").filter(has_text="Prediction")
    expect(prediction.get_by_test_id("stMetricValue")).to_have_text(re.compile(r"^\d$"))
    digit = prediction.get_by_test_id("stMetricValue").inner_text()
    why = page.get_by_text("Why did it say that?")
    expect(why).to_be_visible(timeout=60_000)
    # The two saliency overlays: towards the predicted digit and away from the runner-up.
    overlays = why.locator("xpath=ancestor::*[@data-testid='stVerticalBlock'][1]")
    expect(overlays.get_by_test_id("stVegaLiteChart")).to_have_count(2, timeout=60_000)
    page.get_by_text(EXPLAIN_CHARTS).click()
    inside = page.get_by_test_id("stExpander").filter(has_text=EXPLAIN_CHARTS)
    # conv_1 and conv_2's maps, the dense layer's units and the first layer's filters.
    expect(inside.get_by_test_id("stVegaLiteChart")).to_have_count(4, timeout=60_000)
    screenshot(page, "explain_1400")
    page.screenshot(path="docs/explain.png", full_page=True, clip=section_clip(page, why, inside))
    del digit
