"""Bulk actions on large selections: a background operation over the contacts selected when
the button was pressed, worked through a chunk per transaction, with a progress page.

The tests make "large" small: they lower crm.bulk.IN_REQUEST_MAX (500 in the app) to 10 and
crm.bulk.CHUNK (500) to 20 with monkeypatch, so 60 contacts become an operation of three
chunks. Nothing else about the path changes."""
from __future__ import annotations

import os
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from core.jobs import huey, pending_count, run_pending_jobs
from core.operations import Operation, OperationChunk
from core.tenancy import tenant_context
from crm import bulk
from crm.models import CircleMember, Contact, ContactTag, TimelineEntry
from tests.support import in_tenant, post_form, start_worker
from tests.factories import make_contact, make_operation

OPERATION_URL = re.compile(r"/staff/operations/(\d+)$")


@pytest.fixture
def small_limits(monkeypatch):
    """Test-only: 'large' means more than 10 contacts, and a chunk is 20 (see the module doc)."""
    monkeypatch.setattr(bulk, "IN_REQUEST_MAX", 10)
    monkeypatch.setattr(bulk, "CHUNK", 20)


def _start(client, data: dict, q: str = "crowd") -> int:
    """Select all contacts matching `q`, press the bulk button, land on the operation's page."""
    post_form(client, "/staff/contacts/selection", {"change": "all_matching", "q": q})
    response = post_form(client, "/staff/contacts/bulk", data)
    assert response.status_code == 302, response.get_data(as_text=True)
    match = OPERATION_URL.search(response.headers["Location"])
    assert match, f"the bulk button did not lead to an operation page: {response.headers['Location']}"
    return int(match.group(1))


def _run_jobs(app, now=None) -> int:
    with app.app_context():
        return run_pending_jobs(now=now)


def _later(seconds: int = 31):
    """The queue's clock (naive UTC), past a retry's delay."""
    return datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=seconds)


def _operation(app, world, operation_id: int) -> Operation:
    return in_tenant(app, world.a, lambda: db.session.get(Operation, operation_id))


def _count(app, world, query):
    return in_tenant(app, world.a, lambda: db.session.scalar(query))


def test_large_selection_runs_in_the_background_on_the_contacts_selected_at_the_click(
        app, world, staff_client, crowd, small_limits):
    ids, circle_id = crowd
    client = staff_client("owner")
    operation_id = _start(client, {"action": "add_to_circle", "circle_id": circle_id})

    page = client.get(f"/staff/operations/{operation_id}").get_data(as_text=True)
    assert "Add to a circle: “Newsletter”" in page and "Waiting to start" in page
    assert "0</span> of 60 contacts processed" in page and '<progress id="operation-bar" value="0" max="60">' in page
    assert "js/operation-progress.js" in page and 'http-equiv="refresh"' in page  # it refreshes itself
    assert pending_count() == 1, "the job is queued once the request has committed"

    # Contacts that match the filter only after the click are not part of it.
    late = in_tenant(app, world.a, lambda: [make_contact(f"Late{i}", "Crowd").id for i in range(5)])
    _run_jobs(app)

    members = in_tenant(app, world.a, lambda: db.session.scalars(sa.select(CircleMember.contact_id).where(
        CircleMember.circle_id == circle_id, CircleMember.removed_at.is_(None))).all())
    assert sorted(members) == sorted(ids) and not set(late) & set(members)
    done = client.get(f"/staff/operations/{operation_id}").get_data(as_text=True)
    assert "Done" in done and "60</span> of 60 contacts processed" in done
    assert '<progress id="operation-bar" value="60" max="60">' in done
    assert "Add to a circle: 60 contacts changed." in done
    assert "operation-progress.js" not in done and 'http-equiv="refresh"' not in done
    progress = client.get(f"/staff/operations/{operation_id}/progress").get_json()
    assert {k: progress[k] for k in ("status", "processed", "total", "changed", "skipped", "errors", "finished")} == {
        "status": "done", "processed": 60, "total": 60, "changed": 60, "skipped": 0, "errors": 0, "finished": True}
    # The same services as one change: a timeline line per contact, one audit event for the whole.
    assert _count(app, world, sa.select(sa.func.count()).select_from(TimelineEntry).where(
        TimelineEntry.kind == "circle_added")) == 60
    event = in_tenant(app, world.a, lambda: db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "contact.bulk_action")).one())
    assert event.details["operation_id"] == operation_id and event.details["changed"] == 60
    assert event.actor_id == world.a.members["owner"].id
    assert _count(app, world, sa.select(sa.func.count()).select_from(OperationChunk)) == 0, "items are cleared"
    listing = client.get("/staff/operations").get_data(as_text=True)
    assert f'href="/staff/operations/{operation_id}"' in listing and "60 of 60 contacts" in listing
    assert 'href="/staff/operations"' in listing, "the account menu links to the background tasks"


