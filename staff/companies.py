"""Company pages: list, add, the company with its people, circles and tags, edit, delete."""
from __future__ import annotations


import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for

from core.db import db
from core.identity import StaffUser, current_principal
from core.permissions import can, require, staff_login_required
from core.tenancy import get_or_404
from core.web import int_arg, service_call
from crm.access import contact_visible_to
from crm.circles import active_circles, circles_of_company
from crm.companies import (company_page, contacts_of, create_company, delete_company, people_of, primary_contact_of,
                           set_primary_contact, update_company)
from crm.custom_fields import definitions
from crm.models import Company, Contact, Tag
from crm.tags import tags_of_company
from crm.timeline import company_timeline
from portal.accounts import account_for, may_sign_in
from staff import bp
from core.forms import custom_values_of, fill_custom, with_custom_fields
from staff.crm_forms import CompanyForm

def _company_form(company: Company | None = None):
    form_class = with_custom_fields(CompanyForm, definitions("company"))
    form = form_class(obj=company) if request.method == "GET" and company is not None else form_class()
    owners = db.session.scalars(sa.select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.name)).all()
    form.owner_id.choices = [("", "Nobody")] + [(str(o.id), o.display_name) for o in owners]
    if request.method == "GET":
        form.owner_id.data = str(company.owner_id or "") if company else str(current_principal().id)
        if company is not None:
            fill_custom(form, company)
    return form


def _form_data(form) -> dict:
    data = {name: form[name].data for name in ("name", "domain", "phone", "street", "city", "postal_code", "region",
                                               "country", "role", "owner_id")}
    data["custom_fields"] = custom_values_of(form)
    return data


@bp.get("/companies")
@staff_login_required
def companies():
    require("contacts.view")
    q = (request.args.get("q") or "").strip()[:200]
    after = request.args.get("after")
    tag = None
    if "tag" in request.args:  # a tag's companies (its page and the company page link here)
        tag_id = int_arg("tag")
        tag = db.session.scalar(sa.select(Tag).where(Tag.id == tag_id)) if tag_id else None
        if tag is None:
            abort(404)
    result = company_page(q, after, current_principal(), tag_id=tag.id if tag else None)
    return render_template("staff/companies/list.html", companies=result.companies, people=result.people, q=q,
                           tag=tag, total=result.total, next_cursor=result.next_cursor, first_page=not after)


@bp.route("/companies/new", methods=["GET", "POST"])
@staff_login_required
def new_company():
    require("contacts.create")
    form = _company_form()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            company = create_company(_form_data(form), actor=current_principal())
        if outcome:
            flash(f"{company.name} is added.", "success")
            return redirect(url_for("staff.company", company_id=company.id))
    return render_template("staff/companies/form.html", form=form, company=None)


@bp.get("/companies/<int:company_id>")
@staff_login_required
def company(company_id):
    record = get_or_404(Company, company_id)
    require("contacts.view", record)
    me = current_principal()
    people = people_of(record, me)
    primary = primary_contact_of(record)
    shown = primary if primary is None or contact_visible_to(me, primary) else None
    # Seen as on the portal: only a primary contact whose login may sign in (the portal's rule).
    on_portal = shown is not None and can(me, "people.impersonate") and may_sign_in(account_for(shown))
    return render_template("staff/companies/detail.html", company=record, people=people, primary_on_portal=on_portal,
                           timeline=company_timeline(record, me),
                           primary=primary if primary is None or contact_visible_to(me, primary) else None,
                           primary_hidden=primary is not None and not contact_visible_to(me, primary),
                           custom=definitions("company"),
                           circles=circles_of_company(record), all_circles=active_circles(),
                           tags=tags_of_company(record))


@bp.route("/companies/<int:company_id>/edit", methods=["GET", "POST"])
@staff_login_required
def edit_company(company_id):
    record = get_or_404(Company, company_id)
    require("contacts.edit", record)
    form = _company_form(record)
    if form.validate_on_submit():
        with service_call(form) as outcome:
            changed = update_company(record, _form_data(form), actor=current_principal())
        if outcome:
            flash(f"Saved {record.name}." if changed else "Nothing to change.", "success")
            return redirect(url_for("staff.company", company_id=record.id))
    return render_template("staff/companies/form.html", form=form, company=record)


@bp.post("/companies/<int:company_id>/primary")
@staff_login_required
def company_primary(company_id):
    record = get_or_404(Company, company_id)
    require("contacts.edit", record)
    chosen = None
    contact_id = request.form.get("contact_id", type=int)
    if contact_id:
        chosen = db.session.get(Contact, contact_id)
        if chosen is None or not contact_visible_to(current_principal(), chosen):
            flash("Choose one of the company's contacts.", "error")
            return redirect(url_for("staff.company", company_id=record.id))
    with service_call() as outcome:
        set_primary_contact(record, chosen, actor=current_principal())
    if outcome:
        flash(f"{chosen.full_name} is the primary contact." if chosen else "No primary contact now.", "success")
    return redirect(url_for("staff.company", company_id=record.id))


@bp.route("/companies/<int:company_id>/delete", methods=["GET", "POST"])
@staff_login_required
def delete_company_page(company_id):
    record = get_or_404(Company, company_id)
    require("contacts.delete", record)
    if request.method == "GET":
        return render_template("staff/companies/confirm_delete.html", company=record,
                               people=len(contacts_of(record, include_archived=True)))
    name = record.name
    with service_call() as outcome:
        detached = delete_company(record, actor=current_principal())
    if not outcome:
        return redirect(url_for("staff.company", company_id=record.id))
    flash(f"{name} is deleted." + (f" Its {detached} contact(s) remain, without a company." if detached else ""),
          "success")
    return redirect(url_for("staff.companies"))
