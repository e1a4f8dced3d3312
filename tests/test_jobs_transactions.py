"""Jobs queued with on_commit follow the outermost transaction, savepoints included: a
savepoint's release commits nothing, so its jobs wait for the outer commit; a savepoint's
rollback drops its own jobs only; an outer rollback drops all (SQLAlchemy 2.0 fires
after_commit / after_rollback for savepoints too)."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from core.db import db
from core.jobs import on_commit, pending_count
from core.mail import deliver_mail


def _mail(to: str) -> None:
    on_commit(deliver_mail, {"to": to, "subject": "Hi", "text": "Body", "html": None})


def _sent(deliver) -> list[str]:
    return sorted(m["To"] for m in deliver().messages)


def test_a_job_queued_in_a_released_savepoint_waits_for_the_outer_commit(app, deliver):
    with app.app_context():
        with db.session.begin_nested():
            _mail("inner@example.com")
        assert pending_count() == 0, "a released savepoint commits nothing"
        with db.session.begin_nested():
            with db.session.begin_nested():
                _mail("deeper@example.com")
        assert pending_count() == 0
        db.session.commit()
        assert pending_count() == 2
    assert _sent(deliver) == ["deeper@example.com", "inner@example.com"]


def test_a_rolled_back_savepoint_drops_only_its_own_jobs(app, deliver):
    with app.app_context():
        _mail("before@example.com")
        with pytest.raises(RuntimeError):
            with db.session.begin_nested():
                _mail("undone@example.com")
                with db.session.begin_nested():
                    _mail("undone-too@example.com")
                raise RuntimeError("the savepoint fails")
        savepoint = db.session.begin_nested()
        _mail("rolled-back@example.com")
        savepoint.rollback()
        _mail("after@example.com")
        assert pending_count() == 0
        db.session.commit()
        assert pending_count() == 2
    assert _sent(deliver) == ["after@example.com", "before@example.com"]


def test_an_outer_rollback_drops_every_job_of_the_transaction(app, deliver):
    with app.app_context():
        _mail("outer@example.com")
        with db.session.begin_nested():
            _mail("released@example.com")
        db.session.begin_nested()
        _mail("still-open@example.com")  # a savepoint left open when the whole rolls back
        db.session.rollback()
        assert pending_count() == 0
        db.session.commit()  # a later transaction does not pick them up
        assert pending_count() == 0
        _mail("no-transaction-yet@example.com")  # queued before anything began: one is begun
        db.session.rollback()
        db.session.commit()
        assert pending_count() == 0
    assert _sent(deliver) == []


def test_a_failed_outer_commit_enqueues_nothing_so_a_retry_sends_once(app, deliver):
    with app.app_context():
        session = db.session()

        def refuse(session):
            raise RuntimeError("the commit fails")

        with db.session.begin_nested():
            _mail("once@example.com")
        event.listen(session, "before_commit", refuse)
        try:
            with pytest.raises(RuntimeError):
                db.session.commit()
        finally:
            event.remove(session, "before_commit", refuse)
        db.session.rollback()
        assert pending_count() == 0
        # The retry does the work again and commits.
        with db.session.begin_nested():
            _mail("once@example.com")
        db.session.commit()
    assert _sent(deliver) == ["once@example.com"]


def test_a_job_ends_with_its_session_when_closed_uncommitted(app, deliver):
    with app.app_context():
        _mail("closed@example.com")
        db.session.close()
        db.session.commit()
        assert pending_count() == 0
    assert _sent(deliver) == []


def test_a_submissions_portal_login_mail_is_queued_only_once_its_processing_commits(app, world, deliver,
                                                                                   monkeypatch):
    """The portal login is made inside a savepoint; its e-mail's job must not reach the queue
    (where a worker could run it before the account exists, and find none) until the
    processing job's transaction commits."""
    from forms import processing
    from forms.models import PortalLogin
    from tests.forms.factories import make_form
    from tests.forms.submitting import as_tenant, submit

    with as_tenant(app, world.a.id):
        form_id = make_form("Portal", portal_login=PortalLogin.EMAIL_LINK, send_confirmation=False).id
    submit(app, world.a.id, form_id, {"first_name": "Ada", "email": "ada@example.com"})

    queued_before_commit = []
    process = processing.process

    def process_then_look(submission):
        process(submission)
        queued_before_commit.append(pending_count())

    monkeypatch.setattr(processing, "process", process_then_look)
    box = deliver()
    assert queued_before_commit == [0], "jobs were queued before the processing committed"
    [mail] = box.to("ada@example.com")
    assert any("/portal/" in link for link in box.links(mail))
