"""Contacts: adding, changing, moving through roles and the pipeline, archiving, deleting.
Every rule about a contact's data is here, so the pages, bulk actions, imports and forms
all keep to it."""
from __future__ import annotations

import re

import phonenumbers
import sqlalchemy as sa

from core import tenant_cache
from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser
from core.permissions import can
from core.text import clean_line
from crm import custom_fields
from crm.access import acts_as_contact
from crm.models import Company, Contact, ContactRole, PipelineStatus
from crm.normalize import normalize_email, normalize_phone
from crm.search import index_contact
from crm.setup import config
from crm.timeline import record_activity

register_actions({
    "contact.created": "Contact added",
    "contact.updated": "Contact changed",
    "contact.role_changed": "Contact role changed",
    "contact.archived": "Contact moved to history",
    "contact.restored": "Contact restored from history",
    "contact.deleted": "Contact deleted",
})

TEXT_FIELDS = {  # field: (label for messages, longest allowed)
    "first_name": ("the first name", 100), "last_name": ("the last name", 100),
    "job_title": ("the job title", 200), "source": ("the source", 100), "street": ("the street", 200),
    "city": ("the city", 100), "postal_code": ("the postal code", 20), "region": ("the region", 100),
}
FIELD_LABELS = {
    "first_name": "first name", "last_name": "last name", "email": "e-mail", "extra_emails": "other e-mails",
    "phone": "phone", "extra_phones": "other phones", "street": "street", "city": "city",
    "postal_code": "postal code", "region": "region", "country": "country", "company_id": "company",
    "job_title": "job title", "source": "source", "notes": "notes", "social": "social links",
    "status_id": "status", "is_active": "active", "is_test": "test flag", "owner_id": "owner",
    "custom_fields": "custom fields",
}
SOCIAL_KEYS = {"website": "Website", "linkedin": "LinkedIn", "twitter": "X / Twitter", "facebook": "Facebook",
               "instagram": "Instagram"}
NOTES_MAX = 20_000
_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.I)


