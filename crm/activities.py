"""Notes, tasks and events: what staff write down about contacts and companies, what they
have to do, and who comes to what. Plain functions with explicit arguments; the rules live
here, so pages, the API and jobs share them. No HTTP in here.

Who may do what
  * notes: anyone who may edit the contact (or company) adds one; only its author or an
    Owner/Admin changes or deletes it.
  * tasks: anyone who may edit the contact adds one; a task may be assigned to any active
    member of the team who can see its contact. Anyone who can see a task may tick it off
    or reopen it (team work); changing or deleting it is for its assignee, its creator,
    whoever may edit its contact, and Owners/Admins.
  * events: creating, changing, deleting them and inviting whole Circles needs
    "crm.configure"; adding one contact needs "contacts.edit" on that contact; changing an
    attendee's status or removing them needs either.
  * a task or note on a contact the staff member may not see does not exist for them (the
    views answer 404), and such contacts never appear in task or attendee lists.
  * the contact themselves (crm.access.acts_as_contact: signed in on their portal login)
    answers their own invitations (going / not going) and ticks off or reopens the tasks
    staff shared with them; nothing else of a task or an event is theirs to change.

Times are timezone-aware UTC throughout; a naive datetime handed in is read as UTC.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import abort
from markupsafe import Markup, escape

from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser, current_principal, normalize_email
from core.permissions import can
from core.tenancy import get_or_404
from core.text import clean_line, clean_web_address
from crm.access import acts_as_contact, contact_visible_to, get_visible_contact_or_404, visible_contacts_clause
from crm.models import Circle, CircleMember, Company, Contact, Event, EventAttendee, Note, Task, TimelineEntry
from crm.timeline import record_activity

register_actions({
    "note.deleted": "Note deleted",
    "task.deleted": "Task deleted",
    "event.created": "Event created",
    "event.updated": "Event changed",
    "event.deleted": "Event deleted",
    "event.circle_invited": "Circle invited to an event",
    "event.attendee_removed": "Attendee removed from an event",
})

TEXT_MAX = 20_000  # a note's body, a task's or an event's description
CAPACITY_MAX = 100_000
STATUS_LABELS = {"invited": "Invited", "accepted": "Accepted", "declined": "Declined", "attended": "Attended"}
TASK_STATUSES = ("open", "done", "all")
TASK_DUE_FILTERS = ("overdue", "today", "week")


UNCHANGED = object()  # update_task()/update_event(): "leave this field as it is"


class NotAllowed(ServiceError):
    """The actor's role or relation to the record does not allow this change (a view answers 403)."""


@dataclass
class _AuditTarget:
    """What the audit log names when the record itself is about to be deleted."""

    id: int
    audit_type: str
    label: str

    def __str__(self) -> str:
        return self.label


def _is_manager(actor) -> bool:
    """Owners and Admins by default: they see and change everything in the CRM."""
    return can(actor, "contacts.manage_all")


def _excerpt(text: str | None, length: int = 140) -> str:
    one_line = " ".join((text or "").split())
    return one_line if len(one_line) <= length else one_line[: length - 1].rstrip() + "…"


def _long_text(value: str | None, *, label: str, field: str, required: bool) -> str | None:
    """Free text over several lines: line endings made \\n, control characters (other than
    tab and line break) dropped, at most TEXT_MAX characters."""
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc").strip()
    if not text:
        if required:
            raise ServiceError(f"Write {label}.", field=field)
        return None
    if len(text) > TEXT_MAX:
        raise ServiceError(f"{label[0].upper()}{label[1:]} can be at most {TEXT_MAX:,} characters; "
                           f"this one has {len(text):,}.", field=field)
    return text


def _utc(value, *, field: str, label: str, required: bool = False) -> datetime | None:
    if value is None or value == "":
        if required:
            raise ServiceError(f"Enter {label}.", field=field)
        return None
    if not isinstance(value, datetime):
        raise ServiceError(f"Enter {label} as a date and time.", field=field)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _contact_of(record_) -> Contact | None:
    return db.session.get(Contact, record_.contact_id) if record_.contact_id else None


def _company_of(record_) -> Company | None:
    return db.session.get(Company, record_.company_id) if record_.company_id else None


def _forget_timeline_of(subject_type: str, subject_id: int) -> None:
    """A deleted note, task or event leaves no lines behind on anyone's timeline."""
    db.session.execute(sa.delete(TimelineEntry).where(TimelineEntry.subject_type == subject_type,
                                                      TimelineEntry.subject_id == subject_id))


# --- showing plain text with links -------------------------------------------------------------

# http(s) addresses, not glued to a word before them; < > " ' ` and white space end them.
_URL_RE = re.compile(r"(?<![\w/@.:+-])https?://[^\s<>\"'`]+", re.IGNORECASE)
_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _trim_url(url: str) -> str:
    """Punctuation after an address belongs to the sentence: "see https://x.test/a)." links
    https://x.test/a. Brackets the address itself opened stay (Wikipedia's "(film)")."""
    while url:
        last = url[-1]
        if last in ".,;:!?*":
            url = url[:-1]
        elif last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last]):
            url = url[:-1]
        else:
            break
    return url


