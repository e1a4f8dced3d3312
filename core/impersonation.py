"""Impersonation: an Owner or Admin sees the product as one of the tenant's people sees it.

One rule decides who may impersonate whom (`impersonation_problem`); one row per impersonation
(Impersonation) is the state, tied to the admin's own login-session row (StaffSession): signing
out or being signed out (deactivation, a password change elsewhere) ends the session row and
with it the impersonation, and every request checks the row again (`current()`): the time
limit, the admin's `people.impersonate` permission, and the rule for the target, so an admin
who loses the permission, or a target who may no longer be impersonated, ends it on the next
request. The target's own sessions and cookies are never touched or created: the admin's
browser keeps only its own staff session, with the impersonation's id beside it.

Kinds of target: a staff member (core) and, registered by the packages that own them, other
principals (the portal registers PortalAccount, with its one sign-in rule) through
`target_rule(model)`. While an impersonation holds, `current_principal()` on /staff is the
impersonated staff member, the portal's `current_account()` is the impersonated login, and
`core.identity.real_principal()` is the admin everywhere: the audit log and the timeline
name both.
"""
from __future__ import annotations

import functools
from datetime import timedelta
from typing import Callable

import sqlalchemy as sa
from flask import flash, g, has_request_context, session
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import record, register_actions
from core.db import TenantScoped, UTCDateTime, db, tenant_fk, utcnow
from core.errors import ServiceError
from core.identity import StaffSession, StaffUser

register_actions({
    "impersonation.started": "Impersonation started",
    "impersonation.stopped": "Impersonation stopped",
    "impersonation.ended": "Impersonation ended by itself",
    "impersonation.settings_changed": "Impersonation settings changed",
})

PERMISSION = "people.impersonate"
SESSION_KEY = "impersonation_id"
DEFAULT_MINUTES = 30
MAX_MINUTES = 240
REFUSED = ("This is not possible while you are impersonating someone: stop impersonating first. "
           "Nothing was changed.")
ENDED_WORDS = {
    "expired": "Impersonation ended: its time was up. You are yourself again.",
    "permission": "Impersonation ended: you may no longer impersonate. You are yourself again.",
    "target": "Impersonation ended: that person can no longer be impersonated. You are yourself again.",
}


