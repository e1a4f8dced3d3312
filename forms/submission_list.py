"""Submissions as staff read them: one form's or all forms', newest first, found by keyset
("older than this one"), filtered by form and date; one submission's answers labelled by its
form's fields; the same rows as a spreadsheet.

A submission that landed on a contact the viewer may not see (crm.access) is that contact's
data as much as the contact is: the list shows only that it came (time, form, state), its page
is a 404 and exports leave it out. One not yet processed (no contact) is shown to whoever may
view submissions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator

import sqlalchemy as sa

from core.db import db
from core.errors import ServiceError
from core.permissions import can
from crm.access import visible_contacts_clause
from crm.contact_list import decode_values, encode_cursor
from crm.models import Contact
from crm.sections import contact_section
from forms.models import FieldKind, Form, FormSubmission, SubmissionState
from forms.processing import answer_rows, answer_text

PAGE_SIZE = 50
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


@dataclass
class Filters:
    form_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def from_args(cls, args, *, form_id: int | None = None) -> "Filters":
        """From the query string; a date that is not one is a ServiceError beside its input."""
        filters = cls(form_id=form_id)
        if form_id is None:
            raw = (args.get("form") or "").strip()
            filters.form_id = int(raw) if raw.isdigit() and len(raw) < 10 else None
        for name in ("date_from", "date_to"):
            raw = (args.get(name) or "").strip()
            if raw:
                try:
                    setattr(filters, name, date.fromisoformat(raw))
                except ValueError:
                    raise ServiceError("Enter a date as YYYY-MM-DD.", field=name) from None
        if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
            raise ServiceError("The first day comes after the last.", field="date_to")
        return filters

    def to_args(self) -> dict:
        return {k: v for k, v in (("form", self.form_id), ("date_from", self.date_from and self.date_from.isoformat()),
                                  ("date_to", self.date_to and self.date_to.isoformat())) if v}


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def filtered_query(filters: Filters) -> sa.Select:
    query = sa.select(FormSubmission)
    if filters.form_id is not None:
        query = query.where(FormSubmission.form_id == filters.form_id)
    if filters.date_from:
        query = query.where(FormSubmission.submitted_at >= _day_start(filters.date_from))
    if filters.date_to:
        query = query.where(FormSubmission.submitted_at < _day_start(filters.date_to + timedelta(days=1)))
    return query


@dataclass
class Row:
    submission: FormSubmission
    form_title: str
    contact: Contact | None  # None when there is none, or the viewer may not see it
    landed: bool  # it landed on a contact (visible or not)

    @property
    def hidden(self) -> bool:
        """It landed on a contact the viewer may not see: its answers are not theirs to read."""
        return self.landed and self.contact is None

    @property
    def utm(self) -> dict:
        return {k: v for k, v in (self.submission.utm or {}).items() if v}


@dataclass
class Page:
    rows: list[Row]
    next_cursor: str | None


def _decode(token: str | None) -> tuple[datetime, int] | None:
    values = decode_values(token)
    if not values or len(values) != 2 or not isinstance(values[0], str) or not isinstance(values[1], int):
        return None
    try:
        when = datetime.fromisoformat(values[0])
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)), values[1]


def _rows(submissions: list[FormSubmission], viewer) -> list[Row]:
    """Rows with their form's title and, where the viewer may see it, their contact: three
    queries for the page whatever its length."""
    form_ids = {s.form_id for s in submissions}
    titles = dict(db.session.execute(sa.select(Form.id, Form.title).where(Form.id.in_(form_ids))).all()) \
        if form_ids else {}
    contact_ids = {s.contact_id for s in submissions if s.contact_id}
    contacts = {}
    if contact_ids:
        contacts = {c.id: c for c in db.session.scalars(
            sa.select(Contact).where(Contact.id.in_(contact_ids), visible_contacts_clause(viewer)))}
    return [Row(s, titles.get(s.form_id, ""), contacts.get(s.contact_id), s.contact_id is not None)
            for s in submissions]


def page(filters: Filters, viewer, *, after: str | None = None, size: int = PAGE_SIZE) -> Page:
    """One page, newest first, and the cursor of the next (None on the last page)."""
    query = filtered_query(filters)
    cursor = _decode(after)
    if cursor is not None:
        when, last_id = cursor
        query = query.where(sa.or_(FormSubmission.submitted_at < when,
                                   sa.and_(FormSubmission.submitted_at == when, FormSubmission.id < last_id)))
    found = list(db.session.scalars(query.order_by(FormSubmission.submitted_at.desc(), FormSubmission.id.desc())
                                    .limit(size + 1)))
    next_cursor = None
    if len(found) > size:
        found = found[:size]
        last = found[-1]
        next_cursor = encode_cursor([last.submitted_at, last.id])
    return Page(_rows(found, viewer), next_cursor)


def xlsx_too_large(filters: Filters) -> str | None:
    """Why these submissions are not offered as an Excel file, in plain words; None when they are."""
    from crm.export import XLSX_MAX

    # Counted here, not by crm.contact_list.count_of: that one counts a query on Contact.
    inner = filtered_query(filters).with_only_columns(FormSubmission.id).limit(XLSX_MAX + 1).subquery()
    if db.session.scalar(sa.select(sa.func.count()).select_from(inner)) <= XLSX_MAX:
        return None
    return (f"Excel exports hold up to {XLSX_MAX:,} submissions and these are more. Export them as CSV "
            "(Excel opens CSV files too), or choose a form or fewer days first.")


def counts_by_form() -> dict[int, int]:
    return dict(db.session.execute(sa.select(FormSubmission.form_id, sa.func.count())
                                   .group_by(FormSubmission.form_id)).all())


def of_contact(contact: Contact, *, limit: int = 20) -> list[Row]:
    """The contact's latest submissions (its page shows them; whoever sees the contact may)."""
    found = list(db.session.scalars(sa.select(FormSubmission).where(FormSubmission.contact_id == contact.id)
                                    .order_by(FormSubmission.submitted_at.desc(), FormSubmission.id.desc())
                                    .limit(limit)))
    titles = dict(db.session.execute(sa.select(Form.id, Form.title).where(
        Form.id.in_({s.form_id for s in found}))).all()) if found else {}
    return [Row(s, titles.get(s.form_id, ""), contact, True) for s in found]


