"""Billing's tables: a tenant's Stripe keys and payment settings, its access plans, the Stripe
customers of its contacts, the events Stripe sent, and what each contact is entitled to.

Every table is tenant-scoped (core.db.TenantScoped, composite keys into other tenant rows,
row-level security on PostgreSQL)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import TenantScoped, UTCDateTime, db, tenant_fk, utcnow


class PlanKind:
    ONE_TIME, RECURRING, BOTH = "one_time", "recurring", "both"
    ALL = (ONE_TIME, RECURRING, BOTH)
    LABELS = {ONE_TIME: "One-time payment", RECURRING: "Subscription",
              BOTH: "Initial fee and subscription"}


class Interval:
    WEEK, MONTH, YEAR = "week", "month", "year"
    ALL = (WEEK, MONTH, YEAR)


class BillingSettings(TenantScoped, db.Model):
    """One row per tenant that set anything up: its own Stripe keys (encrypted with
    billing.secrets; only the last four characters of the secret key are kept in clear, to
    show which key it is), the plan portal access requires, and the grace period of a
    subscription whose renewal failed."""

    __tablename__ = "billing_settings"
    __tenant_config__ = True  # read by every portal request through core.tenant_cache
    __tenant_table_args__ = (
        sa.UniqueConstraint("tenant_id", name="uq_billing_settings_tenant_id"),
        tenant_fk("required_plan_id", "access_plan"),
        tenant_fk("updated_by_id", "staff_user"),
        sa.CheckConstraint("grace_days >= 0 AND grace_days <= 60", name="grace_days"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_key_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    secret_key_hint: Mapped[str | None] = mapped_column(sa.String(40))  # sk_test_…abcd
    livemode: Mapped[bool | None]
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    webhook_secret_hint: Mapped[str | None] = mapped_column(sa.String(40))
    required_plan_id: Mapped[int | None]
    grace_days: Mapped[int] = mapped_column(default=3, server_default="3")
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None]


class AccessPlan(TenantScoped, db.Model):
    """What a contact pays for portal access: once, every interval, or an initial fee and then
    every interval. Its Stripe Product and current Prices are made through the API
    (billing.plans); a new amount makes a new Price (`price_version` keys its creation), and
    subscribers keep the Price they signed up on."""

    __tablename__ = "access_plan"
    __tenant_config__ = True
    audit_type = "access_plan"
    __tenant_table_args__ = (
        sa.UniqueConstraint("tenant_id", "name"),
        sa.CheckConstraint("kind in ('one_time', 'recurring', 'both')", name="kind"),
        sa.CheckConstraint("amount > 0", name="amount"),
        sa.CheckConstraint("interval IS NULL OR interval in ('week', 'month', 'year')", name="interval"),
        sa.CheckConstraint("interval_count >= 1 AND interval_count <= 52", name="interval_count"),
        sa.CheckConstraint("trial_days >= 0 AND trial_days <= 730", name="trial_days"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    kind: Mapped[str] = mapped_column(sa.String(20))
    amount: Mapped[int]  # in the currency's minor unit: the one-time price, or each period's
    initial_fee: Mapped[int | None]  # kind "both": paid with the first period
    currency: Mapped[str] = mapped_column(sa.String(3))
    interval: Mapped[str | None] = mapped_column(sa.String(10))
    interval_count: Mapped[int] = mapped_column(default=1, server_default="1")
    trial_days: Mapped[int] = mapped_column(default=0, server_default="0")
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    stripe_product_id: Mapped[str | None] = mapped_column(sa.String(255))
    stripe_price_id: Mapped[str | None] = mapped_column(sa.String(255))
    stripe_fee_price_id: Mapped[str | None] = mapped_column(sa.String(255))
    price_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def recurring(self) -> bool:
        return self.kind != PlanKind.ONE_TIME

    def __str__(self) -> str:
        return self.name


class AccessPlanCircle(TenantScoped, db.Model):
    """A Circle a plan's holders are in while their access is open."""

    __tablename__ = "access_plan_circle"
    __tenant_keyed_by_id__ = False
    __tenant_fk__ = False
    __tenant_table_args__ = (
        sa.PrimaryKeyConstraint("tenant_id", "plan_id", "circle_id"),
        tenant_fk("plan_id", "access_plan", ondelete="CASCADE"),
        tenant_fk("circle_id", "circle", ondelete="CASCADE"),
    )

    plan_id: Mapped[int]
    circle_id: Mapped[int]


class FormAccessRule(TenantScoped, db.Model):
    """A kickoff form's own payment rule for the portal access of those who register through it,
    in place of the tenant's (BillingSettings.required_plan_id): "free" (nobody pays), or
    "plans" (they must hold one of the FormAccessPlan rows: one plan, or a choice among
    several). No row: the tenant's rule. Read through billing.entitlements.required_plans."""

    __tablename__ = "form_access_rule"
    __tenant_config__ = True  # read by every portal request through core.tenant_cache
    __tenant_keyed_by_id__ = False
    __tenant_fk__ = False
    __tenant_table_args__ = (
        sa.PrimaryKeyConstraint("tenant_id", "form_id"),
        tenant_fk("form_id", "kickoff_form", ondelete="CASCADE"),
        sa.CheckConstraint("mode in ('free', 'plans')", name="mode"),
    )

    form_id: Mapped[int]
    mode: Mapped[str] = mapped_column(sa.String(10))
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FormAccessPlan(TenantScoped, db.Model):
    """One plan a form's registrants may pay for portal access (FormAccessRule mode "plans")."""

    __tablename__ = "form_access_plan"
    __tenant_config__ = True
    __tenant_keyed_by_id__ = False
    __tenant_fk__ = False
    __tenant_table_args__ = (
        sa.PrimaryKeyConstraint("tenant_id", "form_id", "plan_id"),
        sa.ForeignKeyConstraint(["tenant_id", "form_id"], ["form_access_rule.tenant_id", "form_access_rule.form_id"],
                                ondelete="CASCADE"),
        tenant_fk("plan_id", "access_plan", ondelete="CASCADE"),
    )

    form_id: Mapped[int]
    plan_id: Mapped[int]


