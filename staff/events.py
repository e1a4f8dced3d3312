"""Events: the list (upcoming and past), one event with its attendees, and managing them."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, IntegerField, SelectChoice, SelectField, StringField, TextAreaField, URLField
from wtforms.validators import Optional

from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser, current_principal
from core.permissions import can, require, staff_login_required
from core.tenancy import get_or_404
from core.web import service_call
from crm.access import visible_contacts_clause
from crm.activities import (STATUS_LABELS, NotAllowed, add_attendee, attendee_of, create_event, delete_event,
                            find_contact_by_email, invite_circle, may_manage_attendee, remove_attendee,
                            seats_left, seats_taken, set_attendance, upcoming_clause, update_event, attendee_or_404)
from crm.models import Circle, Contact, Event, EventAttendee
from staff import bp
from staff.tasks import optional_int, utc_field

EVENTS_PAGE_SIZE = 25
ATTENDEES_PAGE_SIZE = 100


class EventForm(FlaskForm):
    title = StringField("Title", render_kw={"maxlength": 200})
    starts_at = utc_field("Starts (UTC)", "Date and time in UTC, like every time shown in Portico.")
    ends_at = utc_field("Ends (UTC, optional)", "After the start.")
    location = StringField("Location", validators=[Optional()], render_kw={"maxlength": 300},
                           description="An address or a room. For an online event, give the link below.")
    link = URLField("Link (optional)", validators=[Optional()], render_kw={"maxlength": 500},
                    description="A web address starting with https://, e.g. the video call.")
    capacity = IntegerField("Capacity (optional)", validators=[Optional()], render_kw={"min": 1},
                            invalid_value_message="Enter the number of places as a whole number, or leave it empty.",
                            description="The most people who can come. Leave empty for no limit.")
    description = TextAreaField("Description (optional)", validators=[Optional()], render_kw={"rows": 4},
                                description="Plain text. Web addresses become links.")

    def values(self) -> dict:
        return {name: getattr(self, name).data for name in
                ("title", "starts_at", "ends_at", "location", "link", "capacity", "description")}


class AttendeeForm(FlaskForm):
    email = EmailField("Add a contact by e-mail", render_kw={"autocomplete": "off", "placeholder": "name@example.com"})


class CircleInviteForm(FlaskForm):
    circle_id = SelectField("Invite a Circle", coerce=optional_int, validate_choice=False)

    def fill(self) -> None:
        circles = db.session.execute(sa.select(Circle.id, Circle.name).where(Circle.archived_at.is_(None))
                                     .order_by(sa.func.lower(Circle.name)))
        self.circle_id.choices = [SelectChoice("", "Choose a circle")] + [SelectChoice(str(cid), name)
                                                                          for cid, name in circles]


class AttendanceForm(FlaskForm):
    status = SelectField("Status", choices=[SelectChoice(k, v) for k, v in STATUS_LABELS.items()], validate_choice=False)


# --- the list ------------------------------------------------------------------------------------

@bp.get("/events")
@staff_login_required
def events():
    require("contacts.view")
    when = "past" if request.args.get("when") == "past" else "upcoming"
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    now = utcnow()
    query = sa.select(Event)
    if when == "upcoming":
        query = query.where(upcoming_clause(now)).order_by(Event.starts_at, Event.id)
    else:
        query = query.where(sa.not_(upcoming_clause(now))).order_by(Event.starts_at.desc(), Event.id.desc())
    rows = list(db.session.scalars(query.offset((page - 1) * EVENTS_PAGE_SIZE).limit(EVENTS_PAGE_SIZE + 1)))
    more = len(rows) > EVENTS_PAGE_SIZE
    rows = rows[:EVENTS_PAGE_SIZE]
    taken = dict(db.session.execute(
        sa.select(EventAttendee.event_id, sa.func.count(EventAttendee.id))
        .where(EventAttendee.event_id.in_([e.id for e in rows]), EventAttendee.status != "declined")
        .group_by(EventAttendee.event_id)).tuples().all()) if rows else {}
    return render_template("staff/events/list.html", events=rows, taken=taken, when=when, page=page, more=more,
                           now=now, may_manage=can(current_principal(), "crm.configure"))


@bp.route("/events/new", methods=["GET", "POST"])
@staff_login_required
def new_event():
    require("crm.configure")
    form = EventForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            event = create_event(**form.values(), actor=current_principal())
        if outcome:
            flash(f"Event “{event.title}” created. Now invite people.", "success")
            return redirect(url_for("staff.event", event_id=event.id))
    return render_template("staff/events/form.html", form=form, event=None)


# --- one event -----------------------------------------------------------------------------------

def _event_page(event: Event, *, attendee_form: AttendeeForm | None = None,
                circle_form: CircleInviteForm | None = None):
    me = current_principal()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    visible = visible_contacts_clause(me)
    rows = db.session.execute(
        sa.select(EventAttendee, Contact)
        .join(Contact, sa.and_(Contact.id == EventAttendee.contact_id, Contact.tenant_id == EventAttendee.tenant_id))
        .where(EventAttendee.event_id == event.id, visible)
        .order_by(sa.func.lower(Contact.last_name), sa.func.lower(Contact.first_name), Contact.id)
        .offset((page - 1) * ATTENDEES_PAGE_SIZE).limit(ATTENDEES_PAGE_SIZE + 1)).all()
    more = len(rows) > ATTENDEES_PAGE_SIZE
    rows = rows[:ATTENDEES_PAGE_SIZE]
    circle_ids = {a.via_circle_id for a, _ in rows if a.via_circle_id}
    circle_names = dict(db.session.execute(
        sa.select(Circle.id, Circle.name).where(Circle.id.in_(circle_ids))).tuples().all()) if circle_ids else {}
    shown = db.session.scalar(
        sa.select(sa.func.count(EventAttendee.id))
        .join(Contact, sa.and_(Contact.id == EventAttendee.contact_id, Contact.tenant_id == EventAttendee.tenant_id))
        .where(EventAttendee.event_id == event.id, visible))
    taken = seats_taken(event)
    creator = db.session.scalar(sa.select(StaffUser.name).where(StaffUser.id == event.created_by_id)) \
        if event.created_by_id else None
    may_manage = can(me, "crm.configure")
    if circle_form is None and may_manage:
        circle_form = CircleInviteForm()
    if circle_form is not None:
        circle_form.fill()
    return render_template(
        "staff/events/detail.html", event=event, attendees=rows, circle_names=circle_names, shown=shown,
        taken=taken, left=seats_left(event, taken), creator=creator, may_manage=may_manage,
        may_add=can(me, "contacts.edit"), attendee_form=attendee_form or AttendeeForm(formdata=None),
        circle_form=circle_form, statuses=STATUS_LABELS, rsvp_labels=EventAttendee.RSVP_LABELS, page=page, more=more,
        now=utcnow())


@bp.get("/events/<int:event_id>")
@staff_login_required
def event(event_id):
    event = get_or_404(Event, event_id)
    require("contacts.view")
    return _event_page(event)


@bp.route("/events/<int:event_id>/edit", methods=["GET", "POST"])
@staff_login_required
def edit_event(event_id):
    event = get_or_404(Event, event_id)
    require("crm.configure")
    form = EventForm(obj=event)
    if form.validate_on_submit():
        with service_call(form) as outcome:
            update_event(event, **form.values(), actor=current_principal())
        if outcome:
            flash("Event saved.", "success")
            return redirect(url_for("staff.event", event_id=event.id))
    return render_template("staff/events/form.html", form=form, event=event)


@bp.post("/events/<int:event_id>/delete", endpoint="delete_event")
@staff_login_required
def delete_event_view(event_id):
    event = get_or_404(Event, event_id)
    require("crm.configure")
    title = event.title
    with service_call() as outcome:
        delete_event(event, current_principal())
    if outcome:
        flash(f"Deleted the event “{title}”.", "success")
    return redirect(url_for("staff.events"))


@bp.post("/events/<int:event_id>/attendees", endpoint="add_event_attendee")
@staff_login_required
def add_event_attendee_view(event_id):
    event = get_or_404(Event, event_id)
    require("contacts.edit")
    me = current_principal()
    form = AttendeeForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            contact = find_contact_by_email(form.email.data, viewer=me, field="email")
            already = attendee_of(event, contact) is not None
            add_attendee(event, contact, me)
        if outcome:
            flash(f"{contact.full_name} is already on the list." if already
                  else f"Invited {contact.full_name}.", "info" if already else "success")
            return redirect(url_for("staff.event", event_id=event.id, _anchor="attendees"))
    return _event_page(event, attendee_form=form)


@bp.post("/events/<int:event_id>/circles", endpoint="invite_event_circle")
@staff_login_required
def invite_event_circle_view(event_id):
    event = get_or_404(Event, event_id)
    require("crm.configure")
    form = CircleInviteForm()
    if form.validate_on_submit():
        circle = db.session.get(Circle, form.circle_id.data) if form.circle_id.data else None
        with service_call(form) as outcome:
            if circle is None or circle.tenant_id != event.tenant_id:
                raise ServiceError("Choose a circle.", field="circle_id")
            result = invite_circle(event, circle, current_principal())
        if outcome:
            flash(f"{circle.name}: {result.message}", "info" if result.left_out else "success")
            return redirect(url_for("staff.event", event_id=event.id, _anchor="attendees"))
    return _event_page(event, circle_form=form)


@bp.post("/events/<int:event_id>/attendees/<int:contact_id>/status", endpoint="set_event_attendance")
@staff_login_required
def set_event_attendance_view(event_id, contact_id):
    event, contact, attendee = attendee_or_404(event_id, contact_id)
    me = current_principal()
    if not may_manage_attendee(me, contact):
        abort(403)
    form = AttendanceForm()
    if form.validate_on_submit():
        with service_call(show_error=False) as outcome:
            try:
                set_attendance(attendee, form.status.data, me)
            except NotAllowed:  # a ServiceError too, but no message: the contact is not theirs to manage
                abort(403)
        if outcome.error:
            flash(f"{contact.full_name}: {outcome.error.message}", "error")
        else:
            flash(f"{contact.full_name}: {STATUS_LABELS[attendee.status].lower()}.", "success")
    return redirect(url_for("staff.event", event_id=event.id, page=request.form.get("page", type=int),
                            _anchor=f"attendee-{contact.id}"))


@bp.post("/events/<int:event_id>/attendees/<int:contact_id>/remove", endpoint="remove_event_attendee")
@staff_login_required
def remove_event_attendee_view(event_id, contact_id):
    event, contact, _ = attendee_or_404(event_id, contact_id)
    me = current_principal()
    if not may_manage_attendee(me, contact):
        abort(403)
    with service_call() as outcome:
        remove_attendee(event, contact, me)
    if outcome:
        flash(f"Removed {contact.full_name} from the list.", "success")
    return redirect(url_for("staff.event", event_id=event.id, _anchor="attendees"))
