"""Every permission check in one place. Views ask `require("staff.manage")`; nothing compares
roles by hand. Role permission sets are fixed today; tenant-editable sets can replace
ROLE_PERMISSIONS later without touching a view."""
from __future__ import annotations

import functools
from typing import Callable

from flask import abort, g, redirect, request, url_for

from core.identity import StaffRole, StaffUser, current_principal

PERMISSIONS = {
    "dashboard.view": "See the staff dashboard",
    "staff.manage": "Invite, deactivate and change the role of staff",
    "audit.view": "Read the audit log",
    "settings.manage": "Change the tenant's name and branding",
    "contacts.view": "See contacts and companies (those visible to them)",
    "contacts.create": "Add contacts and companies",
    "contacts.edit": "Change contacts and companies (Staff: their own)",
    "contacts.delete": "Delete or archive contacts and companies (Staff: their own)",
    "contacts.demote": "Move a contact back a role (Client → Prospect → Lead)",
    "contacts.export": "Export lists of contacts",
    "contacts.merge": "Merge duplicate contacts",
    "crm.configure": "Manage Circles, the status pipeline, custom fields and CRM settings",
    "operations.view_all": "See every background task of the team (everyone sees their own)",
}

_EVERYONE = frozenset({"dashboard.view", "contacts.view", "contacts.create", "contacts.edit",
                       "contacts.delete", "contacts.export"})
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    StaffRole.OWNER: frozenset(PERMISSIONS),
    StaffRole.ADMIN: frozenset(PERMISSIONS),
    StaffRole.STAFF: _EVERYONE,
}

# Object-level rules, registered by the domain packages that own the objects (the CRM says
# which contacts a staff member may see or edit). `can()` stays the one place that decides.
_object_rules: dict[str, Callable] = {}


def object_rule(permission: str):
    """Register `rule(staff, obj) -> bool`, consulted by can(principal, permission, obj)."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")

    def register(rule: Callable) -> Callable:
        _object_rules[permission] = rule
        return rule

    return register


def can(principal, permission: str, obj=None) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    if not isinstance(principal, StaffUser) or not principal.active:
        return False
    if permission not in ROLE_PERMISSIONS[principal.role]:
        return False
    rule = _object_rules.get(permission) if obj is not None else None
    return rule(principal, obj) if rule is not None else True


def require(permission: str, obj=None) -> None:
    """Abort with 403 unless the current principal may do this (to `obj`, when given). Call
    it after loading the objects named in the URL, so another tenant's ids are a 404 first."""
    if not can(current_principal(), permission, obj):
        abort(403)


def staff_login_required(view):
    """Only a signed-in staff member of this host's tenant gets through; anyone else is sent
    to the staff sign-in page, which brings them back afterwards."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        principal = current_principal()
        if not isinstance(principal, StaffUser) or principal.tenant_id != g.tenant.id:
            return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def staff_change_problem(actor: StaffUser, member: StaffUser, *, role: str | None = None,
                         active: bool | None = None, owners_left: int) -> str | None:
    """Why `actor` may not make this change to `member`, in plain words; None when allowed.

    Rules: only Owners and Admins manage staff; nobody changes their own role or access (so
    no one locks themselves out by accident); only an Owner grants or changes Owner; the
    tenant always keeps at least one active Owner.
    """
    if not can(actor, "staff.manage"):
        return "You do not have permission to manage staff."
    if role is not None and role not in StaffRole.ALL:
        return "Choose a valid role."
    changes_role = role is not None and role != member.role
    changes_active = active is not None and active != member.active
    if not (changes_role or changes_active):
        return None
    if member.id == actor.id:
        return "You cannot change your own role or access; ask another Owner or Admin."
    if actor.role != StaffRole.OWNER and (member.role == StaffRole.OWNER or role == StaffRole.OWNER):
        return "Only an Owner can change an Owner or make someone an Owner."
    losing_owner = member.role == StaffRole.OWNER and member.active and (
        (changes_role and role != StaffRole.OWNER) or (changes_active and not active)
    )
    if losing_owner and owners_left <= 1:
        return "The team needs at least one active Owner."
    return None
