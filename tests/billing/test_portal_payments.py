"""Paying for the portal: the payment rule in the sign-in rule, paying from the refusal page,
the "confirming your payment" return that opens nothing by itself, the portal's payment page,
the staff payments list."""
from __future__ import annotations

import re

import sqlalchemy as sa

from core.db import db
from tests.billing.test_webhooks import deliver_all
from tests.support import PASSWORD, csrf_token, login_portal, tenant_session

PORTAL = "/portal/"


def require_plan(app, pay):
    from billing.models import AccessPlan
    from billing.settings import set_access_rules

    with tenant_session(app, pay.tenant):
        set_access_rules(db.session.get(AccessPlan, pay.plan_id), 3, actor=None)


def with_login(app, pay):
    from crm.models import Contact
    from tests.factories import make_portal_login

    with tenant_session(app, pay.tenant):
        make_portal_login(db.session.get(Contact, pay.contact_id))


def pay_from_refusal(app, pay, client):
    """Sign in, get refused for payment, press Pay; returns the Checkout Session id."""
    refused = login_portal(client, "pat@payer.example")
    text = refused.get_data(as_text=True)
    assert refused.status_code == 403 and 'data-reason="payment"' in text and "Pay for Membership" in text
    token = re.search(r'name="token" value="([^"]+)"', text).group(1)
    response = client.post("/portal/billing/checkout", data={"csrf_token": csrf_token(client, "/portal/login"),
                                                             "token": token})
    return stripe_url(response, pay).rsplit("/", 1)[-1]


def stripe_url(response, pay) -> str:
    """The page that sends the buyer on to Stripe: its link (and refresh) to the hosted page."""
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "Continue to Stripe" in text, text
    url = re.search(r'<a href="([^"]+)" role="button">Continue to Stripe', text).group(1)
    assert url.startswith(pay.server.hosted_base + "/c/pay/cs_") and f'content="0;url={url}"' in text
    return url


def test_a_required_plan_keeps_the_unpaid_out_and_paying_opens_the_portal(app, pay, client_for, deliver):
    require_plan(app, pay)
    with_login(app, pay)
    client = client_for(pay.tenant.slug)
    session_id = pay_from_refusal(app, pay, client)

    # Back from Stripe without paying: the return page confirms nothing.
    unpaid = client.get(f"/portal/billing/return?session_id={session_id}").get_data(as_text=True)
    assert "Confirming your payment" in unpaid
    assert client.get(f"/portal/billing/return/status?session_id={session_id}").get_json() == {"confirmed": False}
    assert login_portal(client, "pat@payer.example").status_code == 403

    redirect = pay.server.pay(session_id)
    assert redirect.endswith(f"/portal/billing/return?session_id={session_id}")
    # Confirmed by retrieving the session from Stripe, before any webhook arrived.
    assert client.get(f"/portal/billing/return/status?session_id={session_id}").get_json() == {"confirmed": True}
    assert "Your payment is confirmed" in client.get(f"/portal/billing/return?session_id={session_id}").get_data(
        as_text=True)
    assert login_portal(client, "pat@payer.example").status_code == 302
    home = client.get(PORTAL)
    assert home.status_code == 200 and "Payments" in home.get_data(as_text=True)

    # The events arrive later and change nothing more.
    deliver_all(client, pay.server.inbox.settle(), deliver)
    page = client.get("/portal/billing").get_data(as_text=True)
    assert "Membership" in page and "Active, access open" in page and "Renews on" in page
    assert "49.00 EUR every month" in page and "Paid" in page  # the first invoice

    # Cancelling in Stripe closes the portal on the next request.
    import stripe

    from tests.billing.conftest import KEYS
    from billing.models import Entitlement

    with tenant_session(app, pay.tenant):
        sub_id = db.session.scalar(sa.select(Entitlement.stripe_subscription_id))
    pay.server.inbox.clear()
    stripe.StripeClient(KEYS["a"][0], base_addresses={"api": pay.server.api_base}).v1.subscriptions.cancel(sub_id)
    pay.server.inbox.wait_for("customer.subscription.deleted")
    deliver_all(client, pay.server.inbox.settle(), deliver)
    response = client.get(PORTAL)
    assert response.status_code == 302 and "/portal/login" in response.location