def _list_of(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[\n,;]+", value) if v.strip()]
    return [v for v in value if v and str(v).strip()]


def live_contact_with_email(email: str, *, except_id: int | None = None) -> Contact | None:
    """The active, unmerged, unarchived contact that holds this e-mail, if any."""
    query = sa.select(Contact).where(Contact.email == email, Contact.is_active.is_(True),
                                     Contact.archived_at.is_(None), Contact.merged_into_id.is_(None))
    if except_id is not None:
        query = query.where(Contact.id != except_id)
    return db.session.scalar(query)


def clean_fields(data: dict, *, region: str, primary_email: str | None = None) -> dict:
    """Check and normalise a contact's own fields among `data` (names, e-mails, phones,
    address, notes, social links), without touching the database: what a form, an import row
    and an API call share. ServiceError beside the first field in trouble."""
    out: dict = {}
    for name, (label, longest) in TEXT_FIELDS.items():
        if name in data:
            value = clean_line(data[name], label=label, field=name, max_length=longest, required=False)
            out[name] = value or ("" if name in ("first_name", "last_name") else None)
    if "email" in data:
        raw = (data["email"] or "").strip()
        try:
            out["email"] = normalize_email(raw) if raw else None
        except ValueError as exc:
            raise ServiceError(f"That e-mail address is not valid: {exc}", field="email") from None
    if "extra_emails" in data:
        cleaned = []
        for raw in _list_of(data["extra_emails"]):
            try:
                cleaned.append(normalize_email(raw))
            except ValueError:
                raise ServiceError(f"“{raw.strip()}” is not a valid e-mail address.", field="extra_emails") from None
        primary = out.get("email", primary_email)
        out["extra_emails"] = [e for e in dict.fromkeys(cleaned) if e != primary]
    for name in ("phone", "extra_phones"):
        if name in data:
            numbers = []
            for raw in ([data[name]] if name == "phone" else _list_of(data[name])):
                if raw and str(raw).strip():
                    try:
                        numbers.append(normalize_phone(str(raw), region))
                    except ValueError as exc:
                        raise ServiceError(str(exc), field=name) from None
            out[name] = (numbers[0] if numbers else None) if name == "phone" else list(dict.fromkeys(numbers))
    if "country" in data:
        country = (data["country"] or "").strip().upper()
        if country and country not in phonenumbers.SUPPORTED_REGIONS:
            raise ServiceError("Use a two-letter country code, such as US, GB or DE.", field="country")
        out["country"] = country or None
    if "notes" in data:
        notes = (data["notes"] or "").strip()
        if len(notes) > NOTES_MAX:
            raise ServiceError(f"Notes can be at most {NOTES_MAX:,} characters.", field="notes")
        out["notes"] = notes or None
    if "social" in data:
        social = {}
        for key, value in (data["social"] or {}).items():
            value = (value or "").strip()
            if key not in SOCIAL_KEYS or not value:
                continue
            if not _URL_RE.match(value):
                raise ServiceError(f"{SOCIAL_KEYS[key]}: enter a web address starting with https://.",
                                   field=f"social_{key}")
            social[key] = value
        out["social"] = social
    return out


def _clean(data: dict, contact: Contact | None, *, custom_field_keys: set[str] | None = None,
           email_checked: bool = False) -> dict:
    """Check and normalise submitted fields (only those present; of the custom fields, only
    `custom_field_keys` when given); ServiceError beside the first field in trouble.
    `email_checked`: the caller has just found, holding the e-mail's lock, that no contact
    answers to it (the unique index still stands behind)."""
    region = config().default_region
    out = clean_fields(data, region=region, primary_email=contact.email if contact else None)
    if "company_id" in data:
        company_id = data["company_id"] or None
        if company_id is not None and db.session.get(Company, int(company_id)) is None:
            raise ServiceError("Choose a company from the list.", field="company_id")
        out["company_id"] = int(company_id) if company_id else None
    if "status_id" in data and data["status_id"]:
        status = db.session.get(PipelineStatus, int(data["status_id"]))
        if status is None or status.archived_at is not None:
            raise ServiceError("Choose a status from the list.", field="status_id")
        out["status_id"] = status.id
    if "owner_id" in data:
        owner_id = data["owner_id"] or None
        if owner_id is not None:
            owner = db.session.get(StaffUser, int(owner_id))
            if owner is None or not owner.active:
                raise ServiceError("Choose an active member of the team as owner.", field="owner_id")
        out["owner_id"] = int(owner_id) if owner_id else None
    for flag in ("is_active", "is_test"):
        if flag in data:
            out[flag] = bool(data[flag])
    if "custom_fields" in data:
        values = custom_fields.clean_values("contact", data["custom_fields"] or {}, region=region,
                                            keys=custom_field_keys)
        out["custom_fields"] = {**(contact.custom_fields if contact else {}), **values}

    merged = {**({} if contact is None else {k: getattr(contact, k) for k in
                                              ("first_name", "last_name", "email", "phone")}), **out}
    if not any((merged.get("first_name"), merged.get("last_name"), merged.get("email"), merged.get("phone"))):
        raise ServiceError("Enter at least a name, an e-mail address or a phone number.", field="first_name")
    email = out.get("email")
    still_live = out.get("is_active", contact.is_active if contact else True)
    if email and still_live and not email_checked and (contact is None or contact.archived_at is None):
        holder = live_contact_with_email(email, except_id=contact.id if contact else None)
        if holder is not None:
            raise ServiceError(f"{holder.full_name} already has this e-mail address.", field="email")
    return out


def default_status_id() -> int | None:
    """The status new contacts get (from the process's cache at the tenant's configuration
    version: the pipeline is configuration)."""
    return tenant_cache.cached("default_status_id", lambda: db.session.scalar(
        sa.select(PipelineStatus.id).where(PipelineStatus.is_default.is_(True), PipelineStatus.archived_at.is_(None))))


def _resolve_company_name(data: dict, actor) -> dict:
    """`company_name` (typed on a form) becomes `company_id`: the tenant's company of that
    normalised name, or a new company."""
    if "company_name" not in data:
        return data
    data = dict(data)
    name = clean_line(data.pop("company_name"), label="the company's name", field="company_name", required=False)
    if not name:
        data["company_id"] = None
        return data
    from crm.companies import create_company, match_company

    company = match_company(name, threshold=100) or create_company({"name": name}, actor=actor)
    data["company_id"] = company.id
    return data


def create_contact(data: dict, *, actor=None, role: str = ContactRole.LEAD, activity: str | None = None,
                   email_checked: bool = False) -> Contact:
    """A new contact. `activity` is the timeline line ("Added by Sam", "Imported from …");
    `email_checked` as for _clean (crm.identity found nobody with the e-mail, under its lock)."""
    if role not in ContactRole.ALL:
        raise ServiceError("Choose Lead, Prospect or Client.", field="role")
    data = _resolve_company_name(data, actor)
    values = _clean(data, None, email_checked=email_checked)
    values.setdefault("status_id", default_status_id())
    if "owner_id" not in data and isinstance(actor, StaffUser):
        values["owner_id"] = actor.id
    now = utcnow()
    # Inserted with the time of its "created" entry as its latest activity: no UPDATE after.
    contact = Contact(role=role, last_activity_at=now, **values)
    db.session.add(contact)
    # Only the contact, for its id: the timeline entries and audit events waiting in the
    # session go out together with the ones that follow (one statement per table).
    db.session.flush([contact])
    index_contact(contact, fresh=True)
    who = getattr(actor, "display_name", None)
    record_activity("created", activity or (f"Added by {who}" if who else "Added"), contact=contact, actor=actor,
                    occurred_at=now)
    record("contact.created", contact, actor=actor, details={"role": role})
    return contact


def update_contact(contact: Contact, data: dict, *, actor=None, custom_field_keys: set[str] | None = None) -> list[str]:
    """Change fields; returns the names of those that changed. Status goes through
    change_status and role through change_role: they have rules of their own.
    `custom_field_keys`: the custom fields this change may touch (None: all of them)."""
    data = _resolve_company_name(dict(data), actor)
    new_status = data.pop("status_id", None)
    data.pop("role", None)
    values = _clean(data, contact, custom_field_keys=custom_field_keys)
    if "company_id" in values and values["company_id"] != contact.company_id:
        values["is_primary_contact"] = False  # the primary contact of the old company no longer
    order = list(FIELD_LABELS)  # report changes in the order the form shows them
    changed = sorted((name for name, value in values.items() if getattr(contact, name) != value),
                     key=lambda name: order.index(name) if name in order else len(order))
    for name in changed:
        setattr(contact, name, values[name])
    if changed:
        contact.updated_at = utcnow()
        index_contact(contact)
        labels = ", ".join(FIELD_LABELS.get(name, name) for name in changed)
        record_activity("updated", f"Changed {labels}", contact=contact, actor=actor, details={"fields": changed})
        record("contact.updated", contact, actor=actor, details={"fields": changed})
    if new_status and int(new_status) != contact.status_id:
        change_status(contact, int(new_status), actor=actor)
        changed.append("status_id")
    return changed


# What a contact may change about themselves on the portal, besides the custom fields staff
# marked editable by the contact: their names, phone and address. Their e-mail is their login.
OWN_DETAILS = ("first_name", "last_name", "phone", "street", "city", "postal_code", "region", "country")


def update_own_details(contact: Contact, data: dict, *, actor) -> list[str]:
    """The contact changing their own details on the portal (`actor`: their portal login):
    OWN_DETAILS and the custom fields editable by the contact, nothing else, whatever `data`
    holds. Checked as staff edits are; all saved or nothing; the timeline and the audit log
    name the contact's login as who did it. Returns the names of the fields that changed."""
    if not acts_as_contact(actor, contact.id):
        raise ServiceError("Only the contact can change their own details here.")
    own = {name: data[name] for name in OWN_DETAILS if name in data}
    editable = {field.key for field in custom_fields.editable_by_contact()}
    given = {k: v for k, v in (data.get("custom_fields") or {}).items() if k in editable}
    if given:
        own["custom_fields"] = given
    return update_contact(contact, own, actor=actor, custom_field_keys=set(given))


def change_role(contact: Contact, role: str, *, actor, confirmed: bool = False) -> bool:
    """Forward (Lead → Prospect → Client) is for anyone who may edit the contact; back is for
    roles with contacts.demote only, confirmed, and audited. Returns whether anything changed."""
    if role not in ContactRole.ALL:
        raise ServiceError("Choose Lead, Prospect or Client.", field="role")
    if role == contact.role:
        return False
    backwards = ContactRole.RANK[role] < ContactRole.RANK[contact.role]
    if backwards and not can(actor, "contacts.demote"):
        raise ServiceError(f"Your role may not move a contact back to {ContactRole.LABELS[role]}.",
                           field="role")
    if backwards and not confirmed:
        raise ServiceError(f"Moving {contact.full_name} back from {contact.role_label} to "
                           f"{ContactRole.LABELS[role]} needs confirming.", field="confirm")
    before = contact.role
    contact.role = role
    contact.updated_at = utcnow()
    record_activity("role_changed", f"Role changed from {ContactRole.LABELS[before]} to {ContactRole.LABELS[role]}",
                    contact=contact, actor=actor, details={"from": before, "to": role})
    record("contact.role_changed", contact, actor=actor, details={"from": before, "to": role, "backwards": backwards})
    return True


def change_status(contact: Contact, status_id: int, *, actor) -> bool:
    status = db.session.get(PipelineStatus, status_id)
    if status is None or status.archived_at is not None:
        raise ServiceError("Choose a status from the list.", field="status_id")
    if status.id == contact.status_id:
        return False
    before = contact.status.name if contact.status_id else None
    contact.status_id = status.id
    contact.updated_at = utcnow()
    record_activity("status_changed", f"Status changed from {before or 'none'} to {status.name}", contact=contact,
                    actor=actor, details={"from": before, "to": status.name})
    return True


def assign_owner(contact: Contact, owner: StaffUser | None, *, actor) -> bool:
    if owner is not None and not owner.active:
        raise ServiceError("Choose an active member of the team as owner.", field="owner_id")
    new_id = owner.id if owner is not None else None
    if new_id == contact.owner_id:
        return False
    contact.owner_id = new_id
    contact.updated_at = utcnow()
    record_activity("owner_changed", f"Owner changed to {owner.display_name if owner else 'nobody'}",
                    contact=contact, actor=actor)
    return True


def archive_contact(contact: Contact, *, actor) -> bool:
    if contact.archived_at is not None:
        return False
    contact.archived_at = utcnow()
    contact.is_primary_contact = False
    record_activity("archived", "Moved to history", contact=contact, actor=actor)
    record("contact.archived", contact, actor=actor)
    return True


def restore_contact(contact: Contact, *, actor) -> bool:
    if contact.archived_at is None:
        return False
    if contact.email and contact.is_active and live_contact_with_email(contact.email, except_id=contact.id):
        raise ServiceError(f"Another contact now has {contact.email}; change one of the two e-mails first.")
    contact.archived_at = None
    record_activity("restored", "Restored from history", contact=contact, actor=actor)
    record("contact.restored", contact, actor=actor)
    return True


def delete_contact(contact: Contact, *, actor) -> None:
    """Gone for good, with its notes, tasks and timeline (the audit log keeps the fact)."""
    merged = db.session.scalars(sa.select(Contact).where(Contact.merged_into_id == contact.id)).all()
    record("contact.deleted", contact, actor=actor, details={"merged_duplicates": len(merged)})
    for duplicate in merged:
        db.session.delete(duplicate)
    db.session.flush()
    db.session.delete(contact)
    db.session.flush()
