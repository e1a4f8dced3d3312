"""A submission is stored as sent and committed first; then the job turns it into a contact."""
from __future__ import annotations

import sqlalchemy as sa

from core.db import db
from core.jobs import pending_count
from core.tenancy import tenant_context
from crm.models import Contact
from forms.models import FormSubmission, SubmissionState
from forms.submissions import receive_submission
from tests.forms.factories import make_form


def test_receive_stores_answers_as_sent_and_commits(app, world, deliver):
    with app.app_context(), tenant_context(world.a.id):
        form = make_form("Kickoff")
        db.session.commit()
        submission, created = receive_submission(
            form, {"first_name": " Ada ", "email": "ADA@Example.com", "topics": ["A", "B"]},
            idempotency_key="k1", source_url="https://acme.example/join", utm={"utm_source": "news"},
            ip_address="203.0.113.9", user_agent="UA")
        assert created
        assert pending_count() == 1
        db.session.rollback()  # nothing left to lose: it is committed
        stored = db.session.get(FormSubmission, submission.id)
        assert stored.answers == {"first_name": " Ada ", "email": "ADA@Example.com", "topics": ["A", "B"]}
        assert stored.state == SubmissionState.RECEIVED
    deliver()
    with app.app_context(), tenant_context(world.a.id):
        stored = db.session.get(FormSubmission, submission.id)
        assert stored.state == SubmissionState.PROCESSED, stored.error
        contact = db.session.get(Contact, stored.contact_id)
        assert (contact.first_name, contact.email) == ("Ada", "ada@example.com")
