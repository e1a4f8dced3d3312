"""Tags: free labels on contacts and companies, and the tag cloud.

A tag is found by its name regardless of case ("VIP", "vip" and "Vip " are one tag); the
first spelling used is the one shown. Tagging and untagging a record need "contacts.edit" on
it (Staff: their own) and write a timeline entry; renaming and deleting tags need
"crm.configure" and are audited. Renaming a tag to the name of another merges the two.
"""
from __future__ import annotations

import math

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.audit import record, register_actions
from core.db import db
from core.errors import ServiceError
from core.identity import StaffUser
from core.permissions import can
from core.text import clean_line
from crm.access import visible_contacts_clause
from crm.models import Company, CompanyTag, Contact, ContactTag, Tag
from crm.timeline import record_activity

NAME_MAX = 60

register_actions({
    "tag.renamed": "Tag renamed",
    "tag.merged": "Tag merged into another",
    "tag.deleted": "Tag deleted",
})


def tag_key(name: str) -> str:
    """What makes two tag names the same: case and runs of white space do not count."""
    return " ".join(name.split()).casefold()[:NAME_MAX]


def _clean_name(name: str | None) -> str:
    name = clean_line(name, label="a tag", field="name", max_length=NAME_MAX)
    return " ".join(name.split())


def _require_configure(actor) -> None:
    if not can(actor, "crm.configure"):
        raise ServiceError("You do not have permission to manage tags.")


def _require_edit(actor, record_) -> None:
    if not can(actor, "contacts.edit", record_):
        what = "contact" if isinstance(record_, Contact) else "company"
        raise ServiceError(f"You do not have permission to change this {what}'s tags.")


def find_tag(name: str) -> Tag | None:
    return db.session.scalar(sa.select(Tag).where(Tag.key == tag_key(name)))


def get_or_create_tag(name: str) -> Tag:
    """The tag with this name (any case), made on first use."""
    name = _clean_name(name)
    tag = find_tag(name)
    if tag is not None:
        return tag
    tag = Tag(name=name, key=tag_key(name))
    try:
        with db.session.begin_nested():
            db.session.add(tag)
            db.session.flush()
    except IntegrityError:  # someone made it at the same moment
        tag = find_tag(name)
        if tag is None:
            raise
    return tag


# --- tagging records -----------------------------------------------------------------------------

def _link(model, column: str, record_id: int, tag: Tag) -> bool:
    exists = db.session.scalar(sa.select(model.id).where(getattr(model, column) == record_id, model.tag_id == tag.id))
    if exists is not None:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(model(**{column: record_id, "tag_id": tag.id}))
            db.session.flush()
    except IntegrityError:
        return False
    return True


def _unlink(model, column: str, record_id: int, tag: Tag) -> bool:
    link = db.session.scalar(sa.select(model).where(getattr(model, column) == record_id, model.tag_id == tag.id))
    if link is None:
        return False
    db.session.delete(link)
    return True


def tag_contact(contact: Contact, name: str, actor, *, check: bool = True) -> Tag:
    """Tag a contact (making the tag if it is new); tagging twice changes nothing. `check=False`
    is for actions the tenant configured (a kickoff form's tags), run where no staff member
    acts; `actor` names them on the timeline."""
    if check:
        _require_edit(actor, contact)
    tag = get_or_create_tag(name)
    if _link(ContactTag, "contact_id", contact.id, tag):
        record_activity("tag_added", f"Tagged “{tag.name}”", contact=contact, subject=tag, actor=actor,
                        details={"tag_id": tag.id, "tag": tag.name})
    return tag


def untag_contact(contact: Contact, tag: Tag, actor) -> bool:
    """Take a tag off a contact; False when it did not have it."""
    _require_edit(actor, contact)
    if not _unlink(ContactTag, "contact_id", contact.id, tag):
        return False
    record_activity("tag_removed", f"Tag “{tag.name}” removed", contact=contact, subject=tag, actor=actor,
                    details={"tag_id": tag.id, "tag": tag.name})
    return True


def tag_company(company: Company, name: str, actor) -> Tag:
    _require_edit(actor, company)
    tag = get_or_create_tag(name)
    if _link(CompanyTag, "company_id", company.id, tag):
        record_activity("tag_added", f"Tagged “{tag.name}”", company=company, subject=tag, actor=actor,
                        details={"tag_id": tag.id, "tag": tag.name})
    return tag


def untag_company(company: Company, tag: Tag, actor) -> bool:
    _require_edit(actor, company)
    if not _unlink(CompanyTag, "company_id", company.id, tag):
        return False
    record_activity("tag_removed", f"Tag “{tag.name}” removed", company=company, subject=tag, actor=actor,
                    details={"tag_id": tag.id, "tag": tag.name})
    return True


def tags_of_contact(contact: Contact) -> list[Tag]:
    return list(db.session.scalars(
        sa.select(Tag)
        .join(ContactTag, sa.and_(ContactTag.tag_id == Tag.id, ContactTag.tenant_id == Tag.tenant_id))
        .where(ContactTag.contact_id == contact.id)
        .order_by(Tag.key, Tag.id)))


def tags_of_company(company: Company) -> list[Tag]:
    return list(db.session.scalars(
        sa.select(Tag)
        .join(CompanyTag, sa.and_(CompanyTag.tag_id == Tag.id, CompanyTag.tenant_id == Tag.tenant_id))
        .where(CompanyTag.company_id == company.id)
        .order_by(Tag.key, Tag.id)))


# --- the cloud ------------------------------------------------------------------------------------------

