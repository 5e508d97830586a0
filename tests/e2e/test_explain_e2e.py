"""The Digit Recognizer's "why did it say that?" views and "My digits" fine-tuning in a real browser."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS, draw_stroke

# Every test here drives the app in headless Chromium: `-m "not e2e"` leaves them out.
pytestmark = pytest.mark.e2e

SEVEN = [(0.25, 0.2), (0.45, 0.2), (0.75, 0.2), (0.65, 0.45), (0.55, 0.65), (0.5, 0.85)]
ZERO = [(0.5, 0.15), (0.3, 0.3), (0.27, 0.55), (0.35, 0.8), (0.5, 0.85), (0.68, 0.75)]
ZERO += [(0.73, 0.5), (0.68, 0.25), (0.5, 0.15)]
STROKES = {0: ZERO, 1: [(0.5, 0.15 + step * 0.035) for step in range(21)], 7: SEVEN}
EXPLAIN_CHARTS = "Inside the network: every layer's activations and the first layer's filters"


def draw(page, digit, version):
    """Draw `digit` (0, 1 or 7) on the drawing square of `version` (each Clear makes a new one)."""
    square = page.locator(f".st-key-digits_canvas_{version}")
    # The script marks the canvas with the version it drew; before that, a stroke would find no listener.
    expect(square.locator("canvas[data-version]")).to_be_visible(timeout=60_000)
    square.scroll_into_view_if_needed()
    draw_stroke(page, square, STROKES[digit])
    expect(page.get_by_text("What the model sees (28×28)")).to_be_visible(timeout=30_000)


def add_to_my_digits(page, label, count):
    """Pick `label` for the drawing and add it; `count` examples are in the set afterwards."""
    page.get_by_label("This drawing is a").click()
    page.get_by_role("option", name=str(label), exact=True).click()
    page.get_by_role("button", name=re.compile(r"Add to my digits")).click()
    expect(page.get_by_role("button", name=f"Add to my digits ({count}/")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_text("Draw a digit on the black square.")).to_be_visible(timeout=30_000)


def section_shot(page, path, top, bottom):
    """Save the main column from the top of `top` to the bottom of `bottom` as a PNG at `path`.

    Streamlit scrolls its main column, not the window, so a "full page" screenshot holds only the
    viewport: the viewport is made tall enough for the section first.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": 4000})
    top.scroll_into_view_if_needed()
    main = page.get_by_test_id("stMainBlockContainer").bounding_box()
    first, last = top.bounding_box(), bottom.bounding_box()
    y = max(0, first["y"] - 16)
    height = last["y"] + last["height"] - y + 16
    page.screenshot(path=path, clip={"x": main["x"], "y": y, "width": main["width"], "height": height})
    page.set_viewport_size(size)


