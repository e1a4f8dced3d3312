"""Factories for CRM records: call them inside a tenant context (tenant_context or a request).
Each returns the flushed object; keyword arguments override the defaults."""
from __future__ import annotations

import itertools

import sqlalchemy as sa

from core.db import db, utcnow
from crm.models import (Circle, CircleItem, CircleMember, Company, Contact, CustomField, Event, EventAttendee, Note,
                        PipelineStatus, Segment, Tag, Task, TimelineEntry)
from crm.normalize import company_name_key
from crm.search import index_contact

_seq = itertools.count(1)


def _add(obj):
    db.session.add(obj)
    db.session.flush()
    return obj


def make_company(name: str | None = None, **fields) -> Company:
    name = name or f"Company {next(_seq)}"
    return _add(Company(name=name, name_key=company_name_key(name), **fields))


def make_contact(first_name: str = "Pat", last_name: str | None = None, **fields) -> Contact:
    n = next(_seq)
    last_name = last_name if last_name is not None else f"Person{n}"
    fields.setdefault("email", f"{first_name}.{last_name}.{n}@example.com".lower())
    if "status_id" not in fields:
        fields["status_id"] = db.session.scalar(
            sa.select(PipelineStatus.id).where(PipelineStatus.is_default.is_(True)))
    contact = _add(Contact(first_name=first_name, last_name=last_name, **fields))
    index_contact(contact)
    return contact


def make_circle(name: str | None = None, **fields) -> Circle:
    return _add(Circle(name=name or f"Circle {next(_seq)}", **fields))


def add_to_circle(circle: Circle, *, contact: Contact | None = None, company: Company | None = None) -> CircleMember:
    return _add(CircleMember(circle_id=circle.id, contact_id=contact.id if contact else None,
                             company_id=company.id if company else None))


def make_circle_item(circle: Circle, kind: str = "page", title: str | None = None, *, published: bool = True,
                     data: bytes | None = None, **fields) -> CircleItem:
    """A page, link or file of the circle, published unless told otherwise; a file's bytes are
    really stored (core.storage), as an upload would leave them."""
    from core.storage import new_key, storage
    fields.setdefault("position", next(_seq))
    if kind == "page":
        fields.setdefault("body", "<p>Welcome to the circle.</p>")
    elif kind == "link":
        fields.setdefault("url", "https://example.com/guide")
    elif kind == "file":
        import io
        data = data if data is not None else b"%PDF-1.4\n% a small PDF\n%%EOF\n"
        key = new_key(f"circle-files/{circle.tenant_id}/{circle.id}")
        storage().put(key, io.BytesIO(data))
        fields.setdefault("file_name", "guide.pdf")
        fields.setdefault("content_type", "application/pdf")
        fields.update(storage_key=key, file_size=len(data))
    return _add(CircleItem(circle_id=circle.id, kind=kind, title=title or f"{kind.title()} {next(_seq)}",
                           published_at=utcnow() if published else None, **fields))


def make_tag(name: str | None = None) -> Tag:
    name = name or f"tag{next(_seq)}"
    return _add(Tag(name=name, key=name.casefold()))


def make_note(contact: Contact, body: str = "Called, left a message.", **fields) -> Note:
    return _add(Note(contact_id=contact.id, body=body, **fields))


def make_task(title: str = "Follow up", **fields) -> Task:
    return _add(Task(title=title, **fields))


def make_event(title: str | None = None, **fields) -> Event:
    fields.setdefault("starts_at", utcnow())
    return _add(Event(title=title or f"Event {next(_seq)}", **fields))


def add_attendee(event: Event, contact: Contact, **fields) -> EventAttendee:
    return _add(EventAttendee(event_id=event.id, contact_id=contact.id, **fields))


def make_custom_field(label: str = "Shoe size", field_type: str = "number", entity: str = "contact",
                      **fields) -> CustomField:
    key = label.lower().replace(" ", "_")
    return _add(CustomField(entity=entity, key=key, label=label, field_type=field_type, **fields))


def make_segment(name: str | None = None, filters: dict | None = None, **fields) -> Segment:
    return _add(Segment(name=name or f"Segment {next(_seq)}", filters=filters or {}, **fields))


def make_timeline_entry(contact: Contact, summary: str = "Something happened", **fields) -> TimelineEntry:
    fields.setdefault("kind", "note")
    return _add(TimelineEntry(contact_id=contact.id, summary=summary, **fields))


def make_operation(started_by_id: int, refs: list[int] | None = None, title: str = "Add a tag: hot", **fields):
    """A background operation (core.operations) over `refs`, as a bulk change would leave it."""
    from core.operations import Operation, OperationChunk
    fields.setdefault("kind", "contacts.bulk")
    fields.setdefault("params", {"action": "tag", "tag_name": "hot"})
    refs = refs or []
    operation = _add(Operation(title=title, started_by_id=started_by_id, total=len(refs), **fields))
    if refs:
        _add(OperationChunk(operation_id=operation.id, seq=0, refs=refs))
    return operation


