"""Circle pages: the list, a circle with its members, history and assigned staff, creating and
editing circles, and adding or removing members from either side (the circle's page, or the
contact's or company's page). Thin views over crm.circles."""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired

from core.db import db
from core.identity import StaffUser, current_principal
from core.permissions import can, require, staff_login_required
from core.tenancy import get_or_404
from core.web import int_arg, service_call
from crm import circle_content
from crm import circles as service
from crm.access import contact_visible_to, get_visible_contact_or_404
from crm.models import Circle, Company, Contact
from staff import bp, contact_page_url

SEARCH_MAX = 200


class CircleForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter a name for the circle.")],
                       render_kw={"maxlength": service.NAME_MAX, "autocomplete": "off"})
    description = TextAreaField("Description", render_kw={"rows": 3, "maxlength": service.DESCRIPTION_MAX},
                                description="What the circle is for, so teammates pick the right one.")
    color = StringField("Colour", default=service.DEFAULT_COLOR,
                        render_kw={"type": "color", "list": "circle-colours"},
                        description="Shown as a dot beside the circle's name.")


def _circle_url(circle: Circle, anchor: str | None = None, **args) -> str:
    return url_for("staff.circle", circle_id=circle.id, _anchor=anchor, **{k: v for k, v in args.items() if v})


def _form_id(name: str) -> int | None:
    value = request.form.get(name, type=int)
    return value if value is not None and 0 < value <= 2**31 - 1 else None


def _search_text(name: str) -> str:
    return " ".join((request.values.get(name) or "").split())[:SEARCH_MAX]


# --- the list and the circle's own settings -----------------------------------------------------------

@bp.get("/circles")
@staff_login_required
def circles():
    require("contacts.view")
    return render_template("staff/circles/list.html", active=service.active_circles(),
                           archived=service.archived_circles(), counts=service.member_counts(current_principal()))


@bp.route("/circles/new", methods=["GET", "POST"])
@staff_login_required
def new_circle():
    require("crm.configure")
    form = CircleForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            circle = service.create_circle(form.name.data, form.description.data, form.color.data, current_principal())
        if outcome:
            flash(f"Circle “{circle.name}” created. Add its first members below.", "success")
            return redirect(_circle_url(circle))
    return render_template("staff/circles/form.html", form=form, circle=None, colours=service.SUGGESTED_COLORS)


@bp.route("/circles/<int:circle_id>/edit", methods=["GET", "POST"])
@staff_login_required
def edit_circle(circle_id):
    circle = get_or_404(Circle, circle_id)
    require("crm.configure")
    form = CircleForm(obj=circle)
    if form.validate_on_submit():
        with service_call(form) as outcome:
            changed = service.update_circle(circle, form.name.data, form.description.data, form.color.data,
                                            current_principal())
        if outcome:
            flash(f"Circle “{circle.name}” saved." if changed else "Nothing to change.", "success")
            return redirect(_circle_url(circle))
    return render_template("staff/circles/form.html", form=form, circle=circle, colours=service.SUGGESTED_COLORS)


@bp.post("/circles/<int:circle_id>/archive")
@staff_login_required
def archive_circle(circle_id):
    circle = get_or_404(Circle, circle_id)
    require("crm.configure")
    with service_call() as outcome:
        changed = service.archive_circle(circle, current_principal())
    if outcome and changed:
        flash(f"Circle “{circle.name}” archived. Its members and history are kept; restore it any time.", "success")
    return redirect(url_for("staff.circles"))


@bp.post("/circles/<int:circle_id>/restore")
@staff_login_required
def restore_circle(circle_id):
    circle = get_or_404(Circle, circle_id)
    require("crm.configure")
    with service_call() as outcome:
        changed = service.restore_circle(circle, current_principal())
    if outcome and changed:
        flash(f"Circle “{circle.name}” restored.", "success")
    return redirect(_circle_url(circle))


# --- one circle -------------------------------------------------------------------------------------

