"""The Digit Recognizer page in a real browser: train a small model, draw a digit, read the answer."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import draw_a_one, draw_stroke, drawing_square, screenshot
from tests.utils.mnist import mnist_counts

# Every test here drives the app in headless Chromium: `-m "not e2e"` leaves them out.
pytestmark = pytest.mark.e2e


def test_train_then_draw_a_digit(server, page, mnist_dir):
    counts = mnist_counts(mnist_dir)
    page.goto(f"{server.url}/digits")
    expect(page.get_by_role("heading", name="Digit Recognizer")).to_be_visible(timeout=60_000)
    shown = f"MNIST: {counts['train_images']:,} train and {counts['test_images']:,} test images"
    expect(page.get_by_text(shown)).to_be_visible()
    page.get_by_label("Training images (0 = all)").fill("3000")
    page.get_by_label("Epochs").fill("2")
    page.get_by_role("button", name="Train", exact=True).click()

    expect(page.get_by_text(re.compile(r"Epoch \d"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Per-batch loss")).to_be_visible(timeout=60_000)
    # Drawn while training runs: the rerun when training ends must keep the stroke.
    draw_a_one(page)
    expect(page.get_by_text("What the model sees (28×28)")).to_be_visible(timeout=20_000)
    expect(page.get_by_text("Test accuracy")).to_be_visible(timeout=180_000)
    expect(page.get_by_text("Confusion matrix (test set)")).to_be_visible()

    expect(page.get_by_text("What the model sees (28×28)")).to_be_visible()
    prediction = page.get_by_test_id("stMetric").filter(has_text="Prediction")
    expect(prediction.get_by_test_id("stMetricValue")).to_have_text("1", timeout=30_000)
    expect(page.get_by_text("Probabilities")).to_be_visible()
    expect(page.get_by_text(re.compile(r"\d+% confident"))).to_be_visible()
    screenshot(page, "digits_1400")
    page.set_viewport_size({"width": 1024, "height": 1000})
    screenshot(page, "digits_1024")

    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_text("Draw a digit on the black square.")).to_be_visible(timeout=30_000)


@pytest.mark.parametrize("width", [400, 1024, 1400])
def test_the_canvas_stays_square_and_whole_at_every_width(server, page, width):
    # At 1024 px the canvas sat in a 177-px column: a clipped tall rectangle instead of the square.
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{server.url}/digits")
    # The drawing sits in a shadow root; its host's box is what the page lets the student see.
    host = drawing_square(page)
    box = host.bounding_box()
    assert box is not None
    assert (box["width"], box["height"]) == (280, 280)
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    corner = [box["x"] + box["width"] - 3, box["y"] + box["height"] - 3]
    stack = page.evaluate(
        "([x, y]) => document.elementsFromPoint(x, y).map(element => String(element.className))", corner
    )
    assert any("st-key-digits_canvas_" in name for name in stack), stack
    screenshot(page, f"digits_canvas_{width}")


def test_a_stroke_starting_in_the_top_right_corner_is_drawn(server, page):
    # The old canvas's hover toolbar covered the top ~28 px of its right half and swallowed such strokes.
    page.goto(f"{server.url}/digits")
    square = drawing_square(page)
    start = (0.93, 0.03)
    draw_stroke(page, square, [start] + [(0.93, 0.03 + step * 0.04) for step in range(1, 16)])
    expect(page.get_by_text("What the model sees (28×28)")).to_be_visible()
    # The very first point of the stroke is white ink on the square, not lost.
    canvas = square.locator("canvas")
    side = canvas.evaluate("canvas => canvas.width")
    first = canvas.evaluate(
        "(canvas, [x, y]) => Array.from(canvas.getContext('2d').getImageData(x, y, 1, 1).data)",
        [round(start[0] * side), round(start[1] * side)],
    )
    assert first[:3] == [255, 255, 255], first


def test_the_drawing_square_has_no_toolbar_only_our_clear_button(server, page):
    page.goto(f"{server.url}/digits")
    square = drawing_square(page)
    square.hover()  # The old canvas showed its toolbar (trash, undo, "update the app") on hover.
    # CSS locators reach into the square's shadow root; hidden buttons count too.
    assert square.locator("button, [role='button'], input, iframe").count() == 0
    assert square.locator("canvas").count() == 1
    expect(page.get_by_role("button", name="Clear")).to_have_count(1)
