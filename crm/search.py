"""Finding records by what people type: the one place that turns search text into SQL, so
every list, picker and duplicate finder searches the same way.

Contacts are found by word prefixes: each word typed must begin one of the contact's words
(names, the words of e-mail addresses, company) or begin or end one of their phone numbers. The words live in
`contact_search_token`, kept here; a prefix is a key range on its B-tree, which stays an
index scan at a million contacts even under PostgreSQL's row-level security (a LIKE cannot).
Companies are few per tenant and are still matched anywhere in the name.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable

import phonenumbers
import sqlalchemy as sa

from core.db import db
from crm.models import Company, Contact, ContactAddress, ContactSearchToken
from crm.normalize import fold

MAX_WORDS = 8
TOKEN_LENGTH = 64

_WORD = re.compile(r"[^\W_]+")
_PHONE_LIKE = re.compile(r"[\d\s()+./-]+")


def search_words(text: str | None) -> list[str]:
    """The words of a search, folded like the stored words (case, accents)."""
    return fold(text).split()[:MAX_WORDS]


def contains(column, text: str):
    """`column LIKE %text%`, with the typed % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


def contains_every_word(column, text: str | None) -> list:
    """One condition per word: all of them must appear, in any order."""
    return [contains(column, word) for word in search_words(text)]


# --- contacts -------------------------------------------------------------------------------------

# Marks a phone number written backwards: its ending is then a prefix, found like any other.
_BACKWARDS = "~"


