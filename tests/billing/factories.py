"""Billing rows for tests that need them without Stripe (the cross-tenant harness)."""
from __future__ import annotations

from core.db import db


def seed_billing(marker: str = "") -> dict[str, list[int]]:
    """A plan (with the marker in its name) required for the portal, as a tenant's own."""
    from billing.models import AccessPlan, BillingSettings

    plan = AccessPlan(name=f"{marker}Gold access", description=f"{marker}plan", kind="recurring", amount=4900,
                      currency="eur", interval="month", stripe_product_id="prod_seed", stripe_price_id="price_seed")
    db.session.add(plan)
    db.session.flush()
    db.session.add(BillingSettings(required_plan_id=plan.id, grace_days=3))
    db.session.flush()
    return {"AccessPlan": [plan.id]}
