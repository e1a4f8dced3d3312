"""Access plans and their Stripe Products and Prices, made through the API (never typed in):
creating a plan makes its Product and Price(s); a new amount, currency or interval makes new
Prices (the old ones are deactivated, and subscribers stay on the Price they signed up on);
a new name or description updates the Product."""
from __future__ import annotations

import re

import sqlalchemy as sa

from billing import settings as billing_settings
from billing.models import AccessPlan, AccessPlanCircle, Interval, PlanKind
from billing.stripe_api import calling_stripe, client, idempotency
from core.audit import record
from core.db import db
from core.errors import ServiceError
from core.tenancy import current_tenant_id
from crm.models import Circle

CURRENCY = re.compile(r"^[a-z]{3}$")
MAX_AMOUNT = 99_999_999  # Stripe's limit in the minor unit


def stripe_for_tenant():
    """The Stripe client of the current tenant's keys."""
    return client(billing_settings.cached_keys().secret_key)


def plans(*, include_archived: bool = True) -> list[AccessPlan]:
    query = sa.select(AccessPlan).order_by(AccessPlan.active.desc(), AccessPlan.name)
    if not include_archived:
        query = query.where(AccessPlan.active.is_(True))
    return list(db.session.scalars(query))


def tenant_has_plans() -> bool:
    """Whether the tenant has made any access plan, from this process's cache of its
    configuration (core.tenant_cache): the portal home asks on every visit, and most tenants
    take no payments."""
    from core import tenant_cache

    return tenant_cache.cached("billing_has_plans", lambda: db.session.scalar(
        sa.select(AccessPlan.id).limit(1)) is not None)


def plans_on_offer(form_id: int | None, held: set[int] | frozenset[int] = frozenset()) -> list[AccessPlan]:
    """The plans a contact who registered through this kickoff form may pay for in the portal:
    the ones they must hold one of (billing.entitlements.required_plans), none once they hold
    one of those (`held`: the plans they hold open access to), or, when they need none, every
    active plan they do not hold. Archived plans are never offered."""
    from billing.entitlements import required_plans

    required = required_plans(form_id)
    offered = [p for p in plans(include_archived=False) if p.id not in held]
    if not required:
        return offered
    return [] if required & set(held) else [p for p in offered if p.id in required]


def find_plan(name_or_id: str) -> AccessPlan | None:
    plan = db.session.scalar(sa.select(AccessPlan).where(sa.func.lower(AccessPlan.name) == name_or_id.strip().lower()))
    if plan is None and name_or_id.strip().isdigit():
        plan = db.session.get(AccessPlan, int(name_or_id))
    return plan


def plan_circle_ids(plan: AccessPlan) -> list[int]:
    return list(db.session.scalars(sa.select(AccessPlanCircle.circle_id).where(AccessPlanCircle.plan_id == plan.id)))


def describe_price(plan: AccessPlan) -> str:
    """"49.00 EUR every month", "150.00 EUR once", "20.00 EUR, then 49.00 EUR every 2 weeks"."""
    def money(amount):
        return f"{amount / 100:,.2f} {plan.currency.upper()}"

    if plan.kind == PlanKind.ONE_TIME:
        return f"{money(plan.amount)} once"
    every = f"every {plan.interval}" if plan.interval_count == 1 else f"every {plan.interval_count} {plan.interval}s"
    text = f"{money(plan.amount)} {every}"
    if plan.kind == PlanKind.BOTH and plan.initial_fee:
        text = f"{money(plan.initial_fee)}, then {text}"
    if plan.trial_days:
        text += f", {plan.trial_days}-day free trial"
    return text


def _clean(name, description, kind, amount, currency, interval, interval_count, trial_days, initial_fee,
           *, exclude_id=None) -> dict:
    name = (name or "").strip()
    if not name:
        raise ServiceError("Give the plan a name.", "name")
    if len(name) > 120:
        raise ServiceError("The name is at most 120 characters.", "name")
    clash = db.session.scalar(sa.select(AccessPlan.id).where(sa.func.lower(AccessPlan.name) == name.lower(),
                                                             AccessPlan.id != (exclude_id or 0)))
    if clash:
        raise ServiceError("Another plan has this name.", "name")
    if kind not in PlanKind.ALL:
        raise ServiceError("Choose how the plan is paid.", "kind")
    if amount is None or not 1 <= amount <= MAX_AMOUNT:
        raise ServiceError("Enter an amount above zero (in cents: 4900 is 49.00).", "amount")
    currency = (currency or "").strip().lower()
    if not CURRENCY.match(currency):
        raise ServiceError("Enter a three-letter currency code, such as eur or usd.", "currency")
    if kind == PlanKind.ONE_TIME:
        interval, interval_count, initial_fee = None, 1, None
        if trial_days:
            raise ServiceError("A one-time payment has no free trial.", "trial_days")
    else:
        if interval not in Interval.ALL:
            raise ServiceError("Choose how often it renews.", "interval")
        interval_count = interval_count or 1
        if not 1 <= interval_count <= 52:
            raise ServiceError("Renew every 1 to 52 periods.", "interval_count")
        if interval == Interval.YEAR and interval_count > 3:
            raise ServiceError("Stripe renews at most every three years.", "interval_count")
    if kind == PlanKind.BOTH:
        if initial_fee is None or not 1 <= initial_fee <= MAX_AMOUNT:
            raise ServiceError("Enter the initial fee (in cents).", "initial_fee")
    else:
        initial_fee = None
    trial_days = trial_days or 0
    if not 0 <= trial_days <= 730:
        raise ServiceError("A free trial lasts 0 to 730 days.", "trial_days")
    return {"name": name, "description": (description or "").strip(), "kind": kind, "amount": amount,
            "currency": currency, "interval": interval, "interval_count": interval_count,
            "trial_days": trial_days, "initial_fee": initial_fee}


