"""Tasks (the list, one task, ticking off) and the notes and tasks the contact page posts."""
from __future__ import annotations

from datetime import timezone

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, EmailField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from core.db import db, utcnow
from core.identity import StaffUser, current_principal
from core.permissions import can, require, staff_login_required
from core.web import safe_next_url, service_call
from crm.access import get_visible_contact_or_404
from crm.activities import (TASK_DUE_FILTERS, TASK_STATUSES, NotAllowed, add_note, attach_task_people,
                            complete_task, create_task, delete_note, delete_task, find_contact_by_email, linkify, note_editable_by,
                            reopen_task, task_editable_by, tasks_for, update_note, update_task,
                            visible_note_or_404, visible_task_or_404)
from crm.models import Contact, Note, Task
from staff import bp, contact_page_url

TASKS_PAGE_SIZE = 50
UTC_HELP = "In UTC, like every time shown in Portico. Leave empty for no due date."
DATE_TIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
BAD_DATE_TIME = "Enter a date and time, like 2025-03-14 09:30."
SHARED_HELP = ("The contact sees its title, details and due date on their portal home, and can mark it done. "
               "Only for a task about a contact.")


# --- what every template can use -------------------------------------------------------------

@bp.app_template_filter("linkify")
def _linkify_filter(text):
    """{{ note.body|linkify }}: escaped text, http(s) links, line breaks kept."""
    return linkify(text)


@bp.app_template_global("note_editable")
def _note_editable(note) -> bool:
    return note_editable_by(current_principal(), note)


def utc_field(label: str, description: str = UTC_HELP) -> DateTimeLocalField:
    """<input type="datetime-local">, read as UTC."""
    return DateTimeLocalField(label, validators=[Optional()], format=DATE_TIME_FORMATS, tz=timezone.utc,
                              invalid_value_message=BAD_DATE_TIME, description=description)


