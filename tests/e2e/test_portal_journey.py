"""Issue 13's journey in a real Chromium on a phone (375 px): a prospect registers through a
kickoff form with a password, confirms the e-mail from the link in the message the SMTP sink
received, signs into the portal, sees their Circle's page and file, edits their phone, signs
out; a Lead with a password is refused with the clear message. No page scrolls sideways."""
from __future__ import annotations

import io
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from core.db import db
from core.identity import StaffUser
from core.tenancy import Tenant, tenant_context
from core.tenants import update_branding
from crm.circle_content import create_file, create_page
from forms.models import PortalLogin
from tests.factories import make_circle, make_contact, make_portal_login
from tests.forms.factories import make_form
from tests.support import PASSWORD
from tests.e2e.viewports import PHONE

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n" \
      b"trailer << /Root 1 0 R >>\n%%EOF\n"
CHOSEN = "Lantern-harbour-quiet-1987"


@pytest.fixture
def kickoff(app, world) -> str:
    """A form that makes its registrant a Prospect with the password they choose, in the
    Circle "Founders club", which has a published page and file."""
    with app.app_context(), tenant_context(world.a.id):
        update_branding(db.session.get(Tenant, world.a.id), display_name="Acme Harbour Consulting",
                        primary_color="#0b6e4f")
        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        circle = make_circle("Founders club", description="Our founding clients.")
        create_page(circle, "Welcome, founders", "<p>We meet on <strong>Tuesdays</strong>.</p>", owner, publish=True)
        create_file(circle, "Schedule", io.BytesIO(PDF), "schedule.pdf", owner, publish=True)
        make_form("Join the founders", slug="join", role="prospect", portal_login=PortalLogin.PASSWORD,
                  circle_ids=[circle.id], min_fill_seconds=1, thank_you_message="Welcome aboard!")
        lee = make_contact("Lee", "Lead", email="lee.lead@example.com", role="lead")
        make_portal_login(lee)
        db.session.commit()
        db.session.remove()
    return "join"


def _no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def _sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_prospect_registers_confirms_signs_in_reads_their_circle_and_edits_their_phone(
        new_context, live_server, world, kickoff, deliver, screenshot):
    page = new_context(viewport=PHONE).new_page()
    page.goto(live_server.url(world.a.slug, f"/f/{kickoff}"))
    page.get_by_label("First name").fill("Paz")
    page.get_by_label("Last name").fill("Prospect")
    page.get_by_label("E-mail").fill("paz.prospect@example.com")
    page.get_by_label("Phone").fill("+1 415 555 0142")
    page.get_by_label("Choose a password for your account").fill(CHOSEN)
    page.get_by_label("Repeat the password").fill(CHOSEN)
    screenshot(page, "kickoff-form", sizes=("phone",))
    _no_sideways_scroll(page)
    page.wait_for_timeout(1100)  # the form's minimum fill time
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_contain_text("Welcome aboard!")

    # The submission is processed and its e-mail sent by the background jobs, through real SMTP.
    box = deliver()
    [message] = box.to("paz.prospect@example.com")
    [link] = [url for url in box.links(message) if "/portal/verify/" in url]
    page.goto(live_server.url(world.a.slug, urlsplit(link).path))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your e-mail address")
    _no_sideways_scroll(page)
    page.get_by_role("button", name="Confirm my e-mail address").click()
    expect(page.locator(".flash")).to_contain_text("Your e-mail address is confirmed.")
    screenshot(page, "confirmed", sizes=("phone",))

    _sign_in(page, "paz.prospect@example.com", CHOSEN)
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Paz")
    panel = page.locator("[data-panel=circles]")
    expect(panel).to_contain_text("Welcome, founders")
    expect(panel).to_contain_text("Schedule")
    screenshot(page, "home", sizes=("phone",))
    _no_sideways_scroll(page)

    page.get_by_role("link", name="Circles", exact=True).click()
    page.get_by_role("link", name="Founders club").click()
    expect(page.locator("main")).to_contain_text("Our founding clients.")
    _no_sideways_scroll(page)
    href = page.get_by_role("link", name="Schedule").get_attribute("href")
    # Fetched by the page itself (its cookie, its host): Playwright's own HTTP client does not
    # resolve *.localhost.
    status, content_type, size = page.evaluate(
        "async (url) => { const r = await fetch(url); return [r.status, r.headers.get('content-type'), "
        "(await r.arrayBuffer()).byteLength]; }", href)
    assert (status, content_type, size) == (200, "application/pdf", len(PDF))
    page.get_by_role("link", name="Welcome, founders").click()
    expect(page.locator(".rich-text strong")).to_have_text("Tuesdays")
    screenshot(page, "circle-page", sizes=("phone",))
    _no_sideways_scroll(page)

    page.get_by_role("link", name="Profile").click()
    phone = page.get_by_label("Phone")
    expect(phone).to_have_value("+1 415-555-0142")
    phone.fill("+44 20 7946 0958")
    page.get_by_role("button", name="Save my details").click()
    expect(page.locator(".flash")).to_contain_text("Your details are saved.")
    expect(page.get_by_label("Phone")).to_have_value("+44 20 7946 0958")
    screenshot(page, "profile", sizes=("phone",))
    _no_sideways_scroll(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".flash")).to_contain_text("You are signed out")
    page.goto(live_server.url(world.a.slug, "/portal/profile"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in to")

    # A Lead with the right password hears why they cannot get in.
    _sign_in(page, "lee.lead@example.com", PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("You can't sign in to the portal yet")
    screenshot(page, "lead-refused", sizes=("phone",))
    _no_sideways_scroll(page)
