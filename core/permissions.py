"""Every permission check in one place. Views ask `require("staff.manage")`; nothing compares
roles by hand. What each role may do is the product's default (DEFAULT_ROLE_PERMISSIONS) unless
the tenant changed it (RolePermission rows, edited through core.roles): Owners may always do
everything; Admin and Staff are the tenant's to shape."""
from __future__ import annotations

import functools
from typing import Callable

import sqlalchemy as sa
from flask import abort, g, has_request_context, redirect, request, url_for
from sqlalchemy.orm import Mapped, mapped_column

from core import tenant_cache
from core.db import TenantScoped, db
from core.identity import StaffRole, StaffUser, current_principal
from core.tenancy import current_tenant_id, get_or_404

PERMISSIONS = {
    "dashboard.view": "See the staff dashboard",
    "staff.manage": "Invite, deactivate and change the role of staff",
    "roles.manage": "Change what each staff role may do",
    "audit.view": "Read the audit log",
    "settings.manage": "Change the tenant's name and branding",
    "contacts.view": "See contacts and companies (those visible to them)",
    "contacts.create": "Add contacts and companies",
    "contacts.edit": "Change contacts and companies (Staff: their own)",
    "contacts.delete": "Delete or archive contacts and companies (Staff: their own)",
    "contacts.manage_all": "See, change and delete every contact and company, whoever owns them",
    "contacts.demote": "Move a contact back a role (Client → Prospect → Lead)",
    "contacts.export": "Export lists of contacts",
    "contacts.import": "Import contacts from spreadsheets (and undo an import)",
    "contacts.merge": "Merge duplicate contacts",
    "crm.configure": "Manage Circles, the status pipeline, custom fields and CRM settings",
    "operations.view_all": "See every background task of the team (everyone sees their own)",
    "portal.approve": "Approve or reject people who registered for a portal login",
    "forms.manage": "Build, change and archive kickoff forms",
    "forms.submissions.view": "See kickoff form submissions and export them",
    "billing.plans": "Define access plans and who must pay for portal access",
    "billing.keys": "Enter the tenant's Stripe keys",
    "payments.view": "See contacts' subscriptions and payments",
    "billing.manage": "Grant complimentary access, cancel subscriptions and refund payments",
    "people.impersonate": "See the portal and the staff area as a contact or a less privileged member sees them",
}

_EVERYONE = frozenset({"dashboard.view", "contacts.view", "contacts.create", "contacts.edit",
                       "contacts.delete", "contacts.export"})
# What each role may do in a tenant that has changed nothing. Changing what roles may do
# (roles.manage) is the Owners': it decides every other permission, so it is the one an
# Owner hands out deliberately (and then only over the Staff role: core.roles).
DEFAULT_ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    StaffRole.OWNER: frozenset(PERMISSIONS),
    # The Stripe keys are where the tenant's money goes: the Owners' unless they grant them.
    StaffRole.ADMIN: frozenset(PERMISSIONS) - {"roles.manage", "billing.keys"},
    StaffRole.STAFF: _EVERYONE,
}
# The roles whose permissions a tenant sets; Owners always have every permission, so the
# tenant always keeps someone who can set them right again.
EDITABLE_ROLES = (StaffRole.ADMIN, StaffRole.STAFF)


class RolePermission(TenantScoped, db.Model):
    """A tenant's choice for one role and one permission, kept only where it differs from
    DEFAULT_ROLE_PERMISSIONS: no rows means the defaults, and a permission added to the
    product later starts at its default everywhere."""

    __tablename__ = "role_permission"
    __tenant_config__ = True  # its changes bump tenant.config_version (core.tenant_cache)
    __tenant_table_args__ = (
        sa.UniqueConstraint("tenant_id", "role", "permission"),
        sa.CheckConstraint("role in ('admin', 'staff')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    permission: Mapped[str] = mapped_column(sa.String(60))
    granted: Mapped[bool]


def load_role_permissions(tenant_id: int) -> dict[str, frozenset[str]]:
    """{role: its permissions} for the tenant, from the defaults and the tenant's rows: one
    query. The tenant must be the current one (rows of another are out of reach)."""
    sets = {role: set(perms) for role, perms in DEFAULT_ROLE_PERMISSIONS.items()}
    rows = db.session.execute(sa.select(RolePermission.role, RolePermission.permission, RolePermission.granted)
                              .where(RolePermission.tenant_id == tenant_id))
    for role, permission, granted in rows:
        if role in EDITABLE_ROLES and permission in PERMISSIONS:  # a permission retired since: ignored
            (sets[role].add if granted else sets[role].discard)(permission)
    return {role: frozenset(perms) for role, perms in sets.items()}


_CACHE = "role_permissions"


def role_permissions(tenant_id: int) -> dict[str, frozenset[str]]:
    """The tenant's sets; in a request from this process's cache of the tenant's configuration
    version (core.tenant_cache: a change to a role bumps it, and every process reads afresh),
    then once per request (every can() of a page asks); afresh outside requests (jobs, CLI)."""
    if not has_request_context():
        return load_role_permissions(tenant_id)
    cache = g.setdefault(_CACHE, {})
    if tenant_id not in cache:
        cache[tenant_id] = tenant_cache.cached("role_permissions", lambda: load_role_permissions(tenant_id)) \
            if tenant_id == current_tenant_id() else load_role_permissions(tenant_id)
    return cache[tenant_id]


def forget_role_permissions() -> None:
    """After a change, the rest of the request reads the new sets."""
    if has_request_context():
        g.pop(_CACHE, None)


def permissions_of(staff: StaffUser) -> frozenset[str]:
    """What this staff member's role lets them do, in their tenant. Nothing outside it: a
    member of one tenant has no say in another's (and its rows are not ours to read)."""
    if staff.tenant_id != current_tenant_id():
        return frozenset()
    if staff.role not in EDITABLE_ROLES:
        return DEFAULT_ROLE_PERMISSIONS[staff.role]  # Owners: everything, no query
    return role_permissions(staff.tenant_id)[staff.role]


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
    if permission not in permissions_of(principal):
        return False
    rule = _object_rules.get(permission) if obj is not None else None
    return rule(principal, obj) if rule is not None else True


def require(permission: str, obj=None) -> None:
    """Abort with 403 unless the current principal may do this (to `obj`, when given). Call
    it after loading the objects named in the URL, so another tenant's ids are a 404 first."""
    if not can(current_principal(), permission, obj):
        abort(403)


def permitted_or_404(model, ident, permission: str):
    """One row of this tenant that the current principal may act on with `permission`:
    another tenant's id (or none) is a 404 first, a missing permission then a 403."""
    obj = get_or_404(model, ident)
    require(permission)
    return obj


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
