"""Bulk actions on a selection of contacts. Each goes through the same service as the single
change (so the same rules, timeline entries and audit), contact by contact, in one
transaction; contacts the member may not change are skipped and counted, never touched."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from core.audit import record, register_actions
from core.db import db
from core.errors import ServiceError
from core.identity import StaffUser
from core.permissions import can
from crm import contacts as contact_service
from crm.models import Circle, Contact, ContactRole, Tag
from crm.selection import Selection

MAX_BULK = 5_000
CHUNK = 500

ACTIONS = {
    "add_to_circle": "Add to a circle", "remove_from_circle": "Remove from a circle",
    "tag": "Add a tag", "untag": "Remove a tag", "set_role": "Set the role", "set_status": "Set the status",
    "assign_owner": "Assign an owner", "archive": "Move to history", "restore": "Restore from history",
    "delete": "Delete",
}
_NEEDS = {"archive": "contacts.delete", "restore": "contacts.delete", "delete": "contacts.delete"}

register_actions({"contact.bulk_action": "Bulk change of contacts", "contact.exported": "Contacts exported"})


@dataclass
class BulkResult:
    action: str
    changed: int = 0
    unchanged: int = 0
    skipped: int = 0

    @property
    def message(self) -> str:
        parts = [f"{ACTIONS[self.action]}: {self.changed} contact{'' if self.changed == 1 else 's'} changed"]
        if self.unchanged:
            parts.append(f"{self.unchanged} already so")
        if self.skipped:
            parts.append(f"{self.skipped} skipped (you may change only your own contacts)")
        return ", ".join(parts) + "."


def _target(action: str, params: dict):
    """Load and check what the action needs (a circle, a tag name, a role…) before touching anything."""
    if action in ("add_to_circle", "remove_from_circle"):
        circle = db.session.get(Circle, int(params.get("circle_id") or 0) or -1)
        if circle is None or circle.archived_at is not None:
            raise ServiceError("Choose a circle.", field="circle_id")
        return circle
    if action == "tag":
        name = (params.get("tag_name") or "").strip()
        if not name:
            raise ServiceError("Type the tag to add.", field="tag_name")
        return name
    if action == "untag":
        tag = db.session.get(Tag, int(params.get("tag_id") or 0) or -1)
        if tag is None:
            raise ServiceError("Choose a tag.", field="tag_id")
        return tag
    if action == "set_role":
        role = params.get("role")
        if role not in ContactRole.ALL:
            raise ServiceError("Choose Lead, Prospect or Client.", field="role")
        return role
    if action == "set_status":
        status_id = int(params.get("status_id") or 0)
        if not status_id:
            raise ServiceError("Choose a status.", field="status_id")
        return status_id
    if action == "assign_owner":
        owner_id = params.get("owner_id")
        if owner_id in (None, ""):
            return None
        owner = db.session.get(StaffUser, int(owner_id))
        if owner is None or not owner.active:
            raise ServiceError("Choose an active member of the team.", field="owner_id")
        return owner
    return None


def _apply(action: str, contact: Contact, target, actor, params: dict) -> bool:
    from crm import circles, tags

    if action == "add_to_circle":
        return circles.add_contact_to_circle(target, contact, actor)
    if action == "remove_from_circle":
        return circles.remove_contact_from_circle(target, contact, actor)
    if action == "tag":
        before = {t.id for t in tags.tags_of_contact(contact)}
        tag = tags.tag_contact(contact, target, actor)
        return tag.id not in before
    if action == "untag":
        return tags.untag_contact(contact, target, actor)
    if action == "set_role":
        return contact_service.change_role(contact, target, actor=actor, confirmed=params.get("confirm") == "yes")
    if action == "set_status":
        return contact_service.change_status(contact, target, actor=actor)
    if action == "assign_owner":
        return contact_service.assign_owner(contact, target, actor=actor)
    if action == "archive":
        return contact_service.archive_contact(contact, actor=actor)
    if action == "restore":
        return contact_service.restore_contact(contact, actor=actor)
    if action == "delete":
        contact_service.delete_contact(contact, actor=actor)
        return True
    raise ServiceError("Choose an action.", field="action")


def run_bulk_action(selection: Selection, action: str, params: dict, *, actor) -> BulkResult:
    if action not in ACTIONS:
        raise ServiceError("Choose an action.", field="action")
    ids = selection.ids()
    if not ids:
        raise ServiceError("Select some contacts first.")
    if len(ids) > MAX_BULK:
        raise ServiceError(f"Bulk changes work on up to {MAX_BULK:,} contacts at a time; this selection has "
                           f"{len(ids):,}. Narrow the filter and run it in parts.")
    target = _target(action, params)
    if action == "set_role" and params.get("confirm") != "yes":
        backwards = db.session.scalar(sa.select(sa.func.count()).select_from(Contact).where(
            Contact.id.in_(ids), Contact.role.in_([r for r in ContactRole.ALL
                                                   if ContactRole.RANK[r] > ContactRole.RANK[target]])))
        if backwards:
            if not can(actor, "contacts.demote"):
                raise ServiceError(f"{backwards} of these contacts would move back to {ContactRole.LABELS[target]};"
                                   " your role may not do that.", field="role")
            raise ServiceError(f"{backwards} of these contacts would move back to {ContactRole.LABELS[target]}.",
                               field="confirm")
    permission = _NEEDS.get(action, "contacts.edit")
    result = BulkResult(action)
    for start in range(0, len(ids), CHUNK):
        chunk = db.session.scalars(sa.select(Contact).where(Contact.id.in_(ids[start:start + CHUNK]))
                                   .order_by(Contact.id)).all()
        for contact in chunk:
            if not can(actor, permission, contact):
                result.skipped += 1
                continue
            if _apply(action, contact, target, actor, params):
                result.changed += 1
            else:
                result.unchanged += 1
        db.session.flush()
    record("contact.bulk_action", actor=actor, details={
        "action": action, "changed": result.changed, "unchanged": result.unchanged, "skipped": result.skipped,
        "all_matching": selection.is_all_matching})
    return result