def make_import(filename: str = "people.csv", header: list[str] | None = None, rows: list | None = None, **fields):
    """An uploaded import, not started: its rows frozen, its columns guessed."""
    from crm.imports.mapping import guess_mapping
    from crm.imports.models import ContactImport, ContactImportChunk
    header = header or ["Name", "Email"]
    rows = rows or [[2, ["Ann Lee", "ann@example.com"]]]
    fields.setdefault("file_format", "csv")
    upload = _add(ContactImport(filename=filename, header=header, row_count=len(rows),
                                mapping=guess_mapping(header, fields=[]), **fields))
    _add(ContactImportChunk(import_id=upload.id, seq=0, rows=rows))
    return upload


def make_portal_account(contact: Contact, **fields):
    """A portal login for `contact`, as the services would leave it (no e-mails, no audit):
    pending approval, no password, e-mail not verified, unless told otherwise."""
    from portal.models import PortalAccount
    fields.setdefault("email", (contact.email or f"contact{contact.id}@example.com").lower())
    fields.setdefault("approval", "pending")
    return _add(PortalAccount(contact_id=contact.id, **fields))


def make_portal_login(contact: Contact, password: str | None = None, **fields):
    """A portal login that may sign in (approved, e-mail confirmed, with `password`, by default
    tests.support.PASSWORD); whether it can also depends on the contact (a Prospect or Client,
    active)."""
    from core.identity import hash_password
    from tests.support import PASSWORD
    fields.setdefault("approval", "approved")
    fields.setdefault("email_verified_at", utcnow())
    fields.setdefault("password_hash", hash_password(password or PASSWORD))
    return make_portal_account(contact, **fields)


def seed_crm(marker: str = "") -> dict[str, list[int]]:
    """One of everything, for the cross-tenant harness: names carry `marker`, so a leak of
    another tenant's record is visible. Returns {model name: [ids]}."""
    company = make_company(f"{marker}Initrode Ltd")
    contact = make_contact(f"{marker}Casey", "Client", company_id=company.id, role="client",
                           phone="+14155550123", notes=f"{marker}private notes")
    lead = make_contact(f"{marker}Lee", "Lead", role="lead")
    circle = make_circle(f"{marker}VIP circle")
    add_to_circle(circle, contact=contact)
    add_to_circle(circle, company=company)
    page = make_circle_item(circle, "page", f"{marker}Members' page", body=f"<p>{marker}members only</p>")
    document = make_circle_item(circle, "file", f"{marker}Price list", file_name=f"{marker}prices.pdf")
    tag = make_tag(f"{marker}hot")
    tag_record(tag, contact=contact)
    tag_record(tag, company=company)
    note = make_note(contact, f"{marker}note body")
    task = make_task(f"{marker}call back", contact_id=contact.id)
    event = make_event(f"{marker}Open day")
    add_attendee(event, contact)
    field = make_custom_field(f"{marker}Budget".strip() or "Budget", "number")
    segment = make_segment(f"{marker}Hot leads", {"role": ["lead"]})
    make_timeline_entry(contact, f"{marker}timeline entry")
    statuses = list(db.session.scalars(sa.select(PipelineStatus.id)))
    # A running bulk change started by the tenant's first Staff member: every role of the
    # tenant may see it (Owners and Admins see all, the Staff member their own).
    from core.identity import StaffUser
    starter = db.session.scalar(sa.select(StaffUser.id).where(StaffUser.role == "staff").order_by(StaffUser.id))
    operation = make_operation(starter, [contact.id, lead.id], title=f"{marker}Add a tag: hot", status="running")
    upload = make_import(f"{marker}people.csv", [f"{marker}Name", "Email"], [[2, [f"{marker}Ann", "ann@example.com"]]],
                         created_by_id=starter)
    # A registrant waiting in the approval queue (and whose links the harness aims at).
    account = make_portal_account(contact, source=f"{marker}Kickoff form")
    return {"PortalAccount": [account.id], "Company": [company.id], "Contact": [contact.id, lead.id], "Circle": [circle.id],
            "CircleItem": [page.id, document.id], "Tag": [tag.id],
            "Note": [note.id], "Task": [task.id], "Event": [event.id], "CustomField": [field.id],
            "Segment": [segment.id], "PipelineStatus": statuses, "Operation": [operation.id],
            "ContactImport": [upload.id]}


# --- circles and tags (tests/crm/test_circles.py, test_tags.py) ----------------------------------

def assign_to_circle(circle: Circle, staff_id: int):
    """Assign a staff member to a circle (CircleStaff)."""
    from crm.models import CircleStaff
    return _add(CircleStaff(circle_id=circle.id, staff_id=staff_id))


def tag_record(tag: Tag, *, contact: Contact | None = None, company: Company | None = None):
    """Put an existing tag on a contact or a company."""
    from crm.models import CompanyTag, ContactTag
    if contact is not None:
        return _add(ContactTag(contact_id=contact.id, tag_id=tag.id))
    return _add(CompanyTag(company_id=company.id, tag_id=tag.id))


def restrict_staff_visibility(restricted: bool = True) -> None:
    """The tenant's CRM setting: Staff see only their own contacts and their circles' (True),
    or every contact (False)."""
    from crm.models import CrmSettings
    from crm.setup import settings
    settings().staff_visibility = CrmSettings.OWN_OR_CIRCLES if restricted else CrmSettings.ALL_CONTACTS
    db.session.flush()
