"""The contact list: search, filters, sorting and keyset pagination, in one place, so the
list page, counts, exports, segments and bulk actions all mean the same set of contacts.

Pages are found by keyset ("after this row"), not OFFSET: the millionth row costs what the
first does. Each sort orders by (its columns…, id) with matching indexes (crm.models)."""
from __future__ import annotations

import base64
import json
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timezone

import sqlalchemy as sa

from core import scalars, tenant_cache
from core.db import db
from core.identity import StaffUser
from crm.access import visible_contacts_clause
from crm.models import (CircleMember, Company, Contact, ContactNaming, ContactRole, ContactTag, CustomField,
                        PipelineStatus)
from crm.search import contact_matches, contains

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

@dataclass(frozen=True)
class Sort:
    label: str
    columns: callable  # () -> the SQL expressions it orders by, before id
    key: callable  # contact -> the same values, read from a loaded row (for the next cursor)


SORTS = {
    "name": Sort("Name", lambda: (Contact.last_name, Contact.first_name), lambda c: (c.last_name, c.first_name)),
    "created": Sort("Date added", lambda: (Contact.created_at,), lambda c: (c.created_at,)),
    "updated": Sort("Last changed", lambda: (Contact.updated_at,), lambda c: (c.updated_at,)),
    "activity": Sort("Last activity", lambda: (sa.func.coalesce(Contact.last_activity_at, EPOCH),),
                     lambda c: (c.last_activity_at or EPOCH,)),
    "email": Sort("E-mail", lambda: (sa.func.coalesce(Contact.email, ""),), lambda c: (c.email or "",)),
}
DEFAULT_SORT = "updated"


@dataclass
class ContactFilters:
    """What the list is narrowed to. Built from the query string (from_args) and stored as a
    dict in segments (to_dict / from_dict)."""

    q: str = ""
    role: list[str] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    owner: list[str] = field(default_factory=list)  # staff ids, or "none"
    circle: list[int] = field(default_factory=list)
    tag: list[int] = field(default_factory=list)
    active: str = "yes"  # yes | no | any
    history: bool = False  # archived contacts instead of current ones
    test: str = "any"  # yes | no | any
    created_from: str = ""
    created_to: str = ""
    updated_from: str = ""
    updated_to: str = ""
    activity_from: str = ""
    activity_to: str = ""
    company: list[int] = field(default_factory=list)
    custom: dict[str, str] = field(default_factory=dict)  # custom field key -> wanted value

    LISTS = ("role", "status", "owner", "circle", "tag", "company")
    INT_LISTS = ("status", "circle", "tag", "company")
    DATES = ("created_from", "created_to", "updated_from", "updated_to", "activity_from", "activity_to")

    @classmethod
    def from_args(cls, args) -> "ContactFilters":
        values: dict = {}
        for name in cls.LISTS:
            raw = [v for v in args.getlist(name) if v not in ("", None)]
            values[name] = [int(v) for v in raw if str(v).isdigit() and int(v) < 2**31] \
                if name in cls.INT_LISTS else raw
        values["q"] = (args.get("q") or "").strip()[:200]
        values["active"] = args.get("active") if args.get("active") in ("yes", "no", "any") else "yes"
        values["test"] = args.get("test") if args.get("test") in ("yes", "no", "any") else "any"
        values["history"] = args.get("history") in ("1", "yes", "on")
        for name in cls.DATES:
            values[name] = _valid_date(args.get(name))
        values["custom"] = {k[3:]: v.strip() for k, v in args.items() if k.startswith("cf_") and v.strip()}
        values["role"] = [r for r in values["role"] if r in ContactRole.ALL]
        return cls(**values)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default
                and getattr(self, f.name) not in ([], {}, "")}

    @classmethod
    def from_dict(cls, data: dict) -> "ContactFilters":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def to_args(self) -> list[tuple[str, str]]:
        """Query-string pairs for links that keep these filters."""
        pairs = []
        for name, value in self.to_dict().items():
            if name == "custom":
                pairs.extend((f"cf_{k}", v) for k, v in value.items())
            elif isinstance(value, list):
                pairs.extend((name, str(v)) for v in value)
            elif isinstance(value, bool):
                pairs.append((name, "1"))
            else:
                pairs.append((name, str(value)))
        return pairs

    @property
    def is_filtered(self) -> bool:
        return bool(self.to_dict())

    @property
    def narrows_beyond_search(self) -> bool:
        """Filters other than the search words are set (the filter panel opens)."""
        return bool(self.to_dict().keys() - {"q"})


