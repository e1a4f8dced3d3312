"""Companies: their details, their people, and which of them is the primary contact."""
from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
import sqlalchemy as sa

from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser
from core.text import clean_line
from crm import custom_fields
from crm.models import Company, CompanyTag, Contact, ContactRole
from crm.access import contact_visible_to, visible_contacts_clause
from crm.normalize import company_name_key, normalize_phone
from crm.search import contains_every_word, index_contacts
from crm.setup import config
from crm.timeline import record_activity

register_actions({
    "company.created": "Company added",
    "company.updated": "Company changed",
    "company.deleted": "Company deleted",
})

TEXT_FIELDS = {"street": ("the street", 200), "city": ("the city", 100), "postal_code": ("the postal code", 20),
               "region": ("the region", 100)}
_DOMAIN_RE = re.compile(r"^(?=.{3,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def clean_company_details(data: dict) -> dict:
    """A company's details other than its name (domain, phone, address), checked as the
    company form checks them: an import reads them for the companies it adds."""
    return _clean(data, None, name_required=False)


def _clean(data: dict, company: Company | None, *, name_required: bool = True) -> dict:
    out: dict = {}
    if "name" in data or (company is None and name_required):
        out["name"] = clean_line(data.get("name"), label="the company's name", field="name")
        out["name_key"] = company_name_key(out["name"])
    for name, (label, longest) in TEXT_FIELDS.items():
        if name in data:
            out[name] = clean_line(data[name], label=label, field=name, max_length=longest, required=False)
    if "domain" in data:
        domain = (data["domain"] or "").strip().lower()
        domain = re.sub(r"^https?://", "", domain).split("/")[0].removeprefix("www.")
        if domain and not _DOMAIN_RE.match(domain):
            raise ServiceError("Enter a domain like example.com.", field="domain")
        out["domain"] = domain or None
    if "phone" in data:
        raw = (data["phone"] or "").strip()
        try:
            out["phone"] = normalize_phone(raw, config().default_region) if raw else None
        except ValueError as exc:
            raise ServiceError(str(exc), field="phone") from None
    if "country" in data:
        country = (data["country"] or "").strip().upper()
        if country and country not in phonenumbers.SUPPORTED_REGIONS:
            raise ServiceError("Use a two-letter country code, such as US, GB or DE.", field="country")
        out["country"] = country or None
    if "role" in data:
        if data["role"] not in ContactRole.ALL:
            raise ServiceError("Choose Lead, Prospect or Client.", field="role")
        out["role"] = data["role"]
    if "owner_id" in data:
        owner_id = data["owner_id"] or None
        if owner_id is not None:
            owner = db.session.get(StaffUser, int(owner_id))
            if owner is None or not owner.active:
                raise ServiceError("Choose an active member of the team as owner.", field="owner_id")
        out["owner_id"] = int(owner_id) if owner_id else None
    if "custom_fields" in data:
        values = custom_fields.clean_values("company", data["custom_fields"] or {}, region=config().default_region)
        out["custom_fields"] = {**(company.custom_fields if company else {}), **values}
    return out


def create_company(data: dict, *, actor=None) -> Company:
    values = _clean(data, None)
    if "owner_id" not in data and isinstance(actor, StaffUser):
        values["owner_id"] = actor.id
    company = Company(**values)
    db.session.add(company)
    db.session.flush()
    record_activity("created", f"Added by {actor.display_name}" if actor else "Added", company=company, actor=actor)
    record("company.created", company, actor=actor)
    return company


def update_company(company: Company, data: dict, *, actor=None) -> list[str]:
    values = _clean(data, company)
    changed = [name for name, value in values.items() if getattr(company, name) != value and name != "name_key"]
    for name, value in values.items():
        setattr(company, name, value)
    if changed:
        company.updated_at = utcnow()
        if "name" in changed:
            index_contacts(contacts_of(company, include_archived=True))
        record_activity("updated", "Changed " + ", ".join(n.replace("_", " ") for n in changed), company=company,
                        actor=actor, details={"fields": changed})
        record("company.updated", company, actor=actor, details={"fields": changed})
    return changed


def delete_company(company: Company, *, actor=None) -> int:
    """Delete the company; its contacts stay, without a company. Returns how many were detached."""
    people = contacts_of(company, include_archived=True)
    for contact in people:
        contact.company_id = None
        contact.is_primary_contact = False
    db.session.flush()
    record("company.deleted", company, actor=actor, details={"contacts_detached": len(people)})
    db.session.delete(company)
    db.session.flush()
    return len(people)


def contacts_of(company: Company, *, include_archived: bool = False) -> list[Contact]:
    query = sa.select(Contact).where(Contact.company_id == company.id, Contact.merged_into_id.is_(None)) \
        .order_by(Contact.is_primary_contact.desc(), Contact.last_name, Contact.first_name, Contact.id)
    if not include_archived:
        query = query.where(Contact.archived_at.is_(None))
    return list(db.session.scalars(query))


def primary_contact_of(company: Company) -> Contact | None:
    return db.session.scalar(sa.select(Contact).where(Contact.company_id == company.id,
                                                      Contact.is_primary_contact.is_(True)))


def set_primary_contact(company: Company, contact: Contact | None, *, actor=None) -> None:
    """Make `contact` (one of the company's own) its primary contact; None clears it."""
    # Only a staff member's view of the contacts is limited: a kickoff form (a system actor) is not.
    if contact is not None and getattr(actor, "is_staff", False) and not contact_visible_to(actor, contact):
        raise ServiceError("Choose one of the company's contacts.", field="primary_contact_id")
    if contact is not None and contact.company_id != company.id:
        raise ServiceError(f"{contact.full_name} does not work at {company.name}.", field="primary_contact_id")
    current = primary_contact_of(company)
    if current is not None and (contact is None or current.id != contact.id):
        current.is_primary_contact = False
        db.session.flush()  # the unique index allows one primary per company at a time
    if contact is not None and not contact.is_primary_contact:
        contact.is_primary_contact = True
        record_activity("primary_contact", f"{contact.full_name} is now the primary contact", company=company,
                        subject=contact, actor=actor)
    db.session.flush()


def match_company(name: str, *, threshold: int = 90) -> Company | None:
    """The tenant's company this name means: the same normalised name, else the closest one
    scoring at least `threshold` (0-100) by fuzzy comparison."""
    key = company_name_key(name or "")
    if not key:
        return None
    exact = db.session.scalar(sa.select(Company).where(Company.name_key == key).order_by(Company.id).limit(1))
    if exact is not None:
        return exact
    from rapidfuzz import fuzz, process  # here: only form jobs and imports match companies (~3 MB a worker)

    best = process.extractOne(key, _fuzzy_candidates(key), scorer=fuzz.token_sort_ratio, score_cutoff=threshold)
    return db.session.get(Company, best[2]) if best else None


# The names a fuzzy match is decided among. On PostgreSQL, those sharing enough trigrams with
# the name (pg_trgm's `%`, at its default similarity of 0.3: far below what a score of 90
# needs), closest first, from the trigram index; elsewhere every name of the tenant.
TRIGRAM_CANDIDATES = 50


def _fuzzy_candidates(key: str) -> dict[int, str]:
    query = sa.select(Company.id, Company.name_key)
    if db.session.get_bind().dialect.name == "postgresql":
        query = (query.where(Company.name_key.op("%")(key))
                 .order_by(sa.func.similarity(Company.name_key, key).desc()).limit(TRIGRAM_CANDIDATES))
    return dict(db.session.execute(query).all())


PAGE_SIZE = 50


@dataclass
class CompanyPage:
    companies: list[Company]
    people: dict[int, int]  # company id -> its contacts the viewer may see
    total: int
    next_cursor: str | None


def company_page(q: str | None, after: str | None, staff, *, tag_id: int | None = None,
                 size: int = PAGE_SIZE) -> CompanyPage:
    """One page of the company list by name, searched like everything else (crm.search),
    with `tag_id` only the companies carrying that tag, found by keyset so a deep page costs
    what the first does."""
    from crm.contact_list import decode_values, encode_cursor

    query = sa.select(Company).where(Company.archived_at.is_(None), *contains_every_word(Company.name_key, q))
    if tag_id is not None:
        query = query.where(sa.select(CompanyTag.id).where(
            CompanyTag.tenant_id == Company.tenant_id, CompanyTag.company_id == Company.id,
            CompanyTag.tag_id == tag_id).exists())
    total = db.session.scalar(sa.select(sa.func.count()).select_from(
        query.with_only_columns(Company.id).subquery()))
    cursor = decode_values(after)
    if cursor and len(cursor) == 2 and isinstance(cursor[0], str) and isinstance(cursor[1], int):
        query = query.where(sa.tuple_(Company.name_key, Company.id) > sa.tuple_(sa.literal(cursor[0]),
                                                                                 sa.literal(cursor[1])))
    rows = list(db.session.scalars(query.order_by(Company.name_key, Company.id).limit(size + 1)))
    next_cursor = encode_cursor([rows[size - 1].name_key, rows[size - 1].id]) if len(rows) > size else None
    rows = rows[:size]
    people = dict(db.session.execute(
        sa.select(Contact.company_id, sa.func.count()).where(
            Contact.company_id.in_([c.id for c in rows]), Contact.archived_at.is_(None),
            Contact.merged_into_id.is_(None), visible_contacts_clause(staff))
        .group_by(Contact.company_id)).all()) if rows else {}
    return CompanyPage(rows, people, total, next_cursor)


def people_of(company: Company, staff) -> list[Contact]:
    """The company's current contacts that `staff` may see, the primary contact first."""
    return list(db.session.scalars(
        sa.select(Contact).where(Contact.company_id == company.id, Contact.archived_at.is_(None),
                                 Contact.merged_into_id.is_(None), visible_contacts_clause(staff))
        .order_by(Contact.is_primary_contact.desc(), Contact.last_name, Contact.first_name, Contact.id)))


def company_led_by(contact: Contact) -> Company | None:
    """The company `contact` is the primary contact of (what the portal's company page shows
    them), or None: only a current primary contact of a live company speaks for it."""
    if not contact.is_primary_contact or contact.company_id is None or contact.archived_at is not None \
            or contact.merged_into_id is not None:
        return None
    company = db.session.get(Company, contact.company_id)
    return company if company is not None and company.archived_at is None else None


def colleagues_of(contact: Contact, company: Company) -> list[Contact]:
    """The company's other current, active contacts, by name: whom its primary contact sees on
    the portal's company page."""
    return [c for c in contacts_of(company) if c.id != contact.id and c.is_active]
