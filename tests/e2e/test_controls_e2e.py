"""The run controls in a real browser: pause a tiny Addition run, resume, stop, download its curves."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_addition_e2e import TINY

# Every test here drives the app in headless Chromium: `-m "not e2e"` leaves them out.
pytestmark = pytest.mark.e2e

ITERATIONS = int(re.search(r"iterations=(\d+)", TINY).group(1))


def later_iteration(after: int) -> re.Pattern[str]:
    """The status line once training has gone past iteration `after`."""
    numbers = "|".join(str(number) for number in range(after + 1, ITERATIONS + 1))
    return re.compile(rf"Iteration ({numbers}) of {ITERATIONS}\b")


def test_pause_resume_stop_and_download_the_curves(server, page):
    page.goto(f"{server.url}/?{TINY}")
    expect(page.get_by_role("heading", name="Addition RNN")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text(re.compile(rf"Iteration \d+ of {ITERATIONS}"))).to_be_visible(timeout=60_000)

    page.get_by_role("button", name="Pause", exact=True).click()
    paused = page.get_by_text(re.compile(rf"Paused at iteration \d+ of {ITERATIONS}"))
    expect(paused).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Pause", exact=True)).to_have_count(0)
    screenshot(page, "controls_paused")
    at = int(re.search(r"Paused at iteration (\d+)", paused.inner_text()).group(1))

    page.get_by_role("button", name="Resume", exact=True).click()
    # Resumed from where it paused: the run goes on past the paused iteration.
    expect(page.get_by_text(later_iteration(at))).to_be_visible(timeout=60_000)
    expect(paused).to_have_count(0)

    page.get_by_role("button", name="Stop", exact=True).click()
    # Between iterations ("Stopped after 15 iteration(s)") or inside one ("Stopped during iteration
    # 16 after 1 of 7 batches"): which depends on when the click lands.
    stopped = re.compile(r"Stopped (after \d+ iteration|during iteration \d+ after)")
    expect(page.get_by_text(stopped)).to_be_visible(timeout=60_000)

    download_button = page.get_by_role("button", name="Curves (CSV)", exact=True)
    expect(download_button).to_be_visible()
    with page.expect_download() as download_info:
        download_button.click()
    download = download_info.value
    assert download.suggested_filename.endswith("-epochs.csv")
    with open(download.path(), encoding="utf-8") as curves:
        lines = curves.read().splitlines()
    assert lines[0] == "epoch,loss,accuracy,val_loss,val_accuracy,seconds"
    # One row per finished iteration, the last one past the pause.
    assert len(lines) > 1 and int(lines[-1].split(",")[0]) >= at