def _linkify_line(line: str) -> Markup:
    parts: list = []
    position = 0
    for match in _URL_RE.finditer(line):
        url = _trim_url(match.group(0))
        try:
            target = urlsplit(url)
        except ValueError:  # e.g. a broken [IPv6] literal: leave it as text
            continue
        if target.scheme.lower() not in ("http", "https") or not target.hostname:
            continue
        parts.append(escape(line[position:match.start()]))
        parts.append(Markup('<a href="{0}" rel="nofollow noopener">{0}</a>').format(url))
        position = match.start() + len(url)
    parts.append(escape(line[position:]))
    return Markup("").join(parts)


def linkify(text: str | None) -> Markup:
    """Plain text as safe HTML: everything escaped, http(s) addresses made links
    (rel="nofollow noopener"), line breaks kept as <br>. Nothing else becomes markup: a
    javascript: address or a <script> tag stays visible text."""
    if not text:
        return Markup("")
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return Markup("<br>\n").join(_linkify_line(line) for line in lines)


# --- notes ------------------------------------------------------------------------------------

def note_editable_by(actor, note: Note) -> bool:
    """Whether `actor` may change or delete the note, given they can see what it is about
    (the services check that too): its author, or an Owner/Admin."""
    if not isinstance(actor, StaffUser) or not actor.active:
        return False
    return _is_manager(actor) or (note.author_id is not None and note.author_id == actor.id)


def _check_note_change(note: Note, actor) -> None:
    contact = _contact_of(note)
    if contact is not None and not can(actor, "contacts.view", contact):
        raise NotAllowed("You cannot see the contact this note is about.")
    if not note_editable_by(actor, note):
        raise NotAllowed("Only the note's author, an Owner or an Admin can change or delete it.")


def _attach_note_authors(notes: list[Note]) -> list[Note]:
    """Give each note `author_name` (one query for all of them)."""
    ids = {n.author_id for n in notes if n.author_id}
    names = dict(db.session.execute(
        sa.select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(ids))).tuples().all()) if ids else {}
    for note in notes:
        note.author_name = names.get(note.author_id) or ("Former teammate" if note.author_id else "Someone")
    return notes


def add_note(body: str, *, contact: Contact | None = None, company: Company | None = None, author) -> Note:
    """A note on a contact and/or a company, by `author`, who must be allowed to edit it."""
    if contact is None and company is None:
        raise ServiceError("Choose the contact or company this note is about.")
    for about in (contact, company):
        if about is not None and not can(author, "contacts.edit", about):
            raise NotAllowed(f"You may not add notes to {about}.")
    text = _long_text(body, label="the note", field="body", required=True)
    note = Note(contact_id=contact.id if contact else None, company_id=company.id if company else None,
                author_id=author.id, body=text)
    db.session.add(note)
    db.session.flush()
    record_activity("note", f"Note: {_excerpt(text)}", contact=contact, company=company, subject=note,
                    actor=author, details={"excerpt": _excerpt(text, 300)})
    note.author_name = author.display_name
    return note


def update_note(note: Note, body: str, actor) -> Note:
    _check_note_change(note, actor)
    text = _long_text(body, label="the note", field="body", required=True)
    if text == note.body:
        return note
    note.body = text
    note.updated_at = utcnow()
    # The timeline line quotes the note: keep the quote current.
    for entry in db.session.scalars(sa.select(TimelineEntry).where(TimelineEntry.subject_type == "note",
                                                                   TimelineEntry.subject_id == note.id)):
        entry.summary = f"Note: {_excerpt(text)}"[:500]
        entry.details = {**(entry.details or {}), "excerpt": _excerpt(text, 300)}
    return note


def delete_note(note: Note, actor) -> None:
    _check_note_change(note, actor)
    about = _contact_of(note) or _company_of(note)
    record("note.deleted", _AuditTarget(note.id, "note", f"Note on {about}" if about else "Note"),
           actor=actor, tenant_id=note.tenant_id,
           details={"contact_id": note.contact_id, "company_id": note.company_id,
                    "author_id": note.author_id, "body": _excerpt(note.body, 2000)})
    _forget_timeline_of("note", note.id)
    db.session.delete(note)
    db.session.flush()


def notes_of(record_: Contact | Company) -> list[Note]:
    """The notes on a contact (or company), newest first, each with `author_name`."""
    column = Note.company_id if isinstance(record_, Company) else Note.contact_id
    notes = list(db.session.scalars(
        sa.select(Note).where(column == record_.id).order_by(Note.created_at.desc(), Note.id.desc())))
    return _attach_note_authors(notes)


# --- tasks ---------------------------------------------------------------------------------------

