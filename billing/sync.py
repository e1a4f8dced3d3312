"""Local state from Stripe's current state. Every handler and the reconciliation re-read the
object from Stripe and write what it says now, so events that arrive late, twice or out of
order end in the same state as in-order delivery."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa

from billing import ledger
from billing.entitlements import follow_circles, open_now, redecide
from billing.models import AccessPlan, BillingCustomer, Entitlement, EntitlementSource, Payment
from billing.settings import cached_rules
from billing.stripe_api import calling_stripe
from core.db import db, utcnow
from core.tenancy import current_tenant_id
from crm.models import Contact

TENANT_KEY, CONTACT_KEY, PLAN_KEY = "portico_tenant_id", "portico_contact_id", "portico_plan_id"


@dataclass
class Changes:
    """What a sync changed, in words, for the reconciliation's report and the logs."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


def _dict(obj) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj or {})


def _when(timestamp) -> datetime | None:
    return datetime.fromtimestamp(int(timestamp), timezone.utc) if timestamp else None


def _ours(metadata: dict) -> bool:
    """An object made for another tenant (both may share a platform Stripe account) is not ours."""
    return str(metadata.get(TENANT_KEY, "")) == str(current_tenant_id())


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _contact_for(metadata: dict, customer_id: str | None) -> Contact | None:
    contact_id = _int(metadata.get(CONTACT_KEY)) if _ours(metadata) else None
    if contact_id is None and customer_id:
        contact_id = db.session.scalar(sa.select(BillingCustomer.contact_id)
                                       .where(BillingCustomer.stripe_customer_id == customer_id))
    contact = db.session.get(Contact, contact_id) if contact_id else None
    if contact is not None and contact.merged_into_id:  # merged since: the survivor holds it now
        contact = db.session.get(Contact, contact.merged_into_id) or contact
    return contact


def _plan_for(metadata: dict, price_ids: list[str]) -> int | None:
    plan_id = _int(metadata.get(PLAN_KEY)) if _ours(metadata) else None
    if plan_id is not None and db.session.get(AccessPlan, plan_id) is not None:
        return plan_id
    if price_ids:
        return db.session.scalar(sa.select(AccessPlan.id).where(sa.or_(
            AccessPlan.stripe_price_id.in_(price_ids), AccessPlan.stripe_fee_price_id.in_(price_ids))))
    return None


def remember_customer(contact_id: int, customer_id: str | None) -> None:
    if not customer_id:
        return
    known = db.session.scalar(sa.select(BillingCustomer).where(BillingCustomer.contact_id == contact_id))
    if known is None:
        db.session.add(BillingCustomer(contact_id=contact_id, stripe_customer_id=customer_id))
        db.session.flush()


def _settle(entitlement: Entitlement, contact: Contact, before: tuple, changes: Changes) -> None:
    """The verdict of the one rule on what Stripe said; Circles follow when access moved."""
    redecide(entitlement, cached_rules()[1])
    db.session.flush()
    after = (entitlement.status, open_now(entitlement))
    if after != before:
        what = entitlement.stripe_subscription_id or entitlement.stripe_payment_intent_id
        changes.add(f"{contact.full_name or contact.email or contact.id}: {what} "
                    f"{before[0] or 'new'} → {after[0]} (access {'open' if after[1] else 'closed'})")
    if after[1] != before[1]:
        follow_circles(contact)
    if entitlement.source == EntitlementSource.SUBSCRIPTION and after[0] != before[0]:
        words = ledger.STATUS_WORDS.get(after[0], after[0])
        was = f"{ledger.STATUS_WORDS.get(before[0], before[0])} → " if before[0] not in (None, "new") else ""
        ledger.note(contact, f"Subscription{ledger.plan_words(entitlement)}: {was}{words} "
                             f"(access {'open' if after[1] else 'closed'})", entitlement)