class Impersonation(TenantScoped, db.Model):
    """One admin seeing the product as one person, for a limited time."""

    __tablename__ = "impersonation"
    audit_type = "impersonation"
    __tenant_table_args__ = (
        tenant_fk("staff_session_id", "staff_session", ondelete="CASCADE"),
        tenant_fk("admin_id", "staff_user", ondelete="CASCADE"),
        tenant_fk("target_staff_id", "staff_user", ondelete="CASCADE"),
        tenant_fk("target_account_id", "portal_account", ondelete="CASCADE"),
        sa.CheckConstraint("(target_staff_id IS NULL) <> (target_account_id IS NULL)", name="one_target"),
        sa.Index("ix_impersonation_tenant_id_staff_session_id", "tenant_id", "staff_session_id"),
        # "When was I impersonated": the target's own profile lists them, newest first.
        sa.Index("ix_impersonation_tenant_id_target_staff_id", "tenant_id", "target_staff_id"),
        sa.Index("ix_impersonation_tenant_id_target_account_id", "tenant_id", "target_account_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_session_id: Mapped[int]
    admin_id: Mapped[int]
    target_staff_id: Mapped[int | None]
    target_account_id: Mapped[int | None]
    admin_label: Mapped[str] = mapped_column(sa.String(320))
    target_label: Mapped[str] = mapped_column(sa.String(320))
    reason: Mapped[str] = mapped_column(sa.String(500))
    return_url: Mapped[str] = mapped_column(sa.String(500), default="/staff/")
    started_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[object] = mapped_column(UTCDateTime)
    ended_at: Mapped[object | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(sa.String(40))

    def __str__(self) -> str:
        return f"{self.admin_label} as {self.target_label}"

    @property
    def seconds_left(self) -> int:
        return max(0, int((self.expires_at - utcnow()).total_seconds()))

    @property
    def minutes_left(self) -> int:
        return -(-self.seconds_left // 60)


# --- the rule ------------------------------------------------------------------------------------

# model -> rule(admin, target) -> plain-words problem or None, for kinds of target that other
# packages own (the portal registers PortalAccount).
_TARGET_RULES: dict[type, Callable] = {}


def target_rule(model: type):
    def register(rule: Callable) -> Callable:
        _TARGET_RULES[model] = rule
        return rule
    return register


def _staff_rule(admin: StaffUser, target: StaffUser) -> str | None:
    from core.permissions import permissions_of

    if not target.active or not target.has_accepted_invitation:
        return f"{target.display_name} is not an active member of the team."
    # Privilege is what one may do: only someone who may do strictly less can be impersonated.
    # An Owner may do everything, so nobody may impersonate an Owner, and equals are refused.
    if not permissions_of(target) < permissions_of(admin):
        return f"You can only impersonate someone who may do less than you; {target.display_name} may not."
    return None


_TARGET_RULES[StaffUser] = _staff_rule


def impersonation_problem(admin, target) -> str | None:
    """Why `admin` may not start impersonating `target` now, in plain words; None when they may.
    Only a staff member with `people.impersonate`, signed in as themselves (no chains), of the
    target's tenant; never themselves; and the target's own rule (a staff member below the
    admin in what they may do; a portal login that may sign in now)."""
    from core.permissions import can

    if not isinstance(admin, StaffUser) or not can(admin, PERMISSION):
        return "You do not have permission to impersonate."
    if g.get("impersonation") is not None or g.get("real_principal") is not None:
        return "You are impersonating someone already: stop first, or use the switcher."
    if target is None or getattr(target, "tenant_id", None) != admin.tenant_id:
        return "There is nobody to impersonate here."
    if isinstance(target, StaffUser) and target.id == admin.id:
        return "You cannot impersonate yourself."
    rule = _TARGET_RULES.get(type(target))
    if rule is None:
        return "This kind of account cannot be impersonated."
    return rule(admin, target)


# --- the tenant's settings -------------------------------------------------------------------------

def time_limit(tenant) -> timedelta:
    return timedelta(minutes=tenant.impersonation_minutes or DEFAULT_MINUTES)


def update_settings(tenant, actor, *, minutes: int, notify: bool) -> bool:
    if not (1 <= minutes <= MAX_MINUTES):
        raise ServiceError(f"Choose between 1 and {MAX_MINUTES} minutes.", field="minutes")
    before = {"minutes": tenant.impersonation_minutes, "notify": tenant.impersonation_notify}
    after = {"minutes": minutes, "notify": notify}
    if before == after:
        return False
    tenant.impersonation_minutes, tenant.impersonation_notify = minutes, notify
    record("impersonation.settings_changed", actor=actor, tenant_id=tenant.id,
           details={"before": before, "after": after})
    return True


# --- starting, stopping ------------------------------------------------------------------------------

def _admin_session_id(admin: StaffUser) -> int | None:
    return db.session.scalar(sa.select(StaffSession.id).where(
        StaffSession.token == admin.current_session_token, StaffSession.staff_id == admin.id,
        StaffSession.revoked_at.is_(None)))


def _target_columns(target) -> dict:
    if isinstance(target, StaffUser):
        return {"target_staff_id": target.id}
    return {"target_account_id": target.id}


def target_of(row: Impersonation):
    if row.target_staff_id is not None:
        return db.session.get(StaffUser, row.target_staff_id)
    model = next(m for m in _TARGET_RULES if m is not StaffUser)
    return db.session.get(model, row.target_account_id)


def _label(principal) -> str:
    contact = getattr(principal, "contact", None)  # a portal login is named by its person
    name = getattr(contact, "full_name", None) or getattr(principal, "display_name", None) or str(principal)
    return name if contact is None else f"{name} ({principal.email})"


current_label = _label


# Hooks called with (row, target) after an impersonation starts (the portal notes it on the
# contact's timeline and may e-mail the person).
STARTED_HOOKS: list[Callable] = []


def started_hook(hook: Callable) -> Callable:
    STARTED_HOOKS.append(hook)
    return hook


def start(admin: StaffUser, target, reason: str, *, return_url: str, tenant) -> Impersonation:
    """Begin seeing the product as `target`; raises ServiceError with the rule's words."""
    reason = (reason or "").strip()
    problem = impersonation_problem(admin, target)
    if problem:
        raise ServiceError(problem)
    if not reason:
        raise ServiceError("Say why you need to impersonate (it is kept in the audit log).", field="reason")
    return _begin(admin, target, reason[:500], return_url=return_url, tenant=tenant)


def _begin(admin, target, reason, *, return_url, tenant) -> Impersonation:
    session_id = _admin_session_id(admin)
    if session_id is None:
        raise ServiceError("Sign in again to impersonate.")
    now = utcnow()
    row = Impersonation(staff_session_id=session_id, admin_id=admin.id, admin_label=_label(admin),
                        target_label=_label(target), reason=reason, return_url=return_url[:500] or "/staff/",
                        started_at=now, expires_at=now + time_limit(tenant), **_target_columns(target))
    db.session.add(row)
    db.session.flush()
    record("impersonation.started", row, actor=admin, real_actor=admin,
           details={"reason": reason, "target": row.target_label, "target_kind": _kind(target),
                    "minutes": int(time_limit(tenant).total_seconds() // 60)})
    for hook in STARTED_HOOKS:
        hook(row, target)
    session[SESSION_KEY] = row.id
    return row


def _kind(target) -> str:
    return getattr(target, "principal_type", type(target).__name__.lower())


def _end(row: Impersonation, why: str, *, action: str = "impersonation.stopped", admin=None) -> None:
    row.ended_at = utcnow()
    row.end_reason = why
    admin = admin or db.session.get(StaffUser, row.admin_id)
    record(action, row, actor=admin, real_actor=admin,
           details={"reason": row.reason, "target": row.target_label, "why": why})


def stop(admin: StaffUser) -> Impersonation | None:
    """End the admin's current impersonation; returns it (for where to go back to)."""
    row = g.get("impersonation")
    if row is None:
        session.pop(SESSION_KEY, None)
        return None
    _end(row, "stopped", admin=admin)
    _forget()
    return row


def switch(admin: StaffUser, target) -> Impersonation:
    """Stop seeing as one person and start seeing as another, with the same reason and way back."""
    row = g.get("impersonation")
    if row is None:
        raise ServiceError("You are not impersonating anyone.")
    if target is not None and _target_columns(target) == _target_columns_of(row):
        raise ServiceError(f"You are already seeing the product as {row.target_label}.")
    g.impersonation, seen_as, real = None, g.pop("impersonated", None), g.pop("real_principal", None)
    problem = impersonation_problem(admin, target)  # as if stopped: the rule for a new start
    g.impersonation, g.impersonated, g.real_principal = row, seen_as, real
    if problem:
        raise ServiceError(problem)
    _end(row, "switched", admin=admin)
    _forget()
    return _begin(admin, target, row.reason, return_url=row.return_url, tenant=g.tenant)


def _target_columns_of(row) -> dict:
    return {"target_staff_id": row.target_staff_id} if row.target_staff_id else \
        {"target_account_id": row.target_account_id}


def end_with_session(admin: StaffUser) -> None:
    """The admin signs out: their impersonation (if any) ends with the session."""
    row = g.get("impersonation")
    if row is not None:
        _end(row, "signed_out", admin=admin)
    _forget()


def _forget() -> None:
    g.impersonation = None
    g.pop("real_principal", None)
    g.pop("impersonated", None)
    session.pop(SESSION_KEY, None)


# --- the request's impersonation --------------------------------------------------------------------

def load_for(admin: StaffUser) -> Impersonation | None:
    """The impersonation the admin's session holds, checked again now (core.identity's loader
    asks once a request). Only a browser that started one carries its id, so nobody else's
    request pays a query for it. Ends it (audited) when the time is up, the admin lost the
    permission, or the target may no longer be impersonated."""
    if "impersonation" in g:
        return g.impersonation
    g.impersonation = None
    ident = session.get(SESSION_KEY) if has_request_context() else None
    if not isinstance(ident, int) or not admin.current_session_token:
        return None
    row = db.session.scalar(sa.select(Impersonation).join(StaffSession, sa.and_(
        StaffSession.tenant_id == Impersonation.tenant_id, StaffSession.id == Impersonation.staff_session_id))
        .where(Impersonation.id == ident, Impersonation.ended_at.is_(None), Impersonation.admin_id == admin.id,
               StaffSession.token == admin.current_session_token))
    if row is None:
        session.pop(SESSION_KEY, None)
        return None
    why = _why_over(row, admin)
    if why:
        _end(row, why, action="impersonation.ended", admin=admin)
        db.session.commit()
        session.pop(SESSION_KEY, None)
        flash(ENDED_WORDS[why], "info")
        return None
    g.impersonation = row
    return row


def _why_over(row: Impersonation, admin: StaffUser) -> str | None:
    from core.permissions import can

    if row.expires_at <= utcnow():
        return "expired"
    if not can(admin, PERMISSION):
        return "permission"
    target = target_of(row)
    rule = _TARGET_RULES.get(type(target))
    if target is None or rule is None or rule(admin, target):
        return "target"
    g.impersonated = target
    return None


def current() -> Impersonation | None:
    """The request's impersonation, if any (the admin's staff session is loaded for it)."""
    if not has_request_context():
        return None
    if "impersonation" not in g:
        from core.identity import current_principal
        current_principal()  # the loader checks the impersonation of a staff session
        g.setdefault("impersonation", None)
    return g.impersonation


def is_impersonating() -> bool:
    return current() is not None


def impersonated_principal():
    """Whom the request is seen as while impersonating (a StaffUser or another kind), or None."""
    return g.get("impersonated") if current() is not None else None


def refuse_while_impersonating() -> None:
    """Call first in a view or service that changes credentials, payment methods or the
    account itself: raises ServiceError (a 422 page saying REFUSED; nothing changed) while
    impersonating."""
    if current() is not None:
        raise ServiceError(REFUSED)


def refused_while_impersonating(view):
    """Decorator form of refuse_while_impersonating(), for a whole route."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        refuse_while_impersonating()
        return view(*args, **kwargs)

    return wrapper


def history_of(target, limit: int = 20) -> list[Impersonation]:
    """When `target` was impersonated and by whom, newest first (their own profile shows it)."""
    column = Impersonation.target_staff_id if isinstance(target, StaffUser) else Impersonation.target_account_id
    return list(db.session.scalars(sa.select(Impersonation).where(column == target.id)
                                   .order_by(Impersonation.id.desc()).limit(limit)))


def init_app(app) -> None:
    @app.context_processor
    def _impersonation_globals():
        return {"impersonation": current}