def task_visible_to(actor, task: Task) -> bool:
    contact = _contact_of(task)
    return contact is None or contact_visible_to(actor, contact)


def visible_task_or_404(task_id: int) -> Task:
    """A task of this tenant about nobody hidden from the signed-in member; otherwise 404."""
    task = get_or_404(Task, task_id)
    if not task_visible_to(current_principal(), task):
        abort(404)
    return task


def visible_note_or_404(note_id: int) -> Note:
    """A note of this tenant on a contact the signed-in member may see; otherwise 404."""
    note = get_or_404(Note, note_id)
    if note.contact_id is not None:
        get_visible_contact_or_404(note.contact_id)
    return note


def task_editable_by(actor, task: Task) -> bool:
    """Change or delete: Owners/Admins, the assignee, the creator, or whoever may edit the
    task's contact or company. (Ticking it off is open to anyone who sees it.)"""
    if not can(actor, "contacts.edit") or not task_visible_to(actor, task):
        return False
    if _is_manager(actor) or actor.id in (task.assignee_id, task.created_by_id):
        return True
    return any(about is not None and can(actor, "contacts.edit", about)
               for about in (_contact_of(task), _company_of(task)))


def _task_kind(kind: str | None) -> str:
    kind = kind or "task"
    if kind not in Task.KINDS:
        raise ServiceError("Choose a kind: task, call, meeting, e-mail or comment.", field="kind")
    return kind


def _assignee(assignee_id, contact: Contact | None, actor) -> StaffUser | None:
    if assignee_id in (None, ""):
        return None
    try:
        staff = db.session.get(StaffUser, int(assignee_id))
    except (TypeError, ValueError):
        staff = None
    if staff is None or staff.tenant_id != actor.tenant_id or not staff.active:
        raise ServiceError("Choose an active member of your team.", field="assignee_id")
    if contact is not None and not contact_visible_to(staff, contact):
        raise ServiceError(f"{staff.display_name} cannot see {contact}, so the task would be hidden from them. "
                           "Choose someone else.", field="assignee_id")
    return staff


def _task_summary(task: Task, verb: str) -> str:
    due = f" (due {task.due_at:%Y-%m-%d %H:%M} UTC)" if task.due_at and verb == "added" else ""
    return f"{Task.KINDS[task.kind]} {verb}: {task.title}{due}"


def _shared(shared: bool, contact: Contact | None) -> bool:
    if shared and contact is None:
        raise ServiceError("Only a task about a contact can be shared with them.", field="shared_with_contact")
    return bool(shared)


def create_task(title: str, *, kind: str = "task", due_at: datetime | None = None, assignee_id: int | None = None,
                description: str | None = None, contact: Contact | None = None, company: Company | None = None,
                shared_with_contact: bool = False, actor) -> Task:
    """A task (or call, meeting, e-mail, comment), optionally on a contact and/or company.
    `assignee_id` None leaves it unassigned; `shared_with_contact` puts it on the contact's
    portal home, where they can mark it done."""
    if not can(actor, "contacts.edit"):
        raise NotAllowed("You may not add tasks.")
    for about in (contact, company):
        if about is not None and not can(actor, "contacts.edit", about):
            raise NotAllowed(f"You may not add tasks to {about}.")
    title = clean_line(title, label="a title", field="title", max_length=200)
    kind = _task_kind(kind)
    due = _utc(due_at, field="due_at", label="the due date and time")
    assignee = _assignee(assignee_id, contact, actor)
    text = _long_text(description, label="the description", field="description", required=False)
    shared = _shared(shared_with_contact, contact)
    task = Task(title=title, kind=kind, due_at=due, assignee_id=assignee.id if assignee else None,
                description=text, contact_id=contact.id if contact else None,
                company_id=company.id if company else None, created_by_id=actor.id, shared_with_contact=shared)
    db.session.add(task)
    db.session.flush()
    if contact is not None or company is not None:
        record_activity("task", _task_summary(task, "added"), contact=contact, company=company, subject=task,
                        actor=actor, details={"kind": kind, "assignee": assignee.display_name if assignee else None,
                                              "due_at": due.isoformat() if due else None})
    return task


