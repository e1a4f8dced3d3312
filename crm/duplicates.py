"""Possible duplicates: live contacts (active or not; not moved to history, not merged away)
that share a normalised e-mail, a phone number, or a name at the same company.

Everything is grouped in SQL (GROUP BY … HAVING count(*) > 1), one reason at a time, and paged
by keyset on (reason, key). A page is one statement per reason it reaches (groups, sizes and
the ids of their first members together) plus one load of those contacts, however large the
tenant; nothing loops over contacts in Python.

* Same phone: phones are stored in E.164, so equal numbers are equal strings. Grouped along
  ix_contact_tenant_id_phone in key order (`phone > :after` is a range on it); the scan stops
  when the page is full.
* Same name at the same company: the same company record (companies are matched by their
  normalised name when they are typed in) and the lower-cased last and first names. Grouped
  along ix_contact_tenant_id_company_id, like the phones.
* Same e-mail: e-mails are stored normalised (core.identity.normalize_email). Live contacts
  cannot share one (the unique partial index uq_contact_tenant_id_email_live), so every
  e-mail group holds an inactive contact. The query walks the inactive contacts' e-mails in
  order along their own partial index (ix_contact_tenant_id_email_inactive) and asks the
  unique index, only until the page is full, whether an active contact holds the same one.

Only the primary e-mail and phone are compared. The other e-mails and phones live in JSON lists
that no index covers: matching them would unpack every contact's lists on every page view.

The groups count only contacts `staff` may see (crm.access.visible_contacts_clause), so a
hidden contact neither shows nor makes a group of one look like a pair.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import sqlalchemy as sa

from core.db import db
from crm.access import visible_contacts_clause
from crm.models import Contact

REASONS = {
    "email": "Same e-mail",
    "phone": "Same phone",
    "name": "Same name at the same company",
}
ORDER = tuple(REASONS)  # pages list e-mail groups, then phone groups, then name groups
SHOWN_PER_GROUP = 10  # contacts listed (and offered to merge) per group; `size` says how many


@dataclass
class DuplicateGroup:
    kind: str  # "email" | "phone" | "name"
    key: tuple  # (email,) | (phone,) | (company id, last name, first name), as compared
    size: int  # how many contacts share the key (visible to the staff member)
    contacts: list[Contact] = field(default_factory=list)  # the first SHOWN_PER_GROUP, oldest first

    @property
    def reason(self) -> str:
        return REASONS[self.kind]

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


def _key_columns(kind: str) -> tuple:
    if kind == "email":
        return (Contact.email,)
    if kind == "phone":
        return (Contact.phone,)
    return (Contact.company_id, sa.func.lower(Contact.last_name), sa.func.lower(Contact.first_name))


def _compare(columns: tuple, op: str, values: tuple):
    if len(columns) == 1:
        return columns[0] > values[0] if op == ">" else columns[0] == values[0]
    row, key = sa.tuple_(*columns), sa.tuple_(*[sa.literal(v) for v in values])
    return row > key if op == ">" else row == key


def _page_of(kind: str, staff, *, limit: int, after: tuple | None, only: tuple | None):
    """(rows, grouped): `rows` gives (contact_id, created_at, k0[, k1, k2]) of the contacts that
    may be in a group of this reason (beyond `after`, or with the key `only`); `grouped` gives
    the page's keys (k0…) and each group's size, at most `limit` of them, in key order."""
    columns = _key_columns(kind)
    where = [Contact.archived_at.is_(None), Contact.merged_into_id.is_(None), visible_contacts_clause(staff)]
    if after is not None:
        where.append(_compare(columns, ">", after))
    if only is not None:
        where.append(_compare(columns, "=", only))
    keyed = [Contact.id.label("contact_id"), Contact.created_at.label("created_at"),
             *[c.label(f"k{i}") for i, c in enumerate(columns)]]
    if kind != "email":
        if kind == "phone":
            where.append(Contact.phone.is_not(None))
        else:
            where += [Contact.company_id.is_not(None), sa.or_(Contact.first_name != "", Contact.last_name != "")]
        rows = sa.select(*keyed).where(*where).subquery("candidates")
        keys = [rows.c[f"k{i}"] for i in range(len(columns))]
        grouped = (sa.select(*keys, sa.func.count().label("size")).group_by(*keys).having(sa.func.count() > 1)
                   .order_by(*keys).limit(limit).subquery("grouped"))
        return rows, grouped
    # E-mail. Live contacts cannot share one (uq_contact_tenant_id_email_live), so every group
    # holds an inactive contact: walk the inactive contacts' e-mails in order (their own
    # partial index, ix_contact_tenant_id_email_inactive) and ask the unique index of live
    # e-mails, per e-mail and only until the page is full, whether an active contact holds it.
    # `is_active` stays bare (or negated), as the indexes' predicates have it, so the planner
    # sees that they fit; the members are read through the same two indexes.
    where.append(Contact.email.is_not(None))
    per_email = (sa.select(Contact.email.label("k0"), sa.func.count().label("n"))
                 .where(*where, sa.not_(Contact.is_active)).group_by(Contact.email)
                 .order_by(Contact.email).subquery("inactive_emails"))
    # A scalar subquery, not EXISTS: the planner may turn an EXISTS under OR into one hash of
    # every active contact's e-mail; this stays one index probe per e-mail walked.
    held = (sa.select(sa.func.count(Contact.id)).where(*where, Contact.is_active, Contact.email == per_email.c.k0)
            .scalar_subquery())  # 0 or 1: the index is unique
    grouped = (sa.select(per_email.c.k0, (per_email.c.n + held).label("size"))
               .where((per_email.c.n + held) > 1).order_by(per_email.c.k0).limit(limit).cte("grouped"))
    in_page = Contact.email.in_(sa.select(grouped.c.k0))
    rows = sa.union_all(sa.select(*keyed).where(*where, sa.not_(Contact.is_active), in_page),
                        sa.select(*keyed).where(*where, Contact.is_active, in_page)).subquery("candidates")
    return rows, grouped


def contact_keys(contact: Contact) -> dict[str, tuple]:
    """The keys this contact would be grouped under, by reason (a reason it has no value for
    is left out)."""
    keys = {}
    if contact.email:
        keys["email"] = (contact.email,)
    if contact.phone:
        keys["phone"] = (contact.phone,)
    if contact.company_id and (contact.first_name or contact.last_name):
        # Lower-cased by the database, exactly as the grouping does it.
        row = db.session.execute(sa.select(*_key_columns("name")).where(Contact.id == contact.id)).first()
        if row is not None:
            keys["name"] = tuple(row)
    return keys


def _groups_of(kind: str, staff, *, limit: int, after: tuple | None, only: tuple | None) -> list[DuplicateGroup]:
    """One page of one reason's groups with their first contacts: one grouped query that
    also returns the members' ids, then one load of those contacts."""
    rows, grouped = _page_of(kind, staff, limit=limit, after=after, only=only)
    keys = [rows.c[f"k{i}"] for i in range(len(_key_columns(kind)))]
    rank = sa.func.row_number().over(partition_by=keys, order_by=(rows.c.created_at, rows.c.contact_id))
    members = (sa.select(rows.c.contact_id, *keys, grouped.c.size, rank.label("rank"))
               .join(grouped, sa.and_(*[k == grouped.c[k.name] for k in keys])).subquery("members"))
    member_keys = [members.c[k.name] for k in keys]
    found = db.session.execute(sa.select(members.c.contact_id, *member_keys, members.c.size)
                               .where(members.c.rank <= SHOWN_PER_GROUP)
                               .order_by(*member_keys, members.c.rank)).all()
    groups: dict[tuple, DuplicateGroup] = {}
    for contact_id, *key, size in found:
        groups.setdefault(tuple(key), DuplicateGroup(kind, tuple(key), size)).contacts.append(contact_id)
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
    """Up to `limit` groups of possible duplicates that `staff` may see, e-mail groups first,
    then phone, then name+company, each ordered by its key. `after` is the `cursor` of the
    last group of the previous page. With `contact`, only the groups that contact is in."""
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
