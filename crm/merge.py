"""Merging duplicate contacts into one.

merge_contacts(survivor, others, choices, actor=…) keeps `survivor` and folds `others` into it:

* Fields (FIELDS): for each, the value of the contact named in `choices` wins; a field left
  out of `choices` takes the survivor's value when it has one, else the first non-empty value
  of the others (role: the highest of them all). Address parts go together. Custom fields are
  chosen per key ("custom:<key>"). Social links: the chosen contact's, plus the links of
  networks only the others have. Combined, not chosen: every e-mail and phone is kept (those
  that are not the primary one become "other e-mails/phones"), and the notes are put one after
  the other.
* Records that move to the survivor: notes, tasks, timeline entries, event attendance (one row
  per event: the most advanced status wins: attended > accepted > declined > invited), circle
  memberships with their history (all rows move, so the survivor's circle history is whole;
  where two of them were current members of one circle, the earliest-added row stays current
  and the other is closed at the merge, by the merging actor), tags (the union; a tag both
  carry is kept once), staff members' list selections, and contacts merged into the others
  earlier (they now point straight at the survivor). The primary-contact flag of a company
  stays with the survivor when the survivor ends up at that company.
* Later features move their own rows with MERGE_HOOKS: `hook(survivor, merged, actor)` runs
  for each merged contact, inside the same transaction, after the moves above.
* The merged contacts keep their row (so their old ids redirect): merged_into_id = survivor,
  inactive, e-mail cleared (the survivor holds it among its other e-mails, and the unique index
  on live e-mails never sees two holders).
* One timeline entry on the survivor ("Merged with X, Y") and one audit event
  "contact.merged" (merged ids, names, the choices applied, the fields that changed).

All of it runs in one SAVEPOINT: when anything fails, nothing of the merge remains (and the
caller's own transaction is left as it was).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa

from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser
from core.permissions import can
from core.tenancy import current_tenant_id
from crm.access import contact_visible_to, visible_contacts_clause
from crm.contacts import FIELD_LABELS
from crm.identity import answers_to
from crm.models import (CircleMember, Contact, ContactRole, ContactTag, EventAttendee, Note, SelectedContact, Task,
                        TimelineEntry)
from crm.search import contact_matches, index_contacts
from crm.setup import settings
from crm.timeline import record_activity

register_actions({"contact.merged": "Contacts merged"})

# Later features register `hook(survivor, merged, actor)` here to move their own rows (form
# submissions, portal logins, payments…). Each runs once per merged contact, inside the
# merge's transaction; raising aborts the whole merge.
MERGE_HOOKS: list[Callable[[Contact, Contact, object], None]] = []

MAX_CONTACTS = 10  # merged at once, survivor included
ADDRESS = ("street", "city", "postal_code", "region", "country")
CUSTOM_PREFIX = "custom:"
ATTENDANCE_RANK = {"invited": 1, "declined": 2, "accepted": 3, "attended": 4}


@dataclass(frozen=True)
class MergeField:
    name: str  # the key in `choices`
    label: str
    columns: tuple[str, ...]  # Contact attributes taken together from the chosen contact


FIELDS: tuple[MergeField, ...] = (
    MergeField("first_name", "First name", ("first_name",)),
    MergeField("last_name", "Last name", ("last_name",)),
    MergeField("email", "E-mail", ("email",)),
    MergeField("phone", "Phone", ("phone",)),
    MergeField("address", "Address", ADDRESS),
    MergeField("company_id", "Company", ("company_id",)),
    MergeField("job_title", "Job title", ("job_title",)),
    MergeField("source", "Source", ("source",)),
    MergeField("social", "Social links", ("social",)),
    MergeField("role", "Role", ("role",)),
    MergeField("status_id", "Status", ("status_id",)),
    MergeField("owner_id", "Owner", ("owner_id",)),
    MergeField("is_active", "Active", ("is_active",)),
    MergeField("is_test", "Test flag", ("is_test",)),
)
FIELDS_BY_NAME = {f.name: f for f in FIELDS}
BOOLEAN_FIELDS = ("is_active", "is_test")  # never "empty": the survivor's value is the default


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def field_value(contact: Contact, name: str):
    """What a contact has for a merge field: a plain value, a tuple for the address, or the
    value of a custom field for "custom:<key>"."""
    if name.startswith(CUSTOM_PREFIX):
        return (contact.custom_fields or {}).get(name[len(CUSTOM_PREFIX):])
    columns = FIELDS_BY_NAME[name].columns
    if len(columns) > 1:
        values = tuple(getattr(contact, c) for c in columns)
        return None if all(_empty(v) for v in values) else values
    return getattr(contact, columns[0])


def custom_keys(contacts: list[Contact]) -> list[str]:
    """Custom field keys any of the contacts has a value for, in first-seen order."""
    keys: dict[str, None] = {}
    for contact in contacts:
        for key, value in (contact.custom_fields or {}).items():
            if not _empty(value):
                keys.setdefault(key)
    return list(keys)


def choice_names(contacts: list[Contact]) -> list[str]:
    """Every key `choices` may hold for these contacts."""
    return [f.name for f in FIELDS] + [CUSTOM_PREFIX + key for key in custom_keys(contacts)]


def default_choice(name: str, survivor: Contact, others: list[Contact]) -> int:
    """The survivor's value when it has one, else the first other's non-empty one; for the
    role, whoever is furthest along (Lead < Prospect < Client)."""
    everyone = [survivor, *others]
    if name == "role":
        return max(everyone, key=lambda c: ContactRole.RANK.get(c.role, 0)).id  # max keeps the first of equals
    if name in BOOLEAN_FIELDS:
        return survivor.id
    for contact in everyone:
        if not _empty(field_value(contact, name)):
            return contact.id
    return survivor.id


def default_choices(survivor: Contact, others: list[Contact]) -> dict[str, int]:
    return {name: default_choice(name, survivor, others) for name in choice_names([survivor, *others])}


def default_survivor(contacts: list[Contact]) -> Contact:
    """Which of these to keep when nobody said: a live (active, not in history) one first,
    then the one added first."""
    return min(contacts, key=lambda c: (not c.is_active, c.archived_at is not None, c.created_at, c.id))


def _check(survivor: Contact, others: list[Contact], actor) -> None:
    if not can(actor, "contacts.merge"):
        raise ServiceError("Your role may not merge contacts.")
    if not others:
        raise ServiceError("Choose at least two contacts to merge.", field="ids")
    everyone = [survivor, *others]
    if len({c.id for c in everyone}) != len(everyone):
        raise ServiceError("A contact is listed twice; the one kept cannot also be merged away.", field="ids")
    if len(everyone) > MAX_CONTACTS:
        raise ServiceError(f"Merge at most {MAX_CONTACTS} contacts at a time.", field="ids")
    tenant_id = current_tenant_id()
    for contact in everyone:
        if contact.id is None or contact.tenant_id != survivor.tenant_id or (
                tenant_id is not None and contact.tenant_id != tenant_id):
            raise ServiceError("These contacts cannot be merged: one of them was not found.", field="ids")
        if not contact_visible_to(actor, contact):
            raise ServiceError("These contacts cannot be merged: one of them was not found.", field="ids")
        if contact.merged_into_id is not None:
            raise ServiceError(f"{contact.full_name} was already merged into another contact.", field="ids")


def _resolve(choices: dict | None, survivor: Contact, others: list[Contact]) -> dict[str, Contact]:
    """{choice name: the contact whose value wins}, defaults filled in; refuses unknown fields
    and contacts outside the merge."""
    everyone = {c.id: c for c in [survivor, *others]}
    names = choice_names(list(everyone.values()))
    resolved = {}
    for name, contact_id in (choices or {}).items():
        if name not in FIELDS_BY_NAME and not name.startswith(CUSTOM_PREFIX):
            raise ServiceError(f"There is no field “{name}” to choose.", field=name)
        try:
            chosen = everyone.get(int(contact_id))
        except (TypeError, ValueError):
            chosen = None
        if chosen is None:
            raise ServiceError("Choose each value from one of the contacts being merged.", field=name)
        resolved[name] = chosen
    for name in names:
        resolved.setdefault(name, everyone[default_choice(name, survivor, others)])
    return resolved


def _unique(values) -> list:
    return [v for v in dict.fromkeys(v for v in values if v)]


def _merged_values(picked: dict[str, Contact], survivor: Contact, others: list[Contact]) -> dict:
    """The survivor's new attribute values, computed before anything is touched."""
    everyone = [survivor, *others]
    values: dict = {}
    for f in FIELDS:
        chosen = picked[f.name]
        for column in f.columns:
            values[column] = getattr(chosen, column)
    social = dict(picked["social"].social or {})
    for contact in everyone:
        for key, url in (contact.social or {}).items():
            if url and key not in social:
                social[key] = url
    values["social"] = social
    custom = {}
    for name, chosen in picked.items():
        if name.startswith(CUSTOM_PREFIX):
            value = field_value(chosen, name)
            if not _empty(value):
                custom[name[len(CUSTOM_PREFIX):]] = value
    # Keys nobody has a value for (empty strings, empty lists) stay as the survivor had them.
    values["custom_fields"] = {**{k: v for k, v in (survivor.custom_fields or {}).items() if _empty(v)}, **custom}
    emails = _unique([e for c in everyone for e in [c.email, *(c.extra_emails or [])]])
    values["extra_emails"] = [e for e in emails if e != values["email"]]
    phones = _unique([p for c in everyone for p in [c.phone, *(c.extra_phones or [])]])
    values["extra_phones"] = [p for p in phones if p != values["phone"]]
    notes = _unique([(c.notes or "").strip() for c in everyone])
    values["notes"] = "\n\n".join(notes) or None
    return values


