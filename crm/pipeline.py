"""The tenant's contact pipeline (New, Contacted, …): adding, renaming, ordering, the default
for new contacts, archiving and restoring statuses, and moving contacts between them.

Order: the active statuses hold positions 0..n-1 in the order staff see them; archived ones
follow (n..), so positions always run 0..count-1 without gaps or ties. A status is archived,
never deleted: contacts that have it keep it (and show it) until someone moves them."""
from __future__ import annotations

import sqlalchemy as sa

from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.tenancy import current_tenant_id
from core.text import clean_line
from crm.models import Contact, PipelineStatus, TimelineEntry
from crm.normalize import fold
from crm.settings_service import AuditTarget
from crm.timeline import actor_columns

register_actions({
    "pipeline.status_added": "Pipeline status added",
    "pipeline.status_renamed": "Pipeline status renamed",
    "pipeline.status_moved": "Pipeline status moved",
    "pipeline.default_changed": "Default pipeline status changed",
    "pipeline.status_archived": "Pipeline status archived",
    "pipeline.status_restored": "Pipeline status restored",
    "pipeline.contacts_moved": "Contacts moved to another status",
})

NAME_MAX = 80
UP, DOWN = "up", "down"


def _audit(action: str, status: PipelineStatus, actor, details: dict | None = None) -> None:
    record(action, AuditTarget(status, "pipeline_status", status.name), actor=actor, details=details,
           tenant_id=status.tenant_id)


def statuses(*, include_archived: bool = True) -> list[PipelineStatus]:
    """Active statuses in pipeline order, then (with include_archived) the archived ones."""
    query = sa.select(PipelineStatus).order_by(PipelineStatus.archived_at.is_not(None), PipelineStatus.position,
                                               PipelineStatus.id)
    if not include_archived:
        query = query.where(PipelineStatus.archived_at.is_(None))
    return list(db.session.scalars(query))


def contact_counts() -> dict[int, int]:
    """status id -> how many contacts have it (history included; merged duplicates are not)."""
    rows = db.session.execute(sa.select(Contact.status_id, sa.func.count()).where(
        Contact.status_id.is_not(None), Contact.merged_into_id.is_(None)).group_by(Contact.status_id))
    return {status_id: count for status_id, count in rows}


def contacts_with(status: PipelineStatus) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Contact).where(
        Contact.status_id == status.id, Contact.merged_into_id.is_(None))) or 0


def _renumber(ordered_active: list[PipelineStatus] | None = None) -> None:
    """Positions 0..n-1 for the active statuses (in the given order, or the current one), then
    the archived ones after them."""
    current = statuses()
    active = ordered_active if ordered_active is not None else [s for s in current if s.archived_at is None]
    archived = [s for s in current if s.archived_at is not None]
    for position, status in enumerate(active + archived):
        if status.position != position:
            status.position = position
    db.session.flush()


def _clean_name(name: str | None, *, except_id: int | None = None) -> str:
    name = clean_line(name, label="a name for the status", field="name", max_length=NAME_MAX)
    wanted = fold(name)
    for other in statuses():
        if other.id != except_id and fold(other.name) == wanted:
            if other.archived_at is not None:
                raise ServiceError(f"There is an archived status called “{other.name}”: restore it instead, "
                                   "or choose another name.", field="name")
            raise ServiceError(f"There is already a status called “{other.name}”.", field="name")
    return name


def add_status(name: str, actor) -> PipelineStatus:
    """A new status at the end of the pipeline."""
    name = _clean_name(name)
    active = statuses(include_archived=False)
    status = PipelineStatus(name=name, position=len(active), is_default=False)
    db.session.add(status)
    db.session.flush()
    _renumber(active + [status])
    _audit("pipeline.status_added", status, actor)
    return status


def rename_status(status: PipelineStatus, name: str, actor) -> bool:
    """Contacts keep the status; they show the new name. Returns whether anything changed."""
    name = _clean_name(name, except_id=status.id)
    if name == status.name:
        return False
    before = status.name
    status.name = name
    db.session.flush()
    _audit("pipeline.status_renamed", status, actor, {"from": before, "to": name})
    return True


