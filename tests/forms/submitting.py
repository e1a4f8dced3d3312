"""Helpers for submission tests: act as a tenant, submit as the public form does, read what
staff see."""
from __future__ import annotations

import itertools
from contextlib import contextmanager

import sqlalchemy as sa

from core.db import db
from core.identity import StaffUser
from core.tenancy import tenant_context
from crm.models import Contact, TimelineEntry
from forms.models import FormSubmission
from forms.submissions import receive_submission

_keys = itertools.count(1)


@contextmanager
def as_tenant(app, tenant_id: int):
    """A block run as the tenant, committed at its end (as a request would)."""
    with app.app_context(), tenant_context(tenant_id):
        yield
        db.session.commit()
    with app.app_context():
        db.session.remove()


def submit(app, tenant_id: int, form_id: int, answers: dict, **kwargs) -> int:
    """What the public form's view does once the answers are checked; returns the id."""
    from forms.models import Form

    kwargs.setdefault("idempotency_key", f"submit-{next(_keys)}")
    with as_tenant(app, tenant_id):
        submission, _ = receive_submission(db.session.get(Form, form_id), answers, **kwargs)
        return submission.id


def staff(world, role: str = "owner", tenant: str = "a") -> StaffUser:
    return db.session.get(StaffUser, getattr(world, tenant).members[role].id)


def contacts() -> list[Contact]:
    return list(db.session.scalars(sa.select(Contact).where(Contact.merged_into_id.is_(None)).order_by(Contact.id)))


def submission(submission_id: int) -> FormSubmission:
    return db.session.get(FormSubmission, submission_id)


def timeline(contact: Contact, kind: str | None = None) -> list[TimelineEntry]:
    query = sa.select(TimelineEntry).where(TimelineEntry.contact_id == contact.id)
    if kind:
        query = query.where(TimelineEntry.kind == kind)
    return list(db.session.scalars(query.order_by(TimelineEntry.occurred_at, TimelineEntry.id)))
