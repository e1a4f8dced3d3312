"""Receiving a submission: the answers stored exactly as sent and committed before anything
else; one submission per rendered form however often it is sent; and the same new person
sending twice at the same moment (two workers) ending as one contact with two submissions."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.db import db, utcnow
from core.errors import ServiceError
from core.jobs import pending_count
from core.tenancy import tenant_context
from crm.models import Contact, CrmSettings
from forms.models import Form, FormSubmission, SubmissionState
from forms.submissions import (MAX_BACKOFF_DOUBLINGS, STALLED_AFTER, process_submission, receive_submission,
                               requeue_stalled)
from tests.forms.factories import make_form
from tests.forms.submitting import as_tenant, contacts, submission, submit, timeline

ANSWERS = {"first_name": " Ada ", "email": "ADA@Example.com", "topics": ["A", "B"], "notes": "<b>hi</b>"}


def test_the_answers_are_stored_as_sent_and_committed_first(app, world, deliver):
    with as_tenant(app, world.a.id):
        form_id = make_form("Kickoff").id
    with app.app_context(), tenant_context(world.a.id):
        sub, created = receive_submission(
            db.session.get(Form, form_id), ANSWERS, idempotency_key="k1", source_url="https://acme.example/join",
            utm={"utm_source": "news"}, ip_address="203.0.113.9", user_agent="Firefox")
        assert created
        sid = sub.id
        db.session.rollback()  # whatever the caller does next, the submission is already saved
    assert pending_count() == 1, "processing is queued once the submission is committed"
    with as_tenant(app, world.a.id):  # another session: what the database holds
        stored = submission(sid)
        assert stored.answers == ANSWERS
        assert (stored.source_url, stored.utm, stored.ip_address, stored.user_agent) == (
            "https://acme.example/join", {"utm_source": "news"}, "203.0.113.9", "Firefox")
        assert (stored.state, stored.contact_id) == (SubmissionState.RECEIVED, None)
    deliver()
    with as_tenant(app, world.a.id):
        stored = submission(sid)
        assert stored.state == SubmissionState.PROCESSED, stored.error
        assert stored.answers == ANSWERS, "processing never rewrites what was sent"
        [contact] = contacts()
        assert (contact.first_name, contact.email) == ("Ada", "ada@example.com")


def test_the_same_rendered_form_sent_twice_is_one_submission(app, world, deliver):
    with as_tenant(app, world.a.id):
        form_id = make_form("Kickoff").id
        other_form_id = make_form("Other").id
    with as_tenant(app, world.a.id):
        form = db.session.get(Form, form_id)
        first, created = receive_submission(form, ANSWERS, idempotency_key="same")
        again, created_again = receive_submission(form, {"first_name": "Changed"}, idempotency_key="same")
        assert (created, created_again) == (True, False)
        assert again.id == first.id and again.answers == ANSWERS
        elsewhere, created_elsewhere = receive_submission(db.session.get(Form, other_form_id), ANSWERS,
                                                          idempotency_key="same")
        assert created_elsewhere and elsewhere.id != first.id
    assert pending_count() == 2
    deliver()
    with as_tenant(app, world.a.id):
        assert db.session.scalar(sa.select(sa.func.count(FormSubmission.id))) == 2
        [contact] = contacts()
        assert len(timeline(contact, "form_submission")) == 2


def test_the_receipts_insert_is_compiled_once(app, world):
    """SQLAlchemy caches the compiled INSERT … ON CONFLICT of a submission: two submissions'
    statements share one cache key (its dialect INSERT alone would compile every time)."""
    from forms.submissions import _insert_ignoring_repeats

    with as_tenant(app, world.a.id):
        first, second = (_insert_ignoring_repeats({"form_id": n, "idempotency_key": f"k{n}", "answers": {"n": n}})
                         ._generate_cache_key() for n in (1, 2))
    assert first is not None and first == second


def test_a_submission_needs_its_key(app, world):
    with as_tenant(app, world.a.id):
        form = make_form("Kickoff")
        with pytest.raises(ServiceError) as refused:
            receive_submission(form, ANSWERS, idempotency_key="")
        assert refused.value.field == "idempotency_key"


# --- two at the same moment ----------------------------------------------------------------------

@contextmanager
def _meeting_at(app, statement_start: str, parties: int = 2, wait: float = 3.0):
    """Threads that run through here stop just before their first statement starting with
    `statement_start` until all `parties` are there (or `wait` seconds pass: on SQLite the
    second one is still queued behind the first's write lock, which is the point)."""
    barrier = threading.Barrier(parties, timeout=wait)
    local = threading.local()

    def before(conn, cursor, statement, parameters, context, executemany):
        if getattr(local, "racing", False) and statement.lstrip().startswith(statement_start):
            local.racing = False
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield local
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def _together(local, *calls):
    errors, results = [], []

    def run(call):
        local.racing = True
        try:
            results.append(call())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_the_same_page_sent_twice_at_once_is_one_submission(app, world):
    with as_tenant(app, world.a.id):
        form_id = make_form("Kickoff").id

    def send():
        with app.app_context(), tenant_context(world.a.id):
            sub, created = receive_submission(db.session.get(Form, form_id), ANSWERS, idempotency_key="double")
            result = (sub.id, created)
        with app.app_context():
            db.session.remove()
        return result

    with _meeting_at(app, "INSERT INTO kickoff_form_submission") as local:
        results = _together(local, send, send)
    assert sorted(created for _, created in results) == [False, True]
    assert len({sid for sid, _ in results}) == 1
    with as_tenant(app, world.a.id):
        assert db.session.scalar(sa.select(sa.func.count(FormSubmission.id))) == 1
    assert pending_count() == 1


def _two_workers(app, world, answers, meet_at):
    with as_tenant(app, world.a.id):
        db.session.scalar(sa.select(CrmSettings)).default_region = "GB"
        form_id = make_form("Kickoff", tags=["kickoff"]).id
    ids = [submit(app, world.a.id, form_id, answers) for _ in range(2)]
    with _meeting_at(app, meet_at) as local:
        _together(local, *[lambda i=i: process_submission.call_local(i, tenant_id=world.a.id) for i in ids])
    return ids


def _one_contact_two_submissions(app, world, ids):
    with as_tenant(app, world.a.id):
        [contact] = contacts()
        assert [submission(i).contact_id for i in ids] == [contact.id] * 2
        assert sorted(submission(i).created_contact for i in ids) == [False, True]
        assert all(submission(i).state == SubmissionState.PROCESSED for i in ids)
        assert len(timeline(contact, "form_submission")) == 2
        assert len(timeline(contact, "tag_added")) == 1
        return contact.email, contact.phone


def test_same_new_email_twice_at_once_is_one_contact(app, world):
    # On PostgreSQL an advisory lock on (tenant, e-mail) makes the second worker wait for the
    # first, then find its contact; SQLite runs one writer at a time anyway.
    meet_at = "SELECT pg_advisory_xact_lock" if db_is_postgresql(app) else "INSERT INTO contact "
    ids = _two_workers(app, world, {"first_name": "Ada", "email": "ada@example.com"}, meet_at)
    assert _one_contact_two_submissions(app, world, ids) == ("ada@example.com", None)


def test_same_new_phone_twice_at_once_is_one_contact(app, world):
    # No index makes a phone unique: on PostgreSQL an advisory lock on (tenant, phone) makes
    # the second worker wait for the first; SQLite runs one writer at a time anyway.
    meet_at = "SELECT pg_advisory_xact_lock" if db_is_postgresql(app) else "INSERT INTO contact "
    ids = _two_workers(app, world, {"first_name": "Ada", "phone": "020 7946 0958"}, meet_at)
    assert _one_contact_two_submissions(app, world, ids) == (None, "+442079460958")


def db_is_postgresql(app) -> bool:
    with app.app_context():
        return db.engine.dialect.name == "postgresql"


def test_contacts_of_the_two_tenants_are_never_matched(app, world, deliver):
    with as_tenant(app, world.b.id):
        b_form = make_form("CANARY-B").id
    with as_tenant(app, world.a.id):
        a_form = make_form("Acme").id
    submit(app, world.b.id, b_form, {"first_name": "Bea", "email": "same@example.com"})
    submit(app, world.a.id, a_form, {"first_name": "Ann", "email": "same@example.com"})
    deliver()
    for tenant, name in ((world.a.id, "Ann"), (world.b.id, "Bea")):
        with as_tenant(app, tenant):
            assert [c.first_name for c in contacts()] == [name]
            assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 1


def test_a_known_person_twice_at_once_gets_one_owner_and_one_turn(app, world):
    # Both workers match the contact at the same moment; the contact's row lock makes the
    # second wait and then see the owner the first gave, so the round-robin advances once.
    from forms.models import OwnerMode
    from tests.factories import make_contact

    turns = [world.a.members["staff"].id, world.a.members["admin"].id]
    with as_tenant(app, world.a.id):
        contact_id = make_contact("Ada", "L", email="ada@example.com", owner_id=None).id
        form_id = make_form("Kickoff", owner_mode=OwnerMode.ROUND_ROBIN, round_robin_staff_ids=turns).id
    ids = [submit(app, world.a.id, form_id, {"email": "ada@example.com", "last_name": "Lovelace"})
           for _ in range(2)]
    with _meeting_at(app, "SELECT contact.") as local:
        _together(local, *[lambda i=i: process_submission.call_local(i, tenant_id=world.a.id) for i in ids])
    with as_tenant(app, world.a.id):
        [contact] = contacts()
        assert contact.id == contact_id and contact.owner_id == turns[0]
        assert db.session.get(Form, form_id).round_robin_next == 1
        assert [submission(i).state for i in ids] == [SubmissionState.PROCESSED] * 2
        assert len(timeline(contact, "owner_changed")) == 1


def test_the_sweeps_wait_stops_doubling_so_many_tries_cannot_break_it(app, world):
    """5 minutes * 2**99 overflows timedelta: the sweep would fail for every tenant each minute."""
    with as_tenant(app, world.a.id):
        form_id = make_form("Lost").id
    sid = submit(app, world.a.id, form_id, ANSWERS)
    with as_tenant(app, world.a.id):
        row = submission(sid)
        row.state, row.attempts = SubmissionState.RECEIVED, 100
    with app.app_context():
        longest = STALLED_AFTER * 2 ** MAX_BACKOFF_DOUBLINGS
        assert requeue_stalled(utcnow() + timedelta(hours=1)) == [], "still waiting its (long) turn"
        assert requeue_stalled(utcnow() + longest + timedelta(minutes=1)) == [sid]
        db.session.remove()
    with as_tenant(app, world.a.id):
        assert submission(sid).attempts == 101
