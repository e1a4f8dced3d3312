"""What a contact sees of their payments (the portal's payment page): their plans and their
status, from the local entitlements; their invoices and receipts, from Stripe."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from billing.entitlements import entitlements_of, open_now
from billing.ledger import STATUS_WORDS
from billing import ledger
from billing.ledger import money
from billing.models import AccessPlan, BillingCustomer, Entitlement, EntitlementSource, Payment, PaymentStatus, Refund
from billing.plans import describe_price, stripe_for_tenant
from billing.stripe_api import calling_stripe
from core.db import db
from core.permissions import can
from crm.access import visible_contacts_clause
from crm.models import Contact
from crm.sections import contact_section



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

    @property
    def last_day(self) -> str | None:
        """Complimentary access granted "until" a day: that day (it lasts through it)."""
        end = self.entitlement.current_period_end
        if self.entitlement.source != EntitlementSource.COMPLIMENTARY or end is None:
            return None
        return f"{end - timedelta(seconds=1):%Y-%m-%d}"


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


def payments_overview(viewer, status: str | None = None, limit: int = 200) -> list[PaymentRow]:
    """The staff payments list: the subscriptions and payments of every contact the viewer may
    see (crm.access), latest change first, with the contact and plan named in the same query."""
    query = (sa.select(Entitlement, Contact.id, Contact.first_name, Contact.last_name, Contact.email,
                       AccessPlan.name)
             .join(Contact, sa.and_(Contact.tenant_id == Entitlement.tenant_id, Contact.id == Entitlement.contact_id))
             .outerjoin(AccessPlan, sa.and_(AccessPlan.tenant_id == Entitlement.tenant_id,
                                            AccessPlan.id == Entitlement.plan_id))
             .where(visible_contacts_clause(viewer))
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


# --- the staff's Payments panel on a contact's page -------------------------------------------------

@dataclass
class PaymentLine:
    payment: Payment
    plan_name: str | None
    refunds: list[Refund]

    @property
    def amount(self) -> str:
        return money(self.payment.amount, self.payment.currency)

    @property
    def status(self) -> str:
        p = self.payment
        if p.disputed:
            return "Disputed"
        if p.status == PaymentStatus.FAILED:
            return "Failed" + (f": {p.failure_message}" if p.failure_message else "")
        if p.status == PaymentStatus.PENDING:
            return "Pending"
        if p.amount_refunded >= p.amount:
            return "Refunded"
        if p.amount_refunded:
            return f"Paid, {money(p.amount_refunded, p.currency)} refunded"
        return "Paid"


@dataclass
class ListedPayment(PaymentLine):
    contact_id: int = 0
    contact_name: str = ""


def recent_payments(viewer, status: str | None = None, limit: int = 100) -> list[ListedPayment]:
    """The payments list's second table: the latest charges (paid, failed, refunded, disputed)
    of the contacts the viewer may see, with their refunds, in three queries whatever the rows."""
    query = (sa.select(Payment, Contact.first_name, Contact.last_name, Contact.email, AccessPlan.name)
             .join(Contact, sa.and_(Contact.tenant_id == Payment.tenant_id, Contact.id == Payment.contact_id))
             .outerjoin(Entitlement, sa.and_(Entitlement.tenant_id == Payment.tenant_id,
                                             Entitlement.id == Payment.entitlement_id))
             .outerjoin(AccessPlan, sa.and_(AccessPlan.tenant_id == Entitlement.tenant_id,
                                            AccessPlan.id == Entitlement.plan_id))
             .where(visible_contacts_clause(viewer))
             .order_by(Payment.charged_at.desc(), Payment.id.desc()).limit(limit))
    if status == "failed":
        query = query.where(Payment.status == PaymentStatus.FAILED)
    elif status == "refunded":
        query = query.where(sa.or_(Payment.amount_refunded > 0, Payment.disputed.is_(True)))
    elif status in ("open", "closed"):
        return []  # those tabs are about access, the first table's
    found = db.session.execute(query).all()
    refunds = ledger.refunds_of([row[0].id for row in found])
    return [ListedPayment(payment, plan_name, refunds.get(payment.id, []), payment.contact_id,
                          " ".join(p for p in (first, last) if p) or email or f"Contact {payment.contact_id}")
            for payment, first, last, email, plan_name in found]


@dataclass
class PaymentsPanel:
    holdings: list[Holding]
    payments: list[PaymentLine]
    may_manage: bool
    grantable_plans: list[AccessPlan]
    money = staticmethod(money)

    @property
    def next_renewal(self):
        dates = [h.entitlement.current_period_end for h in self.holdings
                 if h.entitlement.source == EntitlementSource.SUBSCRIPTION and h.is_open
                 and not h.entitlement.cancel_at_period_end and h.entitlement.current_period_end]
        return min(dates) if dates else None

    @property
    def refunds(self) -> list[tuple[PaymentLine, Refund]]:
        return [(line, r) for line in self.payments for r in line.refunds]

    @property
    def failed(self) -> list[PaymentLine]:
        return [line for line in self.payments if line.payment.status == PaymentStatus.FAILED]


def contact_panel(contact: Contact, viewer) -> PaymentsPanel:
    """Plans held, their status and next renewal, payments, refunds and failed payments, all
    from local state (billing.sync keeps it as Stripe says): no call to Stripe."""
    held = holdings(contact)
    plan_names = {h.entitlement.id: h.plan.name for h in held if h.plan}
    payments = ledger.payments_of(contact)
    refunds = ledger.refunds_of([p.id for p in payments])
    lines = [PaymentLine(p, plan_names.get(p.entitlement_id), refunds.get(p.id, [])) for p in payments]
    may_manage = can(viewer, "billing.manage")
    plans = list(db.session.scalars(sa.select(AccessPlan).where(AccessPlan.active.is_(True))
                                    .order_by(AccessPlan.name))) if may_manage else []
    return PaymentsPanel(held, lines, may_manage, plans)


@contact_section("payments")
def _contact_page_payments(contact: Contact, viewer) -> PaymentsPanel | None:
    return contact_panel(contact, viewer) if can(viewer, "payments.view") else None
