"""Browser tests: one headless `streamlit run` per module, driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from harness.server import CHROMIUM, CHROMIUM_ARGS, ROOT, Server

ARTIFACTS = ROOT / "test-artifacts"

# CI shares two cores between the server's training threads and Chromium, and Streamlit loads some
# elements (Vega charts, data grids) as separate chunks on first use: Playwright's 5 s default wait for
# an element is too short there (a chart once took longer in CI), so every expect() waits up to 30 s.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(store_dir=tmp_path_factory.mktemp("store"))
    yield running
    running.stop()
    # A traceback in the server log means a page crashed somewhere the assertions did not look.
    assert "Traceback" not in "".join(running.output), "".join(running.output)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    yield opened
    context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def train_and_save(page: Page, url: str, *, iterations: int, name: str) -> None:
    """Open an Addition RNN link, train to the end and save the model under `name`."""
    page.goto(f"{url}&iterations={iterations}")
    page.get_by_role("button", name="Train", exact=True).click()
    finished = page.get_by_text(re.compile(rf"Finished {iterations} iteration"))
    expect(finished).to_be_visible(timeout=90_000)
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("button", name="Save to cache").click()
    expect(page.get_by_text(f"Saved as “{name}”")).to_be_visible(timeout=30_000)


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.5) -> bool:
    """Check `condition` until it holds or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    paced = threading.Event()  # Never set: waiting on it only paces the checks.
    while not condition():
        if time.monotonic() >= deadline:
            return condition()
        paced.wait(interval)
    return True


def draw_stroke(page, canvas, points):
    """Drag the mouse through `points` (fractions of the canvas) like a person drawing."""
    box = canvas.bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + points[0][0] * box["width"], y + points[0][1] * box["height"])
    page.mouse.down()
    for fraction_x, fraction_y in points[1:]:
        page.mouse.move(x + fraction_x * box["width"], y + fraction_y * box["height"], steps=4)
    page.mouse.up()


def drawing_square(page, *, timeout=60_000):
    """The drawing square's host element, once its script has set up the canvas (in its shadow root)."""
    square = page.locator("[class*='st-key-digits_canvas_']").first
    # The script marks the canvas with the version it drew; before that, a stroke would find no listener.
    expect(square.locator("canvas[data-version]")).to_be_visible(timeout=timeout)
    square.scroll_into_view_if_needed()
    return square


def draw_a_one(page):
    """Draw a "1": one vertical stroke down the middle of the canvas."""
    square = drawing_square(page, timeout=15_000)
    draw_stroke(page, square, [(0.5, 0.15 + step * 0.035) for step in range(21)])
