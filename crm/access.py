"""Which contacts and companies a staff member may see and change.

Owners and Admins (by default; the permission "contacts.manage_all"): all. Staff: they see every contact and edit or delete only those they
own, unless the tenant restricts Staff to the contacts they own or that belong to Circles
assigned to them; then the others do not exist for them (404), in lists, search, counts,
exports and bulk actions too. The rules plug into core.permissions.can().
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import g

from core import tenant_cache
from core.db import db
from core.identity import StaffUser
from core.permissions import can, object_rule
from core.tenancy import get_or_404
from crm.models import Circle, CircleMember, CircleStaff, Contact, CrmSettings


def _sees_everything(staff: StaffUser) -> bool:
    return can(staff, "contacts.manage_all")


def _restricted(staff: StaffUser) -> bool:
    if _sees_everything(staff):
        return False
    # Read once per request (list pages ask for every row), from the process's cache of the
    # tenant's configuration version (core.tenant_cache: changing the setting bumps it).
    cache = g.setdefault("crm_staff_visibility", {})
    if staff.tenant_id not in cache:
        cache[staff.tenant_id] = tenant_cache.cached(
            "crm_staff_visibility", lambda: db.session.scalar(sa.select(CrmSettings.staff_visibility)))
    return cache[staff.tenant_id] == CrmSettings.OWN_OR_CIRCLES


def sees_every_contact(staff: StaffUser) -> bool:
    """Whether no contact is hidden from this staff member (their role, the tenant's setting)."""
    return not _restricted(staff)


def visible_contacts_clause(staff: StaffUser):
    """A WHERE clause on Contact: the contacts this staff member may see."""
    if not _restricted(staff):
        return sa.true()
    in_assigned_circle = (
        sa.select(CircleMember.id)
        .join(CircleStaff, sa.and_(CircleStaff.circle_id == CircleMember.circle_id,
                                   CircleStaff.tenant_id == CircleMember.tenant_id))
        .join(Circle, sa.and_(Circle.id == CircleMember.circle_id, Circle.tenant_id == CircleMember.tenant_id))
        .where(CircleStaff.staff_id == staff.id, CircleMember.contact_id == Contact.id,
               CircleMember.removed_at.is_(None), Circle.archived_at.is_(None))  # archiving ends the access
        .exists()
    )
    return sa.or_(Contact.owner_id == staff.id, in_assigned_circle)


def contact_visible_to(staff: StaffUser, contact: Contact) -> bool:
    if not _restricted(staff):
        return True
    if contact.owner_id == staff.id:
        return True
    return db.session.scalar(
        sa.select(Contact.id).where(visible_contacts_clause(staff), Contact.id == contact.id)) is not None


def _owns_or_manages(staff: StaffUser, record) -> bool:
    return _sees_everything(staff) or record.owner_id == staff.id


@object_rule("contacts.view")
def _may_view(staff, record) -> bool:
    return contact_visible_to(staff, record) if isinstance(record, Contact) else True


@object_rule("contacts.edit")
def _may_edit(staff, record) -> bool:
    return _may_view(staff, record) and _owns_or_manages(staff, record)


@object_rule("contacts.delete")
def _may_delete(staff, record) -> bool:
    return _may_view(staff, record) and _owns_or_manages(staff, record)


def get_visible_contact_or_404(contact_id: int) -> Contact:
    """A contact of this tenant that the signed-in staff member may see; otherwise 404,
    exactly as if it did not exist. Merged contacts answer with their survivor."""
    from flask import abort

    from core.identity import current_principal

    contact = get_or_404(Contact, contact_id)
    if not contact_visible_to(current_principal(), contact):
        abort(404)
    return contact


def acts_as_contact(actor, contact_id: int | None) -> bool:
    """Whether `actor` is that contact themselves, signed in on their portal login: what lets
    a contact answer their invitations, tick off the tasks shared with them and change their
    own details. Staff never are (they have their own rules above)."""
    return (getattr(actor, "principal_type", None) == "portal" and contact_id is not None
            and getattr(actor, "contact_id", None) == contact_id)
