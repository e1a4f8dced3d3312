"""Who may use the portal because they paid: which plans a contact must hold (required_plans:
their registration form's rule, else the tenant's), and whether a subscription or payment gives
access (decide), stored on each entitlement row, read by the portal with one indexed query and
no call to Stripe (portal_access_open)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

import sqlalchemy as sa

from billing.models import AccessPlanCircle, Entitlement, EntitlementSource
from core.db import db, utcnow
from crm.models import Circle, Contact

OPEN_STATUSES = frozenset({"active", "trialing"})
GRACE_STATUS = "past_due"
# Closed: "unpaid", "canceled", "incomplete", "incomplete_expired", "paused", and for a
# one-time payment "unpaid", "refunded"; a disputed payment is closed whatever its status.


@dataclass(frozen=True)
class Verdict:
    is_open: bool
    closes_at: datetime | None = None  # open until then (a past-due subscription's grace)


def decide(*, source: str, status: str, past_due_since: datetime | None, disputed: bool,
           grace_days: int, ends_at: datetime | None = None) -> Verdict:
    """THE access rule. A subscription: active or trialing → open; past due → open for the
    tenant's grace period after its renewal failed, then closed; anything else (unpaid,
    canceled, incomplete, incomplete_expired, paused) → closed. A one-time payment: paid →
    open; refunded, disputed or not paid → closed. Complimentary access (granted by staff) →
    open until it is revoked, or until its end date (`ends_at`) when it has one."""
    if source == EntitlementSource.COMPLIMENTARY:
        return Verdict(True, ends_at) if status == "active" else Verdict(False)
    if disputed:
        return Verdict(False)
    if source == EntitlementSource.PAYMENT:
        return Verdict(status == "paid")
    if status in OPEN_STATUSES:
        return Verdict(True)
    if status == GRACE_STATUS:
        return Verdict(True, (past_due_since or utcnow()) + timedelta(days=grace_days))
    return Verdict(False)


def open_now(entitlement: Entitlement, now: datetime | None = None) -> bool:
    return entitlement.is_open and (entitlement.closes_at is None or entitlement.closes_at > (now or utcnow()))


def redecide(entitlement: Entitlement, grace_days: int) -> None:
    verdict = decide(source=entitlement.source, status=entitlement.status,
                     past_due_since=entitlement.past_due_since, disputed=entitlement.disputed,
                     grace_days=grace_days,
                     ends_at=entitlement.current_period_end if entitlement.source == EntitlementSource.COMPLIMENTARY
                     else None)
    entitlement.is_open, entitlement.closes_at = verdict.is_open, verdict.closes_at


def redecide_past_due(grace_days: int) -> None:
    """The grace period changed: the past-due entitlements' closing times follow."""
    for entitlement in db.session.scalars(sa.select(Entitlement).where(Entitlement.status == GRACE_STATUS)):
        redecide(entitlement, grace_days)


def has_access(contact_id: int, plan_ids: int | Iterable[int] | None = None, now: datetime | None = None) -> bool:
    """Whether the contact holds open access (to one of those plans, when given; complimentary
    access counts for any): one query on the (tenant_id, contact_id) index."""
    now = now or utcnow()
    query = sa.select(Entitlement.id).where(
        Entitlement.contact_id == contact_id, Entitlement.is_open.is_(True),
        sa.or_(Entitlement.closes_at.is_(None), Entitlement.closes_at > now))
    if plan_ids is not None:
        plan_ids = sorted({plan_ids} if isinstance(plan_ids, int) else set(plan_ids))
        query = query.where(sa.or_(Entitlement.plan_id.in_(plan_ids),
                                   Entitlement.source == EntitlementSource.COMPLIMENTARY))
    return db.session.scalar(query.limit(1)) is not None