def _phone_tokens(e164: str) -> set[str]:
    """"+442079460958" is found by its start, with the country code or without it or the way
    people in that country write it (442079460958, 2079460958, 02079460958), and by its end
    ("0958", "7946 0958"): people search a number by the part they remember."""
    digits = re.sub(r"\D", "", e164)
    tokens = {digits, _BACKWARDS + digits[::-1]}
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return tokens
    tokens.add(phonenumbers.national_significant_number(number))
    national = re.sub(r"\D", "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    if national:
        tokens.add(national)
    return tokens


def contact_tokens(*, names: Iterable[str | None] = (), emails: Iterable[str | None] = (),
                   phones: Iterable[str | None] = ()) -> set[str]:
    """Every word a contact is found by: the words of its names and e-mail addresses, and its
    phone numbers. A pure function, so bulk loaders (imports, the benchmark) index rows
    exactly as the services do."""
    tokens: set[str] = set()
    for text in (*names, *emails):
        tokens.update(_WORD.findall(fold(text)))
    for phone in phones:
        if phone:
            tokens.update(_phone_tokens(phone))
    return {token[:TOKEN_LENGTH] for token in tokens if token}


def query_tokens(text: str | None) -> list[str]:
    """What a search looks for. A phone number typed with spaces, dashes or brackets is one
    number, not several words."""
    folded = fold(text)
    if _PHONE_LIKE.fullmatch(folded) and sum(c.isdigit() for c in folded) >= 5:
        return [re.sub(r"\D", "", folded)[:TOKEN_LENGTH]]
    return [word[:TOKEN_LENGTH] for word in _WORD.findall(folded)][:MAX_WORDS]


def _after_prefix(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix` (code point
    order, which is UTF-8 byte order: how the token column compares)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            bumped = chr(last + 1)
            if not 0xD800 <= last + 1 <= 0xDFFF:
                return prefix[:-1] + bumped
            return prefix[:-1] + chr(0xE000)
        prefix = prefix[:-1]
    return None


def _token_range(prefix: str):
    condition = ContactSearchToken.token >= prefix
    upper = _after_prefix(prefix)
    return condition if upper is None else sa.and_(condition, ContactSearchToken.token < upper)


def _starts_a_word(prefix: str):
    """Contact.id of the contacts with a word starting with `prefix` (digits: or a phone
    number ending with them)."""
    condition = _token_range(prefix)
    if prefix.isdigit():
        condition = sa.or_(condition, _token_range(_BACKWARDS + prefix[::-1]))
    return Contact.id.in_(sa.select(ContactSearchToken.contact_id).where(condition))


def contact_matches(text: str | None) -> list:
    """One condition per word typed; a contact matches when it has them all. Empty when the
    text has no words (no search)."""
    return [_starts_a_word(token) for token in query_tokens(text)]


def _tokens_of(contact: Contact, company_name: str | None) -> set[str]:
    return contact_tokens(names=(contact.first_name, contact.last_name, company_name),
                          emails=(contact.email, *(contact.extra_emails or ())),
                          phones=(contact.phone, *(contact.extra_phones or ())))


INDEX_BATCH = 500


def index_contacts(contacts: Iterable[Contact], *, fresh: bool = False) -> None:
    """Bring the contacts' search words and addresses (contact_address, what crm.identity
    looks people up by) up to date with their fields (after a create, an edit, a merge or a
    company rename): one read of what they have, then only the difference is written.
    `fresh`: the contacts were just created and have nothing yet (no read)."""
    contacts = list(contacts)
    if any(contact.id is None for contact in contacts):
        db.session.flush()
    # What else waits in the session (timeline entries, audit events) is none of the index's
    # business: it goes out at the next flush with whatever follows it, not once per write here.
    with db.session.no_autoflush:
        for start in range(0, len(contacts), INDEX_BATCH):
            _index_batch(contacts[start:start + INDEX_BATCH], fresh=fresh)


def _index_batch(contacts: list[Contact], *, fresh: bool) -> None:
    from crm.identity import addresses_of

    company_ids = {contact.company_id for contact in contacts if contact.company_id}
    companies = {}
    for company_id in company_ids:  # the ones this session holds already need no read
        held = db.session.identity_map.get(db.session.identity_key(Company, company_id))
        if held is not None and "name" in held.__dict__:
            companies[company_id] = held.name
    missing = company_ids - set(companies)
    if missing:
        companies.update(db.session.execute(sa.select(Company.id, Company.name).where(Company.id.in_(missing))).all())
    have: dict[int, set[str]] = defaultdict(set)
    held: dict[int, set[str]] = defaultdict(set)
    if not fresh:
        ids = [contact.id for contact in contacts]
        for kind, contact_id, value in db.session.execute(sa.union_all(
                sa.select(sa.literal("t"), ContactSearchToken.contact_id, ContactSearchToken.token)
                .where(ContactSearchToken.contact_id.in_(ids)),
                sa.select(sa.literal("a"), ContactAddress.contact_id, ContactAddress.address)
                .where(ContactAddress.contact_id.in_(ids)))):
            (have if kind == "t" else held)[contact_id].add(value)
    gone, new, gone_addresses, new_addresses = [], [], [], []
    for contact in contacts:
        wanted = _tokens_of(contact, companies.get(contact.company_id))
        gone.extend((contact.id, token) for token in have[contact.id] - wanted)
        new.extend({"tenant_id": contact.tenant_id, "contact_id": contact.id, "token": token}
                   for token in wanted - have[contact.id])
        addresses = addresses_of(contact)
        gone_addresses.extend((contact.id, a) for a in held[contact.id] - addresses)
        new_addresses.extend({"tenant_id": contact.tenant_id, "contact_id": contact.id, "address": a}
                             for a in addresses - held[contact.id])
    if gone:
        db.session.execute(sa.delete(ContactSearchToken).where(
            sa.tuple_(ContactSearchToken.contact_id, ContactSearchToken.token).in_(gone)))
    if gone_addresses:
        db.session.execute(sa.delete(ContactAddress).where(
            sa.tuple_(ContactAddress.contact_id, ContactAddress.address).in_(gone_addresses)))
    # Plain inserts of rows carrying their contact's tenant (the ORM's bulk path would only
    # stamp the same tenant on them, at a cost per statement; row-level security still checks).
    connection = db.session.connection()
    if new:
        connection.execute(ContactSearchToken.__table__.insert(), new)
    if new_addresses:
        connection.execute(ContactAddress.__table__.insert(), new_addresses)


def index_contact(contact: Contact, *, fresh: bool = False) -> None:
    index_contacts([contact], fresh=fresh)
