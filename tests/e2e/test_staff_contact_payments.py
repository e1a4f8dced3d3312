"""A contact's payments in a real browser: an Admin refunds part of a payment and grants
complimentary access from the contact page, with the keyboard alone, at 1280 px and at 375 px;
the tests' Stripe takes the payment and the refund."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.billing.conftest import pay, stripe_app  # noqa: F401  (the payments world, the tests' Stripe)
from tests.billing.test_staff_payments import paid
from tests.support import PASSWORD, tenant_session
from tests.e2e.viewports import DESKTOP, PHONE

pytestmark = pytest.mark.e2e



def _no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def _sign_in(page: Page, live_server, world) -> None:
    page.goto(live_server.url(world.a.slug, "/staff/login"))
    page.get_by_label("E-mail").fill(world.a.members["admin"].email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Contacts", exact=True).first).to_be_visible()


def _press(page: Page, locator) -> None:
    """Reach a control with the keyboard and press Enter on it."""
    locator.focus()
    expect(locator).to_be_focused()
    page.keyboard.press("Enter")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "375"])
def test_refund_and_complimentary_access_from_the_contact_page(
        viewport, app, new_context, live_server, world, pay, client_for, deliver, screenshot):  # noqa: F811
    from billing.plans import create_plan

    with tenant_session(app, pay.tenant):
        lifetime = create_plan(name="Lifetime", kind="one_time", amount=15000, currency="eur", actor=None).id
    paid(app, pay, client_for, deliver, lifetime)
    size = ("desktop",) if viewport is DESKTOP else ("phone",)
    page = new_context(viewport=viewport).new_page()
    _sign_in(page, live_server, world)
    page.goto(live_server.url(world.a.slug, f"/staff/contacts/{pay.contact_id}"))
    payments = page.locator(".payments-panel")
    expect(payments).to_contain_text("Lifetime")
    expect(payments).to_contain_text("150.00 EUR")
    payments.scroll_into_view_if_needed()
    screenshot(page, "panel", sizes=size)
    _no_sideways_scroll(page)

    # Refund 50 of the 150, by keyboard: the link, the amount, the button.
    _press(page, payments.get_by_role("link", name="Refund…"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Refund a payment")
    amount = page.get_by_label("Amount to refund")
    expect(amount).to_have_value("150.00")
    amount.focus()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type("50.00")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Refund")).to_be_focused()
    screenshot(page, "refund-confirm", sizes=size)
    _no_sideways_scroll(page)
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Refunded 50.00 EUR to Pat Payer.")
    expect(payments).to_contain_text("Paid, 50.00 EUR refunded")
    expect(page.locator(".contact-timeline")).to_contain_text("Refunded 50.00 EUR of the 150.00 EUR payment for Lifetime")

    # Complimentary access to Membership, until a date.
    _press(page, payments.get_by_role("button", name="Grant complimentary access…"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Grant complimentary access")
    page.get_by_label("Plan").select_option(label="Membership")
    page.get_by_label("Until (optional)").fill("2099-12-31")
    screenshot(page, "grant-confirm", sizes=size)
    _no_sideways_scroll(page)
    _press(page, page.get_by_role("button", name="Grant access"))
    expect(page.locator(".flash")).to_contain_text("Pat Payer has complimentary access to Membership.")
    expect(payments).to_contain_text("Complimentary")
    expect(page.locator(".contact-timeline")).to_contain_text(
        "Complimentary access to Membership granted until 2099-12-31")
    payments.scroll_into_view_if_needed()
    screenshot(page, "after", sizes=size)
    _no_sideways_scroll(page)
