"""Which column of a file fills which field of a contact, and what a row becomes under it.

A mapping is one target per column, in column order: a contact field ("email"), "full_name"
(a single Name column, split into first and last), a custom field ("cf:<key>"), "new" (a new
text custom field named after the column, made when the import starts) or "" (ignored).
Columns are guessed from their headers: the names other systems export under (Google
Contacts, Outlook, HubSpot, Salesforce, Mailchimp) and common synonyms; a mapping saved by
the team wins over the guess.

`clean_row` checks a mapped row with the contact services' own checks (crm.contacts.
clean_fields, crm.custom_fields.clean_value), field by field, so the preview shows every
problem of a row at once and the import refuses the same rows with the same words.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from core.db import db
from core.errors import ServiceError
from core.spreadsheet import FORMULA_STARTS
from crm import custom_fields
from crm.companies import clean_company_details
from crm.contacts import clean_fields
from crm.models import CustomField
from crm.normalize import fold

IGNORE, FULL_NAME, NEW_FIELD, CUSTOM = "", "full_name", "new", "cf:"
# Targets about the row's company rather than the contact: the details fill a company the
# import adds (an existing company is matched by name and left as it is).
COMPANY_TARGETS = ("company_name", "company_domain", "company_phone")
FIELDS = {  # target: label, in the order the mapping page lists them
    "first_name": "First name", "last_name": "Last name", FULL_NAME: "Full name (split into first and last)",
    "email": "E-mail", "extra_emails": "Other e-mail", "phone": "Phone", "extra_phones": "Other phone",
    "company_name": "Company", "company_domain": "Company website or domain", "company_phone": "Company phone",
    "job_title": "Job title", "street": "Street", "city": "City",
    "postal_code": "Postal code", "region": "Region or state", "country": "Country", "source": "Source",
    "notes": "Notes", "tags": "Tags",
}
# Targets several columns may fill: their values add up (notes are joined, lists merged).
MULTI = {"extra_emails", "extra_phones", "notes", "tags"}
NAME_TARGETS = {"first_name", "last_name", FULL_NAME}
IDENTITY = NAME_TARGETS | {"email", "phone"}

# Folded header (letters and digits only) -> target. Numbered exports ("E-mail 2 - Value")
# fold their number away first; the second of a kind goes to the "other" field.
_SYNONYMS = {
    "firstname": "first_name", "givenname": "first_name", "forename": "first_name", "first": "first_name",
    "vorname": "first_name", "prenom": "first_name", "nombre": "first_name",
    "lastname": "last_name", "familyname": "last_name", "surname": "last_name", "last": "last_name",
    "nachname": "last_name", "nom": "last_name", "apellido": "last_name", "apellidos": "last_name",
    "name": FULL_NAME, "fullname": FULL_NAME, "contactname": FULL_NAME, "contact": FULL_NAME,
    "displayname": FULL_NAME, "yourname": FULL_NAME,
    "email": "email", "emailaddress": "email", "mail": "email", "emailvalue": "email", "primaryemail": "email",
    "workemail": "email", "businessemail": "email", "personalemail": "email", "homeemail": "email",
    "otheremail": "extra_emails", "secondaryemail": "extra_emails", "emailaddress2": "extra_emails",
    "phone": "phone", "phonenumber": "phone", "phonevalue": "phone", "telephone": "phone", "tel": "phone",
    "mobile": "phone", "mobilephone": "phone", "mobilephonenumber": "phone", "cell": "phone",
    "cellphone": "phone", "businessphone": "phone", "workphone": "phone", "homephone": "phone",
    "primaryphone": "phone", "telefon": "phone", "telefono": "phone",
    "otherphone": "extra_phones", "secondaryphone": "extra_phones", "businessphone2": "extra_phones",
    "company": "company_name", "companyname": "company_name", "organization": "company_name",
    "organisation": "company_name", "organizationname": "company_name", "organisationname": "company_name",
    "accountname": "company_name", "account": "company_name", "employer": "company_name",
    "firma": "company_name", "empresa": "company_name", "business": "company_name",
    "website": "company_domain", "companywebsite": "company_domain", "companydomain": "company_domain",
    "domain": "company_domain", "webaddress": "company_domain", "webpage": "company_domain",
    "homepage": "company_domain", "web": "company_domain", "companyphone": "company_phone",
    "companyphonenumber": "company_phone", "accountphone": "company_phone", "mainphone": "company_phone",
    "jobtitle": "job_title", "title": "job_title", "position": "job_title", "role": "job_title",
    "organizationtitle": "job_title", "organisationtitle": "job_title", "occupation": "job_title",
    "street": "street", "streetaddress": "street", "address": "street", "address1": "street",
    "addressstreet": "street", "businessstreet": "street", "homestreet": "street", "mailingstreet": "street",
    "addressline1": "street", "billingstreet": "street",
    "city": "city", "town": "city", "addresscity": "city", "businesscity": "city", "homecity": "city",
    "mailingcity": "city", "billingcity": "city", "ort": "city", "ciudad": "city", "ville": "city",
    "postalcode": "postal_code", "postcode": "postal_code", "zip": "postal_code", "zipcode": "postal_code",
    "zippostalcode": "postal_code", "addresspostalcode": "postal_code", "businesspostalcode": "postal_code",
    "homepostalcode": "postal_code", "mailingzippostalcode": "postal_code", "mailingpostalcode": "postal_code",
    "plz": "postal_code", "billingzippostalcode": "postal_code",
    "region": "region", "state": "region", "province": "region", "stateregion": "region", "county": "region",
    "addressregion": "region", "businessstate": "region", "homestate": "region",
    "mailingstateprovince": "region", "stateprovince": "region", "billingstateprovince": "region",
    "country": "country", "countryregion": "country", "countrycode": "country", "addresscountry": "country",
    "businesscountryregion": "country", "homecountryregion": "country", "mailingcountry": "country",
    "billingcountry": "country", "land": "country", "pais": "country", "pays": "country",
    "source": "source", "leadsource": "source", "origin": "source", "originalsource": "source",
    "notes": "notes", "note": "notes", "description": "notes", "comments": "notes", "comment": "notes",
    "remarks": "notes",
    "tags": "tags", "tag": "tags", "labels": "tags", "label": "tags", "categories": "tags", "groups": "tags",
    "groupmembership": "tags",
}
# Parts of a header that say nothing about its field: "E-mail 1 - Value", "Address 1 - City".
_NOISE = re.compile(r"\d+|value|address(?=city|street|region|country|postalcode)")
# Columns that describe another ("E-mail 1 - Type", "Phone 1 - Label"): never a field.
_DESCRIBES = re.compile(r"(type|label)$")


def header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(header))


def _guess(header: str) -> str:
    key = header_key(header)
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    if _DESCRIBES.search(key) and key not in ("jobtitle", "title"):
        return IGNORE
    return _SYNONYMS.get(_NOISE.sub("", key), IGNORE)


@dataclass
class Target:
    value: str
    label: str
    group: str


def targets(fields: list[CustomField] | None = None) -> list[Target]:
    """What a column can fill, for the mapping page's menus."""
    fields = custom_fields.definitions("contact") if fields is None else fields
    out = [Target(IGNORE, "Don't import", "")]
    out += [Target(value, label, "Contact") for value, label in FIELDS.items()]
    out += [Target(CUSTOM + f.key, f.label, "Custom fields") for f in fields]
    out.append(Target(NEW_FIELD, "New custom field (named after the column)", "Custom fields"))
    return out