def _check_email_free(values: dict, survivor: Contact, everyone: list[Contact]) -> None:
    email = values["email"]
    if not email or not values["is_active"] or survivor.archived_at is not None:
        return
    holder = db.session.scalar(sa.select(Contact).where(
        Contact.email == email, Contact.is_active.is_(True), Contact.archived_at.is_(None),
        Contact.merged_into_id.is_(None), Contact.id.not_in([c.id for c in everyone])))
    if holder is not None:
        raise ServiceError(f"{holder.full_name} already has {email}; choose another e-mail to keep.", field="email")


def _actor_id(actor) -> int | None:
    return actor.id if isinstance(actor, StaffUser) else None


def _move_simple_rows(survivor: Contact, merged_ids: list[int]) -> None:
    for model in (Note, Task, TimelineEntry):
        db.session.execute(sa.update(model).where(model.contact_id.in_(merged_ids))
                           .values(contact_id=survivor.id).execution_options(synchronize_session="fetch"))


def _move_attendance(survivor: Contact, ids: list[int]) -> None:
    rows = db.session.scalars(sa.select(EventAttendee).where(EventAttendee.contact_id.in_(ids))
                              .order_by(EventAttendee.added_at, EventAttendee.id)).all()
    keep: dict[int, EventAttendee] = {}
    for row in rows:
        best = keep.get(row.event_id)
        if best is None or ATTENDANCE_RANK.get(row.status, 0) > ATTENDANCE_RANK.get(best.status, 0) or (
                row.status == best.status and row.contact_id == survivor.id and best.contact_id != survivor.id):
            keep[row.event_id] = row
    kept = {id(r) for r in keep.values()}
    for row in rows:
        if id(row) not in kept:
            db.session.delete(row)
    db.session.flush()  # free (event, contact) before moving the kept rows onto the survivor
    for row in keep.values():
        if row.contact_id != survivor.id:
            # Invited through a circle and also directly: the kept row says how it came.
            row.contact_id = survivor.id
    db.session.flush()


