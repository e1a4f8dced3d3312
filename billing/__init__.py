"""Payments through Stripe: each tenant's keys and access plans, the webhook that keeps local
state in step with Stripe, and the entitlements the portal checks (billing.entitlements)."""
from billing import models  # noqa: F401  (the tables)
from billing import events  # noqa: F401  (its jobs register on import)
from billing.entitlements import move_on_merge
from crm.merge import MERGE_HOOKS

MERGE_HOOKS.append(move_on_merge)


def init_app(app) -> None:
    """Register the webhook and the staff pages (the composition root calls this)."""
    from billing import views

    views.init_app(app)