def sync_subscription(stripe, subscription_id: str, *, contact: Contact | None = None, plan_id: int | None = None,
                      session_id: str | None = None, changes: Changes | None = None) -> Entitlement | None:
    changes = changes if changes is not None else Changes()
    with calling_stripe():
        sub = _dict(stripe.v1.subscriptions.retrieve(subscription_id))
    metadata = sub.get("metadata") or {}
    entitlement = db.session.scalar(sa.select(Entitlement).where(Entitlement.stripe_subscription_id == sub["id"]))
    items = (sub.get("items") or {}).get("data") or []
    if entitlement is None:
        contact = contact or _contact_for(metadata, sub.get("customer"))
        if contact is None:
            return None  # not one of this tenant's
        entitlement = Entitlement(contact_id=contact.id, source=EntitlementSource.SUBSCRIPTION, status="new",
                                  stripe_subscription_id=sub["id"],
                                  plan_id=plan_id or _plan_for(metadata, [i["price"]["id"] for i in items
                                                                          if i.get("price")]))
        db.session.add(entitlement)
        before = (None, False)
    else:
        contact = db.session.get(Contact, entitlement.contact_id)
        before = (entitlement.status, open_now(entitlement))
    entitlement.stripe_customer_id = sub.get("customer")
    entitlement.stripe_checkout_session_id = entitlement.stripe_checkout_session_id or session_id
    entitlement.status = sub["status"]
    period_end = sub.get("current_period_end") or (items[0].get("current_period_end") if items else None)
    entitlement.current_period_end = _when(period_end)
    ending = bool(sub.get("cancel_at_period_end"))
    if ending != bool(entitlement.cancel_at_period_end) and sub["status"] not in ("canceled", "incomplete_expired"):
        ledger.note(contact, f"Subscription{ledger.plan_words(entitlement)}: "
                             + (f"ends at the end of its period ({entitlement.current_period_end:%Y-%m-%d})"
                                if ending and entitlement.current_period_end else
                                "ends at the end of its period" if ending else "renews again"), entitlement)
    entitlement.cancel_at_period_end = ending
    if sub["status"] == "past_due":
        if entitlement.past_due_since is None:
            entitlement.past_due_since = _past_due_since(stripe, sub)
    else:
        entitlement.past_due_since = None
    remember_customer(contact.id, sub.get("customer"))
    _settle(entitlement, contact, before, changes)
    return entitlement


def _past_due_since(stripe, sub: dict) -> datetime:
    """When the renewal failed: the unpaid invoice's date, from Stripe (the same whichever
    event told us first), else now."""
    invoice_id = sub.get("latest_invoice")
    if isinstance(invoice_id, dict):
        invoice_id = invoice_id.get("id")
    if invoice_id:
        with calling_stripe():
            invoice = _dict(stripe.v1.invoices.retrieve(invoice_id))
        stamp = (invoice.get("status_transitions") or {}).get("finalized_at") or invoice.get("created")
        if stamp:
            return _when(stamp)
    return utcnow()


def sync_payment(stripe, payment_intent_id: str, *, contact: Contact | None = None, plan_id: int | None = None,
                 session_id: str | None = None, disputed: bool = False,
                 changes: Changes | None = None) -> Entitlement | None:
    changes = changes if changes is not None else Changes()
    with calling_stripe():
        intent = _dict(stripe.v1.payment_intents.retrieve(payment_intent_id))
    metadata = intent.get("metadata") or {}
    entitlement = db.session.scalar(sa.select(Entitlement).where(Entitlement.stripe_payment_intent_id == intent["id"]))
    if entitlement is None:
        if intent.get("invoice") and not _ours(metadata):
            return None  # a subscription's invoice: its subscription is the entitlement (sync_invoice)
        contact = contact or _contact_for(metadata, intent.get("customer"))
        if contact is None:
            return None
        entitlement = Entitlement(contact_id=contact.id, source=EntitlementSource.PAYMENT, status="new",
                                  stripe_payment_intent_id=intent["id"], plan_id=plan_id or _plan_for(metadata, []))
        db.session.add(entitlement)
        before = (None, False)
    else:
        contact = db.session.get(Contact, entitlement.contact_id)
        before = (entitlement.status, open_now(entitlement))
    charge = intent.get("latest_charge")
    if isinstance(charge, str):
        with calling_stripe():
            charge = _dict(stripe.v1.charges.retrieve(charge))
    charge = charge or {}
    if intent.get("status") != "succeeded":
        status = "unpaid"
    elif charge.get("refunded"):
        status = "refunded"
    else:
        status = "paid"
    entitlement.status = status
    entitlement.stripe_customer_id = intent.get("customer")
    entitlement.stripe_checkout_session_id = entitlement.stripe_checkout_session_id or session_id
    # A dispute is not undone by a later event about the same payment.
    entitlement.disputed = entitlement.disputed or disputed or bool(charge.get("disputed"))
    remember_customer(contact.id, intent.get("customer"))
    _settle(entitlement, contact, before, changes)
    if charge.get("id"):
        ledger.record_charge(stripe, charge, contact=contact, entitlement=entitlement, disputed=disputed)
    return entitlement