def test_explain_a_drawing_then_fine_tune_on_my_digits(server, page, mnist_dir):
    page.goto(f"{server.url}/digits")
    expect(page.get_by_role("heading", name="Digit Recognizer")).to_be_visible(timeout=60_000)
    page.get_by_label("Training images (0 = all)").fill("3000")
    page.get_by_label("Epochs").fill("1")
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text("Test accuracy")).to_be_visible(timeout=180_000)

    draw(page, 1, version=0)
    prediction = page.get_by_test_id("stMetric").filter(has_text="Prediction")
    expect(prediction.get_by_test_id("stMetricValue")).to_have_text(re.compile(r"^\d$"))
    digit = prediction.get_by_test_id("stMetricValue").inner_text()
    why = page.get_by_text("Why did it say that?")
    expect(why).to_be_visible(timeout=60_000)
    # The two saliency overlays: towards the predicted digit and away from the runner-up.
    vega = page.get_by_test_id("stVegaLiteChart")
    expect(vega.filter(has_text=f"Why a {digit}?")).to_have_count(1, timeout=60_000)
    runner_up = vega.filter(has_text=re.compile(r"Why not a \d\?"))
    expect(runner_up).to_have_count(1)
    expect(runner_up).not_to_have_text(re.compile(f"Why not a {digit}\\?"))
    # Square, not stretched to the column's width: the drawn overlay is no wider than it is tall (its
    # title sits on top), and both overlays have the same size.
    overlays = [vega.filter(has_text=f"Why a {digit}?"), runner_up]
    for overlay in overlays:
        expect(overlay.locator("canvas, svg").first).to_be_visible()
    boxes = [overlay.locator("canvas, svg").first.bounding_box() for overlay in overlays]
    for box in boxes:
        assert box["width"] <= box["height"], boxes
    assert boxes[0]["width"] == boxes[1]["width"], boxes
    page.get_by_text(EXPLAIN_CHARTS).click()
    inside = page.get_by_test_id("stExpander").filter(has_text=EXPLAIN_CHARTS)
    # conv_1 and conv_2's maps, the dense layer's units and the first layer's filters.
    charts = inside.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(4, timeout=60_000)
    for index in range(4):
        expect(charts.nth(index).locator("canvas, svg").first).to_be_visible(timeout=60_000)
    # The section at both widths, to look at (a full-page shot holds only the viewport); a test never
    # writes into the repository: docs/explain.png is a copy of explain_1400.png.
    section_shot(page, str(ARTIFACTS / "explain_1400.png"), why, inside)
    page.set_viewport_size({"width": 1024, "height": 1000})
    section_shot(page, str(ARTIFACTS / "explain_1024.png"), why, inside)
    # At 1024 px every grid of panels still fits inside the expander (8 columns once ran past it).
    right_edge = inside.bounding_box()["x"] + inside.bounding_box()["width"]
    for index in range(4):
        box = charts.nth(index).locator("canvas, svg").first.bounding_box()
        assert box["x"] + box["width"] <= right_edge, (index, box, right_edge)
    page.set_viewport_size({"width": 1400, "height": 1000})

    # "My digits": six labelled drawings (two of each), enough to hold some out and fine-tune.
    fine_tune = page.get_by_role("button", name="Fine-tune on my digits")
    expect(fine_tune).to_be_disabled()
    page.get_by_role("button", name="Clear").click()
    for count, label in enumerate([1, 7, 0, 1, 7, 0], start=1):
        draw(page, label, version=count)
        add_to_my_digits(page, label, count)
    expect(page.get_by_text("Per digit: 0: 2, 1: 2, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 2")).to_be_visible()
    expect(fine_tune).to_be_enabled()
    fine_tune.click()

    held_out = page.get_by_test_id("stMetric").filter(has_text="My held-out digits")
    expect(held_out).to_be_visible(timeout=180_000)
    mnist = page.get_by_test_id("stMetric").filter(has_text="MNIST test accuracy")
    expect(held_out.get_by_test_id("stMetricLabel")).to_have_text(
        re.compile(r"My held-out digits \(\d+\)")
    )
    expect(held_out.get_by_test_id("stMetricValue")).to_have_text(re.compile(r"^\d+%$"))
    expect(held_out.get_by_test_id("stMetricDelta")).to_have_text(re.compile(r"^[+-]\d+% \(was \d+%\)$"))
    expect(mnist.get_by_test_id("stMetricValue")).to_have_text(re.compile(r"^\d+\.\d\d%$"))
    expect(mnist.get_by_test_id("stMetricDelta")).to_have_text(
        re.compile(r"^[+-]\d+\.\d\d% \(was \d+\.\d\d%\)$")
    )
    heading = page.get_by_role("heading", name="My digits")
    section_shot(page, str(ARTIFACTS / "my_digits_1400.png"), heading, mnist)
    page.set_viewport_size({"width": 1024, "height": 1000})
    section_shot(page, str(ARTIFACTS / "my_digits_1024.png"), heading, mnist)
