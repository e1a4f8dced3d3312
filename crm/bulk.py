"""Bulk actions on a selection of contacts. Each goes through the same service as the single
change (so the same rules, timeline entries and audit), contact by contact; contacts the
member may not change are skipped and counted, never touched, and a contact a rule refuses
(a restore whose e-mail is taken meanwhile) is counted with the reason, the others go on.

Up to IN_REQUEST_MAX contacts the change is made in the request, with the result at once.
A larger selection becomes a background operation (core.operations): the request freezes the
ids selected when the button was pressed and queues run_bulk_operation, which works through
them a chunk per transaction, checking again for every contact what the member may do."""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from core.audit import record, register_actions
from core.db import db
from core.errors import ServiceError
from core.identity import StaffUser
from core.jobs import job, on_commit
from core import operations
from core.operations import Operation, create_operation, register_kind, work_through
from core.permissions import can
from crm import contacts as contact_service
from crm.contact_list import count_of
from crm.models import Circle, Contact, ContactRole, PipelineStatus, Tag
from crm.selection import Selection

IN_REQUEST_MAX = 500  # one chunk: the largest change made while the member waits
MAX_BULK = 1_000_000
CHUNK = operations.CHUNK  # contacts a transaction, in the request and in the background
RETRIES = 5
KIND = "contacts.bulk"

ACTIONS = {
    "add_to_circle": "Add to a circle", "remove_from_circle": "Remove from a circle",
    "tag": "Add a tag", "untag": "Remove a tag", "set_role": "Set the role", "set_status": "Set the status",
    "assign_owner": "Assign an owner", "archive": "Move to history", "restore": "Restore from history",
    "delete": "Delete",
}
_NEEDS = {"archive": "contacts.delete", "restore": "contacts.delete", "delete": "contacts.delete"}
# What an action reads from the form; a background operation keeps exactly these.
PARAMS = ("action", "circle_id", "tag_name", "tag_id", "role", "status_id", "owner_id", "confirm")

register_actions({"contact.bulk_action": "Bulk change of contacts", "contact.exported": "Contacts exported"})


@dataclass
class BulkResult:
    action: str
    changed: int = 0
    unchanged: int = 0
    skipped: int = 0
    missing: int = 0  # deleted or merged after they were selected
    failed: int = 0
    problems: list[str] = field(default_factory=list)  # the reasons of the first few failures
    operation: Operation | None = None  # set when the change runs in the background

    @classmethod
    def of_operation(cls, operation: Operation) -> "BulkResult":
        result = operation.result or {}
        return cls(operation.params["action"], changed=operation.changed, unchanged=result.get("unchanged", 0),
                   skipped=operation.skipped, missing=result.get("missing", 0), failed=operation.errors,
                   problems=list(result.get("problems", [])), operation=operation)

    @property
    def message(self) -> str:
        parts = [f"{ACTIONS[self.action]}: {_contacts(self.changed)} changed"]
        if self.unchanged:
            parts.append(f"{self.unchanged:,} already so")
        if self.skipped:
            parts.append(f"{self.skipped:,} skipped (you may change only your own contacts)")
        if self.missing:
            parts.append(f"{self.missing:,} deleted or merged since they were selected")
        if self.failed:
            parts.append(f"{self.failed:,} could not be changed ({self.problems[0]})" if self.problems
                         else f"{self.failed:,} could not be changed")
        return ", ".join(parts) + "."

    def counts(self) -> dict:
        """For core.operations: changed/skipped/errors are the operation's columns."""
        return {"changed": self.changed, "skipped": self.skipped, "errors": self.failed,
                "unchanged": self.unchanged, "missing": self.missing, "problems": self.problems}




def _contacts(n: int) -> str:
    return f"{n:,} contact{'' if n == 1 else 's'}"


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
        status = db.session.get(PipelineStatus, status_id)
        if status is None or status.archived_at is not None:
            raise ServiceError("Choose a status from the list.", field="status_id")
        return status
    if action == "assign_owner":
        owner_id = params.get("owner_id")
        if owner_id in (None, ""):
            return None
        owner = db.session.get(StaffUser, int(owner_id))
        if owner is None or not owner.active:
            raise ServiceError("Choose an active member of the team.", field="owner_id")
        return owner
    return None


def _title(action: str, target) -> str:
    """What the operation is called on its page: the action and what it applies."""
    if isinstance(target, (Circle, Tag)):
        what = f"“{target.name}”"
    elif action == "tag":
        what = f"“{target}”"
    elif action == "set_role":
        what = ContactRole.LABELS[target]
    elif action == "set_status":
        what = target.name
    elif action == "assign_owner":
        what = target.display_name if target is not None else "nobody"
    else:
        what = None
    return f"{ACTIONS[action]}: {what}" if what else ACTIONS[action]


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
        return contact_service.change_status(contact, target.id, actor=actor)
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


