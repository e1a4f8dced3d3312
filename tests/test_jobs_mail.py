"""Side effects run as jobs after commit, over real SMTP, and survive an outage."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.db import db
from core.jobs import huey, on_commit, pending_count, run_pending_jobs
from core.mail import deliver_mail, send_mail


def test_mail_waits_for_commit_and_is_dropped_on_rollback(app, mailbox):
    with app.test_request_context():
        send_mail("kept@example.com", "Kept", "staff_password_reset", user=_User(), tenant=_Tenant(),
                  link="http://x/", minutes=60)
        assert pending_count() == 0, "queued before the transaction committed"
        db.session.commit()
        assert pending_count() == 1
        send_mail("lost@example.com", "Lost", "staff_password_reset", user=_User(), tenant=_Tenant(),
                  link="http://x/", minutes=60)
        db.session.rollback()
        assert pending_count() == 1
        run_pending_jobs()
    assert [m["To"] for m in mailbox.messages] == ["kept@example.com"]
    assert "http://x/" in mailbox.body(mailbox.messages[0])


def test_smtp_outage_retries_later_and_loses_nothing(app, mailbox):
    with app.app_context():
        real_port = app.config["MAIL_PORT"]
        app.config["MAIL_PORT"] = 1  # nothing listens there: the SMTP server is "down"
        try:
            with app.test_request_context():
                on_commit(deliver_mail, {"to": "later@example.com", "subject": "Hi", "text": "Body", "html": None})
                db.session.commit()
            assert run_pending_jobs() == 1
            assert mailbox.messages == []
            assert huey.scheduled_count() == 1, "the failed delivery must be scheduled again"
        finally:
            app.config["MAIL_PORT"] = real_port
        # The retry is due 30 s later; run the schedule as of then.
        later = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=31)
        assert run_pending_jobs(now=later) == 1
    assert [m["To"] for m in mailbox.messages] == ["later@example.com"]
    assert mailbox.body(mailbox.messages[0]).strip() == "Body"


def _two_messages():
    for to in ("first@example.com", "second@example.com"):
        send_mail(to, "Both", "staff_password_reset", user=_User(), tenant=_Tenant(), link="http://x/", minutes=60)
    db.session.commit()


def test_the_messages_of_one_transaction_travel_as_one_job(app, mailbox):
    with app.test_request_context():
        _two_messages()
        assert pending_count() == 1
        assert run_pending_jobs() == 1
    assert sorted(m["To"] for m in mailbox.messages) == ["first@example.com", "second@example.com"]


def test_an_smtp_outage_queues_each_unsent_message_again_once(app, mailbox):
    with app.app_context():
        real_port = app.config["MAIL_PORT"]
        app.config["MAIL_PORT"] = 1  # the SMTP server is "down"
        try:
            with app.test_request_context():
                _two_messages()
            assert run_pending_jobs() == 1
            assert mailbox.messages == []
            assert huey.scheduled_count() == 2, "each unsent message is scheduled again on its own"
        finally:
            app.config["MAIL_PORT"] = real_port
        later = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=31)
        assert run_pending_jobs(now=later) == 2
    assert sorted(m["To"] for m in mailbox.messages) == ["first@example.com", "second@example.com"]


class _User:
    display_name = "Test User"
    email = "kept@example.com"


class _Tenant:
    brand_name = "Acme"