def update_task(task: Task, *, title=UNCHANGED, kind=UNCHANGED, due_at=UNCHANGED, assignee_id=UNCHANGED,
                description=UNCHANGED, shared_with_contact=UNCHANGED, actor) -> Task:
    """Change what a task says (the fields given; the others stay); its contact and company stay."""
    if not task_editable_by(actor, task):
        raise NotAllowed("Only the task's assignee or creator, whoever may edit its contact, an Owner or an "
                         "Admin can change it.")
    given = lambda value, current: current if value is UNCHANGED else value  # noqa: E731
    title = clean_line(given(title, task.title), label="a title", field="title", max_length=200)
    kind = _task_kind(given(kind, task.kind))
    due = _utc(given(due_at, task.due_at), field="due_at", label="the due date and time")
    if assignee_id is UNCHANGED or assignee_id == task.assignee_id:
        assignee_id = task.assignee_id  # kept as it is, even if they have left the team since
    else:
        assignee_id = getattr(_assignee(assignee_id, _contact_of(task), actor), "id", None)
    text = _long_text(given(description, task.description), label="the description", field="description",
                      required=False)
    shared = _shared(given(shared_with_contact, task.shared_with_contact), _contact_of(task))
    if shared != task.shared_with_contact:
        record_activity("task_shared" if shared else "task_unshared",
                        f"{Task.KINDS[kind]} {'shared with' if shared else 'no longer shared with'} the contact: {title}",
                        contact=_contact_of(task), subject=task, actor=actor)
    task.title, task.kind, task.due_at, task.description, task.assignee_id = title, kind, due, text, assignee_id
    task.shared_with_contact = shared
    return task


def _check_task_seen(task: Task, actor) -> None:
    if task_done_by_contact_allowed(actor, task):
        return
    if not can(actor, "contacts.edit") or not task_visible_to(actor, task):
        raise NotAllowed("You cannot change this task.")


def task_done_by_contact_allowed(actor, task: Task) -> bool:
    """The contact may tick off (or reopen) a task about them that staff shared with them."""
    return task.shared_with_contact and acts_as_contact(actor, task.contact_id)


def complete_task(task: Task, actor) -> Task:
    """Done, by a member of staff who sees it, or by its contact when it is shared with them;
    the task remembers which."""
    _check_task_seen(task, actor)
    if task.done_at is None:
        task.done_at = utcnow()
        by_contact = getattr(actor, "principal_type", None) == "portal"
        task.done_by_id = None if by_contact else actor.id
        task.done_by_portal_account_id = actor.id if by_contact else None
        about = (_contact_of(task), _company_of(task))
        if any(about):
            record_activity("task_done", _task_summary(task, "done"), contact=about[0], company=about[1],
                            subject=task, actor=actor)
    return task


def reopen_task(task: Task, actor) -> Task:
    _check_task_seen(task, actor)
    if task.done_at is not None:
        task.done_at = None
        task.done_by_id = task.done_by_portal_account_id = None
        about = (_contact_of(task), _company_of(task))
        if any(about):
            record_activity("task_reopened", _task_summary(task, "reopened"), contact=about[0],
                            company=about[1], subject=task, actor=actor)
    return task


def delete_task(task: Task, actor) -> None:
    if not task_editable_by(actor, task):
        raise NotAllowed("Only the task's assignee or creator, whoever may edit its contact, an Owner or an "
                         "Admin can delete it.")
    record("task.deleted", _AuditTarget(task.id, "task", f"{Task.KINDS[task.kind]}: {task.title}"),
           actor=actor, tenant_id=task.tenant_id,
           details={"contact_id": task.contact_id, "company_id": task.company_id, "assignee_id": task.assignee_id,
                    "done": task.done_at is not None})
    _forget_timeline_of("task", task.id)
    db.session.delete(task)
    db.session.flush()


def attach_task_people(tasks: list[Task]) -> list[Task]:
    """Give each task `assignee_name`, `done_by_name`, `linked_contact` and `linked_company` (or
    None): three queries at most, however many tasks. Call it on tasks the viewer may see."""
    staff_ids = {t.assignee_id for t in tasks if t.assignee_id} | {t.done_by_id for t in tasks if t.done_by_id}
    contact_ids = {t.contact_id for t in tasks if t.contact_id}
    company_ids = {t.company_id for t in tasks if t.company_id}
    names = dict(db.session.execute(
        sa.select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(staff_ids))).tuples().all()) if staff_ids else {}
    contacts = {c.id: c for c in db.session.scalars(sa.select(Contact).where(Contact.id.in_(contact_ids)))} \
        if contact_ids else {}
    companies = {c.id: c for c in db.session.scalars(sa.select(Company).where(Company.id.in_(company_ids)))} \
        if company_ids else {}
    for task in tasks:
        task.assignee_name = names.get(task.assignee_id)
        task.linked_contact = contacts.get(task.contact_id)
        task.linked_company = companies.get(task.company_id)
        task.done_by_name = _done_by_name(task, names)
    return tasks


def _done_by_name(task: Task, staff_names: dict) -> str | None:
    if task.done_at is None:
        return None
    if task.done_by_portal_account_id:  # only ever the task's own contact (task_done_by_contact_allowed)
        contact = getattr(task, "linked_contact", None)
        return f"{contact.full_name if contact else 'the contact'} on the portal"
    if task.done_by_id:
        return staff_names.get(task.done_by_id) or "a former teammate"
    return None


def shared_tasks_of(contact: Contact, *, done_since: datetime | None = None) -> list[Task]:
    """The tasks staff shared with the contact: open ones (soonest due first, undated last),
    then those done since `done_since` (latest first), so a ticked-off task stays in sight a while."""
    done_since = done_since or utcnow() - timedelta(days=30)
    return list(db.session.scalars(_SHARED_TASKS, {"contact_id": contact.id, "done_since": done_since}))


