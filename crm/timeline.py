"""The activity log on a contact's (or company's) page. Every service that changes a record
in a way its people care about writes one entry here."""
from __future__ import annotations

from core.db import db, utcnow
from core.identity import current_principal
from crm.models import TimelineEntry


def record_activity(kind: str, summary: str, *, contact=None, company=None, details: dict | None = None,
                    subject=None, actor=None, occurred_at=None) -> TimelineEntry:
    actor = actor if actor is not None else current_principal()
    when = occurred_at or utcnow()
    entry = TimelineEntry(
        contact_id=contact.id if contact is not None else None,
        company_id=company.id if company is not None else None,
        kind=kind, summary=summary[:500], details=details or {},
        actor_id=getattr(actor, "id", None) if getattr(actor, "is_staff", False) else None,
        actor_label=getattr(actor, "display_name", None) or (None if actor is None else str(actor)),
        subject_type=type(subject).__name__.lower() if subject is not None else None,
        subject_id=getattr(subject, "id", None),
        occurred_at=when,
    )
    db.session.add(entry)
    if contact is not None:
        contact.last_activity_at = when
    return entry
