"""The portal's sign-in in a real browser: a client signs in (keyboard only), sees the branded
home, the profile, signs out; a Lead with the right password is told why they cannot get in;
every page at 375 px wide without sideways scrolling."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from core.db import db
from core.tenancy import Tenant, tenant_context
from core.tenants import update_branding
from tests.factories import make_contact, make_portal_login
from tests.support import PASSWORD
from tests.e2e.viewports import PHONE

pytestmark = pytest.mark.e2e



def _png(width: int = 120, height: int = 40) -> bytes:
    """A small real logo: a green bar with a lighter stripe, made by hand (no image library)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"".join(b"\x0b\x6e\x4f" if y < height * 2 // 3 or x > width // 2 else b"\x8f\xd1\xb5"
                                       for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = _png()


@pytest.fixture
def people(app, world) -> dict:
    with app.app_context(), tenant_context(world.a.id):
        update_branding(db.session.get(Tenant, world.a.id), display_name="Acme Harbour Consulting",
                        primary_color="#0b6e4f", logo=PNG)
        cleo = make_contact("Cleo", "Client", email="cleo.client@example.com", role="client")
        make_portal_login(cleo)
        cleo_id = cleo.id
        lee = make_contact("Lee", "Lead", email="lee.lead@example.com", role="lead")
        make_portal_login(lee)
        db.session.commit()
        db.session.remove()
    return {"client": "cleo.client@example.com", "lead": "lee.lead@example.com", "client_id": cleo_id}


def _no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def _sign_in_with_keyboard(page: Page, email: str) -> None:
    page.get_by_label("E-mail").fill(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def test_a_client_signs_in_and_out(new_context, live_server, world, people, screenshot):
    page = new_context(viewport=PHONE).new_page()
    page.goto(live_server.url(world.a.slug, "/portal/profile"))
    expect(page).to_have_url(live_server.url(world.a.slug, "/portal/login?next=/portal/profile"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Acme Harbour Consulting")
    expect(page.locator(".brand")).to_contain_text("Acme Harbour Consulting")
    expect(page.locator(".portal-card-logo")).to_be_visible()
    screenshot(page, "login", sizes=("phone",))
    _no_sideways_scroll(page)

    _sign_in_with_keyboard(page, people["client"])
    expect(page).to_have_url(live_server.url(world.a.slug, "/portal/profile"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    expect(page.locator(".portal-sessions")).to_contain_text("This device")
    screenshot(page, "profile", sizes=("phone",))
    _no_sideways_scroll(page)

    page.get_by_role("link", name="Home").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Cleo")
    expect(page.locator("main")).to_contain_text("Nothing here yet")
    screenshot(page, "home")
    _no_sideways_scroll(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(live_server.url(world.a.slug, "/portal/login"))
    expect(page.locator(".flash")).to_contain_text("You are signed out")
    page.goto(live_server.url(world.a.slug, "/portal/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Acme Harbour Consulting")


def test_a_lead_with_the_right_password_is_told_why(new_context, live_server, world, people, screenshot):
    page = new_context(viewport=PHONE).new_page()
    page.goto(live_server.url(world.a.slug, "/portal/login"))
    page.get_by_label("E-mail").fill(people["lead"])
    page.get_by_label("Password").fill("not-the-right-one")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".flash-error")).to_contain_text("do not match a portal login here")
    screenshot(page, "wrong-password", sizes=("phone",))

    _sign_in_with_keyboard(page, people["lead"])
    expect(page.get_by_role("heading", level=1)).to_have_text("You can't sign in to the portal yet")
    expect(page.locator("main")).to_contain_text("open to Acme Harbour Consulting's prospects and clients")
    screenshot(page, "lead-refused")
    _no_sideways_scroll(page)

    for path in ("/portal/forgot", "/portal/new-link", "/portal/reset/not-a-real-token"):
        page.goto(live_server.url(world.a.slug, path))
        _no_sideways_scroll(page)
    screenshot(page, "new-link", sizes=("phone",))


def test_staff_see_the_devices_and_sign_them_all_out(new_context, live_server, world, people, screenshot):
    from tests.e2e.test_staff_login import sign_in_with_keyboard

    portal = new_context(viewport=PHONE).new_page()
    portal.goto(live_server.url(world.a.slug, "/portal/login"))
    _sign_in_with_keyboard(portal, people["client"])
    expect(portal.get_by_role("heading", level=1)).to_have_text("Welcome, Cleo")

    staff = new_context(viewport={"width": 1280, "height": 800}).new_page()
    staff.goto(live_server.url(world.a.slug, f"/staff/contacts/{people['client_id']}"))
    sign_in_with_keyboard(staff, world.a.members["admin"].email, PASSWORD)
    panel = staff.locator(".portal-panel")
    expect(panel).to_contain_text("1 device")
    expect(panel).to_contain_text("Chrome on Linux")
    screenshot(staff, "staff-contact-portal-panel")
    panel.get_by_role("button", name="Sign out everywhere").click()
    expect(staff.locator(".flash")).to_contain_text("Signed out of the portal on 1 device.")

    portal.reload()
    expect(portal.get_by_role("heading", level=1)).to_have_text("Sign in to Acme Harbour Consulting")
    expect(portal.locator(".flash")).to_contain_text("You have been signed out")
