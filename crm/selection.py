"""A staff member's selection on the contact list: picked rows (kept in the database, so it
survives paging and reloads) or "all N matching" a filter (kept as the filter, re-evaluated
when used). Either way, only contacts the member may see are ever in it."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from core.db import db
from crm.access import visible_contacts_clause
from crm.contact_list import ContactFilters, count_of, count_query, filtered_query
from crm.models import Contact, SelectedContact

MAX_PICKED = 10_000


@dataclass
class Selection:
    """What a bulk action applies to."""

    staff: object
    filters: ContactFilters | None = None  # "all matching these"; None: the picked rows

    @property
    def is_all_matching(self) -> bool:
        return self.filters is not None

    def query(self) -> sa.Select:
        """SELECT Contact … of the selection, visibility applied."""
        if self.filters is not None:
            return filtered_query(self.filters, self.staff)
        picked = sa.select(SelectedContact.contact_id).where(SelectedContact.staff_id == self.staff.id)
        return sa.select(Contact).where(Contact.id.in_(picked), Contact.merged_into_id.is_(None),
                                        visible_contacts_clause(self.staff))

    def ids(self) -> list[int]:
        return list(db.session.scalars(self.query().with_only_columns(Contact.id).order_by(Contact.id)))

    def count(self) -> int:
        """Up to contact_list.COUNT_CAP + 1 (see contact_list.count)."""
        return count_of(self.query())

    def count_query(self) -> sa.Select:
        """SELECT count(), as count() counts (core.scalars fetches it beside a page's list)."""
        return count_query(self.query())


def picked_ids(staff, among: list[int] | None = None) -> set[int]:
    query = sa.select(SelectedContact.contact_id).where(SelectedContact.staff_id == staff.id)
    if among is not None:
        query = query.where(SelectedContact.contact_id.in_(among))
    return set(db.session.scalars(query))


def pick(staff, contact_ids: list[int]) -> int:
    """Add contacts (those visible to the member) to the picked rows; returns how many are picked now."""
    wanted = set(db.session.scalars(sa.select(Contact.id).where(
        Contact.id.in_(contact_ids), Contact.merged_into_id.is_(None), visible_contacts_clause(staff))))
    new = wanted - picked_ids(staff, list(wanted))
    if len(picked_ids(staff)) + len(new) > MAX_PICKED:
        from core.errors import ServiceError

        raise ServiceError(f"A selection holds up to {MAX_PICKED:,} contacts; use “all matching” for more.")
    db.session.execute(sa.insert(SelectedContact), [{"staff_id": staff.id, "contact_id": i} for i in sorted(new)]) \
        if new else None
    return picked_count(staff)


def unpick(staff, contact_ids: list[int]) -> int:
    db.session.execute(sa.delete(SelectedContact).where(SelectedContact.staff_id == staff.id,
                                                        SelectedContact.contact_id.in_(contact_ids)))
    return picked_count(staff)


def clear(staff) -> None:
    db.session.execute(sa.delete(SelectedContact).where(SelectedContact.staff_id == staff.id))


def picked_count(staff) -> int:
    return Selection(staff).count()