def guess_mapping(header: list[str], saved: dict[str, str] | None = None,
                  fields: list[CustomField] | None = None) -> list[str]:
    """A target per column: the saved mapping's for headers it knows, else a guess by name.
    A second e-mail or phone column goes to the other e-mails or phones; a single field
    taken twice keeps its first column; custom fields are matched by label too."""
    fields = custom_fields.definitions("contact") if fields is None else fields
    by_label = {header_key(f.label): CUSTOM + f.key for f in fields}
    by_label.update({header_key(f.key): CUSTOM + f.key for f in fields})
    valid = {t.value for t in targets(fields)}
    saved = saved or {}
    mapping: list[str] = []
    taken: set[str] = set()
    for name in header:
        key = header_key(name)
        if key in saved and saved[key] in valid:
            target = saved[key]
        else:
            target = _guess(name)
            if target == IGNORE:
                target = by_label.get(key, IGNORE)
        if target in taken and target not in MULTI:
            target = {"email": "extra_emails", "phone": "extra_phones"}.get(target, IGNORE)
        if target == FULL_NAME and taken & {"first_name", "last_name"}:
            target = IGNORE  # a file with First and Last name columns too: they are the better source
        if target in ("first_name", "last_name") and FULL_NAME in taken:
            mapping = [IGNORE if t == FULL_NAME else t for t in mapping]
            taken.discard(FULL_NAME)
        mapping.append(target)
        if target:
            taken.add(target)
    return mapping


