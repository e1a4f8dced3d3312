"""Segments: a named filter set. Dynamic: opening one runs its filters again."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from core import tenant_cache
from core.audit import record, register_actions
from core.db import db
from core.errors import ServiceError
from core.permissions import can
from core.text import clean_line
from crm.contact_list import ContactFilters
from crm.models import Segment

register_actions({"segment.saved": "Segment saved", "segment.deleted": "Segment deleted"})


def save_segment(name: str, filters: ContactFilters, *, actor, shared: bool = True) -> Segment:
    name = clean_line(name, label="a name for the segment", field="name", max_length=120)
    if not filters.is_filtered:
        raise ServiceError("Choose some filters first: a segment of everyone is just the contact list.")
    if db.session.scalar(sa.select(Segment.id).where(sa.func.lower(Segment.name) == name.lower())):
        raise ServiceError(f"There is already a segment called “{name}”.", field="name")
    segment = Segment(name=name, filters=filters.to_dict(), owner_id=actor.id, shared=shared)
    db.session.add(segment)
    db.session.flush()
    record("segment.saved", segment, actor=actor, details={"filters": segment.filters})
    return segment


def segments_for(staff) -> list[Segment]:
    """Shared segments and the member's own, by name."""
    return list(db.session.scalars(sa.select(Segment).where(sa.or_(Segment.shared.is_(True),
                                                                   Segment.owner_id == staff.id))
                                   .order_by(sa.func.lower(Segment.name))))


@dataclass(frozen=True)
class SegmentTab:
    """A segment as the contact list's tabs show it: plain data, kept across requests."""
    id: int
    name: str


def segment_tabs(staff) -> tuple[SegmentTab, ...]:
    """segments_for(staff) as the contact list shows them, from the process's cache of the
    tenant's configuration version (core.tenant_cache: saving or deleting a segment bumps it)."""
    return tenant_cache.cached(f"segment_tabs:{staff.id}", lambda: tuple(
        SegmentTab(s.id, s.name) for s in segments_for(staff)))


def may_see(staff, segment: Segment) -> bool:
    return segment.shared or segment.owner_id == staff.id


def delete_segment(segment: Segment, *, actor) -> None:
    if segment.owner_id != actor.id and not can(actor, "crm.configure"):
        raise ServiceError("Only whoever saved this segment, or an Admin, can delete it.")
    record("segment.deleted", segment, actor=actor)
    db.session.delete(segment)
    db.session.flush()


def filters_of(segment: Segment) -> ContactFilters:
    return ContactFilters.from_dict(segment.filters)