# Built once (as _UPCOMING_INVITATIONS): the portal home runs it on every visit.
_SHARED_TASKS = (
    sa.select(Task)
    .where(Task.contact_id == sa.bindparam("contact_id"), Task.shared_with_contact.is_(True),
           sa.or_(Task.done_at.is_(None), Task.done_at >= sa.bindparam("done_since", type_=Task.done_at.type)))
    .order_by(Task.done_at.is_not(None), Task.due_at.is_(None), Task.due_at, Task.done_at.desc(), Task.id))


def shared_task_or_404(task_id: int, contact: Contact) -> Task:
    """A task of this tenant that staff shared with this contact; otherwise 404 (another
    contact's task and a task not shared look the same as none)."""
    task = get_or_404(Task, task_id)
    if task.contact_id != contact.id or not task.shared_with_contact:
        abort(404)
    return task


def open_tasks_of(contact: Contact) -> list[Task]:
    """A contact's open tasks, soonest due first (no due date last), with assignee_name."""
    tasks = list(db.session.scalars(
        sa.select(Task).where(Task.contact_id == contact.id, Task.done_at.is_(None))
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id)))
    return attach_task_people(tasks)


def _start_of_day(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def tasks_for(staff: StaffUser, *, status: str = "open", due: str | None = None, mine: bool = True,
              now: datetime | None = None) -> sa.Select:
    """The task list's query, ordered: `staff`'s own tasks (mine=False: the whole team's),
    open / done / all, optionally only overdue / due today / due this week (Monday to
    Sunday), in UTC. Tasks on contacts `staff` may not see are never in it."""
    if status not in TASK_STATUSES:
        raise ValueError(f"status must be one of {TASK_STATUSES}")
    if due not in (None, *TASK_DUE_FILTERS):
        raise ValueError(f"due must be None or one of {TASK_DUE_FILTERS}")
    query = sa.select(Task)
    if mine:
        query = query.where(Task.assignee_id == staff.id)
    if status == "open":
        query = query.where(Task.done_at.is_(None))
    elif status == "done":
        query = query.where(Task.done_at.is_not(None))
    now = now or utcnow()
    today = _start_of_day(now)
    if due == "overdue":
        query = query.where(Task.done_at.is_(None), Task.due_at < now)
    elif due == "today":
        query = query.where(Task.due_at >= today, Task.due_at < today + timedelta(days=1))
    elif due == "week":
        monday = today - timedelta(days=today.weekday())
        query = query.where(Task.due_at >= monday, Task.due_at < monday + timedelta(days=7))
    visible = visible_contacts_clause(staff)
    if not isinstance(visible, sa.sql.elements.True_):
        query = query.where(sa.or_(Task.contact_id.is_(None),
                                   sa.select(Contact.id).where(Contact.id == Task.contact_id, visible).exists()))
    if status == "done":
        return query.order_by(Task.done_at.desc(), Task.id.desc())
    # Open first, then soonest due, undated last.
    return query.order_by(Task.done_at.is_not(None), Task.due_at.is_(None), Task.due_at, Task.id)


# --- events --------------------------------------------------------------------------------------

def _link(value: str | None) -> str | None:
    return clean_web_address(value, label="the link", field="link", max_length=500)


def _capacity(value) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ServiceError("Enter the number of places as a whole number, or leave it empty.", field="capacity") from None
    if number < 1:
        raise ServiceError("Capacity must be at least 1; leave it empty for no limit.", field="capacity")
    if number > CAPACITY_MAX:
        raise ServiceError(f"Capacity can be at most {CAPACITY_MAX:,}.", field="capacity")
    return number


def _event_fields(title, starts_at, ends_at, location, link, capacity, description) -> dict:
    fields = {
        "title": clean_line(title, label="a title", field="title", max_length=200),
        "starts_at": _utc(starts_at, field="starts_at", label="when the event starts", required=True),
        "ends_at": _utc(ends_at, field="ends_at", label="when the event ends"),
        "location": clean_line(location, label="the location", field="location", max_length=300, required=False),
        "link": _link(link),
        "capacity": _capacity(capacity),
        "description": _long_text(description, label="the description", field="description", required=False),
    }
    if fields["ends_at"] is not None and fields["ends_at"] <= fields["starts_at"]:
        raise ServiceError("The event must end after it starts.", field="ends_at")
    return fields


def _check_configure(actor, what: str) -> None:
    if not can(actor, "crm.configure"):
        raise NotAllowed(f"Your role may not {what}.")


def _event_target(event: Event) -> _AuditTarget:
    return _AuditTarget(event.id, "event", f"{event.title} ({event.starts_at:%Y-%m-%d %H:%M} UTC)")


def create_event(title: str, starts_at: datetime, *, ends_at: datetime | None = None, location: str | None = None,
                 link: str | None = None, capacity: int | None = None, description: str | None = None,
                 actor) -> Event:
    _check_configure(actor, "create events")
    event = Event(**_event_fields(title, starts_at, ends_at, location, link, capacity, description),
                  created_by_id=actor.id)
    db.session.add(event)
    db.session.flush()
    record("event.created", _event_target(event), actor=actor, tenant_id=event.tenant_id)
    return event


def seats_taken(event: Event) -> int:
    """Attendees holding a place: everyone invited, accepted or attended (not who declined)."""
    return db.session.scalar(sa.select(sa.func.count(EventAttendee.id)).where(
        EventAttendee.event_id == event.id, EventAttendee.status != "declined")) or 0


def seats_left(event: Event, taken: int | None = None) -> int | None:
    """Places still free, or None when the event has no limit."""
    if event.capacity is None:
        return None
    return max(event.capacity - (seats_taken(event) if taken is None else taken), 0)


def update_event(event: Event, *, title=UNCHANGED, starts_at=UNCHANGED, ends_at=UNCHANGED, location=UNCHANGED,
                 link=UNCHANGED, capacity=UNCHANGED, description=UNCHANGED, actor) -> Event:
    """Change the fields given (the others stay). The capacity cannot drop below the places taken."""
    _check_configure(actor, "change events")
    given = {"title": title, "starts_at": starts_at, "ends_at": ends_at, "location": location, "link": link,
             "capacity": capacity, "description": description}
    fields = _event_fields(**{k: getattr(event, k) if v is UNCHANGED else v for k, v in given.items()})
    if fields["capacity"] is not None:
        _lock(event)
        taken = seats_taken(event)
        if fields["capacity"] < taken:
            raise ServiceError(f"{taken} people already hold a place, so the capacity cannot be lower than {taken}.",
                               field="capacity")
    changed = sorted(k for k, v in fields.items() if getattr(event, k) != v)
    for key, value in fields.items():
        setattr(event, key, value)
    if changed:
        record("event.updated", _event_target(event), actor=actor, tenant_id=event.tenant_id,
               details={"changed": changed})
    return event


def delete_event(event: Event, actor) -> None:
    _check_configure(actor, "delete events")
    attendees = seats_taken(event)
    record("event.deleted", _event_target(event), actor=actor, tenant_id=event.tenant_id,
           details={"attendees": attendees, "capacity": event.capacity})
    _forget_timeline_of("event", event.id)
    db.session.execute(sa.delete(EventAttendee).where(EventAttendee.event_id == event.id))
    db.session.delete(event)
    db.session.flush()


def _lock(event: Event) -> None:
    """Hold the event row until commit, so two people filling the last place one after the
    other cannot both get it (PostgreSQL; SQLite writes one at a time anyway)."""
    db.session.execute(sa.select(Event.id).where(Event.id == event.id).with_for_update())


def attendee_of(event: Event, contact: Contact) -> EventAttendee | None:
    return db.session.scalar(sa.select(EventAttendee).where(EventAttendee.event_id == event.id,
                                                            EventAttendee.contact_id == contact.id))


def attendee_or_404(event_id: int, contact_id: int) -> tuple[Event, Contact, EventAttendee]:
    """An event of this tenant, a contact on its list whom the signed-in member may see, and
    the attendance; otherwise 404."""
    event = get_or_404(Event, event_id)
    contact = get_visible_contact_or_404(contact_id)
    attendee = attendee_of(event, contact)
    if attendee is None:
        abort(404)
    return event, contact, attendee


def _when(event: Event) -> str:
    return f"{event.starts_at:%Y-%m-%d %H:%M} UTC"


def find_contact_by_email(raw: str | None, *, viewer, field: str = "email") -> Contact:
    """The contact with this e-mail address that `viewer` may see (the live one first), or a
    ServiceError beside `field`, the same words whether it is missing or hidden."""
    try:
        email = normalize_email(raw or "")
    except ValueError:
        raise ServiceError("Enter a valid e-mail address.", field=field) from None
    contact = db.session.scalar(
        sa.select(Contact).where(Contact.email == email, Contact.merged_into_id.is_(None),
                                 visible_contacts_clause(viewer))
        .order_by(Contact.archived_at.is_not(None), Contact.is_active.desc(), Contact.id).limit(1))
    if contact is None:
        raise ServiceError(f"No contact has the e-mail address {email}.", field=field)
    return contact


def _is_live(contact: Contact) -> bool:
    return contact.is_active and contact.archived_at is None and contact.merged_into_id is None


def add_attendee(event: Event, contact: Contact, actor, via_circle: Circle | None = None) -> EventAttendee:
    """Invite one contact. Someone already on the list stays as they are (no duplicate); a
    full event refuses, saying so."""
    if not can(actor, "contacts.edit", contact):
        raise NotAllowed(f"You may only invite contacts you can edit; {contact} is not one of them.")
    existing = attendee_of(event, contact)
    if existing is not None:
        return existing
    if not _is_live(contact):
        raise ServiceError(f"{contact} is inactive or archived; restore them before inviting them.", field="email")
    _lock(event)
    if event.capacity is not None and seats_taken(event) >= event.capacity:
        raise ServiceError(f"The event is full: all {event.capacity} places are taken. Raise the capacity, "
                           "or wait for someone to decline.", field="email")
    attendee = EventAttendee(event_id=event.id, contact_id=contact.id,
                             via_circle_id=via_circle.id if via_circle else None, status="invited")
    db.session.add(attendee)
    db.session.flush()
    circle_note = f" with the circle {via_circle.name}" if via_circle else ""
    record_activity("event_invited", f"Invited to {event.title} ({_when(event)}){circle_note}", contact=contact,
                    subject=event, actor=actor, details={"event_id": event.id})
    return attendee


class CircleInvitation(int):
    """invite_circle()'s answer: the number of contacts added (it is that int), and what
    happened to the circle's other members."""

    added: int
    already: int  # were on the list before
    left_out: int  # did not fit: the event was full
    skipped: int  # inactive, archived or merged contacts

    def __new__(cls, added: int, *, already: int = 0, left_out: int = 0, skipped: int = 0):
        obj = super().__new__(cls, added)
        obj.added, obj.already, obj.left_out, obj.skipped = added, already, left_out, skipped
        return obj

    @property
    def message(self) -> str:
        people = "1 contact" if self.added == 1 else f"{self.added} contacts"
        parts = [f"Invited {people}."]
        if self.already:
            parts.append(f"{self.already} {'was' if self.already == 1 else 'were'} already on the list.")
        if self.left_out:
            parts.append(f"{self.left_out} did not fit: the event is full.")
        if self.skipped:
            parts.append(f"{self.skipped} inactive or archived {'contact was' if self.skipped == 1 else 'contacts were'} "
                         "left out.")
        return " ".join(parts)


def invite_circle(event: Event, circle: Circle, actor) -> CircleInvitation:
    """Invite the circle's current contact members (in the order they joined it). With a
    capacity, as many as fit are added; the answer says how many were left out."""
    _check_configure(actor, "invite whole circles")
    if circle.archived_at is not None:
        raise ServiceError("This circle is archived; restore it first.", field="circle_id")
    members = list(db.session.scalars(
        sa.select(Contact)
        .join(CircleMember, sa.and_(CircleMember.contact_id == Contact.id, CircleMember.tenant_id == Contact.tenant_id))
        .where(CircleMember.circle_id == circle.id, CircleMember.removed_at.is_(None), visible_contacts_clause(actor))
        .order_by(CircleMember.added_at, CircleMember.id)))
    _lock(event)
    attending = set(db.session.scalars(sa.select(EventAttendee.contact_id).where(EventAttendee.event_id == event.id)))
    already = [c for c in members if c.id in attending]
    candidates = [c for c in members if c.id not in attending]
    live = [c for c in candidates if _is_live(c)]
    room = len(live) if event.capacity is None else max(event.capacity - seats_taken(event), 0)
    chosen, left_out = live[:room], live[room:]
    for contact in chosen:
        db.session.add(EventAttendee(event_id=event.id, contact_id=contact.id, via_circle_id=circle.id,
                                     status="invited"))
        record_activity("event_invited", f"Invited to {event.title} ({_when(event)}) with the circle {circle.name}",
                        contact=contact, subject=event, actor=actor,
                        details={"event_id": event.id, "circle_id": circle.id})
    result = CircleInvitation(len(chosen), already=len(already), left_out=len(left_out),
                              skipped=len(candidates) - len(live))
    record("event.circle_invited", _event_target(event), actor=actor, tenant_id=event.tenant_id,
           details={"circle_id": circle.id, "circle": circle.name, "added": result.added,
                    "already": result.already, "left_out": result.left_out, "skipped": result.skipped})
    db.session.flush()
    return result


def may_manage_attendee(actor, contact: Contact) -> bool:
    """Change an attendee's status or remove them: event managers, or whoever may edit the contact."""
    return can(actor, "crm.configure") or can(actor, "contacts.edit", contact)


def remove_attendee(event: Event, contact: Contact, actor) -> bool:
    """Take a contact off the list; False when they were not on it."""
    if not may_manage_attendee(actor, contact):
        raise NotAllowed(f"You may not change {contact}'s invitations.")
    attendee = attendee_of(event, contact)
    if attendee is None:
        return False
    record("event.attendee_removed", _event_target(event), actor=actor, tenant_id=event.tenant_id,
           details={"contact_id": contact.id, "contact": str(contact), "status": attendee.status})
    db.session.delete(attendee)
    record_activity("event_removed", f"Removed from {event.title} ({_when(event)})", contact=contact,
                    subject=event, actor=actor, details={"event_id": event.id})
    db.session.flush()
    return True


def set_attendance(attendee: EventAttendee, status: str, actor) -> EventAttendee:
    """invited / accepted / declined / attended. Taking back a place after declining needs a free place."""
    if status not in EventAttendee.STATUSES:
        raise ServiceError("Choose invited, accepted, declined or attended.", field="status")
    contact = db.session.get(Contact, attendee.contact_id)
    if not may_manage_attendee(actor, contact):
        raise NotAllowed(f"You may not change {contact}'s invitations.")
    if status == attendee.status:
        return attendee
    event = db.session.get(Event, attendee.event_id)
    if attendee.status == "declined" and event.capacity is not None:
        _lock(event)
        if seats_taken(event) >= event.capacity:
            raise ServiceError(f"The event is full: all {event.capacity} places are taken.", field="status")
    attendee.status = status
    record_activity("event_attendance", f"{STATUS_LABELS[status]}: {event.title} ({_when(event)})", contact=contact,
                    subject=event, actor=actor, details={"event_id": event.id, "status": status})
    return attendee


def events_of(contact: Contact) -> list[tuple[Event, EventAttendee]]:
    """The events a contact is on the list of, latest first, with their attendance."""
    return [tuple(row) for row in db.session.execute(
        sa.select(Event, EventAttendee)
        .join(EventAttendee, sa.and_(EventAttendee.event_id == Event.id, EventAttendee.tenant_id == Event.tenant_id))
        .where(EventAttendee.contact_id == contact.id)
        .order_by(Event.starts_at.desc(), Event.id.desc()))]


def upcoming_clause(now: datetime | None = None):
    """Events not over yet: they end (or, without an end, start) now or later."""
    return sa.func.coalesce(Event.ends_at, Event.starts_at) >= (now or utcnow())


# --- the contact's own answers (portal) ----------------------------------------------------------

RSVP_CHOICES = tuple(EventAttendee.RSVP_LABELS)  # going, not_going


# Built once, with the values as parameters: every visit to the portal home runs it, and building
# it (and the tenant filter's cache key over it, core.tenancy) cost more than running it.
_UPCOMING_INVITATIONS = (
    sa.select(Event, EventAttendee)
    .join(EventAttendee, sa.and_(EventAttendee.event_id == Event.id, EventAttendee.tenant_id == Event.tenant_id))
    .where(EventAttendee.contact_id == sa.bindparam("contact_id"),
           sa.func.coalesce(Event.ends_at, Event.starts_at) >= sa.bindparam("now", type_=Event.starts_at.type))
    .order_by(Event.starts_at, Event.id))


def upcoming_invitations_of(contact: Contact, *, now: datetime | None = None) -> list[tuple[Event, EventAttendee]]:
    """The events not over yet (as upcoming_clause says) that the contact is on the list of,
    soonest first, with their attendance: what their portal home offers to answer."""
    return [tuple(row) for row in db.session.execute(
        _UPCOMING_INVITATIONS, {"contact_id": contact.id, "now": now or utcnow()})]


def invitation_or_404(event_id: int, contact: Contact) -> tuple[Event, EventAttendee]:
    """An event of this tenant with this contact on its list, and their attendance; otherwise
    404 (an event they are not invited to looks the same as none)."""
    event = get_or_404(Event, event_id)
    attendee = attendee_of(event, contact)
    if attendee is None:
        abort(404)
    return event, attendee


def answer_invitation(attendee: EventAttendee, answer: str, actor) -> EventAttendee:
    """The attendee's own answer, "going" or "not_going", given on their portal: it sets their
    status (accepted / declined) as staff would, within the capacity, while the event is not
    over, and staff see the answer and when it came on the event's page."""
    if not acts_as_contact(actor, attendee.contact_id):
        raise NotAllowed("Only the person invited can answer this invitation.")
    if answer not in RSVP_CHOICES:
        raise ServiceError("Choose going or not going.", field="answer")
    event = db.session.get(Event, attendee.event_id)
    if (event.ends_at or event.starts_at) < utcnow():  # upcoming_clause(), for one event
        raise ServiceError(f"“{event.title}” is over, so it no longer takes answers.", field="answer")
    status = "accepted" if answer == "going" else "declined"
    if attendee.status == "declined" and status != "declined" and event.capacity is not None:
        _lock(event)
        if seats_taken(event) >= event.capacity:
            raise ServiceError(f"Sorry, “{event.title}” is full: all {event.capacity} places are taken.",
                               field="answer")
    if attendee.rsvp == answer and attendee.status == status:
        return attendee
    attendee.rsvp, attendee.rsvp_at, attendee.status = answer, utcnow(), status
    contact = db.session.get(Contact, attendee.contact_id)
    record_activity("event_rsvp", f"{EventAttendee.RSVP_LABELS[answer]}: {event.title} ({_when(event)})",
                    contact=contact, subject=event, actor=actor, details={"event_id": event.id, "answer": answer})
    return attendee
