"""What staff do to a contact's payments: grant complimentary access to a plan (a local
entitlement, optionally until a date) and revoke it; cancel a subscription at the end of its
period or now; refund a payment in full or in part. Each is audited and on the contact's
timeline. The Stripe ones go through the official library (billing.stripe_api) with an
idempotency key drawn per confirmation, so a repeated submit changes Stripe once; Stripe is
called before anything is written here, so a refusal or an outage leaves nothing half-done.
Who gets access stays billing.entitlements.decide()'s to say."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa

from billing import ledger
from billing.entitlements import follow_circles, redecide
from billing.models import AccessPlan, Entitlement, EntitlementSource, Payment, PaymentStatus, Refund
from billing.plans import stripe_for_tenant
from billing.settings import cached_rules
from billing.stripe_api import calling_stripe, idempotency
from billing.sync import sync_charge, sync_subscription
from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.tenancy import current_tenant_id
from crm.models import Contact

register_actions({
    "billing.complimentary_granted": "Complimentary access granted",
    "billing.complimentary_revoked": "Complimentary access revoked",
    "billing.subscription_cancelled": "Subscription cancelled",
    "billing.payment_refunded": "Payment refunded",
})

ENDED = frozenset({"canceled", "incomplete_expired"})


def _end_of(day: date) -> datetime:
    """Access "until" a day lasts through that day (UTC)."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), timezone.utc)


def grant_complimentary(contact: Contact, plan: AccessPlan, ends_on: date | None, *, actor) -> Entitlement:
    if ends_on is not None and _end_of(ends_on) <= utcnow():
        raise ServiceError("Choose an end date from today on, or leave it empty.", "ends_on")
    already = db.session.scalar(sa.select(Entitlement.id).where(
        Entitlement.contact_id == contact.id, Entitlement.plan_id == plan.id,
        Entitlement.source == EntitlementSource.COMPLIMENTARY, Entitlement.status == "active",
        sa.or_(Entitlement.current_period_end.is_(None), Entitlement.current_period_end > utcnow())))
    if already is not None:
        raise ServiceError(f"{contact.full_name} already has complimentary access to {plan.name}; "
                           "revoke it first to change it.", "plan_id")
    entitlement = Entitlement(contact_id=contact.id, plan_id=plan.id, source=EntitlementSource.COMPLIMENTARY,
                              status="active", current_period_end=_end_of(ends_on) if ends_on else None)
    db.session.add(entitlement)
    redecide(entitlement, cached_rules()[1])
    db.session.flush()
    follow_circles(contact)
    until = f" until {ends_on:%Y-%m-%d}" if ends_on else ""
    record("billing.complimentary_granted", contact, actor=actor,
           details={"plan": plan.name, "plan_id": plan.id, "until": ends_on.isoformat() if ends_on else None,
                    "entitlement_id": entitlement.id})
    ledger.note(contact, f"Complimentary access to {plan.name} granted{until}", entitlement, actor=actor)
    return entitlement


def revoke_complimentary(entitlement: Entitlement, *, actor) -> None:
    if entitlement.source != EntitlementSource.COMPLIMENTARY or entitlement.status != "active":
        raise ServiceError("This complimentary access is already revoked.")
    contact = db.session.get(Contact, entitlement.contact_id)
    entitlement.status = "revoked"
    redecide(entitlement, cached_rules()[1])
    db.session.flush()
    follow_circles(contact)
    plan = ledger.plan_words(entitlement)
    record("billing.complimentary_revoked", contact, actor=actor,
           details={"plan_id": entitlement.plan_id, "entitlement_id": entitlement.id})
    ledger.note(contact, f"Complimentary access{plan} revoked", entitlement, actor=actor)


def cancel_subscription(entitlement: Entitlement, *, now: bool, attempt: str, actor) -> Entitlement:
    """Cancel in Stripe, then re-read the subscription (status, access and Circles follow)."""
    if entitlement.source != EntitlementSource.SUBSCRIPTION or not entitlement.stripe_subscription_id:
        raise ServiceError("Only a subscription can be cancelled.")
    if entitlement.status in ENDED:
        raise ServiceError("This subscription has already ended.")
    if not now and entitlement.cancel_at_period_end:
        raise ServiceError("This subscription already ends at the end of its period.", "when")
    stripe = stripe_for_tenant()
    subscription_id = entitlement.stripe_subscription_id
    options = idempotency(current_tenant_id(), "cancel", subscription_id, "now" if now else "period_end", attempt)
    with calling_stripe("when"):
        if now:
            stripe.v1.subscriptions.cancel(subscription_id, options=options)
        else:
            stripe.v1.subscriptions.update(subscription_id, params={"cancel_at_period_end": True}, options=options)
    contact = db.session.get(Contact, entitlement.contact_id)
    record("billing.subscription_cancelled", contact, actor=actor,
           details={"subscription": subscription_id, "when": "now" if now else "period_end",
                    "entitlement_id": entitlement.id})
    # The timeline says what changed as the re-read finds it ("ends at the end of its period",
    # "Active → Cancelled"), by whoever is signed in.
    return sync_subscription(stripe, subscription_id) or entitlement


def refund_payment(payment: Payment, amount: int | None, *, attempt: str, actor):
    """Refund `amount` (minor units; all that is left when None) of the payment, in Stripe."""
    if payment.status != PaymentStatus.SUCCEEDED:
        raise ServiceError("Only a payment that went through can be refunded.")
    left = payment.refundable
    if left <= 0:
        raise ServiceError("This payment is already refunded in full.")
    amount = left if amount is None else amount
    if amount <= 0:
        raise ServiceError("Enter an amount above zero.", "amount")
    if amount > left:
        raise ServiceError(f"At most {ledger.money(left, payment.currency)} of this payment is left to refund.",
                           "amount")
    stripe = stripe_for_tenant()
    with calling_stripe("amount"):
        refund = stripe.v1.refunds.create(
            params={"charge": payment.stripe_charge_id, "amount": amount,
                    "metadata": {"portico_tenant_id": str(current_tenant_id()),
                                 "portico_payment_id": str(payment.id)}},
            options=idempotency(current_tenant_id(), "refund", payment.id, attempt))
    refund = refund.to_dict()
    repeated = db.session.scalar(sa.select(Refund.id).where(Refund.stripe_refund_id == refund["id"])) is not None
    row = ledger.record_refund(payment, refund, actor=actor)
    if not repeated:  # a repeated submit got Stripe's first answer back: done and recorded then
        record("billing.payment_refunded", payment, actor=actor,
               details={"amount": row.amount, "currency": row.currency, "refund": row.stripe_refund_id,
                        "contact_id": payment.contact_id})
    # Re-read the charge: a one-time payment refunded in full closes the access it paid for.
    sync_charge(stripe, payment.stripe_charge_id)
    return row
