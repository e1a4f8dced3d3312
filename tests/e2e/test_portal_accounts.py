"""Portal registrants in a real browser: choosing a password from the e-mailed link (an error
beside the field, then success), and the staff approval queue, used with the keyboard, at
desktop and at phone size."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from core.db import db
from core.tenancy import tenant_context
from portal.accounts import make_set_password_token, register_portal_account
from tests.factories import make_contact
from tests.support import PASSWORD
from tests.e2e.viewports import PHONE

pytestmark = pytest.mark.e2e



@pytest.fixture
def registrants(app, world) -> dict:
    """Tenant A: Ada registered without a password (no approval needed); Grace and Linus wait
    for approval with a long source name and a long address (what wraps on a phone)."""
    with app.app_context(), tenant_context(world.a.id):
        ada = make_contact("Ada", "Lovelace", email="ada@analytical.example", role="prospect")
        account = register_portal_account(ada, password=None, needs_approval=False, source="Website kickoff form")
        grace = make_contact("Grace", "Hopper", email="grace.brewster.murray.hopper@navy-computing-history.example",
                             role="prospect")
        register_portal_account(grace, password=None, needs_approval=True, source="Spring open day kickoff form")
        linus = make_contact("Linus", "Pauling", email="linus@example.com", role="lead")
        register_portal_account(linus, password="Quiet-harbour-lantern-1987", needs_approval=True,
                                source="Partner referral form")
        db.session.commit()
        token = make_set_password_token(account)
        ids = {"grace": grace.id}
        db.session.remove()
    return {"set_password": f"/portal/set-password/{token}", **ids}


def _no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def test_choose_a_password_from_the_link(page: Page, live_server, world, registrants, screenshot):
    page.goto(live_server.url(world.a.slug, registrants["set_password"]))
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose your password")
    expect(page.locator("main")).to_contain_text("ada@analytical.example")
    expect(page.locator(".brand")).to_contain_text("Acme Corp")
    page.get_by_label("Password", exact=True).fill("password123")
    page.get_by_label("Repeat the password").fill("password123")
    page.get_by_role("button", name="Save my password").click()
    password = page.get_by_label("Password", exact=True)
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#password-error")).to_contain_text("too weak")
    screenshot(page, "set-password-error")
    _no_sideways_scroll(page)

    page.get_by_label("Password", exact=True).fill("Violet-kettle-mountain-7")
    page.get_by_label("Repeat the password").fill("Violet-kettle-mountain-7")
    page.get_by_label("Repeat the password").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Acme Corp")
    expect(page.locator(".flash")).to_contain_text("Your password is saved")
    screenshot(page, "password-saved", sizes=("desktop",))

    page.goto(live_server.url(world.a.slug, registrants["set_password"]))
    expect(page.get_by_role("heading", level=1)).to_have_text("This link no longer works")
    expect(page.get_by_role("button", name="E-mail me a new link")).to_be_visible()
    screenshot(page, "link-used")


def test_approval_queue_with_the_keyboard(page: Page, live_server, world, registrants, screenshot):
    page.goto(live_server.url(world.a.slug, "/staff/portal/approvals"))
    page.get_by_label("E-mail").fill(world.a.members["admin"].email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Portal approvals")
    expect(page.get_by_role("link", name=re.compile(r"^Approvals"))).to_contain_text("2")
    items = page.locator(".approval-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Spring open day kickoff form")
    expect(page.locator("body")).not_to_contain_text("Ada Lovelace")  # needed no approval
    screenshot(page, "queue")

    # Keyboard only: focus Grace's Approve button and press Enter.
    page.get_by_role("button", name="Approve Grace Hopper").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".flash-success")).to_contain_text("Grace Hopper is approved")
    expect(items).to_have_count(1)

    # Reject Linus with a reason: open the disclosure, type, submit, all from the keyboard.
    page.get_by_role("button", name="Reject Linus Pauling…").focus()
    page.keyboard.press("Enter")
    reason = page.get_by_label("Reason")
    expect(reason).to_be_visible()
    reason.fill("Referral could not be confirmed")
    screenshot(page, "reject-open")
    reason.press("Enter")
    expect(page.locator(".flash-success")).to_contain_text("Linus Pauling is rejected")
    expect(page.get_by_text("Nobody is waiting for approval.")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^Approvals"))).to_have_text("Approvals")

    # Grace's contact page says where her login stands.
    page.goto(live_server.url(world.a.slug, f"/staff/contacts/{registrants['grace']}"))
    panel = page.locator("article.portal-panel")
    expect(panel).to_contain_text("Portal login: No password chosen yet")
    expect(panel).to_contain_text("Approved by")
    expect(panel).to_contain_text("Spring open day kickoff form")
    screenshot(page, "contact-portal-panel")


def test_approval_queue_at_phone_size(new_context, live_server, world, registrants, screenshot):
    page = new_context(viewport=PHONE).new_page()
    page.goto(live_server.url(world.a.slug, "/staff/portal/approvals"))
    page.get_by_label("E-mail").fill(world.a.members["owner"].email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Portal approvals")
    expect(page.locator(".approval-item")).to_have_count(2)
    _no_sideways_scroll(page)
    page.get_by_role("button", name="Reject Grace Hopper…").click()
    screenshot(page, "queue-phone", sizes=("phone",))
    _no_sideways_scroll(page)
