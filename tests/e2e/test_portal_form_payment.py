"""A kickoff form whose registrants pay for the portal, in a real Chromium: the Owner makes the
form's registrants choose between two plans on its builder page; a prospect registers on it (on a
phone), reads on the thank-you page that paying comes next, confirms the e-mail from the SMTP
sink's message, signs in, is offered exactly the form's two plans, pays for one on the tests'
Stripe checkout page, waits on "confirming your payment" until Stripe confirms, and is in the
portal. The subscription is cancelled in Stripe (its signed webhook delivered): the next page
closes the portal and says why, and signing in again offers to pay. Screenshots at 1280 and
375 px wide."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import stripe
from playwright.sync_api import Page, expect

from core.db import db
from tests.billing.conftest import KEYS, pay, stripe_app  # noqa: F401  (the payments world's fixtures)
from tests.billing.test_webhooks import deliver_all
from tests.e2e.conftest import SCREENSHOT_DIR
from tests.e2e.test_crm_settings import sign_in as staff_sign_in
from tests.support import tenant_session
from tests.e2e.viewports import DESKTOP, PHONE

pytestmark = pytest.mark.e2e

CHOSEN = "Lantern-harbour-quiet-1987"
EMAIL = "rae.registrant@example.com"


def _shots(page: Page, step: str) -> None:
    """The whole page at 1280 and at 375 px wide, back at the size it had; neither scrolls sideways."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for name, viewport in (("1280", DESKTOP), ("375", PHONE)):
        page.set_viewport_size(viewport)
        page.wait_for_load_state("load")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px at {name} px"
        page.screenshot(path=str(SCREENSHOT_DIR / f"portal-form-payment--{step}--{name}.png"), full_page=True,
                        animations="disabled")
    page.set_viewport_size(original)


@pytest.fixture
def members_form(app, pay) -> dict:  # noqa: F811  (the fixture)
    """Tenant A's form "Members sign-up" (a Prospect with the password they choose), and a
    one-time "Day pass" plan beside the monthly Membership."""
    from billing.plans import create_plan
    from forms.models import PortalLogin
    from tests.forms.factories import make_form

    with tenant_session(app, pay.tenant):
        day = create_plan(name="Day pass", kind="one_time", amount=1500, currency="eur", actor=None)
        form = make_form("Members sign-up", slug="members", role="prospect", portal_login=PortalLogin.PASSWORD,
                         min_fill_seconds=1, thank_you_message="Thanks for signing up!")
        return {"form": form.id, "day": day.id}


def _sign_in(page: Page) -> None:
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(CHOSEN)
    page.get_by_role("button", name="Sign in").click()


