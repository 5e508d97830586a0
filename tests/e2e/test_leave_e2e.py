"""Leaving a page while it trains: a warning first; the page's link survives the sidebar navigation."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

LONG_RUN = "digits=1&training_size=55&hidden_size=8&batch_size=16&iterations=1000&test_examples=2"


def test_reloading_while_a_run_trains_asks_first_and_the_status_says_why(server, page):
    page.goto(f"{server.url}/?{LONG_RUN}")
    expect(page.get_by_role("heading", name="Addition RNN")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text(re.compile(r"Iteration \d+ of 1000"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile("Reloading or leaving this page drops"))).to_be_visible()
    # The warning is text the page shows at once; the guard is a script its component frame runs a
    # moment later (on a busy machine, after the text): wait for it to be installed in the app window.
    page.wait_for_function("() => window.ltlLeaveGuard === true")
    # The browser asks before the page (and the run with it) goes.
    with page.expect_event("dialog") as dialog_info:
        page.close(run_before_unload=True)
    dialog = dialog_info.value
    assert dialog.type == "beforeunload"
    dialog.accept()


def test_once_the_run_has_stopped_the_page_closes_without_asking(server, page):
    page.goto(f"{server.url}/?{LONG_RUN}")
    expect(page.get_by_role("heading", name="Addition RNN")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text(re.compile("Reloading or leaving this page drops"))).to_be_visible()
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text(re.compile(r"Stopped (after|during)"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile("Reloading or leaving this page drops"))).to_have_count(0)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
    with page.expect_event("close"):
        page.close(run_before_unload=True)
    assert dialogs == []


def test_the_sidebar_keeps_a_pages_link_when_coming_back(server, page):
    page.goto(f"{server.url}/?digits=3&rnn_type=GRU")
    expect(page.get_by_role("heading", name="Addition RNN")).to_be_visible(timeout=60_000)
    expect(page.get_by_label("Digits")).to_have_value("3")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Digit Recognizer").click()
    expect(page.get_by_role("heading", name="Digit Recognizer")).to_be_visible(timeout=60_000)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Addition RNN").click()
    expect(page.get_by_role("heading", name="Addition RNN")).to_be_visible(timeout=60_000)
    # Back on the page, the address bar holds its link again and the form follows it.
    expect(page).to_have_url(re.compile(r"digits=3"))
    expect(page).to_have_url(re.compile(r"rnn_type=GRU"))
    expect(page.get_by_label("Digits")).to_have_value("3")