def _id(value) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def sync_invoice(stripe, invoice_id: str, changes: Changes | None = None) -> Entitlement | None:
    """A subscription's invoice: the subscription re-read, and the invoice's charge (paid or
    failed) recorded as one of the contact's payments."""
    with calling_stripe():
        invoice = _dict(stripe.v1.invoices.retrieve(invoice_id))
    subscription = invoice.get("subscription") or (
        ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription"))
    entitlement = sync_subscription(stripe, _id(subscription), changes=changes) if subscription else None
    charge = invoice.get("charge")
    if not charge and invoice.get("payment_intent"):
        intent = invoice["payment_intent"]
        if not isinstance(intent, dict):
            with calling_stripe():
                intent = _dict(stripe.v1.payment_intents.retrieve(intent))
        charge = intent.get("latest_charge")
    if isinstance(charge, str):
        with calling_stripe():
            charge = _dict(stripe.v1.charges.retrieve(charge))
    contact = db.session.get(Contact, entitlement.contact_id) if entitlement is not None else \
        _contact_for({}, invoice.get("customer"))
    if charge and contact is not None:
        ledger.record_charge(stripe, charge, contact=contact, entitlement=entitlement, invoice_id=invoice["id"])
    return entitlement


def sync_charge(stripe, charge_id: str, *, disputed: bool = False, changes: Changes | None = None) -> Payment | None:
    """A charge (refunded, disputed): a one-time payment's entitlement follows it (closed when
    refunded in full or disputed); any charge of a known contact is recorded with its refunds."""
    with calling_stripe():
        charge = _dict(stripe.v1.charges.retrieve(charge_id))
    intent = _id(charge.get("payment_intent"))
    if intent and sync_payment(stripe, intent, disputed=disputed, changes=changes) is not None:
        return db.session.scalar(sa.select(Payment).where(Payment.stripe_charge_id == charge["id"]))
    payment = db.session.scalar(sa.select(Payment).where(Payment.stripe_charge_id == charge["id"]))
    contact = db.session.get(Contact, payment.contact_id) if payment is not None else \
        _contact_for({}, _id(charge.get("customer")))
    if contact is None:
        return None
    entitlement = None
    if payment is None and charge.get("invoice"):
        with calling_stripe():
            invoice = _dict(stripe.v1.invoices.retrieve(_id(charge["invoice"])))
        subscription = invoice.get("subscription") or (
            ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription"))
        if subscription:
            entitlement = db.session.scalar(sa.select(Entitlement).where(
                Entitlement.stripe_subscription_id == _id(subscription)))
    return ledger.record_charge(stripe, charge, contact=contact, entitlement=entitlement, disputed=disputed)


def sync_checkout_session(stripe, session_id: str, changes: Changes | None = None) -> Entitlement | None:
    """A Checkout Session as Stripe has it now: access only once Stripe says it is paid (or
    needs no payment, as a free trial)."""
    with calling_stripe():
        session = _dict(stripe.v1.checkout.sessions.retrieve(session_id))
    metadata = session.get("metadata") or {}
    if not _ours(metadata):
        return None
    contact = db.session.get(Contact, _int(session.get("client_reference_id")) or _int(metadata.get(CONTACT_KEY)) or 0)
    if contact is None:
        return None
    if session.get("status") != "complete" or session.get("payment_status") not in ("paid", "no_payment_required"):
        return None  # an asynchronous payment still pending; its own event follows
    plan_id = _int(metadata.get(PLAN_KEY))
    plan_id = plan_id if plan_id and db.session.get(AccessPlan, plan_id) else None
    remember_customer(contact.id, session.get("customer"))
    if session.get("subscription"):
        return sync_subscription(stripe, session["subscription"], contact=contact, plan_id=plan_id,
                                 session_id=session["id"], changes=changes)
    if session.get("payment_intent"):
        return sync_payment(stripe, session["payment_intent"], contact=contact, plan_id=plan_id,
                            session_id=session["id"], changes=changes)
    return None


def reconcile(stripe) -> Changes:
    """`billing sync`: every entitlement, every subscription of every known customer, and the
    tenant's completed Checkout Sessions, re-read from Stripe."""
    changes = Changes()
    seen_subscriptions: set[str] = set()
    with calling_stripe():
        for session in stripe.v1.checkout.sessions.list(params={"limit": 100}).auto_paging_iter():
            session = _dict(session)
            if _ours(session.get("metadata") or {}) and session.get("status") == "complete":
                entitlement = sync_checkout_session(stripe, session["id"], changes)
                if entitlement is not None and entitlement.stripe_subscription_id:
                    seen_subscriptions.add(entitlement.stripe_subscription_id)
    for customer_id in list(db.session.scalars(sa.select(BillingCustomer.stripe_customer_id))):
        with calling_stripe():
            listed = stripe.v1.subscriptions.list(params={"customer": customer_id, "status": "all", "limit": 100})
            ids = [s.id for s in listed.auto_paging_iter()]
        for subscription_id in ids:
            if subscription_id not in seen_subscriptions:
                sync_subscription(stripe, subscription_id, changes=changes)
                seen_subscriptions.add(subscription_id)
    for customer_id in list(db.session.scalars(sa.select(BillingCustomer.stripe_customer_id))):
        with calling_stripe():
            charge_ids = [c.id for c in stripe.v1.charges.list(
                params={"customer": customer_id, "limit": 100}).auto_paging_iter()]
        for charge_id in charge_ids:
            sync_charge(stripe, charge_id, changes=changes)
    for entitlement in list(db.session.scalars(sa.select(Entitlement))):
        if entitlement.stripe_subscription_id and entitlement.stripe_subscription_id not in seen_subscriptions:
            sync_subscription(stripe, entitlement.stripe_subscription_id, changes=changes)
        elif entitlement.stripe_payment_intent_id:
            sync_payment(stripe, entitlement.stripe_payment_intent_id, changes=changes)
    return changes
