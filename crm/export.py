"""Exporting contacts to CSV and Excel: the rows a list or selection holds, written by the one
spreadsheet writer (core.spreadsheet), which defuses every cell, headers included."""
from __future__ import annotations

from typing import Iterator

import sqlalchemy as sa

from core.db import db
from core.spreadsheet import csv_chunks, xlsx_bytes
from crm import custom_fields
from crm.models import Company, Contact, PipelineStatus
from core.identity import StaffUser

BATCH = 1000
BASE_COLUMNS = [
    ("ID", lambda c, x: c.id), ("First name", lambda c, x: c.first_name), ("Last name", lambda c, x: c.last_name),
    ("E-mail", lambda c, x: c.email), ("Other e-mails", lambda c, x: "; ".join(c.extra_emails or [])),
    ("Phone", lambda c, x: c.phone), ("Other phones", lambda c, x: "; ".join(c.extra_phones or [])),
    ("Company", lambda c, x: x["companies"].get(c.company_id, "")), ("Job title", lambda c, x: c.job_title),
    ("Role", lambda c, x: c.role_label), ("Status", lambda c, x: x["statuses"].get(c.status_id, "")),
    ("Owner", lambda c, x: x["owners"].get(c.owner_id, "")), ("Active", lambda c, x: "yes" if c.is_active else "no"),
    ("Street", lambda c, x: c.street), ("City", lambda c, x: c.city), ("Postal code", lambda c, x: c.postal_code),
    ("Region", lambda c, x: c.region), ("Country", lambda c, x: c.country), ("Source", lambda c, x: c.source),
    ("Added", lambda c, x: c.created_at.isoformat(timespec="seconds") if c.created_at else ""),
    ("Last changed", lambda c, x: c.updated_at.isoformat(timespec="seconds") if c.updated_at else ""),
]
def _lookups() -> dict:
    return {
        "companies": dict(db.session.execute(sa.select(Company.id, Company.name)).all()),
        "statuses": dict(db.session.execute(sa.select(PipelineStatus.id, PipelineStatus.name)).all()),
        "owners": dict(db.session.execute(sa.select(StaffUser.id, StaffUser.name)).all()),
    }


def rows(query: sa.Select) -> Iterator[list]:
    """The header, then one list of cells per contact, read in batches (memory stays flat)."""
    fields = custom_fields.definitions("contact")
    lookups = _lookups()
    yield [name for name, _ in BASE_COLUMNS] + [f.label for f in fields]
    ordered = query.order_by(Contact.id).execution_options(yield_per=BATCH)
    for contact in db.session.scalars(ordered):
        values = [get(contact, lookups) for _, get in BASE_COLUMNS]
        for f in fields:
            value = (contact.custom_fields or {}).get(f.key)
            values.append("; ".join(value) if isinstance(value, list) else value)
        yield values


def to_csv(query: sa.Select) -> Iterator[str]:
    """The contacts as CSV text, in chunks."""
    return csv_chunks(rows(query))


# An Excel file is built whole before it is sent (a zip cannot be streamed as it is written):
# about ten seconds for this many rows. CSV streams, so any number of rows.
XLSX_MAX = 50_000


def xlsx_too_large(query: sa.Select) -> str | None:
    """Why this list is not offered as an Excel file, in plain words; None when it is."""
    from crm.contact_list import count_of

    if count_of(query, cap=XLSX_MAX) <= XLSX_MAX:
        return None
    return (f"Excel exports hold up to {XLSX_MAX:,} contacts and this list has more. Export it as CSV "
            "(Excel opens CSV files too), or narrow the list first.")


def to_xlsx(query: sa.Select) -> bytes:
    return xlsx_bytes(rows(query), "Contacts")
