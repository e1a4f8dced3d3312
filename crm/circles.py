"""Circles: named groups of contacts and companies, with a description and a colour.

A contact (or company) may be in many Circles. Membership keeps its history: leaving sets
`removed_at`/`removed_by` on the row, re-joining adds a new row, nothing is deleted. Staff
can be assigned to a Circle; when the tenant restricts Staff to "own contacts or Circles",
that is what lets them see its members (crm.access).

Who may do what:
  * managing Circles themselves (create, rename, colour, archive, assign staff) needs
    "crm.configure";
  * putting a contact or company in a Circle, or taking it out, needs "contacts.edit" on
    that record (Staff: their own), so a hidden contact cannot be touched at all.

Every change to membership writes a timeline entry on the contact (or company); the
configuration changes are audited.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser
from core.permissions import can
from core.tenancy import COLOR_RE
from core.text import clean_line
from crm.access import visible_contacts_clause
from crm.models import Circle, CircleMember, CircleStaff, Company, Contact
from crm.search import contact_matches, contains, search_words
from crm.timeline import record_activity

NAME_MAX = 120
DESCRIPTION_MAX = 2000
DEFAULT_COLOR = "#6b7280"
# Offered on the "new circle" form; any #rrggbb is accepted.
SUGGESTED_COLORS = ("#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#6b7280")

register_actions({
    "circle.created": "Circle created",
    "circle.updated": "Circle changed",
    "circle.archived": "Circle archived",
    "circle.restored": "Circle restored",
    "circle.staff_assigned": "Staff assigned to a circle",
    "circle.staff_unassigned": "Staff unassigned from a circle",
})


# --- checks ------------------------------------------------------------------------------------

def _require_configure(actor) -> None:
    if not can(actor, "crm.configure"):
        raise ServiceError("You do not have permission to manage circles.")


def _require_edit(actor, record_) -> None:
    if not can(actor, "contacts.edit", record_):
        what = "contact" if isinstance(record_, Contact) else "company"
        raise ServiceError(f"You do not have permission to change this {what}'s circles.")


def _clean_name(name: str | None, *, exclude_id: int | None = None) -> str:
    name = clean_line(name, label="a name for the circle", field="name", max_length=NAME_MAX)
    name = " ".join(name.split())
    key = name.casefold()
    query = sa.select(Circle.id, Circle.name, Circle.archived_at)
    if exclude_id is not None:
        query = query.where(Circle.id != exclude_id)
    # Case does not make a different circle ("VIP" and "vip" are one name). A tenant has
    # tens of circles, not millions: compare them here, the same way on both databases
    # (SQLite's lower() knows only ASCII).
    for _, other, archived_at in db.session.execute(query):
        if " ".join(other.split()).casefold() == key:
            where = " among the archived circles" if archived_at else ""
            raise ServiceError(f"There is already a circle called “{other}”{where}. Choose another name.",
                               field="name")
    return name


def _clean_description(description: str | None) -> str | None:
    text = (description or "").replace("\r\n", "\n").strip()
    if len(text) > DESCRIPTION_MAX:
        raise ServiceError(f"The description can be at most {DESCRIPTION_MAX} characters.", field="description")
    return text or None


def _clean_color(color: str | None) -> str:
    color = (color or "").strip()
    if not COLOR_RE.match(color):
        raise ServiceError("Choose a colour like #2563eb.", field="color")
    return color.lower()


# --- the circles themselves ------------------------------------------------------------------------

def create_circle(name: str, description: str | None, color: str | None, actor) -> Circle:
    _require_configure(actor)
    circle = Circle(name=_clean_name(name), description=_clean_description(description),
                    color=_clean_color(color or DEFAULT_COLOR))
    try:
        with db.session.begin_nested():
            db.session.add(circle)
            db.session.flush()
    except IntegrityError:  # created at the same moment by someone else
        raise ServiceError(f"There is already a circle called “{circle.name}”. Choose another name.",
                           field="name") from None
    record("circle.created", circle, actor=actor, details={"color": circle.color})
    return circle


def update_circle(circle: Circle, name: str, description: str | None, color: str | None, actor) -> list[str]:
    """Rename, describe and colour a circle; returns the names of the fields that changed."""
    _require_configure(actor)
    new = {"name": _clean_name(name, exclude_id=circle.id), "description": _clean_description(description),
           "color": _clean_color(color)}
    changes = {k: {"from": getattr(circle, k), "to": v} for k, v in new.items() if getattr(circle, k) != v}
    if not changes:
        return []
    for key, change in changes.items():
        setattr(circle, key, change["to"])
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise ServiceError(f"There is already a circle called “{circle.name}”. Choose another name.",
                           field="name") from None
    details = {k: v for k, v in changes.items() if k != "description"}
    if "description" in changes:
        details["description"] = "changed"
    record("circle.updated", circle, actor=actor, details=details)
    return list(changes)


def archive_circle(circle: Circle, actor) -> bool:
    """Hide a circle from lists and pickers; its members and history stay. False when it
    already was archived."""
    _require_configure(actor)
    if circle.archived_at is not None:
        return False
    circle.archived_at = utcnow()
    record("circle.archived", circle, actor=actor)
    return True


def restore_circle(circle: Circle, actor) -> bool:
    _require_configure(actor)
    if circle.archived_at is None:
        return False
    circle.archived_at = None
    record("circle.restored", circle, actor=actor)
    return True


def active_circles() -> list[Circle]:
    """The circles one can add to, by name."""
    return list(db.session.scalars(
        sa.select(Circle).where(Circle.archived_at.is_(None)).order_by(sa.func.lower(Circle.name), Circle.id)))


def archived_circles() -> list[Circle]:
    return list(db.session.scalars(
        sa.select(Circle).where(Circle.archived_at.is_not(None)).order_by(sa.func.lower(Circle.name), Circle.id)))


# --- membership ------------------------------------------------------------------------------------

def _current(circle: Circle, *, contact: Contact | None = None, company: Company | None = None):
    query = sa.select(CircleMember).where(CircleMember.circle_id == circle.id, CircleMember.removed_at.is_(None))
    if contact is not None:
        query = query.where(CircleMember.contact_id == contact.id)
    else:
        query = query.where(CircleMember.company_id == company.id)
    return db.session.scalar(query)


def _actor_id(actor) -> int | None:
    return actor.id if isinstance(actor, StaffUser) else None


def _add(circle: Circle, actor, *, contact: Contact | None = None, company: Company | None = None,
         check: bool = True) -> bool:
    record_ = contact if contact is not None else company
    if check:
        _require_edit(actor, record_)
    if circle.archived_at is not None:
        raise ServiceError(f"The circle “{circle.name}” is archived; restore it before adding to it.",
                           field="circle_id")
    if _current(circle, contact=contact, company=company) is not None:
        return False
    member = CircleMember(circle_id=circle.id, contact_id=contact.id if contact is not None else None,
                          company_id=company.id if company is not None else None, added_by_id=_actor_id(actor))
    try:
        with db.session.begin_nested():
            db.session.add(member)
            db.session.flush()
    except IntegrityError:  # added at the same moment by someone else: it is a member now
        return False
    record_activity("circle_added", f"Added to the circle “{circle.name}”", contact=contact, company=company,
                    subject=circle, actor=actor, details={"circle_id": circle.id, "circle": circle.name})
    return True


def _remove(circle: Circle, actor, *, contact: Contact | None = None, company: Company | None = None,
            check: bool = True) -> bool:
    record_ = contact if contact is not None else company
    if check:
        _require_edit(actor, record_)
    member = _current(circle, contact=contact, company=company)
    if member is None:
        return False
    member.removed_at = utcnow()
    member.removed_by_id = _actor_id(actor)
    record_activity("circle_removed", f"Removed from the circle “{circle.name}”", contact=contact, company=company,
                    subject=circle, actor=actor, details={"circle_id": circle.id, "circle": circle.name})
    return True


def add_contact_to_circle(circle: Circle, contact: Contact, actor, *, check: bool = True) -> bool:
    """Put a contact in a circle; False when it already is in it. `check=False` is for actions
    the tenant configured (a kickoff form's circles), run where no staff member acts; `actor`
    names them on the timeline."""
    return _add(circle, actor, contact=contact, check=check)


def remove_contact_from_circle(circle: Circle, contact: Contact, actor, *, check: bool = True) -> bool:
    """Take a contact out of a circle (its history row stays); False when it was not in it.
    `check=False` as for add_contact_to_circle (a paid plan's circles, when access closes)."""
    return _remove(circle, actor, contact=contact, check=check)


def add_company_to_circle(circle: Circle, company: Company, actor) -> bool:
    return _add(circle, actor, company=company)


def remove_company_from_circle(circle: Circle, company: Company, actor) -> bool:
    return _remove(circle, actor, company=company)


def _circles_of(column, record_id: int) -> list[Circle]:
    return list(db.session.scalars(
        sa.select(Circle)
        .join(CircleMember, sa.and_(CircleMember.circle_id == Circle.id, CircleMember.tenant_id == Circle.tenant_id))
        .where(column == record_id, CircleMember.removed_at.is_(None), Circle.archived_at.is_(None))
        .order_by(sa.func.lower(Circle.name), Circle.id)))


def circles_of_contact(contact: Contact) -> list[Circle]:
    """The (active) circles the contact is in now, by name."""
    return _circles_of(CircleMember.contact_id, contact.id)


def circles_of_company(company: Company) -> list[Circle]:
    return _circles_of(CircleMember.company_id, company.id)


@dataclass(frozen=True)
class MembershipRow:
    """One stay of a contact or company in a circle."""

    circle: Circle
    added_at: object
    added_by: StaffUser | None
    removed_at: object | None
    removed_by: StaffUser | None
    contact: Contact | None = None
    company: Company | None = None

    @property
    def current(self) -> bool:
        return self.removed_at is None


def _history_query():
    added_by, removed_by = aliased(StaffUser), aliased(StaffUser)
    query = (
        sa.select(CircleMember, Circle, added_by, removed_by)
        .join(Circle, sa.and_(Circle.id == CircleMember.circle_id, Circle.tenant_id == CircleMember.tenant_id))
        .outerjoin(added_by, sa.and_(added_by.id == CircleMember.added_by_id,
                                     added_by.tenant_id == CircleMember.tenant_id))
        .outerjoin(removed_by, sa.and_(removed_by.id == CircleMember.removed_by_id,
                                       removed_by.tenant_id == CircleMember.tenant_id))
    )
    return query


def membership_history(contact: Contact) -> list[MembershipRow]:
    """Every circle the contact is or was in, newest first: who added it and when, and who
    took it out and when (None while it is still a member)."""
    query = _history_query().where(CircleMember.contact_id == contact.id).order_by(
        CircleMember.added_at.desc(), CircleMember.id.desc())
    return [MembershipRow(circle, m.added_at, a, m.removed_at, r, contact=contact)
            for m, circle, a, r in db.session.execute(query)]


def company_membership_history(company: Company) -> list[MembershipRow]:
    query = _history_query().where(CircleMember.company_id == company.id).order_by(
        CircleMember.added_at.desc(), CircleMember.id.desc())
    return [MembershipRow(circle, m.added_at, a, m.removed_at, r, company=company)
            for m, circle, a, r in db.session.execute(query)]


# --- what a viewer sees of a circle -------------------------------------------------------------------

def _listed_contact():
    """Contacts that appear in circle lists and counts: not moved to history, not merged away."""
    return sa.and_(Contact.archived_at.is_(None), Contact.merged_into_id.is_(None))


def _visible(viewer):
    return visible_contacts_clause(viewer) if viewer is not None else sa.true()


def member_counts(viewer: StaffUser | None = None) -> dict[int, int]:
    """{circle id: current members (contacts + companies)}, in two grouped queries. With a
    `viewer`, contacts hidden from them are not counted (None: count everything, for jobs)."""
    contact_counts = db.session.execute(
        sa.select(CircleMember.circle_id, sa.func.count())
        .join(Contact, sa.and_(Contact.id == CircleMember.contact_id, Contact.tenant_id == CircleMember.tenant_id))
        .where(CircleMember.removed_at.is_(None), _listed_contact(), _visible(viewer))
        .group_by(CircleMember.circle_id))
    company_counts = db.session.execute(
        sa.select(CircleMember.circle_id, sa.func.count())
        .join(Company, sa.and_(Company.id == CircleMember.company_id, Company.tenant_id == CircleMember.tenant_id))
        .where(CircleMember.removed_at.is_(None), Company.archived_at.is_(None))
        .group_by(CircleMember.circle_id))
    counts: dict[int, int] = {}
    for circle_id, n in [*contact_counts, *company_counts]:
        counts[circle_id] = counts.get(circle_id, 0) + n
    return counts


@dataclass(frozen=True)
class MemberRow:
    """A current member as the circle page lists it."""

    member: CircleMember
    record: Contact | Company
    added_by: StaffUser | None


@dataclass(frozen=True)
class Page:
    rows: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _page_number(page: int | None, total: int, per_page: int) -> int:
    last = max(1, -(-total // per_page))
    return min(max(1, page or 1), last)


def circle_contacts(circle: Circle, viewer: StaffUser | None, *, page: int = 1, per_page: int = 25) -> Page:
    """The circle's current contacts that `viewer` may see, by name, one page of them."""
    where = (CircleMember.circle_id == circle.id, CircleMember.removed_at.is_(None), _listed_contact(),
             _visible(viewer))
    join = sa.and_(Contact.id == CircleMember.contact_id, Contact.tenant_id == CircleMember.tenant_id)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(CircleMember).join(Contact, join).where(*where))
    page = _page_number(page, total, per_page)
    added_by = aliased(StaffUser)
    rows = db.session.execute(
        sa.select(CircleMember, Contact, added_by)
        .join(Contact, join)
        .outerjoin(added_by, sa.and_(added_by.id == CircleMember.added_by_id,
                                     added_by.tenant_id == CircleMember.tenant_id))
        .where(*where)
        .order_by(sa.func.lower(Contact.last_name), sa.func.lower(Contact.first_name), Contact.id)
        .limit(per_page).offset((page - 1) * per_page))
    return Page([MemberRow(m, c, a) for m, c, a in rows], total, page, per_page)


def circle_companies(circle: Circle, *, page: int = 1, per_page: int = 25) -> Page:
    where = (CircleMember.circle_id == circle.id, CircleMember.removed_at.is_(None), Company.archived_at.is_(None))
    join = sa.and_(Company.id == CircleMember.company_id, Company.tenant_id == CircleMember.tenant_id)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(CircleMember).join(Company, join).where(*where))
    page = _page_number(page, total, per_page)
    added_by = aliased(StaffUser)
    rows = db.session.execute(
        sa.select(CircleMember, Company, added_by)
        .join(Company, join)
        .outerjoin(added_by, sa.and_(added_by.id == CircleMember.added_by_id,
                                     added_by.tenant_id == CircleMember.tenant_id))
        .where(*where)
        .order_by(sa.func.lower(Company.name), Company.id)
        .limit(per_page).offset((page - 1) * per_page))
    return Page([MemberRow(m, c, a) for m, c, a in rows], total, page, per_page)


def circle_history(circle: Circle, viewer: StaffUser | None, *, page: int = 1, per_page: int = 20) -> Page:
    """Joins and departures of the circle, newest first, as MembershipRows; entries about
    contacts hidden from `viewer` are left out."""
    # Company rows have no contact (the outer join gives NULLs): only contact rows are checked.
    where = (CircleMember.circle_id == circle.id, sa.or_(CircleMember.contact_id.is_(None), _visible(viewer)))
    contact_join = sa.and_(Contact.id == CircleMember.contact_id, Contact.tenant_id == CircleMember.tenant_id)
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(CircleMember).outerjoin(Contact, contact_join).where(*where))
    page = _page_number(page, total, per_page)
    added_by, removed_by = aliased(StaffUser), aliased(StaffUser)
    latest = sa.func.coalesce(CircleMember.removed_at, CircleMember.added_at)
    rows = db.session.execute(
        sa.select(CircleMember, Contact, Company, added_by, removed_by)
        .outerjoin(Contact, contact_join)
        .outerjoin(Company, sa.and_(Company.id == CircleMember.company_id, Company.tenant_id == CircleMember.tenant_id))
        .outerjoin(added_by, sa.and_(added_by.id == CircleMember.added_by_id,
                                     added_by.tenant_id == CircleMember.tenant_id))
        .outerjoin(removed_by, sa.and_(removed_by.id == CircleMember.removed_by_id,
                                       removed_by.tenant_id == CircleMember.tenant_id))
        .where(*where)
        .order_by(latest.desc(), CircleMember.id.desc())
        .limit(per_page).offset((page - 1) * per_page))
    return Page([MembershipRow(circle, m.added_at, a, m.removed_at, r, contact=c, company=co)
                 for m, c, co, a, r in rows], total, page, per_page)


def editable_contact_ids(viewer, contacts) -> set[int]:
    """Which of these contacts (already known to be visible to `viewer`) the viewer may
    change. The contacts.edit rule (crm.access) decides; for visible contacts its answer
    depends only on whether the viewer owns the contact, so it is asked once per kind rather
    than once per row (a list page stays at a fixed number of queries)."""
    answers: dict[bool, bool] = {}
    editable = set()
    for contact in contacts:
        own = contact.owner_id == getattr(viewer, "id", None)
        if own not in answers:
            answers[own] = can(viewer, "contacts.edit", contact)
        if answers[own]:
            editable.add(contact.id)
    return editable


# --- finding what to add ---------------------------------------------------------------------------

def find_contacts_for(circle: Circle, text: str, viewer: StaffUser | None, *,
                      limit: int = 10) -> list[tuple[Contact, bool]]:
    """Contacts matching an e-mail or a name that `viewer` may see, each with whether it is
    already in the circle. An exact e-mail comes first."""
    conditions = contact_matches(text)
    if not conditions:
        return []
    already = (sa.select(CircleMember.id)
               .where(CircleMember.circle_id == circle.id, CircleMember.contact_id == Contact.id,
                      CircleMember.removed_at.is_(None)).exists())
    exact = sa.func.lower(sa.func.coalesce(Contact.email, "")) == text.strip().lower()
    rows = db.session.execute(
        sa.select(Contact, already)
        .where(sa.or_(exact, sa.and_(*conditions)), _listed_contact(), _visible(viewer))
        .order_by(sa.case((exact, 0), else_=1), sa.func.lower(Contact.last_name), sa.func.lower(Contact.first_name),
                  Contact.id)
        .limit(limit))
    return [(contact, bool(is_member)) for contact, is_member in rows]


def find_companies_for(circle: Circle, text: str, *, limit: int = 10) -> list[tuple[Company, bool]]:
    words = search_words(text)
    if not words:
        return []
    already = (sa.select(CircleMember.id)
               .where(CircleMember.circle_id == circle.id, CircleMember.company_id == Company.id,
                      CircleMember.removed_at.is_(None)).exists())
    conditions = [sa.or_(contains(Company.name_key, word),
                         contains(sa.func.lower(sa.func.coalesce(Company.domain, "")), word))
                  for word in words]
    rows = db.session.execute(
        sa.select(Company, already)
        .where(sa.and_(*conditions), Company.archived_at.is_(None))
        .order_by(sa.func.lower(Company.name), Company.id)
        .limit(limit))
    return [(company, bool(is_member)) for company, is_member in rows]


# --- staff assigned to a circle -----------------------------------------------------------------------

def staff_of_circle(circle: Circle) -> list[StaffUser]:
    return list(db.session.scalars(
        sa.select(StaffUser)
        .join(CircleStaff, sa.and_(CircleStaff.staff_id == StaffUser.id, CircleStaff.tenant_id == StaffUser.tenant_id))
        .where(CircleStaff.circle_id == circle.id)
        .order_by(sa.func.lower(StaffUser.name), StaffUser.id)))


def assign_staff(circle: Circle, staff: StaffUser, actor) -> bool:
    """Assign a staff member to a circle (with restricted visibility they then see its
    members); False when they already were."""
    _require_configure(actor)
    if not staff.active:
        raise ServiceError(f"{staff.display_name} is deactivated; reactivate them first.", field="staff_id")
    exists = db.session.scalar(sa.select(CircleStaff.id).where(CircleStaff.circle_id == circle.id,
                                                               CircleStaff.staff_id == staff.id))
    if exists is not None:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(CircleStaff(circle_id=circle.id, staff_id=staff.id))
            db.session.flush()
    except IntegrityError:
        return False
    record("circle.staff_assigned", circle, actor=actor, details={"staff_id": staff.id, "staff": staff.display_name})
    return True


def unassign_staff(circle: Circle, staff: StaffUser, actor) -> bool:
    _require_configure(actor)
    link = db.session.scalar(sa.select(CircleStaff).where(CircleStaff.circle_id == circle.id,
                                                          CircleStaff.staff_id == staff.id))
    if link is None:
        return False
    db.session.delete(link)
    record("circle.staff_unassigned", circle, actor=actor, details={"staff_id": staff.id, "staff": staff.display_name})
    return True