def _move_memberships(survivor: Contact, ids: list[int], actor, now) -> None:
    rows = db.session.scalars(sa.select(CircleMember).where(CircleMember.contact_id.in_(ids))
                              .order_by(CircleMember.added_at, CircleMember.id)).all()
    current: set[int] = set()
    for row in rows:
        if row.removed_at is not None:
            continue
        if row.circle_id in current:  # a second current membership of one circle: close it
            row.removed_at = now
            row.removed_by_id = _actor_id(actor)
        else:
            current.add(row.circle_id)
    db.session.flush()  # closed before they join the survivor (one current row per circle)
    for row in rows:
        row.contact_id = survivor.id
    db.session.flush()


def _move_tags(survivor: Contact, ids: list[int]) -> None:
    rows = db.session.scalars(sa.select(ContactTag).where(ContactTag.contact_id.in_(ids))
                              .order_by(ContactTag.id)).all()
    keep: dict[int, ContactTag] = {}
    for row in sorted(rows, key=lambda r: r.contact_id != survivor.id):  # the survivor's own first
        keep.setdefault(row.tag_id, row)
    kept = {id(r) for r in keep.values()}
    for row in rows:
        if id(row) not in kept:
            db.session.delete(row)
    db.session.flush()
    for row in keep.values():
        row.contact_id = survivor.id
    db.session.flush()


def _move_selections(survivor: Contact, ids: list[int]) -> None:
    rows = db.session.scalars(sa.select(SelectedContact).where(SelectedContact.contact_id.in_(ids))
                              .order_by(SelectedContact.id)).all()
    keep: dict[int, SelectedContact] = {}
    for row in sorted(rows, key=lambda r: r.contact_id != survivor.id):
        keep.setdefault(row.staff_id, row)
    kept = {id(r) for r in keep.values()}
    for row in rows:
        if id(row) not in kept:
            db.session.delete(row)
    db.session.flush()
    for row in keep.values():
        row.contact_id = survivor.id
    db.session.flush()


