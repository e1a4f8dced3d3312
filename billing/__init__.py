"""Payments through Stripe: each tenant's keys and access plans, the webhook that keeps local
state in step with Stripe, and the entitlements the portal checks (billing.entitlements)."""
from billing import models  # noqa: F401  (the tables)
from billing import events  # noqa: F401  (its jobs register on import)


def init_app(app) -> None:
    """Register the webhook and the staff pages (the composition root calls this)."""
    from billing import views

    views.init_app(app)
