"""Which contact a person's details belong to: the one rule the kickoff forms, the import,
merge and the duplicates page follow.

* An e-mail match wins: a contact that answers to one of the e-mails (its main e-mail or one
  of its other ones) is the person; the main e-mail before another one, a live contact before
  an inactive one, then the oldest.
* A phone identifies a person only when neither side has a different e-mail: the details
  carry no e-mail, or the contact holding the phone has none. Offices, families and
  switchboards share phones; "pedro@office" with Maria's office phone is someone else.
* Compared normalised: e-mails as core.identity.normalize_email writes them (case, spaces),
  phones in E.164 (the tenant's default region for numbers typed without a country code).
* Contacts merged away or moved to history are nobody's match.

Every address a contact answers to is a row of `contact_address` (crm.models.ContactAddress,
kept by crm.search.index_contacts), so a lookup is a probe of its (tenant_id, address) key,
whatever the words of the address: `contacts_for` decides a whole batch of people with one
query.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import sqlalchemy as sa

from core.db import db
from crm.models import Contact, ContactAddress
from crm.normalize import normalize_email, normalize_phone


@dataclass(frozen=True)
class Details:
    """A person's e-mails and phones, normalised, the main one of each first."""

    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()


def clean_email(raw: str | None) -> str | None:
    """The normalised e-mail; an address the syntax check refuses is still compared by its
    lower-cased, trimmed text (stored addresses were checked when they were written)."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return normalize_email(text)
    except ValueError:
        return "".join(text.split()).lower()


def clean_phone(raw: str | None, region: str | None = None) -> str | None:
    """E.164; None for what is no phone number."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return normalize_phone(text, region or "US")
    except ValueError:
        return None


def details(emails: Iterable[str | None] = (), phones: Iterable[str | None] = (), *,
            region: str | None = None) -> Details:
    """Details from what was typed or stored, normalised, empty and repeated values left out."""
    return Details(tuple(dict.fromkeys(e for e in map(clean_email, emails) if e)),
                   tuple(dict.fromkeys(p for p in (clean_phone(p, region) for p in phones) if p)))


def contact_addresses(emails: Iterable[str | None] = (), phones: Iterable[str | None] = ()) -> set[str]:
    """The addresses a contact with these stored e-mails and phones answers to (what
    contact_address holds for it). A pure function: bulk writers (the import, the benchmark)
    store exactly what the services do."""
    # Stored e-mails are normalised already (lower-cased, trimmed): no second syntax check.
    found = {"".join(e.split()).lower() for e in emails if e}
    found.update(p.strip() for p in phones if p)
    found.discard("")
    return found


def addresses_of(contact: Contact) -> set[str]:
    return contact_addresses((contact.email, *(contact.extra_emails or ())),
                             (contact.phone, *(contact.extra_phones or ())))


def _emails_of(contact: Contact) -> bool:
    return bool(contact.email or contact.extra_emails)


def decide(person: Details, holders: dict[str, list]):
    """The rule itself: which of `holders` (address -> the contacts answering to it) the
    person is, or None. A holder is anything with a contact's email, extra_emails, phone,
    is_active and id: the import decides with it among the rows of its own file too."""
    best, best_key = None, None
    for rank, email in enumerate(person.emails):
        for contact in holders.get(email, ()):
            key = (rank, contact.email != email, not contact.is_active, contact.id)
            if best_key is None or key < best_key:
                best, best_key = contact, key
    if best is not None:
        return best
    for rank, phone in enumerate(person.phones):
        for contact in holders.get(phone, ()):
            if person.emails and _emails_of(contact):
                continue  # both sides have an e-mail, and they differ: someone else
            key = (rank, contact.phone != phone, not contact.is_active, contact.id)
            if best_key is None or key < best_key:
                best, best_key = contact, key
    return best


def holders_of(addresses: Iterable[str], *, lock: bool = False) -> dict[str, list[Contact]]:
    """address -> the contacts (not merged away, not in history) that answer to it; one query.
    `lock`: the contacts' rows are locked (PostgreSQL: FOR UPDATE OF contact) and read fresh."""
    wanted = sorted(set(addresses))
    holders: dict[str, list[Contact]] = {}
    if not wanted:
        return holders
    query = (sa.select(ContactAddress.address, Contact)
             .join(Contact, sa.and_(Contact.tenant_id == ContactAddress.tenant_id,
                                    Contact.id == ContactAddress.contact_id))
             .where(ContactAddress.address.in_(wanted), Contact.archived_at.is_(None),
                    Contact.merged_into_id.is_(None))
             .order_by(Contact.id))
    if lock:
        query = query.with_for_update(of=Contact).execution_options(populate_existing=True)
    for address, contact in db.session.execute(query):
        holders.setdefault(address, []).append(contact)
    return holders


def contacts_for(people: Sequence[Details], *, lock: bool = False) -> list[Contact | None]:
    """The contact each person's details belong to (None: nobody known), in order: one query
    for the whole batch."""
    holders = holders_of([a for person in people for a in (*person.emails, *person.phones)], lock=lock)
    return [decide(person, holders) for person in people]


def contact_for(emails: Iterable[str | None] = (), phones: Iterable[str | None] = (), *,
                region: str | None = None, lock: bool = False) -> Contact | None:
    """The contact these e-mails and phones belong to, or None."""
    return contacts_for([details(emails, phones, region=region)], lock=lock)[0]


def answers_to(text: str, *, region: str | None = None):
    """A condition on Contact: it answers to exactly this e-mail or phone (as typed)."""
    wanted = {a for a in (clean_email(text) if "@" in text else None, clean_phone(text, region)) if a}
    return Contact.id.in_(sa.select(ContactAddress.contact_id).where(ContactAddress.address.in_(sorted(wanted))))