@bp.get("/circles/<int:circle_id>")
@staff_login_required
def circle(circle_id):
    circle = get_or_404(Circle, circle_id)
    require("contacts.view")
    viewer = current_principal()
    contacts = service.circle_contacts(circle, viewer, page=int_arg("page") or 1)
    companies = service.circle_companies(circle, page=int_arg("cpage") or 1)
    history = service.circle_history(circle, viewer, page=int_arg("hpage") or 1)
    find, find_company = _search_text("find"), _search_text("find_company")
    found = service.find_contacts_for(circle, find, viewer) if find else []
    found_companies = service.find_companies_for(circle, find_company) if find_company else []
    editable = service.editable_contact_ids(viewer, [row.record for row in contacts.rows]
                                            + [contact for contact, _ in found])
    assigned = service.staff_of_circle(circle)
    assignable = []
    if can(viewer, "crm.configure"):
        taken = {s.id for s in assigned}
        active = db.session.scalars(sa.select(StaffUser).where(StaffUser.active.is_(True))
                                    .order_by(sa.func.lower(StaffUser.name), StaffUser.id))
        assignable = [s for s in active if s.id not in taken]
    return render_template(
        "staff/circles/detail.html", circle=circle, contacts=contacts, companies=companies, history=history,
        find=find, found=found, find_company=find_company, found_companies=found_companies, editable=editable,
        assigned=assigned, assignable=assignable, contact_page_url=contact_page_url,
        contact_list_url=_contact_list_url(circle), items=circle_content.items_of(circle))


def _contact_list_url(circle: Circle) -> str | None:
    if "staff.contacts" in current_app.view_functions:
        return url_for("staff.contacts", circle=circle.id)
    return None


@bp.post("/circles/<int:circle_id>/contacts")
@staff_login_required
def circle_add_contact(circle_id):
    circle = get_or_404(Circle, circle_id)
    require("contacts.edit")
    viewer = current_principal()
    contact_id = _form_id("contact_id")
    contact = db.session.scalar(sa.select(Contact).where(Contact.id == contact_id)) if contact_id else None
    back = _circle_url(circle, "contacts", find=_search_text("find"))
    if contact is None or not contact_visible_to(viewer, contact):
        flash("That contact could not be found. Search again.", "error")
        return redirect(back)
    require("contacts.edit", contact)
    with service_call() as outcome:
        added = service.add_contact_to_circle(circle, contact, viewer)
    if outcome:
        flash(f"Added {contact.full_name} to “{circle.name}”." if added
              else f"{contact.full_name} is already in “{circle.name}”.", "success" if added else "info")
    return redirect(back)


@bp.post("/circles/<int:circle_id>/contacts/<int:contact_id>/remove")
@staff_login_required
def circle_remove_contact(circle_id, contact_id):
    circle = get_or_404(Circle, circle_id)
    contact = get_visible_contact_or_404(contact_id)
    require("contacts.edit", contact)
    with service_call() as outcome:
        removed = service.remove_contact_from_circle(circle, contact, current_principal())
    if outcome:
        flash(f"Removed {contact.full_name} from “{circle.name}”." if removed
              else f"{contact.full_name} was not in “{circle.name}”.", "success" if removed else "info")
    return redirect(_circle_url(circle, "contacts", page=int_arg("page")))


@bp.post("/circles/<int:circle_id>/companies")
@staff_login_required
def circle_add_company(circle_id):
    circle = get_or_404(Circle, circle_id)
    require("contacts.edit")
    company_id = _form_id("company_id")
    company = db.session.scalar(sa.select(Company).where(Company.id == company_id)) if company_id else None
    back = _circle_url(circle, "companies", find_company=_search_text("find_company"))
    if company is None:
        flash("That company could not be found. Search again.", "error")
        return redirect(back)
    require("contacts.edit", company)
    with service_call() as outcome:
        added = service.add_company_to_circle(circle, company, current_principal())
    if outcome:
        flash(f"Added {company.name} to “{circle.name}”." if added
              else f"{company.name} is already in “{circle.name}”.", "success" if added else "info")
    return redirect(back)


