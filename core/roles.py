"""What each staff role may do, as a tenant sets it (the Roles and permissions page).

Owners may always do everything: the tenant always has an active Owner (core.permissions
staff_change_problem), so it can always put a mistake right. Admin and Staff are the tenant's
to shape, within rules that keep it able to run itself:

  * everyone keeps seeing the dashboard and the contacts (without them the staff area is empty);
  * Admins always manage the team: that is what the role is for (take it from someone by making
    them Staff);
  * Staff are never given the team or the roles to manage: with them, a Staff member could make
    someone an Admin or give Staff more, i.e. more than their own role;
  * roles are nested: Admins may do everything Staff may, so moving someone up never takes a
    permission away, and a role's rank (StaffRole.RANK) still says who is above whom;
  * only Owners change what Admins may do. Admins who are given "roles.manage" shape the Staff
    role only: otherwise they could give back to Admins whatever an Owner took away.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

import sqlalchemy as sa

from core.audit import record, register_actions
from core.db import db
from core.errors import ServiceError
from core.identity import StaffRole, StaffUser
from core.permissions import (DEFAULT_ROLE_PERMISSIONS, EDITABLE_ROLES, PERMISSIONS, RolePermission, can,
                              forget_role_permissions, role_permissions)

register_actions({"roles.permissions_changed": "Role permissions changed"})

# How sentences name the people of a role.
ROLE_PEOPLE = {StaffRole.OWNER: "Owners", StaffRole.ADMIN: "Admins", StaffRole.STAFF: "Staff"}

EVERYONE_KEEPS = ("dashboard.view", "contacts.view")
ADMINS_KEEP = ("staff.manage",)
STAFF_NEVER = ("staff.manage", "roles.manage")

OWNERS_ALWAYS = "Owners can always do everything, so your business can never lock itself out."
ONLY_OWNERS_CHANGE_ADMINS = "Only an Owner can change what Admins may do."
# Why the fixed boxes are fixed; the page shows these beside them, refusals repeat them.
_EMPTY = "the staff area would have nothing to show them"
_TEAM = "running the team is what the Admin role is for. To take it from someone, make them Staff"
_ABOVE = "with it, a Staff member could give people more than their own role has"


def _label(permission: str) -> str:
    return f"“{PERMISSIONS[permission]}”"


def lock_reason(role: str, permission: str) -> str | None:
    """Why this box of the matrix is fixed, in plain words; None when the tenant chooses."""
    if role == StaffRole.OWNER:
        return OWNERS_ALWAYS
    if permission in EVERYONE_KEEPS:
        return f"Everyone keeps this, or {_EMPTY}."
    if role == StaffRole.ADMIN and permission in ADMINS_KEEP:
        return f"Admins always keep this: {_TEAM}."
    if role == StaffRole.STAFF and permission in STAFF_NEVER:
        return f"Never for Staff: {_ABOVE}."
    return None


def editable_roles(actor) -> tuple[str, ...]:
    """The roles whose permissions `actor` may change: Owners both, Admins with roles.manage
    the Staff role, anyone else none."""
    if not can(actor, "roles.manage"):
        return ()
    return EDITABLE_ROLES if actor.role == StaffRole.OWNER else (StaffRole.STAFF,)


@dataclass(frozen=True)
class Change:
    role: str
    permission: str
    granted: bool


def _problem(sets: dict[str, frozenset[str]]) -> str | None:
    """The first rule the proposed sets break, in plain words."""
    admin, staff = sets[StaffRole.ADMIN], sets[StaffRole.STAFF]
    for role in EDITABLE_ROLES:
        for permission in EVERYONE_KEEPS:
            if permission not in sets[role]:
                return f"{ROLE_PEOPLE[role]} must keep {_label(permission)}: everyone keeps it, or {_EMPTY}."
    for permission in ADMINS_KEEP:
        if permission not in admin:
            return f"Admins must keep {_label(permission)}: {_TEAM}."
    for permission in STAFF_NEVER:
        if permission in staff:
            return f"Staff cannot be given {_label(permission)}: {_ABOVE}. To let someone do it, make them an Admin."
    for permission in PERMISSIONS:
        if permission in staff and permission not in admin:
            return f"Staff cannot have {_label(permission)} while Admins do not: Admins may do everything Staff " \
                   "may. Give it to Admins too, or take it from Staff."
    return None


def update_role_permissions(actor: StaffUser, wanted: dict[str, Iterable[str]]) -> list[Change]:
    """Give each role in `wanted` exactly the permissions listed for it (roles left out keep
    theirs). Refuses, changing nothing, what the rules above forbid; audits what changed, with
    the sets before and after. Returns the changes, in the order of PERMISSIONS."""
    if not can(actor, "roles.manage"):
        raise ServiceError("You do not have permission to change what roles may do.")
    current = role_permissions(actor.tenant_id)
    proposed = dict(current)
    for role, permissions in wanted.items():
        if role == StaffRole.OWNER:
            raise ServiceError(OWNERS_ALWAYS)
        if role not in EDITABLE_ROLES:
            raise ServiceError("Choose a valid role.")
        if role not in editable_roles(actor):
            raise ServiceError(ONLY_OWNERS_CHANGE_ADMINS)
        permissions = frozenset(permissions)
        unknown = sorted(permissions - PERMISSIONS.keys())
        if unknown:
            raise ServiceError(f"There is no permission “{unknown[0]}”.")
        proposed[role] = permissions
    problem = _problem(proposed)
    if problem:
        raise ServiceError(problem)

    changes = [Change(role, permission, permission in proposed[role])
               for role in EDITABLE_ROLES for permission in PERMISSIONS
               if (permission in proposed[role]) != (permission in current[role])]
    if not changes:
        return []
    rows = {(r.role, r.permission): r for r in db.session.scalars(sa.select(RolePermission))}
    for change in changes:
        row = rows.get((change.role, change.permission))
        if change.granted == (change.permission in DEFAULT_ROLE_PERMISSIONS[change.role]):
            if row is not None:  # back to the default: the default speaks again
                db.session.delete(row)
        elif row is None:
            db.session.add(RolePermission(role=change.role, permission=change.permission, granted=change.granted))
        else:
            row.granted = change.granted
    changed_roles = [role for role in EDITABLE_ROLES if proposed[role] != current[role]]
    details = {"summary": describe(changes)}
    for role in changed_roles:
        details[role] = {"before": sorted(current[role]), "after": sorted(proposed[role])}
    record("roles.permissions_changed", actor=actor, tenant_id=actor.tenant_id, details=details)
    db.session.flush()
    forget_role_permissions()
    return changes


def _phrase(permission: str) -> str:
    """"Export lists of contacts" → "export lists of contacts" (a trailing aside dropped)."""
    label = re.sub(r"\s*\([^)]*\)$", "", PERMISSIONS[permission])
    return label[:1].lower() + label[1:]


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def describe(changes: list[Change]) -> str:
    """"Staff can now export lists of contacts. Admins can no longer read the audit log." """
    sentences = []
    for role in EDITABLE_ROLES:
        for granted, words in ((True, "can now"), (False, "can no longer")):
            phrases = [_phrase(c.permission) for c in changes if c.role == role and c.granted is granted]
            if phrases:
                sentences.append(f"{ROLE_PEOPLE[role]} {words} {_join(phrases)}.")
    return " ".join(sentences)