def test_a_forged_or_foreign_pay_token_starts_nothing(app, pay, client_for):
    require_plan(app, pay)
    with_login(app, pay)
    client = client_for(pay.tenant.slug)
    response = client.post("/portal/billing/checkout", data={"csrf_token": csrf_token(client, "/portal/login"),
                                                             "token": "forged"})
    assert response.status_code == 400 and "This link no longer works" in response.get_data(as_text=True)
    refused = login_portal(client, "pat@payer.example").get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', refused).group(1)
    other = client_for(pay.other.slug)
    response = other.post("/portal/billing/checkout", data={"csrf_token": csrf_token(other, "/portal/login"),
                                                            "token": token})
    assert response.status_code == 400


def test_with_stripe_down_starting_a_checkout_says_so_and_makes_nothing(app, pay, client_for):
    from billing.models import BillingCustomer

    require_plan(app, pay)
    with_login(app, pay)
    client = client_for(pay.tenant.slug)
    refused = login_portal(client, "pat@payer.example").get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', refused).group(1)
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"
    try:
        response = client.post("/portal/billing/checkout", data={
            "csrf_token": csrf_token(client, "/portal/login"), "token": token})
    finally:
        app.config["STRIPE_API_BASE"] = pay.server.api_base
    assert response.status_code == 503
    assert "Payments are unavailable right now" in response.get_data(as_text=True)
    with tenant_session(app, pay.tenant):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BillingCustomer)) == 0


def test_without_a_required_plan_the_portal_is_open_and_offers_plans(app, pay, client_for):
    with_login(app, pay)
    client = client_for(pay.tenant.slug)
    assert login_portal(client, "pat@payer.example", PASSWORD).status_code == 302
    page = client.get("/portal/billing").get_data(as_text=True)
    assert "You have no paid plan." in page and "Pay for Membership" in page
    response = client.post("/portal/billing/checkout", data={"csrf_token": csrf_token(client, "/portal/billing"),
                                                             "plan_id": str(pay.plan_id)})
    stripe_url(response, pay)


def test_the_staff_payments_list(app, pay, client_for, deliver, staff_client):
    from tests.billing.conftest import checkout

    session_id = checkout(app, pay)
    pay.server.pay(session_id)
    pay.server.inbox.wait_for("checkout.session.completed")
    deliver_all(client_for(pay.tenant.slug), pay.server.inbox.settle(), deliver)
    admin = staff_client("admin")
    page = admin.get("/staff/payments").get_data(as_text=True)
    assert "Pat Payer" in page and "Membership" in page and "Active" in page and "Open" in page
    assert "Pat Payer" not in admin.get("/staff/payments?status=failed").get_data(as_text=True)
    assert staff_client("staff").get("/staff/payments").status_code == 403


def test_the_home_and_profile_show_the_plans_held_and_nothing_for_a_tenant_without_plans(
        app, pay, client_for, world, portal_client):
    """The places issue 13 left for payments: the plans a contact holds, with its status and
    last day, and the way to the payment page; no panel, and no query for one, where the tenant
    has made no plan (globex here) or the contact holds none."""
    from datetime import date

    from billing.models import AccessPlan
    from billing.staff_actions import grant_complimentary
    from crm.models import Contact
    from tests.support import login_portal

    with_login(app, pay)
    client = client_for(pay.tenant.slug)
    assert login_portal(client, "pat@payer.example").status_code == 302
    assert 'data-panel="payments"' not in client.get(PORTAL).get_data(as_text=True)  # holds nothing yet

    with tenant_session(app, pay.tenant):
        grant_complimentary(db.session.get(Contact, pay.contact_id), db.session.get(AccessPlan, pay.plan_id),
                            date(2031, 1, 31), actor=None)
    for path in (PORTAL, "/portal/profile"):
        page = client.get(path).get_data(as_text=True)
        panel = page.split('data-panel="payments"', 1)[1].split("</section>", 1)[0]
        assert "Your plan" in panel and "Membership" in panel and "until 2031-01-31" in panel
        assert 'href="/portal/billing"' in panel

    from billing.plans import tenant_has_plans
    with tenant_session(app, world.b):
        assert not tenant_has_plans()
    other = portal_client("client")  # acme's client… on acme, which has plans, holding none
    assert 'data-panel="payments"' not in other.get(PORTAL).get_data(as_text=True)