def move_status(status: PipelineStatus, direction: str, actor) -> bool:
    """One place up (earlier) or down (later) in the pipeline. Returns False at either end."""
    if direction not in (UP, DOWN):
        raise ServiceError("Choose up or down.", field="direction")
    if status.archived_at is not None:
        raise ServiceError(f"“{status.name}” is archived: restore it before changing its place.")
    active = statuses(include_archived=False)
    index = active.index(status)
    other = index - 1 if direction == UP else index + 1
    if not 0 <= other < len(active):
        return False
    active[index], active[other] = active[other], active[index]
    _renumber(active)
    _audit("pipeline.status_moved", status, actor, {"direction": direction, "position": status.position})
    return True


def set_default_status(status: PipelineStatus, actor) -> bool:
    """The status new contacts get. Returns False when it already is the default."""
    if status.archived_at is not None:
        raise ServiceError(f"“{status.name}” is archived: restore it before making it the default.")
    if status.is_default:
        return False
    before = None
    for other in statuses():
        if other.is_default:
            before = other.name
            other.is_default = False
    db.session.flush()  # one default at a time, also between the two statements
    status.is_default = True
    db.session.flush()
    _audit("pipeline.default_changed", status, actor, {"from": before, "to": status.name})
    return True


def move_contacts(status: PipelineStatus, to: PipelineStatus | None, actor) -> int:
    """Give every contact that has `status` the status `to` instead (each gets a timeline
    entry); returns how many moved."""
    if to is None or to.archived_at is not None:
        raise ServiceError("Choose an active status to move the contacts to.", field="move_to")
    if to.id == status.id:
        raise ServiceError(f"Choose a status other than “{status.name}”.", field="move_to")
    ids = list(db.session.scalars(sa.select(Contact.id).where(Contact.status_id == status.id)))
    if not ids:
        return 0
    now = utcnow()
    summary = f"Status changed from {status.name} to {to.name}"
    by = {**actor_columns(actor), "actor_label": getattr(actor, "display_name", None)}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        db.session.execute(sa.update(Contact).where(Contact.id.in_(chunk)).values(
            status_id=to.id, updated_at=now, last_activity_at=now).execution_options(synchronize_session="fetch"))
        db.session.execute(sa.insert(TimelineEntry), [
            {"contact_id": contact_id, "kind": "status_changed", "summary": summary[:500],
             "details": {"from": status.name, "to": to.name}, **by,
             "occurred_at": now} for contact_id in chunk])
    _audit("pipeline.contacts_moved", status, actor, {"to": to.name, "contacts": len(ids)})
    return len(ids)


def archive_problem(status: PipelineStatus) -> str | None:
    """Why this status cannot be archived, in plain words; None when it can."""
    if status.archived_at is not None:
        return None
    if len(statuses(include_archived=False)) <= 1:
        return (f"“{status.name}” is the only active status; a pipeline needs at least one. "
                "Add another status first.")
    if status.is_default:
        return (f"“{status.name}” is the status new contacts get. Make another status the default first, "
                "then archive this one.")
    return None


def archive_status(status: PipelineStatus, actor, move_to: PipelineStatus | None = None) -> int:
    """Take a status out of the pipeline: it is no longer offered for contacts. Its contacts
    keep it (and show it) unless `move_to` names the status they should get instead. Refused
    for the default status and for the last active one. Returns how many contacts moved."""
    if status.archived_at is not None:
        return move_contacts(status, move_to, actor) if move_to is not None else 0
    problem = archive_problem(status)
    if problem:
        raise ServiceError(problem)
    active = statuses(include_archived=False)
    moved = move_contacts(status, move_to, actor) if move_to is not None else 0
    status.archived_at = utcnow()
    _renumber([s for s in active if s.id != status.id])
    _audit("pipeline.status_archived", status, actor,
           {"moved_to": move_to.name if move_to is not None else None, "contacts_moved": moved})
    return moved


def restore_status(status: PipelineStatus, actor) -> bool:
    """Back into the pipeline, at its end. Returns False when it was not archived."""
    if status.archived_at is None:
        return False
    _clean_name(status.name, except_id=status.id)  # a status of that name may have been added since
    active = statuses(include_archived=False)
    status.archived_at = None
    _renumber(active + [status])
    _audit("pipeline.status_restored", status, actor)
    return True


def active_status_or_none(status_id) -> PipelineStatus | None:
    """The tenant's active status with this id (from a form), or None."""
    try:
        value = int(status_id)
    except (TypeError, ValueError):
        return None
    if not 0 < value <= 2**31 - 1:
        return None
    status = db.session.get(PipelineStatus, value)
    if status is None or status.tenant_id != current_tenant_id() or status.archived_at is not None:
        return None
    return status
