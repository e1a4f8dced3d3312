"""A contact's payments and refunds, as Stripe last said: one Payment row per charge (a one-time
payment, or a subscription's invoice, paid or failed) and one Refund row per refund, written by
billing.sync from what it re-reads from Stripe. The staff's payments panel reads them, never
Stripe. Each new fact goes once onto the contact's timeline: a repeated or late event finds
its row and writes nothing."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from billing.models import AccessPlan, Entitlement, Payment, PaymentStatus, Refund
from billing.stripe_api import calling_stripe
from core.db import db, utcnow
from crm.models import Contact
from crm.timeline import record_activity

TIMELINE_KIND = "payment"

STATUS_WORDS = {
    "active": "Active", "trialing": "Free trial", "past_due": "Payment failed: Stripe is retrying",
    "unpaid": "Unpaid", "canceled": "Cancelled", "incomplete": "Waiting for payment",
    "incomplete_expired": "Expired before payment", "paused": "Paused", "paid": "Paid",
    "refunded": "Refunded", "new": "Waiting for Stripe", "revoked": "Revoked",
}


def money(amount: int, currency: str) -> str:
    return f"{amount / 100:,.2f} {currency.upper()}"


def _dict(obj) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj or {})


def _when(timestamp) -> datetime | None:
    return datetime.fromtimestamp(int(timestamp), timezone.utc) if timestamp else None


def _status(charge: dict) -> str:
    if charge.get("status") == "succeeded":
        return PaymentStatus.SUCCEEDED
    if charge.get("status") == "failed":
        return PaymentStatus.FAILED
    return PaymentStatus.PENDING


def _plan_words(entitlement_id: int | None) -> str:
    if entitlement_id is None:
        return ""
    name = db.session.scalar(sa.select(AccessPlan.name).join(Entitlement, sa.and_(
        Entitlement.tenant_id == AccessPlan.tenant_id, Entitlement.plan_id == AccessPlan.id))
        .where(Entitlement.id == entitlement_id))
    return f" for {name}" if name else ""


def plan_words(entitlement: Entitlement) -> str:
    """" to Membership" (the plan an entitlement is for), or nothing."""
    plan = db.session.get(AccessPlan, entitlement.plan_id) if entitlement.plan_id else None
    return f" to {plan.name}" if plan else ""


def note(contact: Contact, summary: str, subject=None, actor=None) -> None:
    """A payment fact on the contact's timeline."""
    record_activity(TIMELINE_KIND, summary, contact=contact, subject=subject, actor=actor, touch=False)


def record_charge(stripe, charge: dict, *, contact: Contact, entitlement: Entitlement | None = None,
                  invoice_id: str | None = None, disputed: bool = False) -> Payment | None:
    """The charge as Stripe has it now, with its refunds; returns its row."""
    if not charge.get("id"):
        return None
    payment = db.session.scalar(sa.select(Payment).where(Payment.stripe_charge_id == charge["id"]))
    before = None
    if payment is None:
        payment = Payment(contact_id=contact.id, stripe_charge_id=charge["id"], amount=int(charge.get("amount") or 0),
                          currency=(charge.get("currency") or "").lower()[:3], status=PaymentStatus.PENDING,
                          charged_at=_when(charge.get("created")) or utcnow())
        db.session.add(payment)
    else:
        before = (payment.status, payment.disputed)
    if entitlement is not None and payment.entitlement_id is None:
        payment.entitlement_id = entitlement.id
    intent = charge.get("payment_intent")
    payment.stripe_payment_intent_id = (intent.get("id") if isinstance(intent, dict) else intent) or \
        payment.stripe_payment_intent_id
    invoice = charge.get("invoice")
    payment.stripe_invoice_id = invoice_id or (invoice.get("id") if isinstance(invoice, dict) else invoice) or \
        payment.stripe_invoice_id
    payment.status = _status(charge)
    payment.failure_message = (charge.get("failure_message") or None) if payment.status == PaymentStatus.FAILED \
        else None
    # A dispute is not undone by a later read of the same charge.
    payment.disputed = payment.disputed or disputed or bool(charge.get("disputed"))
    db.session.flush()
    amount = money(payment.amount, payment.currency) + _plan_words(payment.entitlement_id)
    if payment.status != (before or (None,))[0]:
        if payment.status == PaymentStatus.SUCCEEDED:
            note(contact, f"Payment received: {amount}", payment)
        elif payment.status == PaymentStatus.FAILED:
            reason = f": {payment.failure_message}" if payment.failure_message else ""
            note(contact, f"Payment failed: {amount}{reason}", payment)
    if payment.disputed and not (before or (None, False))[1]:
        note(contact, f"Payment disputed: {amount}. Access it paid for is closed.", payment)
    if int(charge.get("amount_refunded") or 0) > payment.amount_refunded:
        with calling_stripe():
            listed = stripe.v1.refunds.list(params={"charge": charge["id"], "limit": 100})
        for refund in listed.data:
            record_refund(payment, _dict(refund), contact=contact)
    return payment


def record_refund(payment: Payment, refund: dict, *, contact: Contact | None = None, actor=None) -> Refund:
    """One refund of the payment; a new one goes onto the timeline (by `actor`, when staff made it)."""
    row = db.session.scalar(sa.select(Refund).where(Refund.stripe_refund_id == refund["id"]))
    new = row is None
    if new:
        row = Refund(payment_id=payment.id, stripe_refund_id=refund["id"], amount=int(refund.get("amount") or 0),
                     currency=(refund.get("currency") or payment.currency).lower()[:3], status="pending",
                     refunded_at=_when(refund.get("created")) or utcnow())
        db.session.add(row)
    row.status = refund.get("status") or row.status
    db.session.flush()
    payment.amount_refunded = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
            Refund.payment_id == payment.id, Refund.status.in_(("succeeded", "pending")))) or 0
    payment.amount_refunded = min(payment.amount_refunded, payment.amount)
    if new:
        contact = contact or db.session.get(Contact, payment.contact_id)
        whole = " (now refunded in full)" if payment.amount_refunded >= payment.amount else ""
        note(contact, f"Refunded {money(row.amount, row.currency)} of the "
                      f"{money(payment.amount, payment.currency)} payment{_plan_words(payment.entitlement_id)}{whole}",
             row, actor=actor)
    return row


def payments_of(contact: Contact, limit: int = 50) -> list[Payment]:
    return list(db.session.scalars(sa.select(Payment).where(Payment.contact_id == contact.id)
                                   .order_by(Payment.charged_at.desc(), Payment.id.desc()).limit(limit)))


def refunds_of(payment_ids: list[int]) -> dict[int, list[Refund]]:
    found: dict[int, list[Refund]] = {}
    if payment_ids:
        for refund in db.session.scalars(sa.select(Refund).where(Refund.payment_id.in_(payment_ids))
                                         .order_by(Refund.refunded_at, Refund.id)):
            found.setdefault(refund.payment_id, []).append(refund)
    return found