def required_plans(form_id: int | None) -> frozenset[int]:
    """THE rule of who must pay for the portal: the plans one of which a contact who registered
    through this kickoff form (None: staff invited them) must hold. The form's own rule when it
    has one (free: none; or its plan, or the plans the registrant chooses among), else the
    tenant's (its required plan, or none). Empty: the portal is free for them. From the
    tenant's cached configuration (core.tenant_cache): no query once warm."""
    from billing.settings import cached_form_rules, cached_rules

    if form_id is not None:
        own = cached_form_rules().get(form_id)
        if own is not None:
            return own
    required_plan_id, _ = cached_rules()
    return frozenset() if required_plan_id is None else frozenset({required_plan_id})


def portal_access_open(contact_id: int, form_id: int | None = None, now: datetime | None = None) -> bool:
    """The portal's payment gate: open unless the contact must pay (required_plans, for the
    form they registered through) and holds none of those plans: at most one indexed query,
    never a call to Stripe."""
    plans = required_plans(form_id)
    return not plans or has_access(contact_id, plans, now)


def entitlements_of(contact_id: int) -> list[Entitlement]:
    return list(db.session.scalars(sa.select(Entitlement).where(Entitlement.contact_id == contact_id)
                                   .order_by(Entitlement.created_at.desc(), Entitlement.id.desc())))


def follow_circles(contact: Contact, now: datetime | None = None) -> list[str]:
    """Put the contact in the Circles of the plans they hold open access to, and take them out
    of the other plans' Circles; returns what changed, in words."""
    from crm.circles import add_contact_to_circle, remove_contact_from_circle

    now = now or utcnow()
    rows = entitlements_of(contact.id)
    open_plans = {e.plan_id for e in rows if e.plan_id is not None and open_now(e, now)}
    plan_circles = db.session.execute(sa.select(AccessPlanCircle.plan_id, AccessPlanCircle.circle_id)).all()
    wanted = {circle_id for plan_id, circle_id in plan_circles if plan_id in open_plans}
    managed = {circle_id for _, circle_id in plan_circles}
    changes = []
    for circle in db.session.scalars(sa.select(Circle).where(Circle.id.in_(managed))) if managed else ():
        if circle.id in wanted and circle.archived_at is None:
            if add_contact_to_circle(circle, contact, "Payments", check=False):
                changes.append(f"added to {circle.name}")
        elif circle.id not in wanted:
            if remove_contact_from_circle(circle, contact, "Payments", check=False):
                changes.append(f"removed from {circle.name}")
    return changes


def close_lapsed(now: datetime | None = None) -> list[Entitlement]:
    """Entitlements whose grace ran out: closed for good on the row, their Circles left. (The
    portal's check already treats them as closed from `closes_at` on.)"""
    now = now or utcnow()
    from billing import ledger

    lapsed = list(db.session.scalars(sa.select(Entitlement).where(
        Entitlement.is_open.is_(True), Entitlement.closes_at.is_not(None), Entitlement.closes_at <= now)))
    for entitlement in lapsed:
        entitlement.is_open = False
        contact = db.session.get(Contact, entitlement.contact_id)
        if contact is not None:
            follow_circles(contact, now)
            plan = ledger.plan_words(entitlement)
            ledger.note(contact, f"Complimentary access{plan} ended" if entitlement.source == EntitlementSource.COMPLIMENTARY
                        else f"Access{plan} closed: the grace period after a failed payment ended", entitlement,
                        actor=None)
    return lapsed


def move_on_merge(survivor: Contact, merged: Contact, actor) -> None:
    """crm.merge's MERGE_HOOKS: the merged contact's subscriptions, payments, complimentary
    access and (when the survivor has none) Stripe Customer are the survivor's now, so the
    access they paid for stays with the person; the plans' Circles follow."""
    from billing.models import BillingCustomer, Payment

    for model in (Entitlement, Payment):
        db.session.execute(sa.update(model).where(model.contact_id == merged.id).values(contact_id=survivor.id)
                           .execution_options(synchronize_session="fetch"))
    if db.session.scalar(sa.select(BillingCustomer.id).where(BillingCustomer.contact_id == survivor.id)) is None:
        db.session.execute(sa.update(BillingCustomer).where(BillingCustomer.contact_id == merged.id)
                           .values(contact_id=survivor.id).execution_options(synchronize_session="fetch"))
    db.session.flush()
    follow_circles(survivor)
