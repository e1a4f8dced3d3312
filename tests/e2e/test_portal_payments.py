"""Paying for the portal in a real browser: a prospect whose tenant requires a plan signs in,
is told to pay, pays on the tests' Stripe checkout page, waits on "confirming your payment"
until Stripe confirms, and is in the portal; when the subscription is cancelled, the next page
sends them back to the sign-in page."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
import stripe
from playwright.sync_api import Page, expect

from core.db import db
from tests.billing.conftest import KEYS, pay, stripe_app  # noqa: F401  (the payments world's fixtures)
from tests.billing.test_portal_payments import require_plan, with_login
from tests.billing.test_webhooks import deliver_all
from tests.support import PASSWORD, tenant_session
from tests.e2e.viewports import PHONE

pytestmark = pytest.mark.e2e



def _no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def _sign_in(page: Page) -> None:
    page.get_by_label("E-mail").fill("pat@payer.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_prospect_pays_lands_in_the_portal_and_cancelling_closes_it(
        app, new_context, live_server, world, pay, client_for, deliver, screenshot):  # noqa: F811  (the fixture)
    from billing.models import Entitlement

    require_plan(app, pay)
    with_login(app, pay)
    page = new_context(viewport=PHONE).new_page()
    page.goto(live_server.url(world.a.slug, "/portal/login"))
    _sign_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("You can't sign in to the portal yet")
    expect(page.locator("main")).to_contain_text("open to members with a paid plan")
    screenshot(page, "refused-pay")
    _no_sideways_scroll(page)

    page.get_by_role("button", name="Pay for Membership").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Test checkout")
    expect(page.locator("main")).to_contain_text("49.00 EUR")
    page.get_by_role("button", name="Pay").click()

    expect(page).to_have_url(live_server.url(world.a.slug, "/portal/billing/return") + "?session_id=" +
                             page.url.split("session_id=")[-1])
    expect(page.get_by_role("heading", level=1, name="Your payment is confirmed")).to_be_visible(timeout=15000)
    screenshot(page, "confirmed")
    _no_sideways_scroll(page)

    page.get_by_role("button", name="Go to the portal").click()
    _sign_in(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    plan_panel = page.locator('[data-panel="payments"]')
    expect(plan_panel).to_contain_text("Membership")
    expect(plan_panel).to_contain_text("Active")
    expect(plan_panel).to_contain_text("renews on")
    screenshot(page, "home-with-plan")
    _no_sideways_scroll(page)
    page.get_by_role("link", name="Payments", exact=True).click()
    expect(page.locator("main")).to_contain_text("Active, access open")
    expect(page.locator("main")).to_contain_text("Renews on")
    screenshot(page, "payments")
    _no_sideways_scroll(page)

    # The customer cancels (in Stripe's Billing Portal); Stripe tells us by webhook.
    deliver_all(client_for(world.a.slug), pay.server.inbox.settle(), deliver)
    pay.server.inbox.clear()
    with tenant_session(app, pay.tenant):
        sub_id = db.session.scalar(sa.select(Entitlement.stripe_subscription_id))
    stripe.StripeClient(KEYS["a"][0], base_addresses={"api": pay.server.api_base}).v1.subscriptions.cancel(sub_id)
    pay.server.inbox.wait_for("customer.subscription.deleted")
    deliver_all(client_for(world.a.slug), pay.server.inbox.settle(), deliver)
    page.get_by_role("link", name="Home").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in")
    expect(page.locator(".flash")).to_contain_text("Your paid access to the portal has ended")
