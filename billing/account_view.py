"""What a contact sees of their payments (the portal's payment page): their plans and their
status, from the local entitlements; their invoices and receipts, from Stripe."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from billing.entitlements import entitlements_of, open_now
from billing.models import AccessPlan, BillingCustomer, Entitlement
from billing.plans import describe_price, stripe_for_tenant
from billing.stripe_api import calling_stripe
from core.db import db
from crm.models import Contact

STATUS_WORDS = {
    "active": "Active", "trialing": "Free trial", "past_due": "Payment failed: Stripe is retrying",
    "unpaid": "Unpaid", "canceled": "Cancelled", "incomplete": "Waiting for payment",
    "incomplete_expired": "Expired before payment", "paused": "Paused", "paid": "Paid",
    "refunded": "Refunded", "new": "Waiting for Stripe",
}


@dataclass
class Holding:
    entitlement: Entitlement
    plan: AccessPlan | None
    is_open: bool

    @property
    def status(self) -> str:
        if self.entitlement.disputed:
            return "Disputed"
        return STATUS_WORDS.get(self.entitlement.status, self.entitlement.status)

    @property
    def price(self) -> str:
        return describe_price(self.plan) if self.plan else ""


def holdings(contact: Contact) -> list[Holding]:
    rows = entitlements_of(contact.id)
    plans = {p.id: p for p in db.session.scalars(sa.select(AccessPlan).where(
        AccessPlan.id.in_({r.plan_id for r in rows if r.plan_id})))} if rows else {}
    return [Holding(r, plans.get(r.plan_id), open_now(r)) for r in rows]


@dataclass
class InvoiceLine:
    number: str
    created: datetime
    amount: str
    status: str
    url: str | None


def invoices(contact: Contact, limit: int = 24) -> list[InvoiceLine]:
    """The contact's invoices and receipts, newest first, from Stripe (this page only: the
    portal's access check never calls Stripe)."""
    customer_id = db.session.scalar(sa.select(BillingCustomer.stripe_customer_id)
                                    .where(BillingCustomer.contact_id == contact.id))
    if not customer_id:
        return []
    stripe = stripe_for_tenant()
    with calling_stripe():
        listed = stripe.v1.invoices.list(params={"customer": customer_id, "limit": limit})
    lines = []
    for invoice in listed.data:
        data = invoice.to_dict()
        amount = data.get("amount_paid") or data.get("amount_due") or 0
        lines.append(InvoiceLine(
            number=data.get("number") or data["id"],
            created=datetime.fromtimestamp(int(data.get("created") or 0), timezone.utc),
            amount=f"{amount / 100:,.2f} {(data.get('currency') or '').upper()}",
            status={"paid": "Paid", "open": "Due", "void": "Void", "draft": "Draft",
                    "uncollectible": "Uncollectible"}.get(data.get("status"), data.get("status") or ""),
            url=data.get("hosted_invoice_url") or data.get("invoice_pdf")))
    return sorted(lines, key=lambda line: line.created, reverse=True)


def billing_portal_url(contact: Contact, return_url: str) -> str:
    """Stripe's Billing Portal for the contact's Customer (manage the card, cancel)."""
    from core.errors import ServiceError

    customer_id = db.session.scalar(sa.select(BillingCustomer.stripe_customer_id)
                                    .where(BillingCustomer.contact_id == contact.id))
    if not customer_id:
        raise ServiceError("There is nothing to manage yet: no payment was made from this account.")
    stripe = stripe_for_tenant()
    with calling_stripe():
        return stripe.v1.billing_portal.sessions.create(params={"customer": customer_id,
                                                                "return_url": return_url}).url


@dataclass
class PaymentRow:
    entitlement: Entitlement
    contact_id: int
    contact_name: str
    plan_name: str | None
    is_open: bool

    @property
    def status(self) -> str:
        if self.entitlement.disputed:
            return "Disputed"
        return STATUS_WORDS.get(self.entitlement.status, self.entitlement.status)


def payments_overview(status: str | None = None, limit: int = 200) -> list[PaymentRow]:
    """The staff payments list: every contact's subscriptions and payments, latest change
    first, with the contact and plan named in the same query."""
    query = (sa.select(Entitlement, Contact.id, Contact.first_name, Contact.last_name, Contact.email,
                       AccessPlan.name)
             .join(Contact, sa.and_(Contact.tenant_id == Entitlement.tenant_id, Contact.id == Entitlement.contact_id))
             .outerjoin(AccessPlan, sa.and_(AccessPlan.tenant_id == Entitlement.tenant_id,
                                            AccessPlan.id == Entitlement.plan_id))
             .order_by(Entitlement.updated_at.desc(), Entitlement.id.desc()).limit(limit))
    if status == "open":
        query = query.where(Entitlement.is_open.is_(True))
    elif status == "closed":
        query = query.where(Entitlement.is_open.is_(False))
    elif status == "failed":
        query = query.where(Entitlement.status.in_(("past_due", "unpaid", "incomplete", "incomplete_expired")))
    elif status == "refunded":
        query = query.where(sa.or_(Entitlement.status == "refunded", Entitlement.disputed.is_(True)))
    rows = []
    for entitlement, contact_id, first, last, email, plan_name in db.session.execute(query):
        name = " ".join(p for p in (first, last) if p) or email or f"Contact {contact_id}"
        rows.append(PaymentRow(entitlement, contact_id, name, plan_name, open_now(entitlement)))
    return rows