def test_a_registrant_of_a_paid_form_pays_for_one_of_its_plans_and_cancelling_closes_the_portal(
        app, new_context, live_server, world, pay, members_form, client_for, deliver):  # noqa: F811
    from billing.models import Entitlement

    # The Owner: this form's registrants choose between Membership and the Day pass.
    staff = new_context(viewport=DESKTOP).new_page()
    staff_sign_in(staff, live_server, world.a.slug, world.a.members["owner"].email)
    staff.goto(live_server.url(world.a.slug, f"/staff/forms/{members_form['form']}/actions"))
    plans = staff.get_by_role("group", name="The plans they choose among")
    expect(plans).to_be_hidden()  # shown once a choice among plans is chosen
    staff.get_by_label("Its registrants choose among plans").check()
    expect(plans).to_be_visible()
    expect(staff.get_by_label("The plan they pay for")).to_be_hidden()
    plans.get_by_label("Membership (49.00 EUR every month)").check()
    staff.get_by_role("button", name="Save on-submit actions").click()
    expect(staff.get_by_text("Choose at least two plans to choose among")).to_be_visible()  # one is no choice
    _shots(staff, "builder-error")
    staff.get_by_role("group", name="The plans they choose among").get_by_label("Day pass (15.00 EUR once)").check()
    staff.get_by_role("button", name="Save on-submit actions").click()
    expect(staff.locator(".flash")).to_contain_text("On-submit actions saved.")
    expect(staff.get_by_label("Its registrants choose among plans")).to_be_checked()
    _shots(staff, "builder")

    # The prospect, on a phone: registers, and the thank-you page says what comes next.
    page = new_context(viewport=PHONE).new_page()
    page.goto(live_server.url(world.a.slug, "/f/members"))
    page.get_by_label("First name").fill("Rae")
    page.get_by_label("Last name").fill("Registrant")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Choose a password for your account").fill(CHOSEN)
    page.get_by_label("Repeat the password").fill(CHOSEN)
    page.wait_for_timeout(1100)  # the form's minimum fill time
    page.get_by_role("button", name="Send").click()
    thanks = page.get_by_role("status")
    expect(thanks).to_contain_text("Thanks for signing up!")
    expect(thanks.get_by_role("heading", name="Next: pay for portal access")).to_be_visible()
    expect(thanks).to_contain_text("Day pass (15.00 EUR once) or Membership (49.00 EUR every month), as you choose")
    _shots(page, "thanks")

    box = deliver()
    [message] = box.to(EMAIL)
    [link] = [url for url in box.links(message) if "/portal/verify/" in url]
    page.goto(live_server.url(world.a.slug, urlsplit(link).path))
    page.get_by_role("button", name="Confirm my e-mail address").click()
    expect(page.locator(".flash")).to_contain_text("Your e-mail address is confirmed.")

    # First sign-in: exactly the form's two plans are offered.
    _sign_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("You can't sign in to the portal yet")
    main = page.locator("main")
    expect(main).to_contain_text("open to members with a paid plan")
    expect(main).to_contain_text("Choose one of these plans:")
    expect(main.get_by_role("button", name="Pay for")).to_have_count(2)
    _shots(page, "refused-choose")

    # Chosen with the keyboard, paid on the tests' Stripe checkout page.
    membership = page.get_by_role("button", name="Pay for Membership")
    membership.focus()
    membership.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Test checkout")
    expect(page.locator("main")).to_contain_text("49.00 EUR")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", level=1, name="Your payment is confirmed")).to_be_visible(timeout=15000)
    _shots(page, "confirmed")

    page.get_by_role("button", name="Go to the portal").click()
    _sign_in(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    page.get_by_role("link", name="Payments").click()
    expect(page.locator("main")).to_contain_text("Membership")
    expect(page.locator("main")).to_contain_text("Active, access open")
    expect(page.get_by_role("heading", name="Plans you can take")).to_have_count(0)  # the choice is made
    _shots(page, "payments")

    # Cancelled in Stripe (the Billing Portal's cancel); Stripe tells us by signed webhook.
    deliver_all(client_for(world.a.slug), pay.server.inbox.settle(), deliver)
    pay.server.inbox.clear()
    with tenant_session(app, pay.tenant):
        sub_id = db.session.scalar(sa.select(Entitlement.stripe_subscription_id)
                                   .where(Entitlement.stripe_subscription_id.is_not(None)))
    stripe.StripeClient(KEYS["a"][0], base_addresses={"api": pay.server.api_base}).v1.subscriptions.cancel(sub_id)
    pay.server.inbox.wait_for("customer.subscription.deleted")
    deliver_all(client_for(world.a.slug), pay.server.inbox.settle(), deliver)

    # The next request closes the portal and says why; signing in again offers to pay again.
    page.get_by_role("link", name="Home").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in")
    expect(page.locator(".flash")).to_contain_text(
        "Your paid access to the portal has ended, so you have been signed out. Sign in again to pay and reopen it.")
    _shots(page, "closed")
    _sign_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("You can't sign in to the portal yet")
    expect(page.get_by_role("button", name="Pay for Membership")).to_be_visible()
    expect(page.get_by_role("button", name="Pay for Day pass")).to_be_visible()
