"""Circle content in a real browser: an Admin writes a page and uploads a file on a Circle's
page, publishes them and puts the file first with the keyboard-usable buttons; a member of the
Circle signs into the portal on a phone (375 px), finds both on the home and the Circle's page,
reads the page and downloads the file; nothing scrolls sideways."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from core.db import db
from core.tenancy import tenant_context
from tests.factories import add_to_circle, make_circle, make_contact, make_portal_login
from tests.support import PASSWORD
from tests.e2e.viewports import PHONE

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n" \
      b"trailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def circle_world(app, world):
    with app.app_context(), tenant_context(world.a.id):
        circle = make_circle("Founders club", description="Our founding clients.")
        mia = make_contact("Mia", "Member", email="mia.member@example.com", role="client")
        make_portal_login(mia)
        add_to_circle(circle, contact=mia)
        ids = {"circle": circle.id}
        db.session.commit()
        db.session.remove()
    return ids


def _no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def test_staff_publish_a_page_and_a_file_that_a_member_reads_on_a_phone(
        page: Page, new_context, live_server, world, circle_world, screenshot, tmp_path):
    circle_url = live_server.url(world.a.slug, f"/staff/circles/{circle_world['circle']}")
    page.goto(circle_url)
    page.get_by_label("E-mail").fill(world.a.members["admin"].email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password", exact=True).press("Enter")
    expect(page.get_by_role("heading", name="Content for members")).to_be_visible()

    page.get_by_role("button", name="Write a page").click()
    page.get_by_label("Title").fill("Welcome, founders")
    page.get_by_label("Text").fill("<h2>Your first month</h2><p>We meet on <strong>Tuesdays</strong>."
                                   "<script>alert('x')</script></p>\n<p><a href=\"javascript:alert(1)\">Bad</a></p>")
    page.get_by_label("Publish now").check()
    screenshot(page, "write-page")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("Page “Welcome, founders” published.")

    page.get_by_role("button", name="Upload a file").click()
    pdf = tmp_path / "Schedule 2027.pdf"
    pdf.write_bytes(PDF)
    page.get_by_label("Title").fill("Schedule")
    page.get_by_label("File").set_input_files(str(pdf))
    expect(page.locator("main")).to_contain_text("Up to 20 MB.")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".flash-success")).to_contain_text("File “Schedule” saved as a draft")
    page.wait_for_load_state("load")  # an Enter pressed while the upload's answer still loads goes nowhere
    page.get_by_role("button", name="Publish “Schedule”").press("Enter")
    expect(page.locator(".flash-success")).to_contain_text("“Schedule” is published")
    page.get_by_role("button", name="Move “Schedule” up").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".flash-success")).to_contain_text("Moved “Schedule” up.")
    rows = page.locator("#content tbody tr")
    expect(rows.nth(0)).to_contain_text("Schedule")
    expect(rows.nth(1)).to_contain_text("Welcome, founders")
    screenshot(page, "circle-content")

    phone = new_context(viewport=PHONE).new_page()
    phone.goto(live_server.url(world.a.slug, "/portal/"))
    phone.get_by_label("E-mail").fill("mia.member@example.com")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    panel = phone.locator("[data-panel=circles]")
    expect(panel).to_contain_text("Latest from your circles")
    expect(panel).to_contain_text("Schedule")
    expect(panel).to_contain_text("Welcome, founders")
    screenshot(phone, "portal-home", sizes=("phone",))
    _no_sideways_scroll(phone)

    phone.get_by_role("link", name="Circles", exact=True).click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Your circles")
    _no_sideways_scroll(phone)
    phone.get_by_role("link", name="Founders club").click()
    expect(phone.locator("main")).to_contain_text("Our founding clients.")
    expect(phone.locator('.portal-nav a[aria-current="page"]')).to_have_text("Circles")
    screenshot(phone, "portal-circle", sizes=("phone",))
    _no_sideways_scroll(phone)

    phone.get_by_role("link", name="Welcome, founders").click()
    expect(phone.get_by_role("heading", name="Your first month")).to_be_visible()
    expect(phone.locator(".rich-text strong")).to_have_text("Tuesdays")
    assert phone.locator(".rich-text script").count() == 0
    assert "javascript" not in phone.locator(".rich-text").inner_html()
    screenshot(phone, "portal-page", sizes=("phone",))
    _no_sideways_scroll(phone)

    phone.go_back()
    href = phone.get_by_role("link", name="Schedule").get_attribute("href")
    # Fetched by the page itself (its cookie, its host): Playwright's own HTTP client does not
    # resolve *.localhost.
    status, content_type, size = phone.evaluate(
        "async (url) => { const r = await fetch(url); return [r.status, r.headers.get('content-type'), "
        "(await r.arrayBuffer()).byteLength]; }", href)
    assert (status, content_type, size) == (200, "application/pdf", len(PDF))
