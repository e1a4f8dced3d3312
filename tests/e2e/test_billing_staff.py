"""The staff's payment pages in a real browser: the Owner enters the Stripe keys, creates a
plan, sees it listed and the payments list; at desktop and at 375 px."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.billing.conftest import stripe_app  # noqa: F401  (the tests' Stripe)
from tests.support import PASSWORD

pytestmark = pytest.mark.e2e


def _no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def test_the_owner_sets_up_payments(app, new_context, live_server, world, stripe_app, screenshot):  # noqa: F811
    page = new_context().new_page()
    page.goto(live_server.url(world.a.slug, "/staff/login"))
    page.get_by_label("E-mail").fill(world.a.members["owner"].email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(live_server.url(world.a.slug, "/staff/settings/payments"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment settings")
    page.get_by_label("Stripe secret key").fill("sk_test_browser_secret_4321")
    page.get_by_label("Webhook signing secret").fill("whsec_browser_secret_8765")
    page.get_by_role("button", name="Save and check with Stripe").click()
    expect(page.locator(".flash")).to_contain_text("Stripe keys saved and checked with Stripe.")
    expect(page.locator("main")).to_contain_text("sk_test_…4321")
    screenshot(page, "settings")
    _no_sideways_scroll(page)

    page.goto(live_server.url(world.a.slug, "/staff/plans/new"))
    page.get_by_label("Name").fill("Membership")
    page.get_by_label("Price").fill("49.00")
    page.get_by_label("Free trial (days)").fill("14")
    screenshot(page, "new-plan")
    page.get_by_role("button", name="Create plan").click()
    expect(page.locator(".flash")).to_contain_text("Plan “Membership” created")
    expect(page.locator("main")).to_contain_text("49.00 EUR every month, 14-day free trial")
    screenshot(page, "plans")
    _no_sideways_scroll(page)
    page.get_by_role("link", name="Payments", exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Payments")
    screenshot(page, "payments-list")
    _no_sideways_scroll(page)