def _set_circles(plan: AccessPlan, circle_ids) -> None:
    wanted = set(circle_ids or ())
    if wanted:
        found = set(db.session.scalars(sa.select(Circle.id).where(Circle.id.in_(wanted))))
        if found != wanted:
            raise ServiceError("Choose circles of this business.", "circle_ids")
    current = set(plan_circle_ids(plan))
    for circle_id in current - wanted:
        db.session.execute(sa.delete(AccessPlanCircle).where(AccessPlanCircle.plan_id == plan.id,
                                                             AccessPlanCircle.circle_id == circle_id))
    for circle_id in wanted - current:
        db.session.add(AccessPlanCircle(plan_id=plan.id, circle_id=circle_id))


def _key(plan: AccessPlan, *parts) -> dict:
    return idempotency(current_tenant_id(), "plan", plan.id, *parts)


def _make_prices(plan: AccessPlan, stripe) -> None:
    """The plan's Price (and initial-fee Price) for its current terms, version price_version."""
    metadata = {"portico_tenant_id": str(current_tenant_id()), "portico_plan_id": str(plan.id)}
    params = {"product": plan.stripe_product_id, "currency": plan.currency, "unit_amount": plan.amount,
              "metadata": metadata, "nickname": plan.name}
    if plan.recurring:
        params["recurring"] = {"interval": plan.interval, "interval_count": plan.interval_count}
    with calling_stripe():
        plan.stripe_price_id = stripe.v1.prices.create(
            params=params, options=_key(plan, "price", plan.price_version)).id
        plan.stripe_fee_price_id = None
        if plan.kind == PlanKind.BOTH:
            plan.stripe_fee_price_id = stripe.v1.prices.create(params={
                "product": plan.stripe_product_id, "currency": plan.currency, "unit_amount": plan.initial_fee,
                "metadata": metadata, "nickname": f"{plan.name}: initial fee"},
                options=_key(plan, "fee", plan.price_version)).id


def create_plan(*, name, description="", kind, amount, currency, interval=None, interval_count=1, trial_days=0,
                initial_fee=None, circle_ids=(), actor) -> AccessPlan:
    values = _clean(name, description, kind, amount, currency, interval, interval_count, trial_days, initial_fee)
    stripe = stripe_for_tenant()
    plan = AccessPlan(**values)
    db.session.add(plan)
    db.session.flush()
    _set_circles(plan, circle_ids)
    with calling_stripe():
        plan.stripe_product_id = stripe.v1.products.create(params={
            "name": plan.name, "description": plan.description or None,
            "metadata": {"portico_tenant_id": str(current_tenant_id()), "portico_plan_id": str(plan.id)}},
            options=_key(plan, "product")).id
    _make_prices(plan, stripe)
    record("billing.plan_created", plan, actor=actor, details={"name": plan.name, "price": describe_price(plan)})
    return plan


PRICE_TERMS = ("kind", "amount", "currency", "interval", "interval_count", "initial_fee")


def update_plan(plan: AccessPlan, *, name, description="", kind, amount, currency, interval=None, interval_count=1,
                trial_days=0, initial_fee=None, circle_ids=(), active=True, actor) -> list[str]:
    """Change a plan; returns what changed. New price terms make new Prices in Stripe."""
    values = _clean(name, description, kind, amount, currency, interval, interval_count, trial_days, initial_fee,
                    exclude_id=plan.id)
    if not active and billing_settings.cached_rules()[0] == plan.id:
        raise ServiceError("Portal access requires this plan; choose another in the payment settings first.",
                           "active")
    if not active and plan.active and billing_settings.forms_requiring(plan.id):
        count = billing_settings.forms_requiring(plan.id)
        raise ServiceError(f"{count} kickoff form{'s' if count != 1 else ''} let registrants pay for this plan: "
                           "change their portal payment (on each form's Actions page) first.", "active")
    changed = [k for k, v in values.items() if getattr(plan, k) != v]
    new_terms = any(k in PRICE_TERMS for k in changed)
    circles_before = set(plan_circle_ids(plan))
    _set_circles(plan, circle_ids)
    if circles_before != set(circle_ids or ()):
        changed.append("circles")
    if plan.active != active:
        changed.append("active")
    if not changed:
        return []
    stripe = stripe_for_tenant()
    old_prices = [p for p in (plan.stripe_price_id, plan.stripe_fee_price_id) if p]
    for key, value in values.items():
        setattr(plan, key, value)
    plan.active = active
    with calling_stripe():
        if "name" in changed or "description" in changed or "active" in changed:
            stripe.v1.products.update(plan.stripe_product_id, params={
                "name": plan.name, "description": plan.description or "", "active": plan.active})
    if new_terms:
        plan.price_version += 1
        _make_prices(plan, stripe)
        with calling_stripe():
            for price_id in old_prices:
                stripe.v1.prices.update(price_id, params={"active": False})
    db.session.flush()
    record("billing.plan_changed", plan, actor=actor, details={"changed": changed, "price": describe_price(plan)})
    return changed
