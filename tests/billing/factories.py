"""Billing rows for tests that need them without Stripe (the cross-tenant harness)."""
from __future__ import annotations

from core.db import db


def seed_billing(marker: str = "", contact_id: int | None = None) -> dict[str, list[int]]:
    """A plan (with the marker in its name), as a tenant's own. Not required for the portal:
    the harness's portal logins must be able to sign in. With a contact: their subscription
    to it, a payment of it, and complimentary access (what the staff's payment actions name)."""
    from billing.models import AccessPlan, Entitlement, Payment

    plan = AccessPlan(name=f"{marker}Gold access", description=f"{marker}plan", kind="recurring", amount=4900,
                      currency="eur", interval="month", stripe_product_id="prod_seed", stripe_price_id="price_seed")
    db.session.add(plan)
    db.session.flush()
    ids = {"AccessPlan": [plan.id]}
    if contact_id is not None:
        subscription = Entitlement(contact_id=contact_id, plan_id=plan.id, source="subscription", status="active",
                                   stripe_subscription_id="sub_seed", stripe_customer_id="cus_seed", is_open=True)
        complimentary = Entitlement(contact_id=contact_id, plan_id=plan.id, source="complimentary", status="active",
                                    is_open=True)
        db.session.add_all([subscription, complimentary])
        db.session.flush()
        payment = Payment(contact_id=contact_id, entitlement_id=subscription.id, stripe_charge_id="ch_seed",
                          amount=4900, currency="eur", status="succeeded")
        db.session.add(payment)
        db.session.flush()
        ids.update({"SubscriptionEntitlement": [subscription.id], "ComplimentaryEntitlement": [complimentary.id],
                    "Payment": [payment.id]})
    return ids
