"""The activity log on a contact's (or company's) page. Every service that changes a record
in a way its people care about writes one entry here."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from core.db import db, utcnow
from core.identity import current_principal, impersonator_of
from crm.access import visible_contacts_clause
from crm.models import Contact, TimelineEntry

HIDDEN_ACTIVITY = "Activity about a contact you cannot see"


# The kinds of principal a timeline entry names by id (TimelineEntry.actor_type): a member of
# staff, or a contact acting on their portal login. Anyone else (the system, a job, an
# anonymous form) is named by label only.
ACTOR_COLUMNS = {"staff": "actor_id", "portal": "actor_portal_account_id"}


def actor_columns(actor) -> dict:
    """TimelineEntry's actor_type and actor id column for `actor` (a principal, or None)."""
    kind = getattr(actor, "principal_type", None)
    if kind not in ACTOR_COLUMNS or getattr(actor, "id", None) is None:
        return {"actor_type": None}
    return {"actor_type": kind, ACTOR_COLUMNS[kind]: actor.id}


def record_activity(kind: str, summary: str, *, contact=None, company=None, details: dict | None = None,
                    subject=None, actor=None, occurred_at=None, touch: bool = True) -> TimelineEntry:
    """One entry on the timeline; with `touch`, it is the contact's latest activity."""
    actor = actor if actor is not None else current_principal()
    when = occurred_at or utcnow()
    label = getattr(actor, "display_name", None) or (None if actor is None else str(actor))
    impersonator = impersonator_of(actor)
    if impersonator is not None:
        # "by Ana as Bob": the admin really did it, seen as the person they impersonated.
        label = f"{impersonator.display_name} as {label}"
    entry = TimelineEntry(
        contact_id=contact.id if contact is not None else None,
        company_id=company.id if company is not None else None,
        kind=kind, summary=summary[:500], details=details or {},
        **actor_columns(actor),
        actor_label=label[:320] if label else None,
        subject_type=type(subject).__name__.lower() if subject is not None else None,
        subject_id=getattr(subject, "id", None),
        occurred_at=when,
    )
    db.session.add(entry)
    if contact is not None and touch:
        contact.last_activity_at = when
    return entry


@dataclass(frozen=True)
class ShownEntry:
    """A timeline entry as one viewer may read it: about a contact hidden from them, it says
    only that something happened."""
    entry: TimelineEntry
    hidden: bool

    @property
    def summary(self) -> str:
        return HIDDEN_ACTIVITY if self.hidden else self.entry.summary

    def __getattr__(self, name):
        return getattr(self.entry, name)


def company_timeline(company, viewer, *, limit: int = 50) -> list[ShownEntry]:
    """The company's activity, newest first, as `viewer` may read it (crm.access): an entry
    about one of its contacts (the entry's contact, or the contact it is about) hidden from
    them is shown without its words."""
    entries = db.session.scalars(sa.select(TimelineEntry).where(TimelineEntry.company_id == company.id)
                                 .order_by(TimelineEntry.occurred_at.desc(), TimelineEntry.id.desc()).limit(limit)).all()
    about = {e.contact_id for e in entries if e.contact_id} | {
        e.subject_id for e in entries if e.subject_type == "contact" and e.subject_id}
    seen = set(db.session.scalars(sa.select(Contact.id).where(Contact.id.in_(about), visible_contacts_clause(viewer)))
               ) if about else set()

    def hidden(e: TimelineEntry) -> bool:
        named = {e.contact_id} | ({e.subject_id} if e.subject_type == "contact" else set())
        return bool((named - {None}) - seen)
    return [ShownEntry(e, hidden(e)) for e in entries]