def test_small_selection_still_changes_at_once(app, world, staff_client, crowd, small_limits):
    ids, circle_id = crowd
    client = staff_client("owner")
    page = client.get("/staff/contacts?q=person0&sort=name&dir=asc").get_data(as_text=True)
    chosen = [int(i) for i in re.findall(r'href="/staff/contacts/(\d+)"', page)][:10]
    post_form(client, "/staff/contacts/selection", {"change": "page", "page_ids": chosen, "ids": chosen})
    done = post_form(client, "/staff/contacts/bulk", {"action": "add_to_circle", "circle_id": circle_id},
                     follow_redirects=True).get_data(as_text=True)
    assert "Add to a circle: 10 contacts changed." in done
    assert _count(app, world, sa.select(sa.func.count()).select_from(Operation)) == 0


def test_a_failure_halfway_is_retried_from_the_last_chunk_and_applies_nothing_twice(
        app, world, staff_client, crowd, small_limits, monkeypatch):
    ids, _ = crowd
    client = staff_client("owner")
    operation_id = _start(client, {"action": "tag", "tag_name": "vip"})

    # Fault injection: the 30th contact (halfway through the second chunk of 20) raises once,
    # after ten contacts of that chunk were tagged in its transaction.
    real_apply, calls = bulk._apply, []

    def flaky_apply(*args, **kwargs):
        calls.append(1)
        if len(calls) == 30:
            raise RuntimeError("the database went away (injected)")
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(bulk, "_apply", flaky_apply)
    assert _run_jobs(app) == 1
    halfway = _operation(app, world, operation_id)
    assert (halfway.status, halfway.processed, halfway.changed, halfway.attempts) == ("running", 20, 20, 1)
    assert halfway.last_error.startswith("Something went wrong on our side after 20 of 60")
    assert _count(app, world, sa.select(sa.func.count()).select_from(ContactTag)) == 20, "chunk 2 rolled back"
    page = client.get(f"/staff/operations/{operation_id}").get_data(as_text=True)
    assert "20</span> of 60 contacts processed" in page and "it is tried again automatically" in page
    assert huey.scheduled_count() == 1, "the job is scheduled again"

    assert _run_jobs(app, now=_later()) == 1
    done = _operation(app, world, operation_id)
    assert (done.status, done.processed, done.changed, done.result["unchanged"], done.attempts) == (
        "done", 60, 60, 0, 2)
    assert done.last_error is None
    tagged = in_tenant(app, world.a, lambda: db.session.execute(
        sa.select(TimelineEntry.contact_id, sa.func.count()).where(TimelineEntry.kind == "tag_added")
        .group_by(TimelineEntry.contact_id)).all())
    assert sorted(contact for contact, _ in tagged) == sorted(ids)
    assert {n for _, n in tagged} == {1}, "a contact was tagged twice"
    assert _count(app, world, sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "contact.bulk_action")) == 1


def test_staff_operation_skips_what_they_may_not_change_when_it_runs(app, world, staff_client, crowd, small_limits):
    ids, _ = crowd
    client = staff_client("staff")
    operation_id = _start(client, {"action": "set_role", "role": "prospect"})
    # Permissions are checked per contact when the job runs: two of the member's five
    # contacts are given to the owner after the click.
    in_tenant(app, world.a, lambda: db.session.execute(sa.update(Contact).where(Contact.id.in_(ids[:2])).values(
        owner_id=world.a.members["owner"].id)))
    _run_jobs(app)
    operation = _operation(app, world, operation_id)
    assert (operation.changed, operation.skipped, operation.errors) == (3, 57, 0)
    page = client.get(f"/staff/operations/{operation_id}").get_data(as_text=True)
    assert "Set the role: 3 contacts changed, 57 skipped (you may change only your own contacts)." in page
    prospects = in_tenant(app, world.a, lambda: db.session.scalars(sa.select(Contact.id).where(
        Contact.role == "prospect")).all())
    assert sorted(prospects) == sorted(ids[2:5])


def test_moving_back_a_large_selection_asks_first_then_runs(app, world, staff_client, small_limits):
    in_tenant(app, world.a, lambda: [make_contact(f"Client{i}", "Big", role="client") for i in range(12)])
    admin = staff_client("admin")
    post_form(admin, "/staff/contacts/selection", {"change": "all_matching", "q": "big"})
    ask = post_form(admin, "/staff/contacts/bulk", {"action": "set_role", "role": "lead"})
    assert "12 of these contacts would move back to Lead." in ask.get_data(as_text=True)
    assert _count(app, world, sa.select(sa.func.count()).select_from(Operation)) == 0
    operation_id = _start(admin, {"action": "set_role", "role": "lead", "confirm": "yes"}, q="big")
    _run_jobs(app)
    assert _operation(app, world, operation_id).changed == 12


