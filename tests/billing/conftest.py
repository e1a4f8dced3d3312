"""The payments world: tenant A with its own Stripe keys (the tests' Stripe, tests/stripe_server.py),
a monthly plan that grants a Circle, and a contact; every event Stripe sends is signed with A's
webhook secret and recorded in the inbox, for the test to deliver as it likes."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from core.db import db
from tests.support import TenantWorld, tenant_session

KEYS = {"a": ("sk_test_acme_secret_0001", "whsec_acme_signing_0001"),
        "b": ("sk_test_globex_secret_0002", "whsec_globex_signing_0002")}


@dataclass
class Pay:
    """Tenant A's payments set-up."""

    tenant: TenantWorld
    other: TenantWorld
    plan_id: int
    circle_id: int
    contact_id: int
    server: object
    webhook_secret: str


@pytest.fixture
def stripe_app(app, stripe_api):
    """The app pointed at the tests' Stripe."""
    app.config["STRIPE_API_BASE"] = stripe_api.api_base
    yield stripe_api
    app.config["STRIPE_API_BASE"] = None


def configure(app, tenant: TenantWorld, side: str) -> None:
    from billing.settings import save_keys

    secret_key, webhook_secret = KEYS[side]
    with tenant_session(app, tenant):
        save_keys(secret_key, webhook_secret, actor=None)


@pytest.fixture
def pay(app, world, stripe_app) -> Pay:
    from billing.plans import create_plan
    from tests.factories import make_circle, make_contact

    configure(app, world.a, "a")
    configure(app, world.b, "b")
    stripe_app.register_inbox(KEYS["a"][1])
    with tenant_session(app, world.a):
        circle = make_circle("Members")
        plan = create_plan(name="Membership", kind="recurring", amount=4900, currency="eur", interval="month",
                           circle_ids=[circle.id], actor=None)
        contact = make_contact("Pat", "Payer", email="pat@payer.example", role="prospect")
        ids = plan.id, circle.id, contact.id
    return Pay(world.a, world.b, *ids, server=stripe_app, webhook_secret=KEYS["a"][1])


def checkout(app, pay: Pay, plan_id: int | None = None) -> str:
    """Start a checkout for the contact, as the portal will; returns the session id."""
    from billing.checkout import start_checkout
    from billing.models import AccessPlan
    from crm.models import Contact

    with tenant_session(app, pay.tenant):
        url = start_checkout(db.session.get(Contact, pay.contact_id), db.session.get(AccessPlan, plan_id or pay.plan_id),
                             success_url="http://acme.localhost/portal/billing/done?session={CHECKOUT_SESSION_ID}",
                             cancel_url="http://acme.localhost/portal/billing")
    return url.rsplit("/", 1)[-1]


def post_event(client, delivery, *, signature: str | None = None, body: bytes | None = None):
    headers = {"Content-Type": "application/json"}
    sig = delivery.signature if signature is None else signature
    if sig:
        headers["Stripe-Signature"] = sig
    return client.post("/billing/webhook", data=delivery.body if body is None else body, headers=headers)


def state(app, tenant: TenantWorld) -> dict:
    """What payments left in the tenant: entitlements, customers, events, circle members."""
    from billing.models import BillingCustomer, Entitlement, StripeEvent
    from crm.models import CircleMember

    with tenant_session(app, tenant):
        return {
            "entitlements": sorted(db.session.execute(sa.select(
                Entitlement.contact_id, Entitlement.plan_id, Entitlement.source, Entitlement.status,
                Entitlement.stripe_subscription_id, Entitlement.stripe_payment_intent_id, Entitlement.is_open,
                Entitlement.closes_at, Entitlement.past_due_since, Entitlement.disputed)).all(), key=repr),
            "customers": sorted(db.session.execute(sa.select(BillingCustomer.contact_id,
                                                             BillingCustomer.stripe_customer_id)).all()),
            "events": db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)),
            "circle_members": sorted(db.session.execute(sa.select(CircleMember.circle_id, CircleMember.contact_id)
                                                        .where(CircleMember.removed_at.is_(None))).all()),
        }


def access(app, pay: Pay, now=None) -> bool:
    from billing.entitlements import has_access

    with tenant_session(app, pay.tenant):
        return has_access(pay.contact_id, pay.plan_id, now)