def _apply_chunk(action: str, target, actor, params: dict, ids: list[int], result: BulkResult) -> None:
    """Apply the action to these contacts, one by one, each checked against what the member
    may do to it; the same for a change in the request and a chunk of a background one.

    A contact a rule refuses is counted and the others go on. The CRM's services check before
    they change anything, so a refusal leaves nothing half-done; a savepoint per contact
    would only halve the speed of a large change. The status is loaded with the contacts:
    change_status reads it, and a query per contact cost more than the change."""
    permission = _NEEDS.get(action, "contacts.edit")
    contacts = db.session.scalars(sa.select(Contact).where(Contact.id.in_(ids), Contact.merged_into_id.is_(None))
                                  .options(joinedload(Contact.status)).order_by(Contact.id)).all()
    result.missing += len(ids) - len(contacts)
    for contact in contacts:
        if not can(actor, permission, contact):
            result.skipped += 1
            continue
        try:
            changed = _apply(action, contact, target, actor, params)
        except ServiceError as exc:
            result.failed += 1
            result.problems.append(f"{contact.full_name}: {exc.message}")
            continue
        if changed:
            result.changed += 1
        else:
            result.unchanged += 1
    db.session.flush()


def _check_role_change(selection: Selection, target: str, params: dict, actor) -> None:
    """Moving contacts back a role needs an Owner or Admin, and a confirmation."""
    if params.get("confirm") == "yes":
        return
    higher = [r for r in ContactRole.ALL if ContactRole.RANK[r] > ContactRole.RANK[target]]
    backwards = count_of(selection.query().where(Contact.role.in_(higher)), cap=None)
    if backwards:
        if not can(actor, "contacts.demote"):
            raise ServiceError(f"{backwards:,} of these contacts would move back to {ContactRole.LABELS[target]};"
                               " your role may not do that.", field="role")
        raise ServiceError(f"{backwards:,} of these contacts would move back to {ContactRole.LABELS[target]}.",
                           field="confirm")


def run_bulk_action(selection: Selection, action: str, params: dict, *, actor) -> BulkResult:
    """Apply an action to the selection: at once up to IN_REQUEST_MAX contacts, otherwise as a
    background operation (result.operation), queued to start when the caller commits."""
    if action not in ACTIONS:
        raise ServiceError("Choose an action.", field="action")
    ids = selection.ids()
    if not ids:
        raise ServiceError("Select some contacts first.")
    if len(ids) > MAX_BULK:
        raise ServiceError(f"Bulk changes work on up to {MAX_BULK:,} contacts at a time; this selection has "
                           f"{len(ids):,}. Narrow the filter and run it in parts.")
    target = _target(action, params)
    if action == "set_role":
        _check_role_change(selection, target, params, actor)
    kept = {key: params[key] for key in PARAMS if params.get(key) not in (None, "")}
    kept.update(action=action, all_matching=selection.is_all_matching)
    if len(ids) > IN_REQUEST_MAX:
        operation = create_operation(KIND, _title(action, target), kept, ids, started_by=actor, chunk=CHUNK)
        on_commit(run_bulk_operation, operation.id, tenant_id=operation.tenant_id)
        return BulkResult(action, operation=operation)
    result = BulkResult(action)
    for start in range(0, len(ids), CHUNK):
        _apply_chunk(action, target, actor, kept, ids[start:start + CHUNK], result)
    _record(result, all_matching=selection.is_all_matching, actor=actor)
    return result


def _record(result: BulkResult, *, all_matching: bool, actor, **details) -> None:
    record("contact.bulk_action", actor=actor, details={
        "action": result.action, "changed": result.changed, "unchanged": result.unchanged,
        "skipped": result.skipped, "missing": result.missing, "failed": result.failed,
        "all_matching": all_matching, **details})


# --- in the background ------------------------------------------------------------------------

@job(retries=RETRIES, retry_delay=30)
def run_bulk_operation(operation_id: int) -> None:
    """Work through a bulk change's frozen contacts (queued by run_bulk_action)."""
    work_through(operation_id, prepare=_prepare_chunk, finish=_finish, retries=RETRIES)


register_kind(KIND, unit="contacts", summary=lambda operation: BulkResult.of_operation(operation).message,
              job=run_bulk_operation)


def _started_by(operation: Operation) -> StaffUser | None:
    return db.session.get(StaffUser, operation.started_by_id) if operation.started_by_id else None


def _starter(operation: Operation) -> StaffUser:
    """Who the change is made as; an account deactivated meanwhile stops it."""
    actor = _started_by(operation)
    if actor is None or not actor.active:
        raise ServiceError("Stopped: the account of the member who started this change is no longer active. "
                           "What was done before stays done.")
    return actor


_GONE = {
    "circle_id": "the circle was archived or deleted meanwhile.",
    "tag_id": "the tag was deleted or merged meanwhile.",
    "status_id": "the status was archived or deleted meanwhile.",
    "owner_id": "the new owner's account is no longer active.",
}


def _prepare_chunk(operation: Operation):
    """Before each chunk: the member and what the action needs, checked again (a circle
    archived meanwhile stops the operation, with the reason)."""
    params = operation.params
    actor = _starter(operation)
    try:
        target = _target(params["action"], params)
    except ServiceError as exc:
        why = _GONE.get(exc.field, exc.message)
        raise ServiceError(f"Stopped: {why} What was done before stays done.") from None

    def step(ids: list[int]) -> dict:
        result = BulkResult(params["action"])
        _apply_chunk(params["action"], target, actor, params, ids, result)
        return result.counts()

    return step


def _finish(operation: Operation) -> None:
    """The audit event a change in the request records, once the operation ends."""
    _record(BulkResult.of_operation(operation), all_matching=operation.params.get("all_matching", False),
            actor=_started_by(operation), operation_id=operation.id, status=operation.status)