def optional_int(value):
    if value in (None, "", "None"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1  # no such person: the service says so beside the field


# --- forms -------------------------------------------------------------------------------------

class NoteForm(FlaskForm):
    body = TextAreaField("Note", render_kw={"rows": 6},
                         description="Plain text. Web addresses (https://…) become links.")


class TaskForm(FlaskForm):
    title = StringField("Title", render_kw={"maxlength": 200})
    kind = SelectField("Kind", choices=[SelectChoice(k, v) for k, v in Task.KINDS.items()], default="task", validate_choice=False)
    due_at = utc_field("Due (UTC)")
    assignee_id = SelectField("Assigned to", coerce=optional_int, validate_choice=False)
    description = TextAreaField("Details", validators=[Optional()], render_kw={"rows": 4})
    shared_with_contact = BooleanField("Shared with the contact", description=SHARED_HELP)

    def fill_assignees(self, keep: int | None = None) -> None:
        """The active team; `keep` (the current assignee) stays listed even after leaving it."""
        people = db.session.execute(
            sa.select(StaffUser.id, StaffUser.name, StaffUser.email, StaffUser.active)
            .where(sa.or_(StaffUser.active.is_(True), StaffUser.id == (keep or 0)))
            .order_by(sa.func.lower(StaffUser.name))).all()
        me = current_principal()

        def label(pid, name, email, active):
            return f"{name or email}{' (you)' if pid == me.id else ''}{'' if active else ' (no longer on the team)'}"

        self.assignee_id.choices = [SelectChoice("", "Nobody yet")] + [
            SelectChoice(str(row[0]), label(*row)) for row in people]


class NewTaskForm(TaskForm):
    contact_email = EmailField("Contact (optional)", validators=[Optional()],
                               description="The e-mail address of the contact this task is about.")


# --- helpers -----------------------------------------------------------------------------------



@bp.app_template_global("contact_url")
def _contact_url(contact_id: int) -> str:
    return contact_page_url(contact_id)


def _note_home(note: Note) -> str:
    """Where a note lives: its contact's page, else its company's."""
    from flask import current_app

    if note.contact_id:
        return contact_page_url(note.contact_id)
    if note.company_id and "staff.company" in current_app.view_functions:
        return url_for("staff.company", company_id=note.company_id)
    return url_for("staff.dashboard")


def _back(default: str) -> str:
    return safe_next_url(request.form.get("next") or request.args.get("next"), default)


def _task_form_data(form: TaskForm) -> dict:
    data = {"title": form.title.data, "kind": form.kind.data, "due_at": form.due_at.data,
            "assignee_id": form.assignee_id.data, "description": form.description.data}
    if "shared_with_contact" in form:  # a task about nobody has no one to share it with
        data["shared_with_contact"] = form.shared_with_contact.data
    return data


# --- the task list -------------------------------------------------------------------------------

FILTER_LABELS = {
    "who": {"mine": "My tasks", "all": "Everyone's tasks"},
    "status": {"open": "Open", "done": "Done", "all": "Open and done"},
    "due": {"": "Any time", "overdue": "Overdue", "today": "Due today", "week": "Due this week"},
}


@bp.get("/tasks")
@staff_login_required
def tasks():
    require("contacts.view")
    me = current_principal()
    who = request.args.get("who") if request.args.get("who") in ("mine", "all") else "mine"
    status = request.args.get("status") if request.args.get("status") in TASK_STATUSES else "open"
    due = request.args.get("due") if request.args.get("due") in TASK_DUE_FILTERS else None
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    query = tasks_for(me, status=status, due=due, mine=who == "mine")
    rows = list(db.session.scalars(query.offset((page - 1) * TASKS_PAGE_SIZE).limit(TASKS_PAGE_SIZE + 1)))
    more = len(rows) > TASKS_PAGE_SIZE
    rows = attach_task_people(rows[:TASKS_PAGE_SIZE])
    filters = {"who": who, "status": status, "due": due or ""}
    return render_template("staff/tasks/list.html", tasks=rows, filters=filters, labels=FILTER_LABELS,
                           page=page, more=more, may_add=can(me, "contacts.edit"), now=utcnow(), kinds=Task.KINDS,
                           here=request.full_path.rstrip("?"))


@bp.route("/tasks/new", methods=["GET", "POST"])
@staff_login_required
def new_task():
    require("contacts.edit")
    me = current_principal()
    form = NewTaskForm(assignee_id=str(me.id))
    form.fill_assignees()
    if form.validate_on_submit():
        contact = None
        with service_call(form) as outcome:
            if form.contact_email.data:
                contact = find_contact_by_email(form.contact_email.data, viewer=me, field="contact_email")
            task = create_task(**_task_form_data(form), contact=contact, actor=me)
        if outcome:
            flash(f"Task “{task.title}” added.", "success")
            return redirect(url_for("staff.tasks"))
    return render_template("staff/tasks/form.html", form=form, task=None, contact=None, kinds=Task.KINDS,
                           action=url_for("staff.new_task"), cancel=url_for("staff.tasks"))


@bp.route("/tasks/<int:task_id>", methods=["GET", "POST"])
@staff_login_required
def task(task_id):
    task = visible_task_or_404(task_id)
    require("contacts.view")
    me = current_principal()
    attach_task_people([task])
    editable = task_editable_by(me, task)
    if request.method == "POST" and not editable:
        abort(403)
    form = TaskForm(obj=task) if request.method == "GET" else TaskForm()
    form.fill_assignees(keep=task.assignee_id)
    if task.contact_id is None:
        del form.shared_with_contact
    if form.validate_on_submit():
        with service_call(form) as outcome:
            update_task(task, **_task_form_data(form), actor=me)
        if outcome:
            flash("Task saved.", "success")
            return redirect(_back(url_for("staff.tasks")))
    return render_template("staff/tasks/form.html", form=form, task=task, contact=task.linked_contact, kinds=Task.KINDS,
                           editable=editable, action=url_for("staff.task", task_id=task.id, next=request.args.get("next")),
                           cancel=_back(url_for("staff.tasks")))


def _task_action(task_id: int, action, message: str):
    task = visible_task_or_404(task_id)
    require("contacts.edit")
    with service_call() as outcome:
        try:
            action(task, current_principal())
        except NotAllowed:  # a ServiceError too, but the answer is a 403: the task is not theirs
            abort(403)
    if outcome:
        flash(message.format(title=task.title), "success")
    return redirect(_back(url_for("staff.tasks")))


@bp.post("/tasks/<int:task_id>/done", endpoint="complete_task")
@staff_login_required
def complete_task_view(task_id):
    return _task_action(task_id, complete_task, "Done: “{title}”.")


@bp.post("/tasks/<int:task_id>/reopen", endpoint="reopen_task")
@staff_login_required
def reopen_task_view(task_id):
    return _task_action(task_id, reopen_task, "Reopened “{title}”.")


@bp.post("/tasks/<int:task_id>/delete", endpoint="delete_task")
@staff_login_required
def delete_task_view(task_id):
    task = visible_task_or_404(task_id)
    require("contacts.edit")
    me = current_principal()
    if not task_editable_by(me, task):
        abort(403)
    back_to = contact_page_url(task.contact_id) if task.contact_id else url_for("staff.tasks")
    title = task.title
    with service_call() as outcome:
        delete_task(task, me)
    if outcome:
        flash(f"Deleted the task “{title}”.", "success")
    return redirect(safe_next_url(request.form.get("next"), back_to))


# --- what the contact page posts -------------------------------------------------------------

@bp.post("/contacts/<int:contact_id>/notes", endpoint="add_note")
@staff_login_required
def add_note_view(contact_id):
    contact = get_visible_contact_or_404(contact_id)
    require("contacts.edit", contact)
    form = NoteForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            add_note(form.body.data, contact=contact, author=current_principal())
        if outcome:
            flash("Note added.", "success")
            return redirect(contact_page_url(contact.id))
    # The contact page is not ours to re-render: the note form alone, with the text kept.
    return render_template("staff/tasks/note_form.html", form=form, contact=contact, note=None,
                           action=url_for("staff.add_note", contact_id=contact.id), cancel=contact_page_url(contact.id))


@bp.route("/notes/<int:note_id>/edit", methods=["GET", "POST"], endpoint="edit_note")
@staff_login_required
def edit_note_view(note_id):
    note = visible_note_or_404(note_id)
    require("contacts.view")
    me = current_principal()
    if not note_editable_by(me, note):
        abort(403)
    contact = db.session.get(Contact, note.contact_id) if note.contact_id else None
    form = NoteForm(obj=note)
    if form.validate_on_submit():
        with service_call(form) as outcome:
            try:
                update_note(note, form.body.data, me)
            except NotAllowed:  # a ServiceError too, but no message for the form: the note is not theirs
                abort(403)
        if outcome:
            flash("Note saved.", "success")
            return redirect(_note_home(note))
    return render_template("staff/tasks/note_form.html", form=form, contact=contact, note=note,
                           action=url_for("staff.edit_note", note_id=note.id), cancel=_note_home(note))


@bp.post("/notes/<int:note_id>/delete", endpoint="delete_note")
@staff_login_required
def delete_note_view(note_id):
    note = visible_note_or_404(note_id)
    require("contacts.view")
    me = current_principal()
    if not note_editable_by(me, note):
        abort(403)
    home = _note_home(note)
    with service_call() as outcome:
        try:
            delete_note(note, me)
        except NotAllowed:  # a ServiceError too, but the answer is a 403: the note is not theirs
            abort(403)
    if outcome:
        flash("Note deleted.", "success")
    return redirect(home)


@bp.post("/contacts/<int:contact_id>/tasks", endpoint="add_contact_task")
@staff_login_required
def add_contact_task_view(contact_id):
    contact = get_visible_contact_or_404(contact_id)
    require("contacts.edit", contact)
    me = current_principal()
    form = TaskForm()
    form.fill_assignees()
    if form.validate_on_submit():
        data = _task_form_data(form)
        if "assignee_id" not in request.form:  # a form without the field: the task is the sender's
            data["assignee_id"] = me.id
        with service_call(form) as outcome:
            create_task(**data, contact=contact, actor=me)
        if outcome:
            flash(f"{Task.KINDS.get(form.kind.data, 'Task')} “{form.title.data.strip()}” added.", "success")
            return redirect(contact_page_url(contact.id))
    return render_template("staff/tasks/form.html", form=form, task=None, contact=contact, kinds=Task.KINDS,
                           action=url_for("staff.add_contact_task", contact_id=contact.id),
                           cancel=contact_page_url(contact.id))