def check_mapping(header: list[str], mapping: list[str], fields: list[CustomField] | None = None) -> None:
    """ServiceError unless every column has a known target, no single field is filled twice,
    and something says who each row is."""
    fields = custom_fields.definitions("contact") if fields is None else fields
    valid = {t.value: t.label for t in targets(fields)}
    if len(mapping) != len(header):
        raise ServiceError("Choose what each column holds.", field="mapping")
    seen: dict[str, str] = {}
    for column, target in zip(header, mapping):
        if target not in valid:
            raise ServiceError(f"“{column}”: choose a field from the list.", field="mapping")
        if target and target not in MULTI and target != NEW_FIELD:
            if target in seen:
                raise ServiceError(f"“{seen[target]}” and “{column}” both fill {valid[target]}; choose one.",
                                   field="mapping")
            seen[target] = column
    if FULL_NAME in seen and ({"first_name", "last_name"} & set(seen)):
        raise ServiceError("Map either a full name column or first and last name columns, not both.",
                           field="mapping")
    if not IDENTITY & set(seen):
        raise ServiceError("Map at least a name, an e-mail or a phone column: they say who each row is.",
                           field="mapping")


def saved_form(header: list[str], mapping: list[str]) -> dict[str, str]:
    """A mapping as saved for reuse: by header name, so the next file's columns may move."""
    return {header_key(name): target for name, target in zip(header, mapping)}


# --- a row under a mapping ---------------------------------------------------------------------

_LIST_SPLIT = re.compile(r"[;,\n]+|\s*:::\s*")  # Google Contacts joins labels with " ::: "
_SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq"}
_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "herr", "frau", "mme", "m"}


def split_name(full: str) -> tuple[str, str]:
    """"Ada Lovelace" → (Ada, Lovelace); "Lovelace, Ada" → (Ada, Lovelace); "Dr. Mary Ann
    Smith Jr." → (Mary Ann, Smith Jr.)."""
    text = " ".join((full or "").split())
    if "," in text:
        last, _, first = text.partition(",")
        if first.strip() and not {w.strip(".").lower() for w in first.split()} <= _SUFFIXES:
            return first.strip(), last.strip()
    words = text.split()
    while len(words) > 1 and words[0].strip(".").lower() in _TITLES:
        words = words[1:]
    if len(words) <= 1:
        return (words[0] if words else ""), ""
    cut = len(words) - 1
    if cut > 1 and words[-1].strip(".,").lower() in _SUFFIXES:
        cut -= 1
    return " ".join(words[:cut]), " ".join(words[cut:])


_COUNTRIES = {
    "united states": "US", "united states of america": "US", "usa": "US", "u.s.a.": "US", "u.s.": "US",
    "america": "US", "united kingdom": "GB", "uk": "GB", "great britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "germany": "DE", "deutschland": "DE", "france": "FR", "spain": "ES",
    "espana": "ES", "italy": "IT", "italia": "IT", "netherlands": "NL", "the netherlands": "NL",
    "belgium": "BE", "switzerland": "CH", "schweiz": "CH", "austria": "AT", "osterreich": "AT",
    "ireland": "IE", "portugal": "PT", "sweden": "SE", "norway": "NO", "denmark": "DK", "finland": "FI",
    "poland": "PL", "canada": "CA", "mexico": "MX", "brazil": "BR", "brasil": "BR", "argentina": "AR",
    "australia": "AU", "new zealand": "NZ", "japan": "JP", "china": "CN", "india": "IN",
    "south africa": "ZA", "singapore": "SG", "israel": "IL", "turkey": "TR", "greece": "GR",
    "czech republic": "CZ", "czechia": "CZ", "hungary": "HU", "romania": "RO", "luxembourg": "LU",
}


def country_code(raw: str) -> str:
    """A country as exports write it ("United States", "Deutschland") → its two-letter code;
    anything else is left for the contact's own check to judge."""
    text = (raw or "").strip()
    return _COUNTRIES.get(fold(text), text)


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y",
                 "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def import_date(raw: str):
    """A date as exports write it, to a date; text it cannot read unambiguously is left as it
    is (the field's own check then says what to write). 03/04/2024 is not read: it is March
    in the US and April elsewhere."""
    text = (raw or "").strip()
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    match = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    if match:
        a, b, year = (int(g) for g in match.groups())
        if a > 12 >= b:
            return _date_or(text, year, b, a)
        if b > 12 >= a:
            return _date_or(text, year, a, b)
    return text


def _date_or(text, year, month, day):
    try:
        return date(year, month, day)
    except ValueError:
        return text


@dataclass
class CleanRow:
    values: dict  # contact fields, cleaned; "custom_fields" and "company_details" dicts; "company_name", "tags" as given
    problems: dict[int, str] = field(default_factory=dict)  # column index -> what is wrong there
    row_problem: str | None = None  # a problem of the row as a whole

    @property
    def ok(self) -> bool:
        return not self.problems and not self.row_problem

    def reason(self, header: list[str]) -> str:
        parts = [f"{header[i] if i < len(header) else f'column {i + 1}'}: {message}"
                 for i, message in sorted(self.problems.items())]
        if self.row_problem:
            parts.insert(0, self.row_problem)
        return "; ".join(parts)


