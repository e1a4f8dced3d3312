"""A bulk change on a large selection in a real browser: the button leads to the task's page,
whose script (allowed by the CSP: a file of our own, no inline code) polls the progress and
shows the result when the job is done, without the user reloading."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.test_contacts import _world_with_contacts
from tests.e2e.test_staff_login import account_menu, sign_in_with_keyboard
from tests.support import PASSWORD


def test_large_bulk_change_runs_in_the_background_with_live_progress(page: Page, live_server, app, world,
                                                                     screenshot, monkeypatch):
    from core.jobs import run_pending_jobs
    from crm import bulk

    # Test-only: "large" is more than 10 contacts here (500 in the app), a chunk 10 (500).
    monkeypatch.setattr(bulk, "IN_REQUEST_MAX", 10)
    monkeypatch.setattr(bulk, "CHUNK", 10)
    _world_with_contacts(app, world, n=30)
    blocked = []
    page.on("console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text
            else None)

    page.goto(live_server.url("acme", "/staff/contacts?q=bookworm"))
    sign_in_with_keyboard(page, "olivia@acme.example", PASSWORD)
    page.get_by_role("button", name="Select all 30 matching").click()
    page.get_by_text("Do something with the 30 selected…").click()
    page.get_by_label("Action").select_option(label="Add to a circle")
    page.get_by_label("Circle (add to / remove from)").select_option(label="Book club")
    page.get_by_role("button", name=re.compile("Apply to 30 contacts")).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Add to a circle: “Book club”")
    expect(page.locator("[data-operation-progress]")).to_contain_text("Waiting to start")
    expect(page.locator("[data-operation-progress]")).to_contain_text("0 of 30 contacts processed")
    screenshot(page, "operation-waiting")

    with app.app_context():
        assert run_pending_jobs() == 1
    # No reload by the test: the page's script notices the end and shows the result.
    expect(page.locator(".operation-summary")).to_have_text("Add to a circle: 30 contacts changed.", timeout=15_000)
    expect(page.locator("progress")).to_have_attribute("value", "30")
    screenshot(page, "operation-done")

    account_menu(page, "Olivia Owner").click()
    page.get_by_role("link", name="Background tasks", exact=True).click()
    expect(page.get_by_role("link", name="Add to a circle: “Book club”")).to_be_visible()
    assert not blocked, f"the CSP blocked something: {blocked}"
