"""Staff accounts: invitations, roles and access, passwords. Views, the CLI and the console
call these; every rule about who may change whom is in core.permissions."""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from core.audit import ANONYMOUS, record
from core.db import db, utcnow
from core.errors import ServiceError
from core.impersonation import refuse_while_impersonating
from core.identity import (StaffRole, StaffUser, end_sessions, hash_password, load_token, make_token,
                           normalize_email, password_problem, verify_password)
from core.jobs import job, on_commit
from core.mail import send_mail
from core.permissions import can, staff_change_problem
from core.tenancy import current_tenant, tenant_link
from core.text import clean_line

RESET, INVITE = "staff-password-reset", "staff-invite"


def _checked_email(raw: str) -> str:
    try:
        return normalize_email(raw)
    except ValueError as exc:
        raise ServiceError(str(exc), field="email") from None


def _checked_password(password: str, email: str, name: str = "") -> str:
    problem = password_problem(password, email=email, name=name)
    if problem:
        raise ServiceError(problem, field="password")
    return hash_password(password)


def active_owner_count(tenant_id: int | None = None) -> int:
    """Active Owners of the current tenant (or, from the console, of `tenant_id`)."""
    query = sa.select(sa.func.count()).select_from(StaffUser).where(
        StaffUser.role == StaffRole.OWNER, StaffUser.active.is_(True))
    if tenant_id is not None:
        query = query.where(StaffUser.tenant_id == tenant_id)
    return db.session.scalar(query)


def find_staff_by_email(email: str) -> StaffUser | None:
    return db.session.scalar(sa.select(StaffUser).where(StaffUser.email == email))


def create_staff_user(email: str, name: str, role: str, password: str | None = None,
                      invited_by: StaffUser | None = None) -> StaffUser:
    """A staff user of the current tenant; without a password they must accept an invitation."""
    email = _checked_email(email)
    name = clean_line(name, label="a name", field="name", required=False) or ""
    if role not in StaffRole.ALL:
        raise ServiceError("Choose a valid role.", field="role")
    if find_staff_by_email(email) is not None:
        raise ServiceError(f"{email} is already on the team.", field="email")
    user = StaffUser(email=email, name=name or email.split("@")[0], role=role,
                     invited_by_id=invited_by.id if invited_by else None)
    if password is not None:
        user.password_hash = _checked_password(password, email, name)
        user.password_changed_at = utcnow()
    db.session.add(user)
    db.session.flush()
    return user


def invite_staff(actor: StaffUser, email: str, name: str, role: str) -> StaffUser:
    """Add a teammate and e-mail them a link to choose their password."""
    if not can(actor, "staff.manage"):
        raise ServiceError("You do not have permission to manage staff.")
    if role == StaffRole.OWNER and actor.role != StaffRole.OWNER:
        raise ServiceError("Only an Owner can invite another Owner.", field="role")
    user = create_staff_user(email, name, role, invited_by=actor)
    record("staff.invited", user, details={"role": role})
    send_invitation(user, actor)
    return user


def send_invitation(user: StaffUser, inviter: StaffUser | None = None) -> None:
    if user.has_accepted_invitation:
        raise ServiceError(f"{user.email} has already set a password.")
    if not user.active:
        raise ServiceError(f"{user.email} is deactivated; reactivate them before inviting them again.")
    tenant = current_tenant() or user.tenant
    link = tenant_link(tenant, "staff.accept_invitation", token=make_token(user, INVITE))
    send_mail(user.email, f"You're invited to {tenant.brand_name} on Portico", "staff_invitation",
              tenant_id=tenant.id, user=user, inviter=inviter, tenant=tenant, link=link,
              days=current_app.config["INVITATION_MAX_AGE"] // 86400)


def update_staff_member(actor: StaffUser, member: StaffUser, *, role: str, active: bool) -> list[str]:
    """Change a teammate's role and/or access; returns the audit actions written."""
    problem = staff_change_problem(actor, member, role=role, active=active, owners_left=active_owner_count())
    if problem:
        raise ServiceError(problem)
    actions = []
    if role != member.role:
        record("staff.role_changed", member, details={"from": member.role, "to": role})
        member.role = role
        actions.append("staff.role_changed")
    if active != member.active:
        member.active = active
        if not active:
            end_sessions(member)  # signed out everywhere, now
        action = "staff.reactivated" if active else "staff.deactivated"
        record(action, member)
        actions.append(action)
    return actions


def set_staff_active_by_operator(member: StaffUser, active: bool, actor) -> None:
    """A platform operator (re)activates or deactivates a staff member; the tenant still keeps
    an active Owner."""
    if active == member.active:
        return
    if not active and member.role == StaffRole.OWNER and active_owner_count(member.tenant_id) <= 1:
        raise ServiceError(f"{member.email} is the last active Owner of their tenant.")
    member.active = active
    if not active:
        end_sessions(member)
    record("staff.reactivated" if active else "staff.deactivated", member, actor=actor)


def accept_invitation(token: str) -> StaffUser | None:
    user = load_token(StaffUser, token, INVITE, current_app.config["INVITATION_MAX_AGE"])
    return user if user is not None and user.active and not user.has_accepted_invitation else None


def complete_invitation(user: StaffUser, name: str, password: str) -> None:
    user.name = clean_line(name, label="your name", field="name")
    _set_password(user, password)
    record("staff.invitation_accepted", user, actor=user)


def _set_password(user: StaffUser, password: str, *, keep_session: str | None = None) -> None:
    """New password; every other signed-in device is signed out."""
    user.password_hash = _checked_password(password, user.email, user.name)
    user.password_changed_at = utcnow()
    end_sessions(user, keep=keep_session)


def request_password_reset(email: str, ip_address: str | None = None) -> None:
    """Queue the reset: the job looks the address up and e-mails a link when it belongs to an
    active member. The request does the same work whatever the address, so neither its answer
    nor its timing tells whether an account exists."""
    refuse_while_impersonating()
    on_commit(send_password_reset, (email or "")[:320], ip_address, tenant_id=current_tenant().id)


@job(retries=5)
def send_password_reset(raw_email: str, ip_address: str | None) -> None:
    try:
        email = normalize_email(raw_email)
    except ValueError:
        return
    user = find_staff_by_email(email)
    if user is None or not user.active:
        return
    tenant = current_tenant()
    link = tenant_link(tenant, "staff.reset_password", token=make_token(user, RESET))
    record("staff.password_reset_requested", user, actor=ANONYMOUS, details={"ip": ip_address})
    send_mail(user.email, f"Reset your {tenant.brand_name} password", "staff_password_reset",
              tenant_id=tenant.id, user=user, tenant=tenant, link=link,
              minutes=current_app.config["PASSWORD_RESET_MAX_AGE"] // 60)


def user_for_reset_token(token: str) -> StaffUser | None:
    user = load_token(StaffUser, token, RESET, current_app.config["PASSWORD_RESET_MAX_AGE"])
    return user if user is not None and user.active else None


def reset_password(user: StaffUser, password: str) -> None:
    refuse_while_impersonating()
    _set_password(user, password)
    record("staff.password_reset", user, actor=user)


def change_own_password(user: StaffUser, current_password: str, new_password: str) -> None:
    refuse_while_impersonating()
    if not verify_password(user, current_password):
        raise ServiceError("That is not your current password.", field="current_password")
    _set_password(user, new_password, keep_session=user.current_session_token)
    record("staff.password_changed", user, actor=user)


def update_profile(user: StaffUser, name: str) -> None:
    user.name = clean_line(name, label="your name", field="name")