def _contact_counts(viewer):
    visible = visible_contacts_clause(viewer) if viewer is not None else sa.true()
    return (sa.select(ContactTag.tag_id.label("tag_id"), sa.func.count().label("n"))
            .join(Contact, sa.and_(Contact.id == ContactTag.contact_id, Contact.tenant_id == ContactTag.tenant_id))
            .where(Contact.archived_at.is_(None), Contact.merged_into_id.is_(None), visible)
            .group_by(ContactTag.tag_id)
            .subquery("contact_counts"))


def _company_counts():
    return (sa.select(CompanyTag.tag_id.label("tag_id"), sa.func.count().label("n"))
            .join(Company, sa.and_(Company.id == CompanyTag.company_id, Company.tenant_id == CompanyTag.tenant_id))
            .where(Company.archived_at.is_(None))
            .group_by(CompanyTag.tag_id)
            .subquery("company_counts"))


def tag_cloud(viewer: StaffUser | None = None) -> list[tuple[Tag, int]]:
    """Every tag with how many contacts and companies carry it, by name, in one query. With
    a `viewer`, contacts hidden from them are not counted (None: count everything)."""
    contacts, companies = _contact_counts(viewer), _company_counts()
    total = sa.func.coalesce(contacts.c.n, 0) + sa.func.coalesce(companies.c.n, 0)
    rows = db.session.execute(
        sa.select(Tag, total)
        .outerjoin(contacts, contacts.c.tag_id == Tag.id)
        .outerjoin(companies, companies.c.tag_id == Tag.id)
        .order_by(Tag.key, Tag.id))
    return [(tag, int(n)) for tag, n in rows]


def tag_usage(tag: Tag, viewer: StaffUser | None = None) -> tuple[int, int]:
    """(contacts, companies) carrying the tag, contacts hidden from `viewer` left out."""
    visible = visible_contacts_clause(viewer) if viewer is not None else sa.true()
    contacts = db.session.scalar(
        sa.select(sa.func.count()).select_from(ContactTag)
        .join(Contact, sa.and_(Contact.id == ContactTag.contact_id, Contact.tenant_id == ContactTag.tenant_id))
        .where(ContactTag.tag_id == tag.id, Contact.archived_at.is_(None), Contact.merged_into_id.is_(None), visible))
    companies = db.session.scalar(
        sa.select(sa.func.count()).select_from(CompanyTag)
        .join(Company, sa.and_(Company.id == CompanyTag.company_id, Company.tenant_id == CompanyTag.tenant_id))
        .where(CompanyTag.tag_id == tag.id, Company.archived_at.is_(None)))
    return contacts, companies


def cloud_sizes(cloud: list[tuple[Tag, int]], steps: int = 5) -> list[tuple[Tag, int, int]]:
    """(tag, count, size 1..steps): sizes grow with the logarithm of the count, so one
    very common tag does not shrink all the others to nothing."""
    top = max((n for _, n in cloud), default=0)
    if top <= 0:
        return [(tag, n, 1) for tag, n in cloud]
    scale = math.log1p(top)
    return [(tag, n, 1 + round((steps - 1) * math.log1p(n) / scale)) for tag, n in cloud]


# --- managing tags ------------------------------------------------------------------------------------

def _merge_links(model, column: str, source: Tag, target: Tag) -> None:
    """Move the source tag's links to the target, except for records that have both."""
    owner = getattr(model, column)
    has_target = sa.select(owner).where(model.tag_id == target.id).scalar_subquery()
    db.session.execute(
        sa.update(model).where(model.tag_id == source.id, owner.not_in(has_target)).values(tag_id=target.id)
        .execution_options(synchronize_session=False))
    db.session.execute(sa.delete(model).where(model.tag_id == source.id).execution_options(synchronize_session=False))


def rename_tag(tag: Tag, name: str, actor) -> Tag:
    """Rename a tag. When another tag already has that name (in any case), the two are
    merged: this tag's contacts and companies move to the other, and this tag goes.
    Returns the tag that remains."""
    _require_configure(actor)
    name = _clean_name(name)
    key = tag_key(name)
    if key == tag.key:
        if name != tag.name:
            record("tag.renamed", tag, actor=actor, details={"from": tag.name, "to": name})
            tag.name = name
        return tag
    target = db.session.scalar(sa.select(Tag).where(Tag.key == key, Tag.id != tag.id))
    if target is None:
        record("tag.renamed", tag, actor=actor, details={"from": tag.name, "to": name})
        tag.name, tag.key = name, key
        return tag
    db.session.flush()
    _merge_links(ContactTag, "contact_id", tag, target)
    _merge_links(CompanyTag, "company_id", tag, target)
    record("tag.merged", target, actor=actor, details={"merged": tag.name, "merged_id": tag.id, "into": target.name})
    db.session.delete(tag)
    db.session.flush()
    return target


def delete_tag(tag: Tag, actor) -> None:
    """Delete a tag and take it off every contact and company."""
    _require_configure(actor)
    contacts = db.session.scalar(sa.select(sa.func.count()).select_from(ContactTag).where(ContactTag.tag_id == tag.id))
    companies = db.session.scalar(sa.select(sa.func.count()).select_from(CompanyTag).where(CompanyTag.tag_id == tag.id))
    record("tag.deleted", tag, actor=actor, details={"contacts": contacts, "companies": companies})
    db.session.flush()
    for model in (ContactTag, CompanyTag):
        db.session.execute(sa.delete(model).where(model.tag_id == tag.id).execution_options(synchronize_session=False))
    db.session.delete(tag)
    db.session.flush()