def _valid_date(value) -> str:
    try:
        return date.fromisoformat(value).isoformat() if value else ""
    except ValueError:
        return ""


def _day_start(value: str) -> datetime:
    return datetime.combine(date.fromisoformat(value), time.min, tzinfo=timezone.utc)


def _day_end(value: str) -> datetime:
    return datetime.combine(date.fromisoformat(value), time.max, tzinfo=timezone.utc)


def filtered_query(filters: ContactFilters, staff) -> sa.Select:
    """SELECT Contact … with every filter and the visibility rule applied (no order, no limit)."""
    query = sa.select(Contact).where(Contact.merged_into_id.is_(None), visible_contacts_clause(staff))
    query = query.where(Contact.archived_at.is_not(None) if filters.history else Contact.archived_at.is_(None))
    if filters.active != "any":
        query = query.where(Contact.is_active.is_(filters.active == "yes"))
    if filters.test != "any":
        query = query.where(Contact.is_test.is_(filters.test == "yes"))
    for condition in contact_matches(filters.q):
        query = query.where(condition)
    if filters.role:
        query = query.where(Contact.role.in_(filters.role))
    if filters.status:
        query = query.where(Contact.status_id.in_(filters.status))
    if filters.owner:
        ids = [int(v) for v in filters.owner if str(v).isdigit()]
        conditions = [Contact.owner_id.in_(ids)] if ids else []
        if "none" in filters.owner:
            conditions.append(Contact.owner_id.is_(None))
        if conditions:
            query = query.where(sa.or_(*conditions))
    if filters.company:
        query = query.where(Contact.company_id.in_(filters.company))
    if filters.circle:
        query = query.where(sa.select(CircleMember.id).where(
            CircleMember.contact_id == Contact.id, CircleMember.circle_id.in_(filters.circle),
            CircleMember.removed_at.is_(None)).exists())
    if filters.tag:
        query = query.where(sa.select(ContactTag.id).where(
            ContactTag.contact_id == Contact.id, ContactTag.tag_id.in_(filters.tag)).exists())
    for column, start, end in ((Contact.created_at, filters.created_from, filters.created_to),
                               (Contact.updated_at, filters.updated_from, filters.updated_to),
                               (Contact.last_activity_at, filters.activity_from, filters.activity_to)):
        if start:
            query = query.where(column >= _day_start(start))
        if end:
            query = query.where(column <= _day_end(end))
    if filters.custom:
        definitions = {f.key: f for f in db.session.scalars(
            sa.select(CustomField).where(CustomField.entity == "contact", CustomField.key.in_(filters.custom)))}
        for key, wanted in filters.custom.items():
            definition = definitions.get(key)
            if definition is not None:
                query = query.where(_custom_condition(definition, wanted))
    return query


def _custom_condition(definition: CustomField, wanted: str):
    value = Contact.custom_fields[definition.key]
    kind = definition.field_type
    if kind == "boolean":
        truth = wanted.lower() in ("1", "yes", "true", "on")
        return value.as_boolean().is_(True) if truth else sa.or_(value.as_boolean().is_(False),
                                                                  value.as_boolean().is_(None))
    if kind == "number":
        try:
            return value.as_float() == float(wanted)
        except ValueError:
            return sa.false()
    if kind == "multi_choice":
        # the stored JSON array holds the choice as a quoted string
        return sa.cast(value, sa.String).like(f'%{json.dumps(wanted)[1:-1]}%')
    if kind in ("choice", "date"):
        return sa.func.lower(value.as_string()) == wanted.lower()
    return contains(sa.func.lower(value.as_string()), wanted.lower())


