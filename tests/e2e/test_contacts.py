"""The contact list in a real browser: add a contact, filter, select across two pages, and
bulk-add the selection to a circle."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.test_staff_login import sign_in_with_keyboard
from tests.support import PASSWORD


def _world_with_contacts(app, world, n=55):
    from core.db import db
    from core.tenancy import tenant_context
    from tests.factories import make_circle, make_contact

    with app.app_context(), tenant_context(world.a.id):
        for i in range(n):
            make_contact(f"Reader{i:02d}", "Bookworm", role="lead")
        make_circle("Book club")
        db.session.commit()


def test_add_filter_select_across_pages_and_bulk_add_to_circle(page: Page, live_server, app, world, screenshot):
    _world_with_contacts(app, world)
    page.goto(live_server.url("acme", "/staff/contacts"))
    sign_in_with_keyboard(page, "olivia@acme.example", PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Contacts")

    # Add a contact through the form, keyboard first.
    page.get_by_role("button", name="Add a contact").click()
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("E-mail", exact=True).fill("ada@example.com")
    page.get_by_label("Phone", exact=True).fill("+44 20 7946 0958")
    page.get_by_label("Company").fill("Analytical Engines")
    screenshot(page, "new-contact-form")
    page.get_by_role("button", name="Add contact").click()
    expect(page.get_by_role("status").first).to_contain_text("Ada Lovelace is added.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    screenshot(page, "contact-page")

    # Filter the list: search and role.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    page.get_by_label("Search").fill("lovelace")
    page.keyboard.press("Enter")
    expect(page.locator("p.list-summary")).to_contain_text("1 contact matches")
    expect(page.get_by_role("link", name="Ada Lovelace")).to_be_visible()

    # Select two on page one and one on page two; the selection survives paging.
    page.goto(live_server.url("acme", "/staff/contacts?q=bookworm&sort=name&dir=asc"))
    expect(page.locator("p.list-summary")).to_contain_text("55 contacts match")
    page.get_by_label("Select Reader00 Bookworm").check()
    expect(page.locator("#selection-status")).to_contain_text("1 selected")
    page.get_by_label("Select Reader01 Bookworm").check()
    expect(page.locator("#selection-status")).to_contain_text("2 selected")
    page.get_by_role("link", name="Next page").click()
    page.get_by_label("Select Reader54 Bookworm").check()
    expect(page.locator("#selection-status")).to_contain_text("3 selected")
    page.go_back()
    page.reload()
    expect(page.get_by_label("Select Reader00 Bookworm")).to_be_checked()
    screenshot(page, "selection-across-pages")

    # Bulk-add the three to a circle.
    page.get_by_text("Do something with the 3 selected…").click()
    page.get_by_label("Action").select_option(label="Add to a circle")
    page.get_by_label("Circle (add to / remove from)").select_option(label="Book club")
    screenshot(page, "bulk-action-form")
    page.get_by_role("button", name=re.compile("Apply to 3 contacts")).click()
    expect(page.get_by_role("status").first).to_contain_text("Add to a circle: 3 contacts changed.")
    circle_filter = page.get_by_label("Circle", exact=True)
    page.get_by_text("Filters", exact=True).click()
    circle_filter.select_option(label="Book club")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("p.list-summary")).to_contain_text("3 contacts match")
    screenshot(page, "circle-filter")
