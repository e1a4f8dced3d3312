"""Kickoff forms: a form's definition (its fields and what happens on submit) and the
submissions it receives.

A submission is the *lead*: the raw answers exactly as sent, committed before anything else
happens. Processing it (matching or creating the contact, circles, owner, e-mails, a portal
login) runs afterwards as a job and records its outcome on the submission, so a failure
there never loses what the prospect typed.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import TenantScoped, UTCDateTime, db, tenant_fk, utcnow


class FieldKind:
    SHORT_TEXT, LONG_TEXT, EMAIL, PHONE = "short_text", "long_text", "email", "phone"
    NUMBER, DATE, SINGLE_CHOICE, MULTI_CHOICE = "number", "date", "single_choice", "multi_choice"
    YES_NO, CONSENT, HIDDEN, SECTION = "yes_no", "consent", "hidden", "section"
    LABELS = {
        SHORT_TEXT: "Short text", LONG_TEXT: "Long text", EMAIL: "E-mail", PHONE: "Phone",
        NUMBER: "Number", DATE: "Date", SINGLE_CHOICE: "Single choice",
        MULTI_CHOICE: "Multiple choice (checkboxes)", YES_NO: "Yes/no",
        CONSENT: "Consent checkbox", HIDDEN: "Hidden (from the URL)", SECTION: "Section heading",
    }
    ALL = tuple(LABELS)
    # Kinds that carry no answer of their own.
    NO_ANSWER = (SECTION,)


class OwnerMode:
    NONE, FIXED, ROUND_ROBIN = "none", "fixed", "round_robin"
    LABELS = {NONE: "Nobody", FIXED: "A fixed staff member", ROUND_ROBIN: "Round-robin among chosen staff"}
    ALL = tuple(LABELS)


class PortalLogin:
    NONE, PASSWORD, EMAIL_LINK = "none", "password", "email_link"
    LABELS = {NONE: "No portal login",
              PASSWORD: "The registrant sets a password on the form",
              EMAIL_LINK: "The registrant gets a set-password e-mail"}
    ALL = tuple(LABELS)


class SubmissionState:
    RECEIVED, PROCESSED, FAILED = "received", "processed", "failed"
    LABELS = {RECEIVED: "Waiting to be processed", PROCESSED: "Processed", FAILED: "Failed"}
    ALL = tuple(LABELS)


class Form(TenantScoped, db.Model):
    """A kickoff form, served publicly at /f/<slug> on the tenant's host."""

    __tablename__ = "kickoff_form"
    __tenant_config__ = True  # its changes bump tenant.config_version (core.tenant_cache)
    __tenant_config_ignores__ = frozenset({"round_robin_next", "updated_at"})  # the rota moving on
    audit_type = "form"
    __tenant_table_args__ = (
        sa.UniqueConstraint("tenant_id", "slug"),
        tenant_fk("status_id", "pipeline_status", ondelete="SET NULL"),
        tenant_fk("owner_id", "staff_user", ondelete="SET NULL"),
        tenant_fk("created_by_id", "staff_user", ondelete="SET NULL"),
        sa.CheckConstraint("owner_mode in ('none', 'fixed', 'round_robin')", name="owner_mode"),
        sa.CheckConstraint("portal_login in ('none', 'password', 'email_link')", name="portal_login"),
        sa.CheckConstraint("role in ('lead', 'prospect', 'client')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(80))
    title: Mapped[str] = mapped_column(sa.String(200))
    intro: Mapped[str] = mapped_column(sa.Text, default="")
    submit_label: Mapped[str] = mapped_column(sa.String(80), default="Send")
    thank_you_message: Mapped[str] = mapped_column(sa.Text, default="Thank you! We will be in touch soon.")
    redirect_url: Mapped[str | None] = mapped_column(sa.String(2000))
    # Per-form branding overrides; empty means the tenant's own.
    primary_colour: Mapped[str | None] = mapped_column(sa.String(7))
    logo: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    logo_mimetype: Mapped[str | None] = mapped_column(sa.String(40))
    archived_at: Mapped[object | None] = mapped_column(UTCDateTime)

    # What happens on submit.
    role: Mapped[str] = mapped_column(sa.String(20), default="lead")  # never demotes (see forms.submissions)
    status_id: Mapped[int | None]
    circle_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    tags: Mapped[list] = mapped_column(sa.JSON, default=list)  # tag names
    owner_mode: Mapped[str] = mapped_column(sa.String(20), default=OwnerMode.NONE)
    owner_id: Mapped[int | None]
    round_robin_staff_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Index into round_robin_staff_ids of the next owner; advanced under a row lock.
    round_robin_next: Mapped[int] = mapped_column(default=0, server_default="0")
    notify_staff_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    send_confirmation: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    confirmation_subject: Mapped[str] = mapped_column(sa.String(200), default="We received your details")
    confirmation_body: Mapped[str] = mapped_column(sa.Text, default="")
    portal_login: Mapped[str] = mapped_column(sa.String(20), default=PortalLogin.NONE)
    portal_requires_approval: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    make_primary_contact: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Spam guards: a submission sooner than this after the form was rendered is refused.
    min_fill_seconds: Mapped[int] = mapped_column(default=3, server_default="3")

    created_by_id: Mapped[int | None]
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    fields = relationship(
        "FormField", order_by="FormField.position", cascade="all, delete-orphan",
        primaryjoin="and_(Form.id == FormField.form_id, Form.tenant_id == FormField.tenant_id)",
        foreign_keys="[FormField.tenant_id, FormField.form_id]",
    )

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def __str__(self) -> str:
        return self.title


class FormField(TenantScoped, db.Model):
    """One field of a form, in `position` order.

    `key` names the answer in a submission (stable across label edits). `target` says where
    the answer goes: "contact.<attr>" (first_name, last_name, email, phone, job_title, …),
    "company.<attr>" (name, domain, phone, …), "custom.<custom_field_id>", or "" for an
    answer kept only on the submission.
    """

    __tablename__ = "kickoff_form_field"
    __tenant_config__ = True  # its changes bump tenant.config_version (core.tenant_cache)
    __tenant_table_args__ = (
        tenant_fk("form_id", "kickoff_form", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "form_id", "key"),
        sa.Index("ix_kickoff_form_field_tenant_id_form_id_position", "tenant_id", "form_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int]
    position: Mapped[int] = mapped_column(default=0)
    key: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(20))
    label: Mapped[str] = mapped_column(sa.String(300))
    help_text: Mapped[str] = mapped_column(sa.String(1000), default="")
    placeholder: Mapped[str] = mapped_column(sa.String(200), default="")
    required: Mapped[bool] = mapped_column(default=False)
    choices: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Single choice: "dropdown" or "radio".
    display: Mapped[str] = mapped_column(sa.String(20), default="dropdown")
    target: Mapped[str] = mapped_column(sa.String(100), default="")
    # Hidden fields: the URL parameter that fills them (utm_source, …).
    url_parameter: Mapped[str] = mapped_column(sa.String(100), default="")
    # Consent fields: the terms the checkbox agrees to.
    terms_url: Mapped[str] = mapped_column(sa.String(2000), default="")

    def __str__(self) -> str:
        return self.label


class FormSubmission(TenantScoped, db.Model):
    """One submission of a form (a lead): the answers exactly as sent, and what became of them.

    `idempotency_key` comes from the rendered form, so a double click or a browser retry of
    the same page stores one submission, not two.
    """

    __tablename__ = "kickoff_form_submission"
    audit_type = "form_submission"
    __tenant_table_args__ = (
        tenant_fk("form_id", "kickoff_form", ondelete="CASCADE"),
        tenant_fk("contact_id", "contact", ondelete="SET NULL"),
        tenant_fk("company_id", "company", ondelete="SET NULL"),
        sa.UniqueConstraint("tenant_id", "form_id", "idempotency_key"),
        sa.CheckConstraint("state in ('received', 'processed', 'failed')", name="state"),
        sa.Index("ix_kickoff_form_submission_tenant_id_form_id_submitted_at",
                 "tenant_id", "form_id", "submitted_at"),
        sa.Index("ix_kickoff_form_submission_tenant_id_submitted_at", "tenant_id", "submitted_at"),
        sa.Index("ix_kickoff_form_submission_tenant_id_contact_id", "tenant_id", "contact_id"),
        sa.Index("ix_kickoff_form_submission_tenant_id_state", "tenant_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int]
    idempotency_key: Mapped[str] = mapped_column(sa.String(64))
    answers: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # field key → value as sent
    source_url: Mapped[str] = mapped_column(sa.String(2000), default="")
    utm: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    ip_address: Mapped[str] = mapped_column(sa.String(45), default="")
    user_agent: Mapped[str] = mapped_column(sa.String(500), default="")
    submitted_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(sa.String(20), default=SubmissionState.RECEIVED)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    processed_at: Mapped[object | None] = mapped_column(UTCDateTime)
    contact_id: Mapped[int | None]
    company_id: Mapped[int | None]
    created_contact: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # A password the registrant chose on the form for their portal login: hashed on receipt
    # (never stored or queued in clear) and cleared once the login exists.
    portal_password_hash: Mapped[str | None] = mapped_column(sa.String(255))

    form = relationship(
        "Form", viewonly=True,
        primaryjoin="and_(FormSubmission.form_id == Form.id, FormSubmission.tenant_id == Form.tenant_id)",
        foreign_keys="[FormSubmission.form_id]",
    )
    contact = relationship(
        "Contact", viewonly=True,
        primaryjoin="and_(FormSubmission.contact_id == Contact.id, FormSubmission.tenant_id == Contact.tenant_id)",
        foreign_keys="[FormSubmission.contact_id]",
    )