class BillingCustomer(TenantScoped, db.Model):
    """A contact's Stripe Customer: made once, reused for every checkout."""

    __tablename__ = "billing_customer"
    __tenant_table_args__ = (
        sa.UniqueConstraint("tenant_id", "contact_id"),
        sa.UniqueConstraint("tenant_id", "stripe_customer_id"),
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int]
    stripe_customer_id: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)


class EventState:
    PENDING, APPLIED, IGNORED = "pending", "applied", "ignored"


class StripeEvent(TenantScoped, db.Model):
    """Every event Stripe delivered to the tenant, stored (unique by Stripe's id) before it is
    acted on: a second delivery finds it here and does nothing. Found by the object it is
    about too: applying one event covers the others of that object still pending
    (billing.events)."""

    __tablename__ = "stripe_event"
    __tenant_table_args__ = (
        sa.UniqueConstraint("tenant_id", "event_id"),
        sa.Index("ix_stripe_event_tenant_id_object_id", "tenant_id", "object_id"),
        sa.CheckConstraint("state in ('pending', 'applied', 'ignored')", name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(255))
    type: Mapped[str] = mapped_column(sa.String(100))
    object_id: Mapped[str | None] = mapped_column(sa.String(255))
    state: Mapped[str] = mapped_column(sa.String(20), default=EventState.PENDING)
    stripe_created: Mapped[int | None] = mapped_column(sa.BigInteger)
    received_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    applied_at: Mapped[object | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")


class EntitlementSource:
    SUBSCRIPTION, PAYMENT, COMPLIMENTARY = "subscription", "payment", "complimentary"


class Entitlement(TenantScoped, db.Model):
    """What one subscription or one one-time payment gives one contact, as Stripe last said.

    `status` is Stripe's word (a subscription's status; for a payment "paid", "refunded",
    "disputed" or "unpaid"); `is_open` and `closes_at` are billing.entitlements.decide()'s
    verdict on it, stored so the portal's check reads this row and never calls Stripe."""

    __tablename__ = "entitlement"
    __tenant_table_args__ = (
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        tenant_fk("plan_id", "access_plan"),
        sa.UniqueConstraint("tenant_id", "stripe_subscription_id"),
        sa.UniqueConstraint("tenant_id", "stripe_payment_intent_id"),
        sa.CheckConstraint("source in ('subscription', 'payment', 'complimentary')", name="source"),
        sa.Index("ix_entitlement_tenant_id_contact_id", "tenant_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int]
    plan_id: Mapped[int | None]
    source: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(30))
    stripe_customer_id: Mapped[str | None] = mapped_column(sa.String(255))
    stripe_subscription_id: Mapped[str | None] = mapped_column(sa.String(255))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255))
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(sa.String(255))
    past_due_since: Mapped[object | None] = mapped_column(UTCDateTime)
    current_period_end: Mapped[object | None] = mapped_column(UTCDateTime)
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    disputed: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    is_open: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    closes_at: Mapped[object | None] = mapped_column(UTCDateTime)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PaymentStatus:
    SUCCEEDED, FAILED, PENDING = "succeeded", "failed", "pending"


class Payment(TenantScoped, db.Model):
    """One charge of a contact as Stripe last said (a one-time payment, or a subscription's
    invoice, paid or failed), with how much of it was refunded and whether it is disputed:
    what the staff see of a contact's payments without calling Stripe (billing.ledger)."""

    __tablename__ = "billing_payment"
    audit_type = "payment"
    __tenant_table_args__ = (
        sa.UniqueConstraint("tenant_id", "stripe_charge_id"),
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        tenant_fk("entitlement_id", "entitlement", ondelete="CASCADE"),
        sa.CheckConstraint("status in ('succeeded', 'failed', 'pending')", name="status"),
        sa.CheckConstraint("amount >= 0 AND amount_refunded >= 0", name="amounts"),
        sa.Index("ix_billing_payment_tenant_id_contact_id", "tenant_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int]
    entitlement_id: Mapped[int | None]
    stripe_charge_id: Mapped[str] = mapped_column(sa.String(255))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255))
    stripe_invoice_id: Mapped[str | None] = mapped_column(sa.String(255))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount_refunded: Mapped[int] = mapped_column(default=0, server_default="0")
    status: Mapped[str] = mapped_column(sa.String(20))
    failure_message: Mapped[str | None] = mapped_column(sa.String(500))
    disputed: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    charged_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def refundable(self) -> int:
        return max(self.amount - self.amount_refunded, 0) if self.status == PaymentStatus.SUCCEEDED else 0

    def __str__(self) -> str:
        return f"{self.amount / 100:,.2f} {self.currency.upper()} payment {self.stripe_charge_id}"


class Refund(TenantScoped, db.Model):
    """One refund of a payment, as Stripe made it (by staff here, or in Stripe's dashboard)."""

    __tablename__ = "billing_refund"
    audit_type = "refund"
    __tenant_table_args__ = (
        sa.UniqueConstraint("tenant_id", "stripe_refund_id"),
        tenant_fk("payment_id", "billing_payment", ondelete="CASCADE"),
        sa.CheckConstraint("amount > 0", name="amount"),
        sa.Index("ix_billing_refund_tenant_id_payment_id", "tenant_id", "payment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int]
    stripe_refund_id: Mapped[str] = mapped_column(sa.String(255))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(30))
    refunded_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
