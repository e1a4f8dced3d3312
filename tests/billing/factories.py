"""Billing rows for tests that need them without Stripe (the cross-tenant harness)."""
from __future__ import annotations

from core.db import db


def seed_billing(marker: str = "") -> dict[str, list[int]]:
    """A plan (with the marker in its name), as a tenant's own. Not required for the portal:
    the harness's portal logins must be able to sign in."""
    from billing.models import AccessPlan

    plan = AccessPlan(name=f"{marker}Gold access", description=f"{marker}plan", kind="recurring", amount=4900,
                      currency="eur", interval="month", stripe_product_id="prod_seed", stripe_price_id="price_seed")
    db.session.add(plan)
    db.session.flush()
    return {"AccessPlan": [plan.id]}