def merge_contacts(survivor: Contact, others, choices: dict | None = None, *, actor) -> Contact:
    """Fold `others` into `survivor` (see the module's docstring); returns the survivor.
    `choices` maps a field name (FIELDS, or "custom:<key>") to the id of the contact whose
    value wins. Raises ServiceError, having changed nothing, when the merge is not allowed."""
    others = list(others)
    _check(survivor, others, actor)
    picked = _resolve(choices, survivor, others)
    values = _merged_values(picked, survivor, others)
    everyone = [survivor, *others]
    _check_email_free(values, survivor, everyone)
    merged_ids = [c.id for c in others]
    all_ids = [c.id for c in everyone]
    names = [c.full_name for c in others]
    primary = any(c.is_primary_contact and c.company_id is not None and c.company_id == values["company_id"]
                  for c in everyone)
    changed = [name for name, value in values.items() if getattr(survivor, name) != value]
    now = utcnow()

    with db.session.begin_nested():
        db.session.flush()
        # Free the unique slots first: no two live holders of an e-mail, one primary contact
        # per company, even for the instant between two UPDATEs.
        for contact in everyone:
            contact.is_primary_contact = False
        for contact in others:
            contact.email = None
            contact.merged_into_id = survivor.id
            contact.is_active = False
            contact.updated_at = now
        db.session.flush()

        for name, value in values.items():
            setattr(survivor, name, value)
        survivor.is_primary_contact = primary
        survivor.updated_at = now
        latest = [c.last_activity_at for c in everyone if c.last_activity_at is not None]
        survivor.last_activity_at = max(latest) if latest else None
        db.session.flush()
        index_contacts(everyone)

        _move_simple_rows(survivor, merged_ids)
        _move_attendance(survivor, all_ids)
        _move_memberships(survivor, all_ids, actor, now)
        _move_tags(survivor, all_ids)
        _move_selections(survivor, all_ids)
        db.session.execute(sa.update(Contact).where(Contact.merged_into_id.in_(merged_ids))
                           .values(merged_into_id=survivor.id).execution_options(synchronize_session="fetch"))
        for merged in others:
            for hook in MERGE_HOOKS:
                hook(survivor, merged, actor)

        fields = [FIELD_LABELS.get(name, name) for name in changed]
        record_activity("merged", f"Merged with {', '.join(names)}", contact=survivor, actor=actor,
                        details={"merged_ids": merged_ids, "names": names, "fields": changed})
        record("contact.merged", survivor, actor=actor, details={
            "merged_ids": merged_ids, "merged_names": names,
            "choices": {name: contact.id for name, contact in picked.items()},
            "changed": fields,
        })
        db.session.flush()
    return survivor


def related_counts(contacts: list[Contact]) -> dict[int, dict[str, int]]:
    """{contact id: {"notes": n, "tasks": n, …}}: what each contact brings to the survivor,
    one grouped query per kind of record."""
    ids = [c.id for c in contacts]
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    kinds = (("notes", Note, None), ("tasks", Task, None), ("activities", TimelineEntry, None),
             ("events", EventAttendee, None), ("circles", CircleMember, CircleMember.removed_at.is_(None)),
             ("tags", ContactTag, None))
    for label, model, extra in kinds:
        query = (sa.select(model.contact_id, sa.func.count()).where(model.contact_id.in_(ids))
                 .group_by(model.contact_id))
        if extra is not None:
            query = query.where(extra)
        for contact_id, n in db.session.execute(query):
            counts[contact_id][label] = n
    return counts


def find_candidates(text: str, staff, *, exclude: list[int], limit: int = 10) -> list[Contact]:
    """Contacts to add to a merge: one that answers to exactly this e-mail or phone (main or
    other, crm.identity), or every word of a name, e-mail or phone (the contact list's search
    text), live or inactive, not merged away, visible to `staff`."""
    conditions = contact_matches(text)
    if not conditions:
        return []
    exact = answers_to(text, region=settings().default_region)
    return list(db.session.scalars(
        sa.select(Contact)
        .where(sa.or_(exact, sa.and_(*conditions)), Contact.merged_into_id.is_(None),
               Contact.id.not_in(exclude or [0]), visible_contacts_clause(staff))
        .order_by(sa.case((exact, 0), else_=1), Contact.last_name, Contact.first_name, Contact.id)
        .limit(limit)
        .options(sa.orm.selectinload(Contact.company))))
