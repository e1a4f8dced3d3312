"""Merge two duplicates in a real browser: the contact list leads to the possible duplicates,
a group opens the side-by-side merge page, values are picked per field, and the merge lands
on the surviving contact. Also the same page at phone size."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from core.db import db
from core.tenancy import tenant_context
from crm.models import Contact
from tests.factories import add_attendee, make_company, make_contact, make_event, make_note, make_tag, tag_record
from tests.support import PASSWORD
from tests.e2e.viewports import PHONE

pytestmark = pytest.mark.e2e



@pytest.fixture
def twins(app, world) -> dict[str, int]:
    """Tenant A: Grace Hopper twice at one company (once typed in lower case, with another
    e-mail and phone), and an unrelated pair sharing a phone, so the page has two groups."""
    with app.app_context(), tenant_context(world.a.id):
        navy = make_company("US Navy")
        kept = make_contact("Grace", "Hopper", email="grace@navy.example", phone="+12025550100",
                            company_id=navy.id, job_title="Rear Admiral", role="client", city="Arlington")
        twin = make_contact("grace", "hopper", email="amazing.grace@example.com", phone="+12025550111",
                            company_id=navy.id, role="lead", notes="Invented the first compiler.",
                            owner_id=world.a.members["staff"].id)
        make_note(twin, "Asked for a talk on COBOL.")
        tag_record(make_tag("speaker"), contact=twin)
        add_attendee(make_event("Computing history night"), twin, status="accepted")
        make_contact("Alan", "Turing", phone="+442079460958", email=None)
        make_contact("A. M.", "Turing", phone="+442079460958", email="alan@example.com")
        db.session.commit()
        ids = {"kept": kept.id, "twin": twin.id}
        db.session.remove()
    return ids


def sign_in(page: Page, live_server, world, path: str) -> None:
    page.goto(live_server.url(world.a.slug, path))
    page.get_by_label("E-mail").fill(world.a.members["admin"].email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def test_merge_two_duplicates(page: Page, live_server, world, twins, app, screenshot):
    sign_in(page, live_server, world, "/staff/contacts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Contacts")
    page.get_by_role("button", name="Possible duplicates").click()  # a link styled as a button

    expect(page.get_by_role("heading", level=1)).to_have_text("Possible duplicates")
    groups = page.locator("article.dup-group")
    expect(groups).to_have_count(2)
    grace = groups.filter(has_text="Same name at the same company")
    expect(grace.get_by_role("heading")).to_have_text("Grace Hopper at US Navy")
    expect(grace.get_by_role("row")).to_have_count(3)  # header + the two of them
    expect(groups.filter(has_text="Same phone")).to_contain_text("A. M. Turing")
    expect(page.locator("body")).not_to_contain_text("CANARY-B")
    screenshot(page, "duplicates")

    grace.get_by_role("button", name=re.compile("^Merge")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Merge contacts")
    table = page.get_by_role("table")
    # Defaults: the survivor is the one added first; its values, the furthest role.
    expect(table.get_by_role("radio", name="Keep Grace Hopper", exact=True)).to_be_checked()
    expect(table.get_by_role("radio", name="grace@navy.example")).to_be_checked()
    expect(table.get_by_role("radio", name="Client")).to_be_checked()
    expect(table).to_contain_text("1 note, 1 event, 1 tag")
    screenshot(page, "merge-page")

    # Keep the twin's personal e-mail and phone, and the twin's owner.
    table.get_by_role("radio", name="+1 202-555-0111").check()
    table.get_by_role("radio", name="amazing.grace@example.com").check()
    table.get_by_role("radio", name="Sam Staff").check()
    screenshot(page, "merge-page-chosen", sizes=("desktop",))
    page.get_by_role("button", name="Merge 2 contacts").click()

    expect(page).to_have_url(live_server.url(world.a.slug, f"/staff/contacts/{twins['kept']}"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Grace Hopper")
    expect(page.get_by_text("Merged grace hopper into Grace Hopper.")).to_be_visible()
    details = page.locator("dl.facts")
    expect(details).to_contain_text("amazing.grace@example.com")
    expect(details).to_contain_text("grace@navy.example")  # kept as another e-mail
    expect(details).to_contain_text("Sam Staff")
    expect(details).to_contain_text("+1 202-555-0111")
    expect(page.locator(".contact-notes")).to_contain_text("Invented the first compiler.")
    expect(page.locator(".contact-timeline")).to_contain_text("Merged with grace hopper")
    screenshot(page, "survivor")

    # The merged contact's address leads to the survivor.
    page.goto(live_server.url(world.a.slug, f"/staff/contacts/{twins['twin']}"))
    expect(page).to_have_url(live_server.url(world.a.slug, f"/staff/contacts/{twins['kept']}"))

    # The group is gone from the duplicates page; the phone pair remains.
    page.goto(live_server.url(world.a.slug, "/staff/duplicates"))
    expect(page.locator("article.dup-group")).to_have_count(1)
    with app.app_context(), tenant_context(world.a.id):
        twin = db.session.get(Contact, twins["twin"])
        assert twin.merged_into_id == twins["kept"] and twin.email is None
        db.session.remove()


def test_merge_page_on_a_phone(new_context, live_server, world, twins, screenshot):
    context = new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    sign_in(page, live_server, world, f"/staff/contacts/{twins['kept']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Grace Hopper")
    page.get_by_role("button", name="Merge with…").tap()

    # From the contact page: one contact chosen, its possible duplicate offered.
    expect(page.get_by_role("heading", level=1)).to_have_text("Merge contacts")
    expect(page.get_by_text("Possible duplicates of Grace Hopper:")).to_be_visible()
    _no_sideways_scroll(page)
    screenshot(page, "merge-one-chosen", sizes=("phone",))
    page.get_by_role("button", name="Add grace hopper").tap()
    expect(page.get_by_role("radio", name="Keep Grace Hopper", exact=True)).to_be_checked()
    _no_sideways_scroll(page)
    screenshot(page, "merge-page", sizes=("phone",))

    page.get_by_role("radio", name="amazing.grace@example.com").tap()
    page.get_by_role("button", name="Merge 2 contacts").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Grace Hopper")
    expect(page.locator("dl.facts")).to_contain_text("amazing.grace@example.com")
    _no_sideways_scroll(page)  # long e-mails wrap inside the facts grid
    screenshot(page, "survivor", sizes=("phone",))
    page.goto(live_server.url(world.a.slug, "/staff/duplicates"))
    _no_sideways_scroll(page)
    screenshot(page, "duplicates", sizes=("phone",))
