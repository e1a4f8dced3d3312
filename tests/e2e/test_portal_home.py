"""The portal home, profile details and company page in a real browser, at 375 px wide and with
the keyboard: a company's primary contact answers an invitation, ticks off a shared task,
corrects a mistyped phone on their profile and looks at their company."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from playwright.sync_api import Page, expect

from core.db import db
from core.tenancy import Tenant, tenant_context
from core.tenants import update_branding
from tests.factories import (add_attendee, make_company, make_contact, make_custom_field, make_event,
                             make_portal_login, make_task)
from tests.support import PASSWORD
from tests.e2e.viewports import PHONE

pytestmark = pytest.mark.e2e

LATER = datetime(2031, 5, 4, 18, 0, tzinfo=timezone.utc)


@pytest.fixture
def bea(app, world) -> str:
    with app.app_context(), tenant_context(world.a.id):
        update_branding(db.session.get(Tenant, world.a.id), display_name="Acme Harbour Consulting",
                        primary_color="#0b6e4f")
        company = make_company("Initrode International Holdings Ltd", phone="+14155550100",
                               street="1600 Amphitheatre Parkway", city="Mountain View", country="US")
        bea = make_contact("Bea", "Boss", email="bea.boss@example.com", role="client", company_id=company.id,
                           is_primary_contact=True, phone="+14155550123")
        make_portal_login(bea)
        make_contact("Carl", "Colleague-With-A-Very-Long-Double-Barrelled-Name", role="client",
                     email="carl.colleague-with-a-very-long-address@initrode-international.example",
                     company_id=company.id, job_title="Head of procurement and facilities")
        make_custom_field("Dietary needs", "text", editable_by_contact=True, help_text="For our events.")
        event = make_event("Spring open day at the harbour office", starts_at=LATER, location="Main office, 2nd floor",
                           link="https://meet.example/open-day", description="Drinks and demos.\nBring a friend.")
        add_attendee(event, bea)
        make_task("Send us your floor plan", contact_id=bea.id, shared_with_contact=True, due_at=LATER,
                  description="A photo of a sketch is fine.")
        db.session.commit()
        db.session.remove()
    return "bea.boss@example.com"


def _no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def test_home_profile_and_company_on_a_phone_with_the_keyboard(new_context, live_server, world, bea, screenshot):
    page = new_context(viewport=PHONE).new_page()
    page.goto(live_server.url(world.a.slug, "/portal/login"))
    page.get_by_label("E-mail").fill(bea)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Bea")
    events = page.locator('[data-panel="events"]')
    expect(events).to_contain_text("Spring open day at the harbour office")
    expect(events).to_contain_text("not given yet")
    expect(page.locator('[data-panel="tasks"]')).to_contain_text("Send us your floor plan")
    screenshot(page, "home", sizes=("phone",))
    _no_sideways_scroll(page)

    going = events.get_by_role("button", name="Going", exact=True)
    going.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("You are going to “Spring open day at the harbour office”")
    expect(events.get_by_role("button", name="Going", exact=True)).to_have_attribute("aria-pressed", "true")

    page.locator('[data-panel="tasks"]').get_by_role("button", name="Mark as done").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Done: “Send us your floor plan”")
    expect(page.locator('[data-panel="tasks"]')).to_contain_text("Done")
    screenshot(page, "home-answered", sizes=("phone",))
    _no_sideways_scroll(page)

    page.get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", name="Your details")).to_be_visible()
    phone = page.get_by_label("Phone")
    expect(phone).to_have_value("+1 415-555-0123")
    phone.fill("555")
    page.get_by_label("Dietary needs").fill("Vegetarian")
    page.get_by_label("Dietary needs").press("Enter")
    expect(page.locator("#details-phone-error")).to_contain_text("is not a valid phone number")
    expect(page.get_by_label("Dietary needs")).to_have_value("Vegetarian")
    screenshot(page, "profile-error", sizes=("phone",))
    _no_sideways_scroll(page)
    page.get_by_label("Phone").fill("+44 20 7946 0958")
    page.get_by_label("Phone").press("Enter")
    expect(page.locator(".flash")).to_contain_text("Your details are saved.")
    expect(page.get_by_label("Phone")).to_have_value("+44 20 7946 0958")
    screenshot(page, "profile-saved", sizes=("phone",))
    _no_sideways_scroll(page)

    page.get_by_role("link", name="Company").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Initrode International Holdings Ltd")
    expect(page.locator("main")).to_contain_text("Head of procurement and facilities")
    screenshot(page, "company")
    _no_sideways_scroll(page)
