"""Tasks: added on a contact (or on their own), assigned to a teammate, due at a UTC time,
ticked off and reopened; the task list shows "My tasks" by default and filters by whose,
open/done and overdue/today/this week. Hidden contacts' tasks do not exist for the viewer."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from core.accounts import create_staff_user
from core.audit import AuditEvent
from core.db import db
from core.errors import ServiceError
from core.identity import StaffUser
from crm.activities import (NotAllowed, complete_task, create_task, delete_task, open_tasks_of, reopen_task,
                            tasks_for, update_task)
from crm.models import Contact, Task, TimelineEntry
from tests.factories import assign_to_circle, add_to_circle, make_circle, make_contact, make_task, restrict_staff_visibility
from tests.support import post_form, staff_member, tenant_session
from tests.test_query_counts import counted_queries

UTC = timezone.utc






def _contact_id(app, world, owner="owner", first="Tia", last="Tasks", **fields) -> int:
    with tenant_session(app, world.a):
        return make_contact(first, last, owner_id=world.a.members[owner].id, **fields).id


def _tasks(app, world) -> list[Task]:
    with tenant_session(app, world.a):
        tasks = db.session.scalars(sa.select(Task).order_by(Task.id)).all()
        for task in tasks:
            db.session.expunge(task)
        return tasks


def _task(app, world, task_id) -> Task:
    with tenant_session(app, world.a):
        task = db.session.get(Task, task_id)
        db.session.expunge(task)
        return task


def _make_task(app, world, title="Follow up", **fields) -> int:
    with tenant_session(app, world.a):
        return make_task(title, **fields).id


TASK_FORM = {"title": "Call about the renewal", "kind": "call", "due_at": "2030-05-06T14:30",
             "description": "Ask about seats."}


# --- adding a task on a contact -------------------------------------------------------------

def test_task_added_on_the_contact_page_is_saved_in_utc_and_on_the_timeline(world, staff_client, app):
    contact_id = _contact_id(app, world)
    sam = world.a.members["staff"].id
    response = post_form(staff_client("owner"), f"/staff/contacts/{contact_id}/tasks",
                         {**TASK_FORM, "assignee_id": str(sam)})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == f"/staff/contacts/{contact_id}"
    [task] = _tasks(app, world)
    assert (task.title, task.kind, task.assignee_id, task.contact_id) == ("Call about the renewal", "call", sam, contact_id)
    assert task.due_at == datetime(2030, 5, 6, 14, 30, tzinfo=UTC)  # the typed time, read as UTC
    assert task.description == "Ask about seats." and task.created_by_id == world.a.members["owner"].id
    with tenant_session(app, world.a):
        entry = db.session.scalar(sa.select(TimelineEntry).where(TimelineEntry.contact_id == contact_id))
        assert (entry.kind, entry.subject_type, entry.subject_id) == ("task", "task", task.id)
        assert entry.summary == "Call added: Call about the renewal (due 2030-05-06 14:30 UTC)"


def test_a_form_without_an_assignee_field_gives_the_task_to_its_sender(world, staff_client, app):
    contact_id = _contact_id(app, world, owner="staff")
    post_form(staff_client("staff"), f"/staff/contacts/{contact_id}/tasks", {"title": "Send the quote"})
    [task] = _tasks(app, world)
    assert task.assignee_id == world.a.members["staff"].id and task.kind == "task" and task.due_at is None


def test_an_empty_assignee_leaves_the_task_unassigned(world, staff_client, app):
    contact_id = _contact_id(app, world)
    post_form(staff_client("owner"), f"/staff/contacts/{contact_id}/tasks", {"title": "Someone call", "assignee_id": ""})
    assert _tasks(app, world)[0].assignee_id is None


@pytest.mark.parametrize("changes, field, message", [
    ({"title": ""}, "title", "Enter a title."),
    ({"title": "x" * 201}, "title", "A title can be at most 200 characters."),
    ({"kind": "party"}, "kind", "Choose a kind: task, call, meeting, e-mail or comment."),
    ({"due_at": "next tuesday"}, "due_at", "Enter a date and time, like 2025-03-14 09:30."),
    ({"assignee_id": "999999"}, "assignee_id", "Choose an active member of your team."),
    ({"assignee_id": "banana"}, "assignee_id", "Choose an active member of your team."),
])
def test_bad_task_input_is_explained_beside_the_field_and_kept(world, staff_client, app, changes, field, message):
    contact_id = _contact_id(app, world)
    response = post_form(staff_client("owner"), f"/staff/contacts/{contact_id}/tasks", {**TASK_FORM, **changes})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="{field}-error"' in page and message in page
    assert "Ask about seats." in page  # the rest of what was typed is kept
    assert "New task for Tia Tasks" in page
    assert _tasks(app, world) == []


def test_the_due_field_says_it_is_utc(world, staff_client, app):
    page = staff_client("owner").get("/staff/tasks/new").get_data(as_text=True)
    assert 'type="datetime-local"' in page and "Due (UTC)" in page and "In UTC, like every time shown" in page


def test_assignee_of_another_tenant_or_deactivated_is_refused(world, staff_client, app):
    contact_id = _contact_id(app, world)
    with tenant_session(app, world.a):
        gone = create_staff_user("gone@acme.example", "Gone Person", "staff", password=None)
        gone.active = False
        db.session.flush()
        gone_id = gone.id
    client = staff_client("owner")
    for assignee in (world.b.members["staff"].id, gone_id):
        page = post_form(client, f"/staff/contacts/{contact_id}/tasks",
                         {**TASK_FORM, "assignee_id": str(assignee)}).get_data(as_text=True)
        assert "Choose an active member of your team." in page and "CANARY" not in page
    assert _tasks(app, world) == []


def test_assignee_list_offers_active_teammates_only(world, staff_client, app):
    with tenant_session(app, world.a):
        create_staff_user("gone@acme.example", "Gone Person", "staff", password=None).active = False
    page = staff_client("staff").get("/staff/tasks/new").get_data(as_text=True)
    assert "Sam Staff (you)" in page and "Olivia Owner" in page and "Adam Admin" in page
    assert "Gone Person" not in page and "CANARY" not in page
    assert re.search(r'<option selected value="%d">' % world.a.members["staff"].id, page) or \
        re.search(r'<option value="%d" selected>' % world.a.members["staff"].id, page)


def test_staff_may_add_tasks_only_to_contacts_they_may_edit(world, staff_client, app):
    theirs = _contact_id(app, world, owner="staff")
    not_theirs = _contact_id(app, world, owner="owner")
    client = staff_client("staff")
    assert post_form(client, f"/staff/contacts/{theirs}/tasks", {"title": "Mine"}).status_code == 302
    assert post_form(client, f"/staff/contacts/{not_theirs}/tasks", {"title": "Not mine"}).status_code == 403
    assert [t.title for t in _tasks(app, world)] == ["Mine"]


def test_a_task_cannot_go_to_someone_who_cannot_see_its_contact(world, app):
    contact_id = _contact_id(app, world, owner="owner")
    with tenant_session(app, world.a):
        restrict_staff_visibility()
        with pytest.raises(ServiceError, match="Sam Staff cannot see Tia Tasks"):
            create_task("Call", contact=db.session.get(Contact, contact_id), assignee_id=world.a.members["staff"].id,
                        actor=staff_member(world.a, "owner"))


def test_new_task_page_links_a_contact_by_email(world, staff_client, app):
    contact_id = _contact_id(app, world, owner="staff", email="tia@example.com")
    client = staff_client("staff")
    response = post_form(client, "/staff/tasks/new", {"title": "Prepare demo", "contact_email": " TIA@example.com ",
                                                      "assignee_id": str(world.a.members["staff"].id)})
    assert response.status_code == 302
    assert _tasks(app, world)[0].contact_id == contact_id
    page = post_form(client, "/staff/tasks/new", {"title": "Other", "contact_email": "nobody@example.com"})
    assert "No contact has the e-mail address nobody@example.com." in page.get_data(as_text=True)
    assert len(_tasks(app, world)) == 1


def test_service_normalises_due_times_to_utc(world, app):
    with tenant_session(app, world.a):
        owner = staff_member(world.a, "owner")
        local = datetime(2030, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=2)))
        assert create_task("Aware", due_at=local, actor=owner).due_at == datetime(2030, 1, 1, 7, 0, tzinfo=UTC)
        assert create_task("Naive", due_at=datetime(2030, 1, 1, 9, 0), actor=owner).due_at == \
            datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


# --- the task list ---------------------------------------------------------------------------

def _seed_week(app, world):
    """Wednesday 2025-03-12 10:00 UTC is "now" in these tests."""
    me, other = world.a.members["staff"].id, world.a.members["owner"].id
    contact_id = _contact_id(app, world, owner="staff", first="Wendy", last="Week")
    with tenant_session(app, world.a):
        at = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
        make_task("Overdue since Monday", assignee_id=me, due_at=at(2025, 3, 10, 9, 0), contact_id=contact_id)
        make_task("Earlier today", assignee_id=me, due_at=at(2025, 3, 12, 8, 0))
        make_task("Later today", assignee_id=me, due_at=at(2025, 3, 12, 16, 0))
        make_task("Sunday night", assignee_id=me, due_at=at(2025, 3, 16, 23, 30))
        make_task("Next Monday", assignee_id=me, due_at=at(2025, 3, 17, 0, 0))
        make_task("Whenever", assignee_id=me)
        make_task("Done yesterday", assignee_id=me, due_at=at(2025, 3, 11, 9, 0), done_at=at(2025, 3, 11, 10, 0))
        make_task("Owner's own", assignee_id=other, due_at=at(2025, 3, 12, 12, 0))
        make_task("Nobody's", due_at=at(2025, 3, 1, 12, 0))


def _titles(page: str) -> list[str]:
    return re.findall(r'<a href="/staff/tasks/\d+[^"]*"[^>]*>([^<]+)</a>', page)


@freeze_time("2025-03-12 10:00:00")
@pytest.mark.parametrize("query, titles", [
    ("", ["Overdue since Monday", "Earlier today", "Later today", "Sunday night", "Next Monday", "Whenever"]),
    ("?due=overdue", ["Overdue since Monday", "Earlier today"]),
    ("?due=today", ["Earlier today", "Later today"]),
    ("?due=week", ["Overdue since Monday", "Earlier today", "Later today", "Sunday night"]),
    ("?status=done", ["Done yesterday"]),
    ("?status=all&due=week", ["Overdue since Monday", "Earlier today", "Later today", "Sunday night", "Done yesterday"]),
    ("?who=all&due=today", ["Earlier today", "Owner's own", "Later today"]),
    ("?who=all&due=overdue", ["Nobody's", "Overdue since Monday", "Earlier today"]),
])
def test_task_list_filters(world, staff_client, app, query, titles):
    _seed_week(app, world)
    response = staff_client("staff").get(f"/staff/tasks{query}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _titles(page) == [t.replace("'", "&#39;") for t in titles]


@freeze_time("2025-03-12 10:00:00")
def test_task_list_shows_what_a_user_needs(world, staff_client, app):
    _seed_week(app, world)
    page = staff_client("staff").get("/staff/tasks").get_data(as_text=True)
    assert "<h1>My tasks</h1>" in page
    assert page.count("Overdue</span>") == 2  # Monday's and this morning's
    assert "2025-03-10 09:00 UTC" in page
    contact_link = re.search(r'<a href="(/staff/contacts/\d+)">Wendy Week</a>', page)
    assert contact_link  # the task links to its contact
    assert 'class="stack-on-phone"' in page and 'data-label="Due"' in page
    assert page.count('aria-label="Mark') == 6  # a Done button per open task
    everyone = staff_client("owner").get("/staff/tasks?who=all").get_data(as_text=True)
    assert "<h1>Everyone&#39;s tasks</h1>" in everyone and "Sam Staff" in everyone


def test_unknown_filter_values_fall_back_to_the_defaults(world, staff_client, app):
    response = staff_client("staff").get("/staff/tasks?who=bogus&status=nope&due=yesterday&page=-3")
    assert response.status_code == 200 and "<h1>My tasks</h1>" in response.get_data(as_text=True)


def test_task_list_pages(world, staff_client, app):
    me = world.a.members["staff"].id
    with tenant_session(app, world.a):
        for i in range(55):
            make_task(f"Task {i:02d}", assignee_id=me, due_at=datetime(2030, 1, 1, tzinfo=UTC) + timedelta(hours=i))
    client = staff_client("staff")
    first = client.get("/staff/tasks").get_data(as_text=True)
    assert len(_titles(first)) == 50 and "Task 00" in first and "Task 50" not in first
    assert 'href="/staff/tasks?who=mine&amp;status=open&amp;page=2"' in first
    second = client.get("/staff/tasks?who=mine&status=open&page=2").get_data(as_text=True)
    assert _titles(second) == [f"Task {i}" for i in range(50, 55)] and "Previous page" in second


def test_task_list_does_not_query_per_row(world, staff_client, app):
    client = staff_client("owner")
    owner = world.a.members["owner"].id
    _make_task(app, world, "Warm-up", assignee_id=owner, contact_id=_contact_id(app, world))
    client.get("/staff/tasks?who=all")
    with counted_queries(app) as few:
        assert client.get("/staff/tasks?who=all").status_code == 200
    with tenant_session(app, world.a):
        for i in range(30):
            contact = make_contact(f"Row{i}", "Person", owner_id=owner)
            make_task(f"Row task {i}", assignee_id=world.a.members["staff" if i % 2 else "admin"].id,
                      contact_id=contact.id, due_at=datetime(2030, 1, 1, tzinfo=UTC))
    with counted_queries(app) as many:
        page = client.get("/staff/tasks?who=all").get_data(as_text=True)
    assert "Row task 29" in page and "Row29 Person" in page and "Adam Admin" in page
    assert len(many) == len(few), f"{len(few)} queries with one task, {len(many)} with 31"


# --- done, undo, edit, delete -----------------------------------------------------------------

def test_done_and_undo_from_the_list_and_the_timeline(world, staff_client, app):
    contact_id = _contact_id(app, world, owner="staff")
    task_id = _make_task(app, world, "Send contract", assignee_id=world.a.members["staff"].id, contact_id=contact_id)
    client = staff_client("staff")
    response = post_form(client, f"/staff/tasks/{task_id}/done", {"next": "/staff/tasks?status=all"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/tasks?status=all")
    assert _task(app, world, task_id).done_at is not None
    assert "Done: “Send contract”." in client.get("/staff/tasks?status=all").get_data(as_text=True)
    assert post_form(client, f"/staff/tasks/{task_id}/reopen").status_code == 302
    assert _task(app, world, task_id).done_at is None
    with tenant_session(app, world.a):
        kinds = db.session.scalars(sa.select(TimelineEntry.kind).where(TimelineEntry.contact_id == contact_id)
                                   .order_by(TimelineEntry.id)).all()
    assert kinds == ["task_done", "task_reopened"]


def test_next_cannot_send_anyone_off_site(world, staff_client, app):
    task_id = _make_task(app, world, assignee_id=world.a.members["staff"].id)
    response = post_form(staff_client("staff"), f"/staff/tasks/{task_id}/done", {"next": "https://evil.example/"})
    assert urlsplit(response.headers["Location"]).path == "/staff/tasks"
    assert "evil" not in response.headers["Location"]


def test_teammates_may_tick_off_each_others_tasks_but_not_change_them(world, staff_client, app):
    task_id = _make_task(app, world, "Owner's call", assignee_id=world.a.members["owner"].id,
                         created_by_id=world.a.members["owner"].id)
    client = staff_client("staff")
    assert post_form(client, f"/staff/tasks/{task_id}/done").status_code == 302
    page = client.get(f"/staff/tasks/{task_id}").get_data(as_text=True)
    assert "Only the assignee, the creator" in page and 'name="title"' not in page
    assert post_form(client, f"/staff/tasks/{task_id}", {"title": "Mine now"}).status_code == 403
    assert post_form(client, f"/staff/tasks/{task_id}/delete").status_code == 403
    assert _task(app, world, task_id).title == "Owner's call"


def test_assignee_edits_a_task(world, staff_client, app):
    contact_id = _contact_id(app, world, owner="owner")
    task_id = _make_task(app, world, "Old title", assignee_id=world.a.members["staff"].id, contact_id=contact_id,
                         due_at=datetime(2030, 2, 3, 4, 5, tzinfo=UTC))
    client = staff_client("staff")
    page = client.get(f"/staff/tasks/{task_id}").get_data(as_text=True)
    assert 'value="Old title"' in page and 'value="2030-02-03T04:05"' in page and "Tia Tasks" in page
    response = post_form(client, f"/staff/tasks/{task_id}",
                         {"title": "New title", "kind": "meeting", "due_at": "2030-02-04T10:00",
                          "assignee_id": str(world.a.members["admin"].id), "description": ""})
    assert response.status_code == 302
    task = _task(app, world, task_id)
    assert (task.title, task.kind, task.assignee_id) == ("New title", "meeting", world.a.members["admin"].id)
    assert task.due_at == datetime(2030, 2, 4, 10, 0, tzinfo=UTC) and task.contact_id == contact_id


def test_editing_with_bad_input_keeps_what_was_typed(world, staff_client, app):
    task_id = _make_task(app, world, "Keep", assignee_id=world.a.members["owner"].id)
    page = post_form(staff_client("owner"), f"/staff/tasks/{task_id}",
                     {"title": "Typed title", "due_at": "31/02/2030"}).get_data(as_text=True)
    assert "Enter a date and time" in page and 'value="Typed title"' in page and 'value="31/02/2030"' in page
    assert _task(app, world, task_id).title == "Keep"


def test_deleting_a_task_audits_it_and_clears_its_timeline_lines(world, staff_client, app):
    contact_id = _contact_id(app, world, owner="owner")
    with tenant_session(app, world.a):
        task = create_task("Wrong task", contact=db.session.get(Contact, contact_id), actor=staff_member(world.a, "owner"))
        task_id = task.id
    response = post_form(staff_client("owner"), f"/staff/tasks/{task_id}/delete")
    assert urlsplit(response.headers["Location"]).path == f"/staff/contacts/{contact_id}"
    assert _tasks(app, world) == []
    with tenant_session(app, world.a):
        assert db.session.scalar(sa.select(sa.func.count(TimelineEntry.id))) == 0
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "task.deleted"))
        assert (event.target_type, event.target_id, event.target_label) == ("task", task_id, "Task: Wrong task")


def test_services_enforce_who_may_change_a_task(world, app):
    with tenant_session(app, world.a):
        task = make_task("Admin's", assignee_id=world.a.members["admin"].id, created_by_id=world.a.members["admin"].id)
        staff = staff_member(world.a, "staff")
        with pytest.raises(NotAllowed):
            update_task(task, title="x", actor=staff)
        with pytest.raises(NotAllowed):
            delete_task(task, staff)
        complete_task(task, staff)  # team work: anyone who sees it may tick it off
        assert task.done_at is not None
        reopen_task(task, staff)
        assert task.done_at is None


# --- hidden contacts --------------------------------------------------------------------------

def test_tasks_on_hidden_contacts_do_not_exist_for_restricted_staff(world, staff_client, app):
    sam = world.a.members["staff"].id
    hidden = _contact_id(app, world, owner="owner", first="Hidden", last="Person")
    in_circle = _contact_id(app, world, owner="owner", first="Circle", last="Member")
    with tenant_session(app, world.a):
        circle = make_circle("Sam's accounts")
        add_to_circle(circle, contact=db.session.get(Contact, in_circle))
        assign_to_circle(circle, sam)
        hidden_task = make_task("Secret task", assignee_id=sam, contact_id=hidden).id
        make_task("Visible task", assignee_id=sam, contact_id=in_circle)
        make_task("Loose task", assignee_id=sam)
        restrict_staff_visibility()
    client = staff_client("staff")
    for query in ("", "?who=all", "?who=all&status=all"):
        page = client.get(f"/staff/tasks{query}").get_data(as_text=True)
        assert "Secret task" not in page and "Hidden Person" not in page
        assert "Visible task" in page and "Loose task" in page
    assert client.get(f"/staff/tasks/{hidden_task}").status_code == 404
    for action in ("done", "reopen", "delete"):
        assert post_form(client, f"/staff/tasks/{hidden_task}/{action}").status_code == 404
    with tenant_session(app, world.a):
        listed = db.session.scalars(tasks_for(staff_member(world.a, "staff"), status="all", mine=False)).all()
        assert sorted(t.title for t in listed) == ["Loose task", "Visible task"]
        assert db.session.get(Task, hidden_task).done_at is None
    # Owners see everything.
    assert "Secret task" in staff_client("owner").get("/staff/tasks?who=all").get_data(as_text=True)


def test_open_tasks_of_a_contact(world, app):
    contact_id = _contact_id(app, world)
    with tenant_session(app, world.a):
        make_task("Later", contact_id=contact_id, due_at=datetime(2030, 1, 2, tzinfo=UTC),
                  assignee_id=world.a.members["admin"].id)
        make_task("Sooner", contact_id=contact_id, due_at=datetime(2030, 1, 1, tzinfo=UTC))
        make_task("Undated", contact_id=contact_id)
        make_task("Finished", contact_id=contact_id, done_at=datetime(2025, 1, 1, tzinfo=UTC))
        make_task("Not about anyone")
        tasks = open_tasks_of(db.session.get(Contact, contact_id))
        assert [(t.title, t.assignee_name) for t in tasks] == [("Sooner", None), ("Later", "Adam Admin"),
                                                               ("Undated", None)]


def test_update_task_changes_only_the_fields_given(world, app):
    with tenant_session(app, world.a):
        owner, admin = staff_member(world.a, "owner"), world.a.members["admin"].id
        due = datetime(2030, 3, 3, 3, 3, tzinfo=UTC)
        task = create_task("Before", kind="meeting", due_at=due, assignee_id=admin, description="Keep me", actor=owner)
        update_task(task, title="After", actor=owner)
        assert (task.title, task.kind, task.due_at, task.assignee_id, task.description) == \
            ("After", "meeting", due, admin, "Keep me")
        update_task(task, assignee_id=None, due_at=None, actor=owner)
        assert (task.assignee_id, task.due_at, task.kind) == (None, None, "meeting")


def test_a_task_keeps_an_assignee_who_left_the_team_until_someone_reassigns_it(world, staff_client, app):
    admin = world.a.members["admin"].id
    task_id = _make_task(app, world, "Left behind", assignee_id=admin)
    with tenant_session(app, world.a):
        db.session.get(StaffUser, admin).active = False
    client = staff_client("owner")
    page = client.get(f"/staff/tasks/{task_id}").get_data(as_text=True)
    assert "Adam Admin (no longer on the team)" in page
    assert post_form(client, f"/staff/tasks/{task_id}", {"title": "Still left behind",
                                                         "assignee_id": str(admin)}).status_code == 302
    assert _task(app, world, task_id).assignee_id == admin
    page = post_form(client, "/staff/tasks/new", {"title": "New one", "assignee_id": str(admin)}).get_data(as_text=True)
    assert "Choose an active member of your team." in page
