"""The contact's upcoming events (answer going / not going) and the tasks staff shared with
them (mark done, or not done after all): two panels of the portal home, and the posts their
buttons send."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_wtf import FlaskForm

from core.web import service_call
from crm.activities import (answer_invitation, complete_task, invitation_or_404, reopen_task, shared_task_or_404,
                            shared_tasks_of, upcoming_invitations_of)
from crm.models import EventAttendee, Task
from portal import bp
from portal.auth import current_account, portal_login_required
from portal.home import home_panel

ANSWERED = {"going": "You are going to “{title}”. See you there!",
            "not_going": "Thanks for letting us know you cannot come to “{title}”."}


@home_panel("events", order=20)
def upcoming_events(account) -> dict | None:
    invitations = upcoming_invitations_of(account.contact)
    return {"invitations": invitations, "answers": EventAttendee.RSVP_LABELS} if invitations else None


@home_panel("tasks", order=30)
def shared_tasks(account) -> dict | None:
    tasks = shared_tasks_of(account.contact)
    return {"tasks": tasks, "kinds": Task.KINDS} if tasks else None


def _home(anchor: str):
    return redirect(url_for("portal.home", _anchor=anchor))


@bp.post("/portal/events/<int:event_id>/answer", endpoint="answer_event")
@portal_login_required
def answer_event(event_id):
    account = current_account()
    event, attendee = invitation_or_404(event_id, account.contact)
    if FlaskForm().validate_on_submit():
        answer = request.form.get("answer", "")
        with service_call() as outcome:
            answer_invitation(attendee, answer, account)
        if outcome:
            flash(ANSWERED[answer].format(title=event.title), "success")
    return _home(f"event-{event.id}")


def _task_step(task_id: int, step, message: str):
    account = current_account()
    task = shared_task_or_404(task_id, account.contact)
    if FlaskForm().validate_on_submit():
        with service_call() as outcome:
            step(task, account)
        if outcome:
            flash(message.format(title=task.title), "success")
    return _home(f"task-{task.id}")


@bp.post("/portal/tasks/<int:task_id>/done", endpoint="complete_task")
@portal_login_required
def complete_shared_task(task_id):
    return _task_step(task_id, complete_task, "Done: “{title}”. Thank you!")


@bp.post("/portal/tasks/<int:task_id>/reopen", endpoint="reopen_task")
@portal_login_required
def reopen_shared_task(task_id):
    return _task_step(task_id, reopen_task, "“{title}” is back on your list.")