class RowCleaner:
    """Cleans rows under one mapping, with the custom fields and region read once."""

    def __init__(self, header: list[str], mapping: list[str], *, region: str,
                 fields: list[CustomField] | None = None, new_fields: dict[int, str] | None = None):
        self.header, self.mapping, self.region = header, mapping, region
        fields = custom_fields.definitions("contact") if fields is None else fields
        self.fields = {f.key: f for f in fields}
        self.new_fields = new_fields or {}  # column index -> key of the custom field made for it

    def _target(self, index: int) -> str:
        target = self.mapping[index]
        if target == NEW_FIELD:
            key = self.new_fields.get(index)
            return CUSTOM + key if key else IGNORE
        return target

    def clean(self, cells: list[str]) -> CleanRow:
        row = CleanRow({})
        if len(cells) > len(self.header):
            row.row_problem = (f"this row has {len(cells)} values but the file has {len(self.header)} columns "
                               "(a delimiter or quote inside a value?)")
            return row
        raw: dict = {}
        columns: dict[str, int] = {}
        customs: dict[str, tuple[int, str]] = {}
        for index, text in enumerate(cells):
            text = text.strip()
            if text[:1] == "'" and text[1:2] in FORMULA_STARTS:
                text = text[1:]  # written so by our failed-rows file (core.spreadsheet.safe_cell): read it back
            target = self._target(index)
            if not target or not text:
                continue
            if "\x00" in text:
                # No text we store may hold NUL (PostgreSQL refuses it): the row fails here, in
                # words, instead of failing its whole batch in the database, again and again.
                row.problems[index] = "holds a NUL character, which text cannot contain (a damaged export?)"
                continue
            if target.startswith(CUSTOM):
                customs[target[len(CUSTOM):]] = (index, text)
            elif target in ("extra_emails", "extra_phones", "tags"):
                raw.setdefault(target, []).extend(v for v in _LIST_SPLIT.split(text) if v.strip())
                columns.setdefault(target, index)
            elif target == "notes":
                raw["notes"] = f"{raw['notes']}\n{text}" if raw.get("notes") else text
                columns.setdefault("notes", index)
            elif target == FULL_NAME:
                first, last = split_name(text)
                raw.setdefault("first_name", first)
                raw.setdefault("last_name", last)
                columns.setdefault("first_name", index)
                columns.setdefault("last_name", index)
            else:
                raw[target] = country_code(text) if target == "country" else text
                columns[target] = index
        plain = {k: v for k, v in raw.items() if k not in COMPANY_TARGETS and k != "tags"}
        try:  # the whole row at once; only a row in trouble is checked field by field
            values: dict = clean_fields(plain, region=self.region)
        except ServiceError:
            values = {}
            for name, value in plain.items():
                try:
                    values.update(clean_fields({name: value}, region=self.region, primary_email=raw.get("email")))
                except ServiceError as exc:
                    row.problems[columns[name]] = exc.message
        if "company_name" in raw:
            name = raw["company_name"]
            if len(name) > 200 or any(ord(c) < 32 for c in name):
                row.problems[columns["company_name"]] = "a company name is one line of at most 200 characters."
            else:
                values["company_name"] = name
        details = {target[len("company_"):]: raw[target] for target in ("company_domain", "company_phone")
                   if target in raw}
        for name, value in details.items():
            try:
                values.setdefault("company_details", {}).update(clean_company_details({name: value}))
            except ServiceError as exc:
                row.problems[columns[f"company_{name}"]] = exc.message
        if raw.get("tags"):
            tags = [t.strip()[:60] for t in raw["tags"] if t.strip()]
            values["tags"] = list(dict.fromkeys(tags))
        if customs:
            cleaned = {}
            for key, (index, text) in customs.items():
                definition = self.fields.get(key)
                if definition is None:
                    continue
                value = import_date(text) if definition.field_type == "date" else text
                try:
                    cleaned[key] = custom_fields.clean_value(definition, value, region=self.region)
                except ServiceError as exc:
                    row.problems[index] = exc.message
            if cleaned:
                values["custom_fields"] = cleaned
        if "extra_emails" in values and values.get("email") is None and values["extra_emails"]:
            values["email"] = values["extra_emails"].pop(0)  # only "other" e-mails: the first is the e-mail
        if "extra_phones" in values and values.get("phone") is None and values["extra_phones"]:
            values["phone"] = values["extra_phones"].pop(0)
        if not row.problems and not any(values.get(k) for k in ("first_name", "last_name", "email", "phone")):
            row.row_problem = "no name, e-mail or phone: enter at least one"
        row.values = values
        return row


def load_custom_fields() -> list[CustomField]:
    return list(db.session.scalars(sa.select(CustomField).where(CustomField.entity == "contact",
                                                                CustomField.archived_at.is_(None))
                                   .order_by(CustomField.position, CustomField.id)))
