"""The audit log: one table, written by one helper, `record()`."""
from __future__ import annotations

import re

import sqlalchemy as sa
from flask import has_request_context, request
from sqlalchemy.orm import Mapped, mapped_column

from core.db import TenantScoped, UTCDateTime, db, utcnow


class AuditEvent(TenantScoped, db.Model):
    """Who did what to what, and when.

    `tenant_id` is NULL only for platform events (an operator creating a tenant, a super
    admin signing in). `actor_*` is whom the action was done as; `real_actor_*` is the person
    who really did it: the same principal, except while an admin impersonates someone.
    Labels are copied in so the log still reads well after the actor or target is gone.
    """

    __tablename__ = "audit_event"
    __tenant_optional__ = True
    # The staff audit page filters by action within a tenant, newest first.
    __tenant_table_args__ = (sa.Index("ix_audit_event_tenant_id_action_id", "tenant_id", "action", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tenant.id", ondelete="CASCADE"), nullable=True
    )
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(sa.String(80))
    actor_type: Mapped[str] = mapped_column(sa.String(30))
    actor_id: Mapped[int | None]
    actor_label: Mapped[str] = mapped_column(sa.String(320))
    real_actor_type: Mapped[str] = mapped_column(sa.String(30))
    real_actor_id: Mapped[int | None]
    real_actor_label: Mapped[str] = mapped_column(sa.String(320))
    target_type: Mapped[str | None] = mapped_column(sa.String(50))
    target_id: Mapped[int | None]
    target_label: Mapped[str | None] = mapped_column(sa.String(320))
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))

    @property
    def impersonated(self) -> bool:
        return (self.actor_type, self.actor_id) != (self.real_actor_type, self.real_actor_id)

    @property
    def target_words(self) -> str:
        """What was acted on, as the audit pages show it: "Event: Spring open day", or the kind of
        thing alone when it has no name ("Form submission"). Rows written before labels were
        words may hold code (`<FormSubmission 1>`): shown as the kind too, never as the code."""
        kind = kind_in_words(self.target_type or "")
        label = self.target_label or ""
        if not label or _CODE_LABEL.match(label) or label.lower() == kind.lower():
            return kind
        return f"{kind}: {label}" if kind else label


_CODE_LABEL = re.compile(r"^<[\w.]+[ >].*>$")


def kind_in_words(type_name: str) -> str:
    """`FormSubmission` or `form_submission` as "Form submission"."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", type_name.replace("_", " "))
    return words.lower().capitalize()


def target_label(target) -> str:
    """The words an audit entry keeps for what was acted on: the object's own name (its
    __str__), else a title, name or label it has, else the kind of thing ("Form submission"),
    never Python's or SQLAlchemy's code for it."""
    if type(target).__str__ is not object.__str__:
        return str(target)[:320]
    for attribute in ("title", "name", "label", "display_name", "email"):
        value = getattr(target, attribute, None)
        if isinstance(value, str) and value.strip():
            return value.strip()[:320]
    return kind_in_words(getattr(target, "audit_type", type(target).__name__))


# Every action the log can hold, with the words the audit pages show for it. Packages add
# theirs with register_actions(); record() refuses an action nobody registered (a typo would
# otherwise make events that no filter finds).
_ACTIONS: dict[str, str] = {}


def register_actions(actions: dict[str, str]) -> None:
    _ACTIONS.update(actions)


def action_label(action: str) -> str:
    return _ACTIONS.get(action, action)


def known_actions() -> dict[str, str]:
    return dict(sorted(_ACTIONS.items(), key=lambda item: item[1]))


register_actions({
    "platform.cross_tenant": "Operator read or changed across tenants",
    "platform.login": "Operator signed in",
    "platform.login_failed": "Operator sign-in failed",
    "platform.logout": "Operator signed out",
    "tenant.created": "Business created",
    "tenant.renamed": "Business renamed",
    "tenant.suspended": "Business suspended",
    "tenant.reactivated": "Business reactivated",
    "tenant.branding_changed": "Branding changed",
    "tenant.domain_added": "Custom domain added",
    "tenant.domain_removed": "Custom domain removed",
    "staff.created": "Staff member created",
    "staff.invited": "Staff member invited",
    "staff.invitation_resent": "Invitation sent again",
    "staff.invitation_accepted": "Invitation accepted",
    "staff.login": "Signed in",
    "staff.login_failed": "Sign-in failed",
    "staff.logout": "Signed out",
    "staff.password_changed": "Password changed",
    "staff.password_reset_requested": "Password reset requested",
    "staff.password_reset": "Password reset",
    "staff.role_changed": "Role changed",
    "staff.deactivated": "Staff member deactivated",
    "staff.reactivated": "Staff member reactivated",
})

SYSTEM = ("system", None, "system")
# Whoever is not signed in: a failed sign-in or a reset request is not the account owner's act.
ANONYMOUS = ("anonymous", None, "anonymous visitor")


def _describe(principal) -> tuple[str, int | None, str]:
    if principal is None:
        return SYSTEM
    if isinstance(principal, tuple):
        return principal
    return principal.principal_type, principal.id, principal.audit_label


def record(action: str, target=None, *, details: dict | None = None, actor=None,
           real_actor=None, tenant_id: int | None = None) -> AuditEvent:
    """Add an audit event to the current transaction; it commits (or rolls back) with the
    change it describes, so the log never claims what did not happen.

    `actor` defaults to the signed-in principal, `real_actor` to the person behind it
    (core.identity knows about impersonation); `target` is any model with an `id`.
    """
    from core.identity import current_principal, impersonator_of, real_principal

    if action not in _ACTIONS:
        raise KeyError(f"unknown audit action {action!r}: add it with core.audit.register_actions()")
    if actor is None:
        actor = current_principal()
    if real_actor is None:
        real_actor = real_principal() if actor is current_principal() else (impersonator_of(actor) or actor)
    actor_type, actor_id, actor_label = _describe(actor)
    real_type, real_id, real_label = _describe(real_actor)

    event = AuditEvent(
        action=action,
        actor_type=actor_type, actor_id=actor_id, actor_label=actor_label,
        real_actor_type=real_type, real_actor_id=real_id, real_actor_label=real_label,
        details=details or {},
        ip_address=request.remote_addr if has_request_context() else None,
    )
    if tenant_id is not None:
        event.tenant_id = tenant_id
    elif target is not None and isinstance(target, TenantScoped):
        event.tenant_id = target.tenant_id
    if target is not None:
        if target.id is None:
            db.session.flush()
        event.target_type = getattr(target, "audit_type", type(target).__name__)
        event.target_id = target.id
        event.target_label = target_label(target)
    db.session.add(event)
    return event


def _record_crossing(reason: str, *, actor=None) -> None:
    record("platform.cross_tenant", details={"reason": reason}, actor=actor)


def init_app(app) -> None:
    from core.tenancy import crossing_tenants

    crossing_tenants.connect(_record_crossing)