@bp.post("/circles/<int:circle_id>/companies/<int:company_id>/remove")
@staff_login_required
def circle_remove_company(circle_id, company_id):
    circle = get_or_404(Circle, circle_id)
    company = get_or_404(Company, company_id)
    require("contacts.edit", company)
    with service_call() as outcome:
        removed = service.remove_company_from_circle(circle, company, current_principal())
    if outcome:
        flash(f"Removed {company.name} from “{circle.name}”." if removed else f"{company.name} was not in “{circle.name}”.",
              "success" if removed else "info")
    return redirect(_circle_url(circle, "companies", cpage=int_arg("cpage")))


@bp.post("/circles/<int:circle_id>/staff")
@staff_login_required
def circle_assign_staff(circle_id):
    circle = get_or_404(Circle, circle_id)
    require("crm.configure")
    staff_id = _form_id("staff_id")
    member = db.session.scalar(sa.select(StaffUser).where(StaffUser.id == staff_id)) if staff_id else None
    back = _circle_url(circle, "staff")
    if member is None:
        flash("Choose a teammate to assign.", "error")
        return redirect(back)
    with service_call() as outcome:
        assigned = service.assign_staff(circle, member, current_principal())
    if outcome:
        flash(f"{member.display_name} is assigned to “{circle.name}”." if assigned
              else f"{member.display_name} already was assigned to “{circle.name}”.",
              "success" if assigned else "info")
    return redirect(back)


@bp.post("/circles/<int:circle_id>/staff/<int:member_id>/remove")
@staff_login_required
def circle_unassign_staff(circle_id, member_id):
    circle = get_or_404(Circle, circle_id)
    member = get_or_404(StaffUser, member_id)
    require("crm.configure")
    with service_call() as outcome:
        changed = service.unassign_staff(circle, member, current_principal())
    if outcome and changed:
        flash(f"{member.display_name} is no longer assigned to “{circle.name}”.", "success")
    return redirect(_circle_url(circle, "staff"))


# --- from a contact's or a company's page -------------------------------------------------------------

def _add_from_record_page(record, add, back: str):
    """The "Add to" form of a record's page: the circle it names (another tenant's id is no
    circle at all), then `add(circle, record, actor)` from the service."""
    circle_id = _form_id("circle_id")
    circle = db.session.scalar(sa.select(Circle).where(Circle.id == circle_id)) if circle_id else None
    if circle is None:
        flash("Choose a circle.", "error")
        return redirect(back)
    with service_call() as outcome:
        added = add(circle, record, current_principal())
    if outcome:
        flash(f"Added to “{circle.name}”." if added else f"Already in “{circle.name}”.", "success" if added else "info")
    return redirect(back)


def _remove_from_record_page(circle: Circle, record, remove, back: str):
    with service_call() as outcome:
        removed = remove(circle, record, current_principal())
    if outcome:
        flash(f"Removed from “{circle.name}”." if removed else f"Not in “{circle.name}”.", "success" if removed else "info")
    return redirect(back)


@bp.post("/contacts/<int:contact_id>/circles")
@staff_login_required
def contact_add_circle(contact_id):
    contact = get_visible_contact_or_404(contact_id)
    require("contacts.edit", contact)
    return _add_from_record_page(contact, service.add_contact_to_circle, contact_page_url(contact.id))


@bp.post("/contacts/<int:contact_id>/circles/<int:circle_id>/remove")
@staff_login_required
def contact_remove_circle(contact_id, circle_id):
    contact = get_visible_contact_or_404(contact_id)
    circle = get_or_404(Circle, circle_id)
    require("contacts.edit", contact)
    return _remove_from_record_page(circle, contact, service.remove_contact_from_circle, contact_page_url(contact.id))


@bp.post("/companies/<int:company_id>/circles")
@staff_login_required
def company_add_circle(company_id):
    company = get_or_404(Company, company_id)
    require("contacts.edit", company)
    return _add_from_record_page(company, service.add_company_to_circle,
                                 url_for("staff.company", company_id=company.id))


@bp.post("/companies/<int:company_id>/circles/<int:circle_id>/remove")
@staff_login_required
def company_remove_circle(company_id, circle_id):
    company = get_or_404(Company, company_id)
    circle = get_or_404(Circle, circle_id)
    require("contacts.edit", company)
    return _remove_from_record_page(circle, company, service.remove_company_from_circle,
                                    url_for("staff.company", company_id=company.id))