@contact_section("form_submissions")
def _contact_page_submissions(contact: Contact, viewer) -> list[Row] | None:
    return of_contact(contact) if can(viewer, "forms.submissions.view") else None


def row_for(submission: FormSubmission, viewer) -> Row:
    return _rows([submission], viewer)[0]


# --- export -------------------------------------------------------------------------------------------

def export_rows(filters: Filters, viewer) -> Iterator[list]:
    """The header, then one row per submission (newest first), every cell spreadsheet-safe.
    One form: a column per field. Several forms: the answers in one column, "label: value".
    Submissions on contacts the viewer may not see are left out."""
    form = db.session.get(Form, filters.form_id) if filters.form_id else None
    fields = [f for f in form.fields if f.kind not in FieldKind.NO_ANSWER] if form else []
    header = ["Submitted (UTC)", "Form", "Contact", "Contact e-mail", "Source URL", *UTM_KEYS, "State", "Error"]
    header += [f.label for f in fields] if form else ["Answers"]
    yield header
    forms_by_id: dict[int, Form] = {}
    after = None
    while True:
        result = page(filters, viewer, after=after, size=500)
        for row in result.rows:
            if row.hidden:
                # Left out rather than blanked: the CRM's exports hold only what the exporter may
                # see (hidden contacts do not exist for them), a copy taken away is no place to
                # learn that someone else's contact sent a form, and a row of blanks would read
                # as an empty submission in whatever the spreadsheet is fed to.
                continue
            s = row.submission
            contact = row.contact
            cells = [s.submitted_at.strftime("%Y-%m-%d %H:%M:%S") if s.submitted_at else "", row.form_title,
                     contact.full_name if contact else "",
                     contact.email if contact else "", s.source_url,
                     *[(s.utm or {}).get(k, "") for k in UTM_KEYS],
                     SubmissionState.LABELS.get(s.state, s.state), s.error]
            if form:
                cells += [answer_text((s.answers or {}).get(f.key), f.kind) for f in fields]
            else:
                if s.form_id not in forms_by_id:
                    forms_by_id[s.form_id] = db.session.get(Form, s.form_id)
                cells.append("\n".join(f"{label}: {text}" for label, text in answer_rows(forms_by_id[s.form_id],
                                                                                        s.answers or {})))
            yield cells
        if result.next_cursor is None:
            break
        after = result.next_cursor