def test_a_circle_archived_meanwhile_stops_it_in_plain_words(app, world, staff_client, crowd, small_limits):
    _, circle_id = crowd
    client = staff_client("owner")
    operation_id = _start(client, {"action": "add_to_circle", "circle_id": circle_id})
    from crm.models import Circle
    from core.db import utcnow
    in_tenant(app, world.a, lambda: setattr(db.session.get(Circle, circle_id), "archived_at", utcnow()))
    _run_jobs(app)
    operation = _operation(app, world, operation_id)
    assert operation.status == "failed" and operation.processed == 0
    assert operation.last_error == "Stopped: the circle was archived or deleted meanwhile. What was done before stays done."
    assert huey.scheduled_count() == 0, "a rule that refuses is not retried"
    page = client.get(f"/staff/operations/{operation_id}").get_data(as_text=True)
    assert "Stopped by an error" in page and "the circle was archived or deleted meanwhile" in page


def test_cancelling_stops_before_the_next_chunk(app, world, staff_client, crowd, small_limits):
    client = staff_client("owner")
    operation_id = _start(client, {"action": "archive"})
    response = post_form(client, f"/staff/operations/{operation_id}/cancel", follow_redirects=True)
    assert "Cancelled. What was done before stays done" in response.get_data(as_text=True)
    _run_jobs(app)
    operation = _operation(app, world, operation_id)
    assert operation.status == "cancelled" and operation.processed == 0
    assert _count(app, world, sa.select(sa.func.count()).select_from(Contact).where(
        Contact.archived_at.is_not(None))) == 0
    again = post_form(client, f"/staff/operations/{operation_id}/cancel", follow_redirects=True)
    assert "This task has already finished (cancelled)." in again.get_data(as_text=True)
    assert _count(app, world, sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "operation.cancelled")) == 1


def test_selection_over_the_hard_cap_is_refused_in_plain_words(app, world, staff_client, crowd, monkeypatch):
    monkeypatch.setattr(bulk, "MAX_BULK", 50)  # test-only: the app's cap is 1,000,000
    client = staff_client("owner")
    post_form(client, "/staff/contacts/selection", {"change": "all_matching", "q": "crowd"})
    refused = post_form(client, "/staff/contacts/bulk", {"action": "archive"}, follow_redirects=True)
    assert ("Bulk changes work on up to 50 contacts at a time; this selection has 60. "
            "Narrow the filter and run it in parts.") in refused.get_data(as_text=True)


def _operation_of(app, tenant_id: int, staff_id: int) -> int:
    with app.app_context(), tenant_context(tenant_id):
        operation_id = make_operation(staff_id, title="Their own change", status="running").id
        db.session.commit()
        return operation_id


def _assert_hidden(client, operation_id: int) -> None:
    assert client.get(f"/staff/operations/{operation_id}").status_code == 404
    assert client.get(f"/staff/operations/{operation_id}/progress").status_code == 404
    assert post_form(client, f"/staff/operations/{operation_id}/cancel").status_code == 404
    assert "Their own change" not in client.get("/staff/operations").get_data(as_text=True)


def test_staff_see_only_their_own_operations_admins_see_all(app, world, staff_client):
    from core.accounts import create_staff_user

    with app.app_context(), tenant_context(world.a.id):
        colleague = create_staff_user("kim@acme.example", "Kim Colleague", "staff", password=None).id
        db.session.commit()
    theirs = _operation_of(app, world.a.id, colleague)
    _assert_hidden(staff_client("staff"), theirs)
    assert _operation(app, world, theirs).status == "running", "the cancel of a hidden task changed it"
    admin = staff_client("admin")
    assert admin.get(f"/staff/operations/{theirs}").status_code == 200
    listing = admin.get("/staff/operations").get_data(as_text=True)
    assert "Their own change" in listing and "Kim Colleague" in listing


def test_another_tenants_operation_is_not_found(app, world, staff_client):
    theirs = _operation_of(app, world.b.id, world.b.members["owner"].id)
    _assert_hidden(staff_client("owner"), theirs)
    with app.app_context(), tenant_context(world.b.id):
        assert db.session.get(Operation, theirs).status == "running"


def test_a_worker_process_works_through_the_operation(app, world, staff_client, crowd, small_limits, queue_env,
                                                       database_url):
    """As operators run it: `flask --app wsgi worker` in a process of its own, on the SQLite
    queue and (TEST_REDIS_URL) on Redis; the page polls until the worker is done."""
    ids, circle_id = crowd
    env = {**os.environ, **queue_env, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
           "JOBS_WORKERS": "1"}
    worker = start_worker(env)
    try:
        client = staff_client("owner")
        operation_id = _start(client, {"action": "add_to_circle", "circle_id": circle_id})
        deadline = time.monotonic() + 30
        progress = {}
        while time.monotonic() < deadline and not progress.get("finished"):
            progress = client.get(f"/staff/operations/{operation_id}/progress").get_json()
            time.sleep(0.2)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=20)[0]
    assert progress.get("status") == "done", output
    assert (progress["processed"], progress["changed"]) == (60, 60)
    members = _count(app, world, sa.select(sa.func.count()).select_from(CircleMember).where(
        CircleMember.circle_id == circle_id))
    assert members == len(ids)


