"""Stripe's webhooks: verified and stored at once (billing.views answers 2xx), applied by a
job that re-reads the objects from Stripe (billing.sync).

Each event id is stored once per tenant (unique) before anything acts on it, so a delivery
repeated by Stripe finds its row and queues nothing. A job that dies midway leaves the event
pending; the sweep below queues it again, and the job, holding the row, applies it once.
Applying an event re-reads its object, which applies every other event of that object
stored before it too: their jobs find them applied."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from huey import crontab

from billing.entitlements import close_lapsed
from billing.models import Entitlement, EventState, StripeEvent
from billing.plans import stripe_for_tenant
from billing.settings import cached_keys
from billing.sync import Changes, sync_charge, sync_checkout_session, sync_invoice, sync_subscription
from core import tenant_cache
from core.db import db, utcnow
from core.jobs import job, on_commit, periodic_job
from core.tenancy import cross_tenant, current_tenant, current_tenant_id

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


def receive(payload: bytes, signature: str | None) -> int | None:
    """Verify one delivery with the tenant's signing secret and its tolerance, and store its
    event; returns the new row's id, or None for an event already stored.

    Every delivery costs this (Stripe may send hundreds a second): the signature is checked by
    the stripe library's own scheme (WebhookSignature.verify_header, what construct_event
    does) and the body read as plain JSON, without building the library's object tree; the
    secret comes from this process's cache of the tenant's settings; the event is stored by
    one statement that does nothing when its id is there already."""
    import stripe as stripe_library  # not with the app: see billing.stripe_api

    secret = cached_keys().webhook_secret
    if not secret or not signature:
        raise BadWebhook("unsigned, or no signing secret configured")
    try:
        text = payload.decode("utf-8")
        stripe_library.WebhookSignature.verify_header(
            text, signature, secret, tolerance=current_app.config["STRIPE_WEBHOOK_TOLERANCE"])
        event = json.loads(text)
    except (ValueError, stripe_library.SignatureVerificationError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadWebhook(str(exc)) from exc
    if not isinstance(event, dict):
        raise BadWebhook("not an event")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not event_id or len(event_id) > 255:
        raise BadWebhook("no event id or type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    object_id = obj.get("id") if isinstance(obj, dict) else None
    created = event.get("created")
    state = EventState.PENDING if event_type in HANDLED else EventState.IGNORED
    tenant_id = current_tenant_id()
    row_id = db.session.scalar(_insert_once(), dict(
        event_id=event_id, type=event_type[:100],
        object_id=object_id if isinstance(object_id, str) and len(object_id) <= 255 else None,
        stripe_created=created if isinstance(created, int) and not isinstance(created, bool) else None,
        state=state, received_at=utcnow(), attempts=0))
    if row_id is None:
        return None  # delivered before: stored then, and applied (or to be) from that row
    if state == EventState.PENDING:
        on_commit(apply_event, row_id, tenant_id=tenant_id)
    return row_id


_INSERTS: dict = {}
_INSERTED = ("event_id", "type", "object_id", "stripe_created", "state", "received_at", "attempts")


def _insert_once():
    """INSERT … ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING id, in the dialect at
    hand, built once; core.tenancy stamps the tenant on it."""
    dialect = db.session.get_bind().dialect.name
    statement = _INSERTS.get(dialect)
    if statement is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = _INSERTS[dialect] = (
            insert(StripeEvent).values({name: sa.bindparam(name) for name in _INSERTED})
            .on_conflict_do_nothing(index_elements=["tenant_id", "event_id"]).returning(StripeEvent.id))
    return statement


@job(retries=8, retry_delay=15)
def apply_event(event_row_id: int) -> None:
    """Apply one stored event, once: the row is locked while it is applied (PostgreSQL), and an
    applied one is left alone. A job of moments: the tenant's configuration (its keys, the
    grace period) comes from the process's caches at the version its row had as this
    transaction began (core.tenant_cache)."""
    tenant_cache.read_at(current_tenant())
    row = db.session.scalar(sa.select(StripeEvent).where(StripeEvent.id == event_row_id).with_for_update())
    if row is None or row.state != EventState.PENDING:
        return
    covered = _covered_by(row)
    changes = apply(row)
    now = utcnow()
    row.attempts += 1  # after: one UPDATE with the state (a failure rolls both back alike)
    row.state = EventState.APPLIED
    row.applied_at = now
    if covered:
        db.session.execute(sa.update(StripeEvent).where(StripeEvent.id.in_(covered))
                           .values(state=EventState.APPLIED, applied_at=now))
    for line in changes.lines:
        logger.info("stripe event %s (%s): %s", row.event_id, row.type, line)
    if covered:
        logger.info("stripe event %s covered %d more of %s", row.event_id, len(covered), row.object_id)


def _family(event_type: str) -> str:
    """Events apply() handles alike for one object: the same re-read from Stripe."""
    return next((p for p in ("checkout.session.", "customer.subscription.", "invoice.") if event_type.startswith(p)),
                event_type)


def _covered_by(row: StripeEvent) -> list[int]:
    """The other events of the same object (and kind of re-read) still pending, stored before
    the re-read that applying `row` makes: what Stripe says then is at least as new as what
    they announced, so that re-read applies them too (a burst of updates to one subscription
    costs one). Taken locked, skipping any another worker is applying now."""
    if not row.object_id:
        return []
    family = _family(row.type)
    return list(db.session.scalars(sa.select(StripeEvent.id).where(
        StripeEvent.object_id == row.object_id, StripeEvent.state == EventState.PENDING,
        StripeEvent.type.in_(sorted(t for t in HANDLED if _family(t) == family)), StripeEvent.id != row.id)
        .with_for_update(skip_locked=True)))


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
