"""Impersonation in a real browser (issue 15): an Admin opens a client's contact page,
impersonates them with a reason, sees the client's portal under the banner, cannot change the
client's password, stops, is back on the contact page, and the audit log shows both ends with
the reason. Screenshots at desktop and at 375 px."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from core.db import db
from core.tenancy import tenant_context
from tests.e2e.conftest import SCREENSHOT_DIR
from tests.factories import make_contact, make_portal_login
from tests.support import PASSWORD
from tests.e2e.viewports import PHONE

pytestmark = pytest.mark.e2e
REASON = "Bob cannot find his invoice"


@pytest.fixture
def bob(app, world) -> int:
    with app.app_context(), tenant_context(world.a.id):
        contact = make_contact("Bob", "Client", role="client", email="bob.client@example.com")
        make_portal_login(contact)
        db.session.commit()
        contact_id = contact.id
        db.session.remove()
    return contact_id


def _sign_in(page: Page, live_server, world) -> None:
    page.goto(live_server.url(world.a.slug, "/staff/login"))
    page.get_by_label("E-mail").fill(world.a.members["admin"].email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/staff/$"))


def _shot(page: Page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"impersonation--{name}.png"), full_page=True, animations="disabled")


def _no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, PHONE], ids=["desktop", "375px"])
def test_admin_impersonates_a_client_and_comes_back(new_context, live_server, world, bob, viewport):
    page = new_context(viewport=viewport).new_page()
    size = "375" if viewport is PHONE else "desktop"
    _sign_in(page, live_server, world)
    contact_url = live_server.url(world.a.slug, f"/staff/contacts/{bob}")
    page.goto(contact_url)
    page.locator(".impersonate-box summary").click()
    page.get_by_label("Why do you need to see the product as Bob Client?").fill(REASON)
    _shot(page, f"contact-page-{size}")
    page.get_by_role("button", name="Impersonate Bob Client").click()

    expect(page).to_have_url(re.compile(r"/portal/$"))
    banner = page.get_by_role("region", name="Impersonation")
    expect(banner).to_contain_text("Bob Client")
    expect(banner).to_contain_text("Adam Admin")
    expect(banner).to_contain_text("min left")
    expect(banner.get_by_role("button", name="Stop impersonating")).to_be_visible()
    _shot(page, f"portal-home-{size}")
    _no_sideways_scroll(page)

    page.goto(live_server.url(world.a.slug, "/portal/profile"))
    expect(page.locator("main")).to_contain_text("not possible while you are impersonating")
    expect(page.get_by_label("Current password")).to_have_count(0)
    _shot(page, f"portal-profile-{size}")
    _no_sideways_scroll(page)

    banner.get_by_role("button", name="Stop impersonating").click()
    expect(page).to_have_url(contact_url)
    expect(page.get_by_role("region", name="Impersonation")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("You stopped impersonating")

    page.goto(live_server.url(world.a.slug, "/staff/audit"))
    log = page.locator("main")
    expect(log).to_contain_text("Impersonation started")
    expect(log).to_contain_text("Impersonation stopped")
    expect(log).to_contain_text(REASON)
    _shot(page, f"audit-{size}")