# Counts stop here: past it the exact figure costs a scan of every matching row, and "1,000+"
# tells a person browsing a list as much (GitLab caps its counts the same way). The list's
# count runs on every page view, so it stops early; a selection is counted further, as people
# about to change it want to know how many they are changing.
LIST_COUNT_CAP = 1_000
COUNT_CAP = 10_000


def count(filters: ContactFilters, staff, *, cap: int | None = LIST_COUNT_CAP) -> int:
    """How many match, counted up to `cap` + 1."""
    return count_of(filtered_query(filters, staff), cap=cap)


def count_of(query: sa.Select, *, cap: int | None = COUNT_CAP) -> int:
    return db.session.scalar(count_query(query, cap=cap))


def count_query(query: sa.Select, *, cap: int | None = COUNT_CAP) -> sa.Select:
    """SELECT the number of contacts `query` matches, up to `cap` + 1."""
    inner = query.with_only_columns(Contact.id).order_by(None)
    if cap is not None:
        inner = inner.limit(cap + 1)
    return sa.select(sa.func.count()).select_from(inner.subquery())


def count_label(n: int, cap: int = COUNT_CAP) -> str:
    return f"{cap:,}+" if n > cap else f"{n:,}"


def encode_cursor(values: list) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_values(token: str | None) -> list | None:
    """The values encode_cursor packed, or None for a missing or forged token."""
    if not token:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
    except (ValueError, TypeError, json.JSONDecodeError):
        return None
    return values if isinstance(values, list) else None


def decode_cursor(token: str | None, sort: str):
    values = decode_values(token)
    if values is None:
        return None
    try:
        columns = SORTS[sort].columns()
        if not isinstance(values, list) or len(values) != len(columns) + 1 or not isinstance(values[-1], int):
            return None
        out = []
        for column, value in zip(columns, values):
            if isinstance(getattr(column.type, "impl", column.type), sa.DateTime):
                value = datetime.fromisoformat(value)
            elif not isinstance(value, str):
                return None
            out.append(value)
        return out + [values[-1]]
    except (ValueError, TypeError, KeyError, json.JSONDecodeError):
        return None


@dataclass(frozen=True, slots=True)
class ListedContact(ContactNaming):
    """A contact as the list shows it, read as plain values rather than as a Contact: the ORM's
    bookkeeping for fifty objects (identity map, instance state, attribute events) costs more
    than the page's own query."""
    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    company_id: int | None
    company_name: str | None
    role: str
    status_id: int | None
    owner_id: int | None
    is_active: bool
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime | None


# In the order of ListedContact's fields, and named as they are (checked here, once).
LIST_COLUMNS = (Contact.id, Contact.first_name, Contact.last_name, Contact.email, Contact.phone, Contact.company_id,
                Company.name.label("company_name"), Contact.role, Contact.status_id, Contact.owner_id,
                Contact.is_active, Contact.created_at, Contact.updated_at, Contact.last_activity_at)
assert [c.key for c in LIST_COLUMNS] == [f.name for f in fields(ListedContact)], "LIST_COLUMNS drifted from ListedContact"
_LISTED = len(LIST_COLUMNS)


@dataclass
class Page:
    contacts: list[ListedContact]
    next_cursor: str | None
    total: int | None
    total_cap: int  # counted up to this + 1


