"""Portal logins: the principal a prospect or client signs in to the portal as.

A PortalAccount belongs to one contact. It is a different kind of principal from a staff user
(core.identity.Principal with its own `principal_type`): Flask-Login's loader only ever loads
staff users and platform admins, and every staff check (`can()`, `staff_login_required`) asks
for a StaffUser, so a portal account has no way into /staff. Its signed-in devices are
PortalSession rows, carried by the portal's own cookie (portal.auth), never by the staff
session: being signed in as one says nothing about the other.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import TenantScoped, UTCDateTime, db, tenant_fk, utcnow
from core.identity import LoginSessionMixin, Principal


class Approval:
    PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
    ALL = (PENDING, APPROVED, REJECTED)
    LABELS = {PENDING: "Waiting for approval", APPROVED: "Approved", REJECTED: "Rejected"}


class PortalAccount(Principal, TenantScoped, db.Model):
    """One contact's portal login.

    One *current* account per contact and per e-mail address in a tenant (the partial unique
    indexes below): an account replaced when its contact was merged with another
    (`replaced_by_id` set, see portal.accounts.merge_portal_accounts) stays on record, disabled,
    next to the one that replaced it. `approval` is "approved" from the start when the form
    needs no approval (then `decided_by_id` is empty).
    """

    __tablename__ = "portal_account"
    audit_type = "portal_account"
    _current = "replaced_by_id IS NULL"
    __tenant_table_args__ = (
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        tenant_fk("decided_by_id", "staff_user"),
        tenant_fk("replaced_by_id", "portal_account"),
        tenant_fk("form_id", "kickoff_form"),
        sa.CheckConstraint("approval in ('pending', 'approved', 'rejected')", name="approval"),
        sa.Index("uq_portal_account_tenant_id_contact_id_current", "tenant_id", "contact_id", unique=True,
                 postgresql_where=sa.text(_current), sqlite_where=sa.text(_current)),
        sa.Index("uq_portal_account_tenant_id_email_current", "tenant_id", "email", unique=True,
                 postgresql_where=sa.text(_current), sqlite_where=sa.text(_current)),
        # The approval queue: a tenant's pending registrants, oldest first.
        sa.Index("ix_portal_account_tenant_id_approval_created_at", "tenant_id", "approval", "created_at"),
    )
    principal_type = "portal"
    id_prefix = "c"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int]
    email: Mapped[str] = mapped_column(sa.String(320))  # normalised (core.identity.normalize_email)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    password_changed_at: Mapped[object | None] = mapped_column(UTCDateTime)
    email_verified_at: Mapped[object | None] = mapped_column(UTCDateTime)
    approval: Mapped[str] = mapped_column(sa.String(20), default=Approval.PENDING)
    decided_by_id: Mapped[int | None]
    decided_at: Mapped[object | None] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str | None] = mapped_column(sa.String(500))
    source: Mapped[str] = mapped_column(sa.String(200), default="")  # e.g. the kickoff form's name
    # The kickoff form they registered through (None: invited by staff, or before this was kept):
    # its payment rule, if it has one, is theirs (billing.entitlements.required_plans).
    form_id: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    replaced_by_id: Mapped[int | None]
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[object | None] = mapped_column(UTCDateTime)

    contact = relationship("Contact", foreign_keys="[PortalAccount.contact_id]",
                           primaryjoin="and_(PortalAccount.contact_id == Contact.id, "
                                       "PortalAccount.tenant_id == Contact.tenant_id)",
                           viewonly=True)
    decided_by = relationship("StaffUser", foreign_keys="[PortalAccount.decided_by_id]",
                              primaryjoin="and_(PortalAccount.decided_by_id == StaffUser.id, "
                                          "PortalAccount.tenant_id == StaffUser.tenant_id)",
                              viewonly=True)

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def is_current(self) -> bool:
        return self.replaced_by_id is None

    @property
    def display_name(self) -> str:
        return self.email

    def __str__(self) -> str:
        return self.email


class PortalSession(LoginSessionMixin, TenantScoped, db.Model):
    """One device signed in to the portal (portal.auth): its token is what the portal cookie
    holds. Tenant-scoped like its account, so a token copied to another tenant's host finds
    nothing there."""

    __tablename__ = "portal_session"
    __tenant_table_args__ = (
        tenant_fk("account_id", "portal_account", ondelete="CASCADE"),
        sa.Index("ix_portal_session_tenant_id_account_id", "tenant_id", "account_id"),
    )
    owner_column = "account_id"
    account_id: Mapped[int]


PortalAccount.session_model = PortalSession
