"""Stripe's webhooks: verified and stored at once (billing.views answers 2xx), applied by a
job that re-reads the objects from Stripe (billing.sync).

Each event id is stored once per tenant (unique) before anything acts on it, so a delivery
repeated by Stripe finds its row and queues nothing. A job that dies midway leaves the event
pending; the sweep below queues it again, and the job, holding the row, applies it once."""
from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from huey import crontab
from sqlalchemy.exc import IntegrityError

from billing import keys
from billing.entitlements import close_lapsed
from billing.models import Entitlement, EventState, StripeEvent
from billing.plans import stripe_for_tenant
from billing.settings import current_settings
from billing.sync import Changes, sync_charge, sync_checkout_session, sync_invoice, sync_subscription
from core.db import db, utcnow
from core.jobs import job, on_commit, periodic_job
from core.tenancy import cross_tenant, current_tenant_id

logger = logging.getLogger(__name__)

HANDLED = frozenset({
    "checkout.session.completed", "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed",
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "charge.refunded", "charge.dispute.created",
})
STALLED_AFTER = timedelta(minutes=2)
GIVE_UP_AFTER = timedelta(days=3)  # Stripe itself retries a delivery for three days


class BadWebhook(Exception):
    """Refused delivery: the answer is a 400 and nothing is stored."""


def receive(payload: bytes, signature: str | None) -> StripeEvent | None:
    """Verify one delivery with the tenant's signing secret and its tolerance, and store its
    event; returns the new row, or None for an event already stored."""
    import stripe as stripe_library  # not with the app: see billing.stripe_api

    secret = keys.tenant_keys(current_settings()).webhook_secret
    if not secret or not signature:
        raise BadWebhook("unsigned, or no signing secret configured")
    try:
        event = stripe_library.Webhook.construct_event(
            payload, signature, secret, tolerance=current_app.config["STRIPE_WEBHOOK_TOLERANCE"])
    except (ValueError, UnicodeDecodeError, stripe_library.SignatureVerificationError) as exc:
        raise BadWebhook(str(exc)) from exc
    event_id, event_type = getattr(event, "id", None), getattr(event, "type", None)
    if not isinstance(event_id, str) or not isinstance(event_type, str) or len(event_id) > 255:
        raise BadWebhook("no event id or type")
    obj = getattr(getattr(event, "data", None), "object", None)
    object_id = getattr(obj, "id", None)
    row = StripeEvent(event_id=event_id, type=event_type[:100],
                      object_id=object_id if isinstance(object_id, str) else None,
                      stripe_created=getattr(event, "created", None),
                      state=EventState.PENDING if event_type in HANDLED else EventState.IGNORED)
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError:
        return None  # delivered before: stored then, and applied (or to be) from that row
    if row.state == EventState.PENDING:
        on_commit(apply_event, row.id, tenant_id=current_tenant_id())
    return row


@job(retries=8, retry_delay=15)
def apply_event(event_row_id: int) -> None:
    """Apply one stored event, once: the row is locked while it is applied (PostgreSQL), and an
    applied one is left alone."""
    row = db.session.scalar(sa.select(StripeEvent).where(StripeEvent.id == event_row_id).with_for_update())
    if row is None or row.state != EventState.PENDING:
        return
    row.attempts += 1
    changes = apply(row)
    row.state = EventState.APPLIED
    row.applied_at = utcnow()
    for line in changes.lines:
        logger.info("stripe event %s (%s): %s", row.event_id, row.type, line)


def apply(row: StripeEvent) -> Changes:
    """What an event's type asks: re-read its object (and what hangs on it) from Stripe."""
    stripe = stripe_for_tenant()
    changes = Changes()
    kind, object_id = row.type, row.object_id
    if not object_id:
        return changes
    if kind.startswith("checkout.session."):
        sync_checkout_session(stripe, object_id, changes)
    elif kind.startswith("customer.subscription."):
        sync_subscription(stripe, object_id, changes=changes)
    elif kind.startswith("invoice."):
        sync_invoice(stripe, object_id, changes)
    elif kind == "charge.refunded":
        sync_charge(stripe, object_id, changes=changes)
    elif kind == "charge.dispute.created":
        # The event's object is the dispute; it names the charge, re-read with its payment.
        dispute = stripe.v1.disputes.retrieve(object_id).to_dict()
        if dispute.get("charge"):
            charge = dispute["charge"]
            sync_charge(stripe, charge["id"] if isinstance(charge, dict) else charge, disputed=True, changes=changes)
    return changes


def requeue_stalled(now=None) -> list[int]:
    """Queue again, for every tenant, the events still pending long after they arrived (their
    worker died or the queue lost the job)."""
    now = now or utcnow()
    with cross_tenant("queue again Stripe events whose worker died", audit=False):
        rows = db.session.execute(sa.select(StripeEvent.id, StripeEvent.tenant_id).where(
            StripeEvent.state == EventState.PENDING, StripeEvent.received_at < now - STALLED_AFTER,
            StripeEvent.received_at > now - GIVE_UP_AFTER)).all()
        for row in rows:
            on_commit(apply_event, row.id, tenant_id=row.tenant_id)
        db.session.commit()
    return [row.id for row in rows]


@periodic_job(crontab(minute="*"))
def requeue_stalled_events() -> None:
    requeue_stalled()


@job(retries=3, retry_delay=60)
def close_lapsed_access() -> None:
    close_lapsed()


def queue_lapsed(now=None) -> list[int]:
    """Queue, for every tenant that has some, the closing of access whose grace period or
    complimentary end date ran out (the portal's check already refuses it from `closes_at` on;
    this takes the Circles away and says so on the timeline)."""
    now = now or utcnow()
    with cross_tenant("close access whose grace or complimentary period ran out", audit=False):
        tenant_ids = list(db.session.scalars(sa.select(Entitlement.tenant_id).distinct().where(
            Entitlement.is_open.is_(True), Entitlement.closes_at.is_not(None), Entitlement.closes_at <= now)))
        for tenant_id in tenant_ids:
            on_commit(close_lapsed_access, tenant_id=tenant_id)
        db.session.commit()
    return tenant_ids


@periodic_job(crontab(minute="*/5"))
def close_lapsed_everywhere() -> None:
    queue_lapsed()
