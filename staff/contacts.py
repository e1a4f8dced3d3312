"""Contact pages: the list (search, filters, sort), adding, the 360° page, editing, role and
status changes, history (archive) and deletion."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for

from core import scalars
from core.db import db
from core.identity import StaffUser, current_principal
from core.permissions import require, staff_login_required
from core.web import service_call
from crm import contact_list, sections
from crm.access import get_visible_contact_or_404
from crm.contacts import (SOCIAL_KEYS, archive_contact, change_role, change_status, create_contact, delete_contact,
                          restore_contact, update_contact)
from crm.custom_fields import definitions
from crm.models import Company, Contact, ContactRole, PipelineStatus, Task, TimelineEntry
from crm.normalize import display_phone
from staff import bp
from core.forms import custom_values_of, fill_custom, with_custom_fields
from staff.crm_forms import ContactForm

TIMELINE_LIMIT = 100


@bp.app_template_filter("phone")
def _phone(value):
    return display_phone(value)


@bp.app_template_filter("count_label")
def _count_label(value, cap=contact_list.COUNT_CAP):
    return contact_list.count_label(value, cap)


def _contact_form(contact: Contact | None = None):
    form_class = with_custom_fields(ContactForm, definitions("contact"))
    form = form_class(obj=contact) if request.method == "GET" and contact is not None else form_class()
    statuses = db.session.scalars(sa.select(PipelineStatus).where(PipelineStatus.archived_at.is_(None))
                                  .order_by(PipelineStatus.position)).all()
    form.status_id.choices = [(str(s.id), s.name) for s in statuses]
    if contact is not None and contact.status_id and contact.status_id not in {s.id for s in statuses}:
        # An archived status stays the contact's until someone picks another on purpose.
        form.status_id.choices.insert(0, (str(contact.status_id), f"{contact.status.name} (archived)"))
    owners = db.session.scalars(sa.select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.name)).all()
    form.owner_id.choices = [("", "Nobody")] + [(str(o.id), o.display_name) for o in owners]
    if request.method == "GET":
        if contact is not None:
            form.status_id.data = str(contact.status_id or "")
            form.owner_id.data = str(contact.owner_id or "")
            form.company_name.data = contact.company.name if contact.company_id else ""
            form.extra_emails.data = "\n".join(contact.extra_emails or [])
            form.extra_phones.data = "\n".join(contact.extra_phones or [])
            for key in SOCIAL_KEYS:
                form[f"social_{key}"].data = (contact.social or {}).get(key)
            fill_custom(form, contact)
        else:
            default = next((s for s in statuses if s.is_default), statuses[0] if statuses else None)
            form.status_id.data = str(default.id) if default else ""
            form.owner_id.data = str(current_principal().id)
            form.is_active.data = True
    return form


def _form_data(form) -> dict:
    data = {name: form[name].data for name in (
        "first_name", "last_name", "email", "extra_emails", "phone", "extra_phones", "company_name", "job_title",
        "street", "city", "postal_code", "region", "country", "source", "notes", "status_id", "owner_id",
        "is_active", "is_test")}
    data["social"] = {key: form[f"social_{key}"].data for key in SOCIAL_KEYS}
    data["custom_fields"] = custom_values_of(form)
    for name in ("owner_id", "status_id"):  # not sent: keep the default (new) or the current value
        if name not in request.form:
            data.pop(name)
    return data


def _company_names() -> list[str]:
    return db.session.scalars(sa.select(Company.name).order_by(Company.name).limit(500)).all()


@bp.get("/contacts")
@staff_login_required
def contacts():
    require("contacts.view")
    filters = contact_list.ContactFilters.from_args(request.args)
    sort = request.args.get("sort", contact_list.DEFAULT_SORT)
    descending = request.args.get("dir", "desc") != "asc"
    staff = current_principal()
    from crm.bulk import ACTIONS
    from crm.segments import segment_tabs
    from crm.selection import picked_ids
    from staff.bulk import current_selection

    chosen = current_selection()
    scalars.want("crm.selection_count", chosen.count_query)  # fetched with the list
    result = contact_list.page(filters, staff, sort=sort, descending=descending, after=request.args.get("after"))
    chosen_count = scalars.value("crm.selection_count")
    segment_id = request.args.get("segment", type=int)
    saved_segments = segment_tabs(staff)
    picked = None
    if not chosen.is_all_matching:
        picked = picked_ids(staff, [c.id for c in result.contacts]) if chosen_count and result.contacts else set()
    choices = contact_list.choices_for_filters()
    status_names, owner_names = contact_list.row_labels(result.contacts, choices)
    return render_template(
        "staff/contacts/list.html", page=result, filters=filters, sort=sort, descending=descending,
        sorts=contact_list.SORTS, roles=ContactRole, choices=choices, status_names=status_names,
        owner_names=owner_names,
        first_page=not request.args.get("after"), bulk_actions=ACTIONS,
        selection={"count": chosen_count, "all_matching": chosen.is_all_matching}, picked=picked,
        segments=saved_segments, segment=next((s for s in saved_segments if s.id == segment_id), None))


@bp.route("/contacts/new", methods=["GET", "POST"])
@staff_login_required
def new_contact():
    require("contacts.create")
    form = _contact_form()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            contact = create_contact(_form_data(form), actor=current_principal(), role=form.role.data)
        if outcome:
            flash(f"{contact.full_name} is added.", "success")
            return redirect(url_for("staff.contact", contact_id=contact.id))
    return render_template("staff/contacts/form.html", form=form, contact=None, company_names=_company_names())


@bp.get("/contacts/<int:contact_id>")
@staff_login_required
def contact(contact_id):
    record = get_visible_contact_or_404(contact_id)
    require("contacts.view", record)
    if record.merged_into_id:
        return redirect(url_for("staff.contact", contact_id=record.merged_into_id), code=301)
    timeline = db.session.scalars(sa.select(TimelineEntry).where(TimelineEntry.contact_id == record.id)
                                  .order_by(TimelineEntry.occurred_at.desc(), TimelineEntry.id.desc())
                                  .limit(TIMELINE_LIMIT)).all()
    statuses = db.session.scalars(sa.select(PipelineStatus).where(PipelineStatus.archived_at.is_(None))
                                  .order_by(PipelineStatus.position)).all()
    assignees = db.session.scalars(sa.select(StaffUser).where(StaffUser.active.is_(True))
                                   .order_by(StaffUser.name)).all()
    return render_template("staff/contacts/detail.html", contact=record, timeline=timeline, statuses=statuses,
                           roles=ContactRole, custom=definitions("contact"), social_labels=SOCIAL_KEYS,
                           sections=contact_page_sections(record), task_kinds=Task.KINDS, assignees=assignees)


def contact_page_sections(record: Contact) -> dict:
    """What the other CRM areas show on the contact page."""
    from crm import activities, circles, tags

    return sections.contact_sections(record, current_principal()) | {
        "circles": circles.circles_of_contact(record), "all_circles": circles.active_circles(),
        "tags": tags.tags_of_contact(record), "notes": activities.notes_of(record),
        "tasks": activities.open_tasks_of(record), "events": activities.events_of(record)}


@bp.route("/contacts/<int:contact_id>/edit", methods=["GET", "POST"])
@staff_login_required
def edit_contact(contact_id):
    record = get_visible_contact_or_404(contact_id)
    require("contacts.edit", record)
    form = _contact_form(record)
    if form.validate_on_submit():
        with service_call(form) as outcome:
            changed = update_contact(record, _form_data(form), actor=current_principal())
        if outcome:
            flash(f"Saved {record.full_name}." if changed else "Nothing to change.", "success")
            return redirect(url_for("staff.contact", contact_id=record.id))
    return render_template("staff/contacts/form.html", form=form, contact=record, company_names=_company_names())


@bp.post("/contacts/<int:contact_id>/role")
@staff_login_required
def contact_role(contact_id):
    record = get_visible_contact_or_404(contact_id)
    require("contacts.edit", record)
    role = request.form.get("role", "")
    with service_call(show_error=False) as outcome:
        changed = change_role(record, role, actor=current_principal(), confirmed=request.form.get("confirm") == "yes")
    if outcome.error and outcome.error.field == "confirm":  # a change that wants a second look
        return render_template("staff/contacts/confirm_role.html", contact=record, role=role,
                               role_label=ContactRole.LABELS.get(role, role), message=outcome.error.message)
    if outcome.error:
        flash(outcome.error.message, "error")
    elif changed:
        flash(f"{record.full_name} is now a {record.role_label}.", "success")
    return redirect(url_for("staff.contact", contact_id=record.id))


@bp.post("/contacts/<int:contact_id>/status")
@staff_login_required
def contact_status(contact_id):
    record = get_visible_contact_or_404(contact_id)
    require("contacts.edit", record)
    try:
        status_id = int(request.form.get("status_id", ""))
    except ValueError:
        flash("Choose a status from the list.", "error")
    else:
        with service_call() as outcome:
            changed = change_status(record, status_id, actor=current_principal())
        if outcome and changed:
            flash(f"Status of {record.full_name}: {record.status.name}.", "success")
    return redirect(url_for("staff.contact", contact_id=record.id))


@bp.post("/contacts/<int:contact_id>/archive")
@staff_login_required
def archive(contact_id):
    record = get_visible_contact_or_404(contact_id)
    require("contacts.delete", record)
    with service_call() as outcome:
        archive_contact(record, actor=current_principal())
    if not outcome:
        return redirect(url_for("staff.contact", contact_id=record.id))
    flash(f"{record.full_name} is moved to history. You can restore them from there.", "success")
    return redirect(url_for("staff.contacts"))


@bp.post("/contacts/<int:contact_id>/restore")
@staff_login_required
def restore(contact_id):
    record = get_visible_contact_or_404(contact_id)
    require("contacts.delete", record)
    with service_call() as outcome:
        restore_contact(record, actor=current_principal())
    if outcome:
        flash(f"{record.full_name} is restored.", "success")
    return redirect(url_for("staff.contact", contact_id=record.id))


@bp.route("/contacts/<int:contact_id>/delete", methods=["GET", "POST"])
@staff_login_required
def delete(contact_id):
    record = get_visible_contact_or_404(contact_id)
    require("contacts.delete", record)
    if request.method == "GET":
        return render_template("staff/contacts/confirm_delete.html", contact=record)
    name = record.full_name
    with service_call() as outcome:
        delete_contact(record, actor=current_principal())
    if not outcome:
        return redirect(url_for("staff.contact", contact_id=record.id))
    flash(f"{name} is deleted.", "success")
    return redirect(url_for("staff.contacts"))