def test_the_list_of_tasks_does_not_query_per_row(app, world, staff_client):
    from core.accounts import create_staff_user
    from tests.test_query_counts import counted_queries

    _operation_of(app, world.a.id, world.a.members["staff"].id)
    client = staff_client("owner")
    client.get("/staff/operations")  # warm up
    with counted_queries(app) as few:
        assert client.get("/staff/operations").status_code == 200
    with app.app_context(), tenant_context(world.a.id):
        for i in range(30):
            member = create_staff_user(f"extra{i}@acme.example", f"Extra {i}", "staff", password=None)
            make_operation(member.id, title=f"Task {i}")
        db.session.commit()
    with counted_queries(app) as many:
        page = client.get("/staff/operations").get_data(as_text=True)
    assert "Task 29" in page and "Extra 29" in page
    assert len(many) == len(few), f"{len(few)} queries with one task, {len(many)} with 30 more"


def test_a_killed_worker_leaves_no_half_chunk_and_the_sweep_resumes_it(app, world, staff_client, small_limits,
                                                                       queue_env, database_url):
    """A worker process killed (SIGKILL) in the middle of an operation: the chunk it was in is
    rolled back by the database, the operation stays unfinished, the periodic sweep queues it
    again, and a new worker finishes it from the last committed chunk: every contact changed
    exactly once."""
    import signal

    from core.db import utcnow
    from core.operations import resume_stalled

    new_owner = world.a.members["admin"].id
    ids = in_tenant(app, world.a, lambda: [make_contact(f"Kill{i:03d}", "Sweep").id for i in range(200)])
    env = {**os.environ, **queue_env, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
           "JOBS_WORKERS": "1"}

    client = staff_client("owner")
    operation_id = _start(client, {"action": "assign_owner", "owner_id": new_owner}, q="sweep")
    worker = start_worker(env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _operation(app, world, operation_id).processed < 20:
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)  # no clean-up of any kind: as if the machine died
    finally:
        output = worker.communicate(timeout=20)[0]
    killed_at = _operation(app, world, operation_id)
    assert killed_at.status == "running" and 20 <= killed_at.processed < 200, (killed_at.processed, output)
    time.sleep(0.5)  # the database notices the dead connection and rolls its chunk back
    changed = _count(app, world, sa.select(sa.func.count()).select_from(Contact).where(
        Contact.id.in_(ids), Contact.owner_id == new_owner))
    assert changed == killed_at.processed, "only whole chunks are applied"

    with app.app_context():
        assert resume_stalled() == [], "a task that just made progress is not stalled"
        assert resume_stalled(utcnow() + timedelta(minutes=3)) == [operation_id]
    worker = start_worker(env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _operation(app, world, operation_id).is_finished:
            time.sleep(0.1)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=20)[0]
    done = _operation(app, world, operation_id)
    assert (done.status, done.processed, done.changed) == ("done", 200, 200), output
    per_contact = dict(in_tenant(app, world.a, lambda: db.session.execute(
        sa.select(TimelineEntry.contact_id, sa.func.count()).where(
            TimelineEntry.contact_id.in_(ids), TimelineEntry.kind == "owner_changed")
        .group_by(TimelineEntry.contact_id)).all()))
    assert set(per_contact) == set(ids) and set(per_contact.values()) == {1}, "a contact changed twice or never"


def test_the_worker_sweeps_every_minute_and_operators_can_sweep_now(app, world):
    when = datetime(2026, 11, 23, 9, 41)  # any minute
    assert "core.operations.resume_stalled_operations" in [task.name for task in huey.read_periodic(when)]
    stalled = _operation_of(app, world.b.id, world.b.members["owner"].id)  # any tenant's
    with app.app_context(), tenant_context(world.b.id):
        db.session.get(Operation, stalled).updated_at = datetime.now(timezone.utc) - timedelta(minutes=10)
        db.session.commit()
    huey.flush()
    result = app.test_cli_runner().invoke(args=["jobs", "resume-stalled"])
    assert result.exit_code == 0 and f"Queued again 1 background task(s): #{stalled}" in result.output
    assert pending_count() == 1
    again = app.test_cli_runner().invoke(args=["jobs", "resume-stalled"])
    assert "Queued again 0 background task(s)." in again.output  # claimed: not queued twice
    huey.flush()
