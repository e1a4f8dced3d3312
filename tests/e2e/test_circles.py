"""Circles and tags in a real browser: an Admin creates a circle, finds a contact by e-mail and
adds it, assigns a teammate; a duplicate name is explained beside the field; the tag cloud
links to the contact list. Desktop and phone screenshots of each page."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support import PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
def crm(app, world):
    """Tenant A (acme) with two contacts and a few tagged ones."""
    from core.db import db
    from core.tenancy import tenant_context
    from tests.factories import make_company, make_contact, make_tag, tag_record

    with app.app_context(), tenant_context(world.a.id):
        make_contact("Grace", "Hopper", email="grace@navy.example", owner_id=world.a.members["admin"].id)
        make_contact("Alan", "Turing", email="alan@bletchley.example")
        make_company("Initech", domain="initech.example")
        for name, n in (("vip", 6), ("newsletter", 3), ("trade fair 2024", 1), ("churn risk", 2)):
            tag = make_tag(name)
            for i in range(n):
                tag_record(tag, contact=make_contact("Tagged", f"{name.title()} {i}"))
        db.session.commit()
        db.session.remove()
    return world.a


def sign_in(page: Page, live_server, slug: str, email: str, path: str) -> None:
    page.goto(live_server.url(slug, path))
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password", exact=True).press("Enter")
    expect(page).to_have_url(live_server.url(slug, path))


def no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def test_admin_creates_a_circle_and_adds_a_contact(page: Page, live_server, crm, screenshot):
    sign_in(page, live_server, crm.slug, crm.members["admin"].email, "/staff/circles")
    expect(page.get_by_role("heading", level=1)).to_have_text("Circles")
    expect(page.locator("nav a[href=\"/staff/circles\"]")).to_have_attribute("aria-current", "page")
    screenshot(page, "empty-list")

    page.get_by_role("button", name="New circle").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New circle")
    page.get_by_label("Name").fill("VIP clients")
    page.get_by_label("Description").fill("Our best clients: invite them to every launch.")
    page.get_by_label("Colour").fill("#aa3300")
    screenshot(page, "new-circle-form")
    page.get_by_role("button", name="Create circle").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("VIP clients")
    expect(page.get_by_role("status")).to_contain_text("Circle “VIP clients” created.")
    swatch = page.locator("h1 .swatch")
    assert swatch.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(170, 51, 0)"

    # Find a contact by e-mail with the keyboard, then add it from the results.
    search = page.get_by_label("Add a contact")
    search.fill("grace@navy.example")
    search.press("Enter")
    results = page.get_by_role("region", name=re.compile("Contacts matching"))
    expect(results).to_contain_text("Grace Hopper")
    expect(results).not_to_contain_text("Alan Turing")
    screenshot(page, "search-results")
    results.get_by_role("button", name="Add Grace Hopper").click()

    expect(page.get_by_role("status")).to_have_text("Added Grace Hopper to “VIP clients”.")
    contacts = page.locator("#contacts table")
    expect(contacts.get_by_role("link", name="Grace Hopper")).to_be_visible()
    expect(contacts).to_contain_text("Adam Admin")
    expect(page.get_by_role("region", name=re.compile("Contacts matching"))).to_contain_text("Already in this circle")
    expect(page.locator("#history table")).to_contain_text("Still a member")

    # A teammate assigned to the circle.
    page.get_by_label("Assign a teammate").select_option(label="Sam Staff (Staff)")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Sam Staff is assigned to “VIP clients”.")
    expect(page.locator("#staff .staff-list")).to_contain_text("Sam Staff")
    expect(page.locator("body")).not_to_contain_text("CANARY-B")
    screenshot(page, "circle-page")
    page.set_viewport_size({"width": 390, "height": 844})
    no_sideways_scroll(page)

    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("link", name="← All circles").click()
    row = page.get_by_role("row", name=re.compile("VIP clients"))
    expect(row).to_contain_text("1")
    expect(row).to_contain_text("Our best clients")
    screenshot(page, "list")


def test_a_duplicate_name_is_explained_beside_the_field(page: Page, live_server, crm, screenshot):
    sign_in(page, live_server, crm.slug, crm.members["owner"].email, "/staff/circles/new")
    page.get_by_label("Name").fill("Partners")
    page.get_by_role("button", name="Create circle").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Partners")

    page.goto(live_server.url(crm.slug, "/staff/circles/new"))
    page.get_by_label("Name").fill("PARTNERS")
    page.get_by_label("Description").fill("kept")
    page.get_by_label("Name").press("Enter")
    name = page.get_by_label("Name")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#name-error")).to_have_text(
        "There is already a circle called “Partners”. Choose another name.")
    expect(name).to_have_value("PARTNERS")
    expect(page.get_by_label("Description")).to_have_value("kept")
    screenshot(page, "duplicate-name")


def test_tag_cloud_links_to_the_contact_list(page: Page, live_server, crm, screenshot):
    sign_in(page, live_server, crm.slug, crm.members["admin"].email, "/staff/tags")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tags")
    cloud = page.get_by_role("list", name="Tags by use")
    vip = cloud.get_by_role("link", name=re.compile("^vip"))
    expect(vip).to_have_attribute("href", re.compile(r"^/staff/contacts\?tag=\d+$"))
    size = lambda link: link.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")  # noqa: E731
    assert size(vip) > size(cloud.get_by_role("link", name=re.compile("^trade fair 2024")))
    page.get_by_text("Rename, merge or delete tags").click()
    screenshot(page, "cloud")
    page.set_viewport_size({"width": 390, "height": 844})
    no_sideways_scroll(page)

    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("link", name="Manage the tag churn risk").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("churn risk")
    page.get_by_label("New name").fill("VIP")
    page.get_by_role("button", name="Rename tag").click()
    expect(page.get_by_role("status")).to_have_text("“churn risk” is merged into “vip”.")
    expect(page.locator(".facts")).to_contain_text("8")
    screenshot(page, "tag-page")
