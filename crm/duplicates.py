"""Possible duplicates: live contacts (active or not; not moved to history, not merged away)
that answer to the same e-mail or phone, or share a name at the same company.

Everything is grouped in SQL (GROUP BY … HAVING count(*) > 1), one reason at a time, and paged
by keyset on (reason, key). A page is one statement per reason it reaches (groups, sizes and
the ids of their first members together) plus one load of those contacts, however large the
tenant; nothing loops over contacts in Python.

* E-mails and phones are found where crm.identity finds a person: `contact_address`, every
  e-mail and phone a contact answers to, main and other ones, normalised. The addresses held
  more than once are walked in key order along its primary key (tenant_id, address, …),
  reading the index alone, and each is asked, with one probe, how many live contacts the
  staff member may see hold it; the walk stops when the page is full. An address row of a
  contact merged away or moved to history is still there (contact_address keeps them), so
  the probe, not the walk, decides.
* Same e-mail: two contacts that answer to one e-mail are the same person by the identity
  rule, whichever of their e-mails it is.
* Same phone: a phone says two contacts are one person only when neither has a different
  e-mail (offices, families and switchboards share phones). A phone whose holders have at
  most one e-mail among them is "Same phone"; one whose holders have different e-mails is
  listed last, as "Same phone, different e-mails": most are colleagues at one office number,
  but some are one person who changed e-mail, which only someone who reads them can tell.
* Same name at the same company: the same company record (companies are matched by their
  normalised name when they are typed in) and the lower-cased last and first names, grouped
  along ix_contact_tenant_id_company_id in key order.

The groups count only contacts `staff` may see (crm.access.visible_contacts_clause), so a
hidden contact neither shows nor makes a group of one look like a pair.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import sqlalchemy as sa

from core.db import db
from core.tenancy import TENANT_CHECKED_SQL
from crm.access import visible_contacts_clause
from crm.identity import addresses_of
from crm.models import Contact, ContactAddress

REASONS = {
    "email": "Same e-mail",
    "phone": "Same phone",
    "name": "Same name at the same company",
    "phone_other": "Same phone, different e-mails",
}
ORDER = tuple(REASONS)  # pages list the groups of each reason in this order
ADDRESS_KINDS = ("email", "phone", "phone_other")  # grouped by contact_address
SHOWN_PER_GROUP = 10  # contacts listed (and offered to merge) per group; `size` says how many


@dataclass
class DuplicateGroup:
    kind: str  # "email" | "phone" | "name" | "phone_other"
    key: tuple  # (email,) | (phone,) | (company id, last name, first name), as compared
    size: int  # how many contacts share the key (visible to the staff member)
    contacts: list[Contact] = field(default_factory=list)  # the first SHOWN_PER_GROUP, oldest first

    @property
    def reason(self) -> str:
        return REASONS[self.kind]

    @property
    def is_phone(self) -> bool:
        return self.kind in ("phone", "phone_other")

    @property
    def cursor(self) -> str:
        """Pass as `after` to get the groups that follow this one."""
        raw = json.dumps([self.kind, *self.key], separators=(",", ":"), ensure_ascii=False)
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @property
    def label(self) -> str:
        """The shared value in words: the e-mail, the phone, or "Jo Bloggs at Acme"."""
        if self.kind != "name":
            return self.key[0]
        first = self.contacts[0] if self.contacts else None
        if first is None:
            return " ".join(p for p in (self.key[2], self.key[1]) if p)
        return f"{first.full_name} at {first.company.name}" if first.company is not None else first.full_name


def _decode_cursor(token: str | None) -> tuple[str, tuple] | None:
    if not token:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(values, list) or not values or values[0] not in REASONS:
        return None
    kind, key = values[0], tuple(values[1:])
    types = (int, str, str) if kind == "name" else (str,)
    if len(key) != len(types) or not all(type(v) is t for v, t in zip(key, types)):
        return None
    return kind, key


_NAME_COLUMNS = (Contact.company_id, sa.func.lower(Contact.last_name), sa.func.lower(Contact.first_name))


def _key_count(kind: str) -> int:
    return len(_NAME_COLUMNS) if kind == "name" else 1


def _live(staff) -> list:
    return [Contact.archived_at.is_(None), Contact.merged_into_id.is_(None), visible_contacts_clause(staff)]


def _of_contact(address: type[ContactAddress]):
    return sa.and_(Contact.tenant_id == address.tenant_id, Contact.id == address.contact_id)


_BYTEWISE: dict[str, bool] = {}  # database URL -> whether its text sorts byte by byte


def _sorts_bytewise() -> bool:
    """Does the database order text by its bytes (SQLite; PostgreSQL under the C collations)?
    Then "+" and digits (the phones) are one range of contact_address's key; under a language's
    collation punctuation may sort anywhere. Asked once per process and database."""
    bind = db.session.get_bind()
    url = bind.url.render_as_string(hide_password=True)
    if url not in _BYTEWISE:
        _BYTEWISE[url] = bind.dialect.name == "sqlite" or bool(db.session.scalar(
            sa.text("SELECT 'B' < 'a' AND '+9' < ',' AND ',' < '-' AND '+' < '+0'")
            .execution_options(**{TENANT_CHECKED_SQL: True})))  # no table: nothing to filter
    return _BYTEWISE[url]


def _walks(kind: str, column, *, after: tuple | None, only: list[tuple] | None) -> list[tuple]:
    """[(condition, after)]: the ranges of contact_address a reason walks, in its key order.
    Phones are E.164 ("+" and digits): in a byte-ordered key they sit together between "+" and
    ",", one range of the index. E-mails hold an "@": nearly all sort after ","; the few that
    start with "!", "#", "+" and such are walked last, apart, so that reaching the e-mails
    never walks the phones. Under another collation both are found by having an "@" or not,
    walking every address."""
    is_email = column.contains("@")
    if not _sorts_bytewise():
        return [(is_email if kind == "email" else sa.not_(is_email), after)]
    if kind != "email":
        return [(sa.and_(column >= "+", column < ",", sa.not_(is_email)), after)]
    if only is not None:  # a probe of the contact's own addresses: no walk to spare
        return [(is_email, None)]
    walks = []
    if after is None or after[0] >= ",":
        walks.append((sa.and_(column >= ",", is_email), after))
        after = None
    walks.append((sa.and_(column < ",", is_email), after))
    return walks


def _email_of_contact():
    """What tells a contact's e-mails apart from another's, for "different e-mails": the main
    e-mail, else the list of other ones (a contact may have only those); NULL for none."""
    return sa.func.coalesce(Contact.email, sa.func.nullif(sa.cast(Contact.extra_emails, sa.Text), "[]"))


def _address_page(kind: str, staff, walk, *, limit: int, after: tuple | None, only: list[tuple] | None):
    walked = ContactAddress
    where = [walk]
    if after is not None:
        where.append(walked.address > after[0])
    if only is not None:
        where.append(walked.address.in_(sorted(key[0] for key in only)))
    # Addresses held by more than one row, in key order, from the index alone …
    shared = (sa.select(walked.address.label("k0")).where(*where).group_by(walked.address)
              .having(sa.func.count() > 1).subquery("shared"))
    # … each asked, with one probe, about the live contacts the member may see that hold it.
    held = sa.orm.aliased(ContactAddress, name="held")

    def probe(column):
        return (sa.select(column).select_from(held).join(Contact, _of_contact(held))
                .where(held.address == shared.c.k0, *_live(staff)).scalar_subquery())

    size = probe(sa.func.count(held.contact_id))
    keep = [size > 1]
    if kind != "email":
        emails = probe(sa.func.count(sa.distinct(_email_of_contact())))
        keep.append(emails <= 1 if kind == "phone" else emails > 1)
    grouped = (sa.select(shared.c.k0, size.label("size")).where(*keep)
               .order_by(shared.c.k0).limit(limit).cte("grouped"))
    rows = (sa.select(ContactAddress.contact_id.label("contact_id"), Contact.created_at.label("created_at"),
                      ContactAddress.address.label("k0"))
            .join(Contact, _of_contact(ContactAddress))
            .where(ContactAddress.address.in_(sa.select(grouped.c.k0)), *_live(staff)).subquery("candidates"))
    return rows, grouped


def _name_page(staff, *, limit: int, after: tuple | None, only: list[tuple] | None):
    columns = _NAME_COLUMNS
    where = [*_live(staff), Contact.company_id.is_not(None), sa.or_(Contact.first_name != "", Contact.last_name != "")]
    if after is not None:
        where.append(sa.tuple_(*columns) > sa.tuple_(*[sa.literal(v) for v in after]))
    if only is not None:
        where.append(sa.or_(*[sa.tuple_(*columns) == sa.tuple_(*[sa.literal(v) for v in key]) for key in only]))
    rows = (sa.select(Contact.id.label("contact_id"), Contact.created_at.label("created_at"),
                      *[c.label(f"k{i}") for i, c in enumerate(columns)])
            .where(*where).subquery("candidates"))
    keys = [rows.c[f"k{i}"] for i in range(len(columns))]
    grouped = (sa.select(*keys, sa.func.count().label("size")).group_by(*keys).having(sa.func.count() > 1)
               .order_by(*keys).limit(limit).subquery("grouped"))
    return rows, grouped


def contact_keys(contact: Contact) -> dict[str, list[tuple]]:
    """The keys this contact would be grouped under, by reason (a reason it has no value for
    is left out): each e-mail and phone it answers to, its name at its company."""
    keys: dict[str, list[tuple]] = {}
    addresses = sorted(addresses_of(contact))
    emails, phones = [(a,) for a in addresses if "@" in a], [(a,) for a in addresses if "@" not in a]
    if emails:
        keys["email"] = emails
    if phones:
        keys["phone"] = keys["phone_other"] = phones
    if contact.company_id and (contact.first_name or contact.last_name):
        # Lower-cased by the database, exactly as the grouping does it.
        row = db.session.execute(sa.select(*_NAME_COLUMNS).where(Contact.id == contact.id)).first()
        if row is not None:
            keys["name"] = [tuple(row)]
    return keys


def _groups_of(kind: str, staff, *, limit: int, after: tuple | None, only: list[tuple] | None) -> list[DuplicateGroup]:
    """One page of one reason's groups with their first contacts: one grouped query (per range
    of contact_address walked) that also returns the members' ids, then one load of those
    contacts."""
    walks = [(None, after)] if kind == "name" else _walks(kind, ContactAddress.address, after=after, only=only)
    groups: dict[tuple, DuplicateGroup] = {}
    for walk, walk_after in walks:
        if kind == "name":
            rows, grouped = _name_page(staff, limit=limit, after=walk_after, only=only)
        else:
            rows, grouped = _address_page(kind, staff, walk, limit=limit - len(groups), after=walk_after, only=only)
        keys = [rows.c[f"k{i}"] for i in range(_key_count(kind))]
        rank = sa.func.row_number().over(partition_by=keys, order_by=(rows.c.created_at, rows.c.contact_id))
        members = (sa.select(rows.c.contact_id, *keys, grouped.c.size, rank.label("rank"))
                   .join(grouped, sa.and_(*[k == grouped.c[k.name] for k in keys])).subquery("members"))
        member_keys = [members.c[k.name] for k in keys]
        found = db.session.execute(sa.select(members.c.contact_id, *member_keys, members.c.size)
                                   .where(members.c.rank <= SHOWN_PER_GROUP)
                                   .order_by(*member_keys, members.c.rank)).all()
        for contact_id, *key, size in found:
            groups.setdefault(tuple(key), DuplicateGroup(kind, tuple(key), size)).contacts.append(contact_id)
        if len(groups) >= limit:
            break
    ids = [i for g in groups.values() for i in g.contacts]
    if ids:
        contacts = {c.id: c for c in db.session.scalars(
            sa.select(Contact).where(Contact.id.in_(ids))
            .options(sa.orm.selectinload(Contact.company), sa.orm.selectinload(Contact.owner)))}
        for group in groups.values():
            group.contacts = [contacts[i] for i in group.contacts if i in contacts]
    return list(groups.values())


def duplicate_groups(staff, *, limit: int = 100, after: str | None = None,
                     contact: Contact | None = None) -> list[DuplicateGroup]:
    """Up to `limit` groups of possible duplicates that `staff` may see, in ORDER of their
    reasons (e-mail, phone, name at a company, phone with different e-mails), each ordered by
    its key. `after` is the `cursor` of the last group of the previous page. With `contact`,
    only the groups that contact is in."""
    limit = max(1, min(int(limit), 500))
    start = _decode_cursor(after)
    keys = contact_keys(contact) if contact is not None else None
    groups: list[DuplicateGroup] = []
    for kind in ORDER:
        if start is not None and ORDER.index(kind) < ORDER.index(start[0]):
            continue
        if keys is not None and kind not in keys:
            continue
        groups += _groups_of(kind, staff, limit=limit - len(groups),
                             after=start[1] if start is not None and start[0] == kind else None,
                             only=keys[kind] if keys is not None else None)
        if len(groups) >= limit:
            break
    return groups