def page(filters: ContactFilters, staff, *, sort: str = DEFAULT_SORT, descending: bool = True,
         after: str | None = None, size: int = PAGE_SIZE, with_total: bool = True) -> Page:
    """One page of the list, and the cursor of the next (None on the last page)."""
    sort = sort if sort in SORTS else DEFAULT_SORT
    columns = [*SORTS[sort].columns(), Contact.id]
    matching = query = filtered_query(filters, staff)
    cursor = decode_cursor(after, sort)
    if cursor is not None:
        # Bound with each column's own type, so they compare exactly as stored.
        row = sa.tuple_(*columns)
        key = sa.tuple_(*[sa.literal(v, type_=c.type) for v, c in zip(cursor, columns)])
        query = query.where(row < key if descending else row > key)
    query = query.order_by(*[c.desc() if descending else c.asc() for c in columns]).limit(size + 1)
    # Only what the list shows: a contact's JSON columns (custom fields, social links, other
    # e-mails and phones) are decoded per row, and the page never shows them. The company's
    # name comes in the same statement: a statement costs the app far more (compiling, the
    # tenant filter, a round trip) than a join on a primary key. Statuses and owners are few,
    # and the page has them already (row_labels). The count, and the other values the page
    # shows (core.scalars), ride along as columns evaluated once: one statement, not several.
    query = query.with_only_columns(*LIST_COLUMNS, maintain_column_froms=True).outerjoin(
        Company, Company.id == Contact.company_id)
    cap = LIST_COUNT_CAP
    if with_total:
        query = query.add_columns(count_query(matching, cap=cap).scalar_subquery().label("portico_list_total"))
    fetched = db.session.execute(scalars.riding(query)).all()
    scalars.settle(fetched[0] if fetched else None)
    rows = [ListedContact(*row[:_LISTED]) for row in fetched]
    total = None
    if with_total:
        total = fetched[0][_LISTED] if fetched else scalars.fetch(count_query(matching, cap=cap))
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_cursor = encode_cursor([*SORTS[sort].key(last), last.id])
    return Page(rows, next_cursor, total, cap)


def row_labels(contacts: list[ListedContact], choices: dict) -> tuple[dict[int, str], dict[int, str]]:
    """(status id → name, owner id → name) for a page of contacts, from the filter choices,
    and from the database only for an archived status or a former member the choices lack.
    Both answer "" for no status or owner, so the template can index them (no call per row)."""
    statuses = defaultdict(str, {s.id: s.name for s in choices["statuses"]})
    owners = defaultdict(str, {o.id: o.display_name for o in choices["owners"]})
    missing = {c.status_id for c in contacts if c.status_id is not None} - statuses.keys()
    if missing:
        statuses.update(db.session.execute(sa.select(PipelineStatus.id, PipelineStatus.name)
                                           .where(PipelineStatus.id.in_(missing))).all())
    missing = {c.owner_id for c in contacts if c.owner_id is not None} - owners.keys()
    if missing:
        for owner in db.session.scalars(sa.select(StaffUser).where(StaffUser.id.in_(missing))
                                        .options(sa.orm.lazyload(StaffUser.tenant))):
            owners[owner.id] = owner.display_name
    return statuses, owners


@dataclass(frozen=True)
class Choice:
    """One option of the filter form, as plain data (kept across requests by tenant_cache)."""
    id: int
    name: str
    display_name: str = ""
    key: str = ""
    label: str = ""
    field_type: str = ""
    choices: tuple = ()


def choices_for_filters() -> dict:
    """Everything the filter form offers (statuses, owners, circles, tags, custom fields): read
    once per process and configuration version of the tenant (core.tenant_cache)."""
    return tenant_cache.cached("contact_filter_choices", _load_choices)


def _load_choices() -> dict:
    from crm.models import Circle, Tag

    statuses = db.session.execute(sa.select(PipelineStatus.id, PipelineStatus.name)
                                  .where(PipelineStatus.archived_at.is_(None)).order_by(PipelineStatus.position))
    owners = db.session.scalars(sa.select(StaffUser).where(StaffUser.active.is_(True))
                                .options(sa.orm.lazyload(StaffUser.tenant)).order_by(StaffUser.name))
    circles = db.session.execute(sa.select(Circle.id, Circle.name).where(Circle.archived_at.is_(None))
                                 .order_by(Circle.name))
    tags = db.session.execute(sa.select(Tag.id, Tag.name).order_by(Tag.name))
    fields = db.session.scalars(sa.select(CustomField).where(
        CustomField.entity == "contact", CustomField.archived_at.is_(None)).order_by(CustomField.position))
    return {
        "statuses": tuple(Choice(id, name) for id, name in statuses),
        "owners": tuple(Choice(o.id, o.name, display_name=o.display_name) for o in owners),
        "circles": tuple(Choice(id, name) for id, name in circles),
        "tags": tuple(Choice(id, name) for id, name in tags),
        "custom_fields": tuple(Choice(f.id, f.label, key=f.key, label=f.label, field_type=f.field_type,
                                      choices=tuple(f.choices or ())) for f in fields),
        "companies": (),
    }
