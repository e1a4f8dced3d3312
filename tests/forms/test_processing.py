"""What a processed submission does to the CRM, as staff see it: the contact's fields, role,
status, circles, tags, owner, company, custom fields, timeline, and the outcome on the
submission."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from core.jobs import huey
from crm import custom_fields
from crm.circles import circles_of_contact, create_circle
from crm.companies import primary_contact_of
from crm.merge import merge_contacts
from crm.models import Company, Contact, CrmSettings, PipelineStatus
from crm.tags import tags_of_contact
from forms import processing
from forms.models import FieldKind, Form, OwnerMode, SubmissionState
from tests.factories import make_company, make_contact
from tests.forms.factories import STANDARD_FIELDS, add_field, make_form
from tests.forms.submitting import as_tenant, contacts, staff, submission, submit, timeline

ADA = {"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Example.COM", "phone": "+44 20 7946 0958",
       "company": "Analytical Engines Ltd"}


def _status(name: str) -> int:
    return db.session.scalar(sa.select(PipelineStatus.id).where(PipelineStatus.name == name))


def test_a_new_person_becomes_a_contact_with_everything_the_form_gives(app, world, deliver, staff_client):
    with as_tenant(app, world.a.id):
        owner = staff(world)
        vip = create_circle("VIP", None, None, owner)
        news = create_circle("Newsletter", None, None, owner)
        form = make_form("Spring kickoff", role="prospect", status_id=_status("Contacted"),
                         circle_ids=[vip.id, news.id], tags=["spring 2026", "Web"],
                         owner_mode=OwnerMode.FIXED, owner_id=world.a.members["staff"].id)
        add_field(form, key="topic", kind=FieldKind.SINGLE_CHOICE, label="Topic", choices=["Sales", "Support"])
        form_id = form.id
    sid = submit(app, world.a.id, form_id, {**ADA, "topic": "Sales"}, source_url="https://acme.example/spring",
                 utm={"utm_source": "newsletter"})
    deliver()
    with as_tenant(app, world.a.id):
        [contact] = contacts()
        assert (contact.first_name, contact.last_name, contact.email, contact.phone) == (
            "Ada", "Lovelace", "ada@example.com", "+442079460958")
        assert contact.role == "prospect"
        assert contact.status.name == "Contacted"
        assert contact.owner_id == world.a.members["staff"].id
        assert sorted(c.name for c in circles_of_contact(contact)) == ["Newsletter", "VIP"]
        assert sorted(t.name for t in tags_of_contact(contact)) == ["Web", "spring 2026"]
        assert contact.company.name == "Analytical Engines Ltd"
        [entry] = timeline(contact, "form_submission")
        assert entry.summary == "Submitted Spring kickoff"
        assert (entry.subject_type, entry.subject_id) == ("formsubmission", sid)
        assert ["Topic", "Sales"] in entry.details["answers"]
        assert entry.actor_label == "Kickoff form “Spring kickoff”"
        sub = submission(sid)
        assert sub.state == SubmissionState.PROCESSED and sub.error == ""
        assert (sub.contact_id, sub.company_id, sub.created_contact) == (contact.id, contact.company_id, True)
        assert sub.processed_at is not None
        audit = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "form_submission.processed"))
        assert audit.target_id == sid and audit.details["created_contact"] is True
        contact_id = contact.id

    page = staff_client("owner").get(f"/staff/contacts/{contact_id}").get_data(as_text=True)
    for seen in ("Ada Lovelace", "ada@example.com", "Prospect", "Contacted", "VIP", "Newsletter", "spring 2026",
                 "Sam Staff", "Analytical Engines Ltd", "Submitted Spring kickoff"):
        assert seen in page, seen


def test_a_returning_person_fills_only_what_is_empty_and_is_never_demoted(app, world, deliver, staff_client):
    with as_tenant(app, world.a.id):
        existing = make_contact("Augusta", "King", email="ada@example.com", role="client", job_title=None,
                                phone="+442079460000", owner_id=world.a.members["admin"].id,
                                status_id=_status("Qualified"))
        form = make_form("Lead magnet", role="lead", status_id=_status("New"), owner_mode=OwnerMode.FIXED,
                         owner_id=world.a.members["staff"].id,
                         fields=[*STANDARD_FIELDS, dict(key="title", kind=FieldKind.SHORT_TEXT, label="Job title",
                                                        target="contact.job_title")])
        form_id, contact_id = form.id, existing.id
    first = submit(app, world.a.id, form_id, {**ADA, "title": "Countess"})
    second = submit(app, world.a.id, form_id, {"first_name": "A.", "email": "ADA@example.com"})
    deliver()
    with as_tenant(app, world.a.id):
        [contact] = contacts()
        assert contact.id == contact_id
        # Staff-entered data stays; what was empty is filled; a new phone joins the others.
        assert (contact.first_name, contact.last_name) == ("Augusta", "King")
        assert contact.job_title == "Countess"
        assert contact.phone == "+442079460000" and contact.extra_phones == ["+442079460958"]
        assert contact.role == "client", "a Lead form never demotes a Client"
        assert contact.status.name == "Qualified"
        assert contact.owner_id == world.a.members["admin"].id
        assert [e.summary for e in timeline(contact, "form_submission")] == ["Submitted Lead magnet"] * 2
        assert {submission(first).contact_id, submission(second).contact_id} == {contact_id}
        assert not submission(first).created_contact
        updated = timeline(contact, "updated")
        assert updated and "job title" in updated[0].summary

    page = staff_client("owner").get(f"/staff/contacts/{contact_id}").get_data(as_text=True)
    assert page.count("Submitted Lead magnet") == 2
    for seen in ("Augusta King", "Countess", "Client", "Qualified", "Adam Admin"):
        assert seen in page, seen


def test_a_form_moves_a_lead_forward(app, world, deliver):
    with as_tenant(app, world.a.id):
        make_contact("Ada", "L", email="ada@example.com", role="lead")
        form_id = make_form("Become a client", role="client").id
    submit(app, world.a.id, form_id, ADA)
    deliver()
    with as_tenant(app, world.a.id):
        [contact] = contacts()
        assert contact.role == "client"
        assert [e.summary for e in timeline(contact, "role_changed")] == ["Role changed from Lead to Client"]


def test_phone_matches_in_the_tenants_region_when_there_is_no_email(app, world, deliver):
    with as_tenant(app, world.a.id):
        db.session.scalar(sa.select(CrmSettings)).default_region = "GB"
        known = make_contact("Grace", "Hopper", email=None, phone="+442079460958")
        has_other_email = make_contact("Other", "Person", email="other@example.com", phone="+442079461111")
        form_id = make_form("Call me back").id
        ids = known.id, has_other_email.id
    submit(app, world.a.id, form_id, {"first_name": "Grace", "phone": "020 7946 0958", "email": "grace@example.com"})
    # The same phone but another e-mail than the contact holding it: a different person.
    submit(app, world.a.id, form_id, {"first_name": "Someone", "phone": "020 7946 1111", "email": "new@example.com"})
    deliver()
    with as_tenant(app, world.a.id):
        people = {c.id: c for c in contacts()}
        assert len(people) == 3
        # Matched by phone: the typed address is not given to the contact (anyone who knows the
        # number could claim it); staff see it on the submission and decide.
        assert people[ids[0]].email is None and people[ids[0]].first_name == "Grace"
        [grace_submission] = [s for s in db.session.scalars(sa.select(processing.FormSubmission))
                              if s.contact_id == ids[0]]
        assert "grace@example.com was not added to the contact" in grace_submission.error
        assert people[ids[1]].email == "other@example.com"
        new = next(c for c in people.values() if c.id not in ids)
        assert (new.first_name, new.email, new.phone) == ("Someone", "new@example.com", "+442079461111")


def test_custom_fields_are_checked_and_filled(app, world, deliver):
    with as_tenant(app, world.a.id):
        owner = staff(world)
        budget = custom_fields.create_field("contact", "Budget", "number", actor=owner)
        size = custom_fields.create_field("contact", "Team size", "choice", choices=["1-10", "11-50"], actor=owner)
        form = make_form("Quote")
        add_field(form, key="budget", kind=FieldKind.NUMBER, label="Budget", target=f"custom.{budget.id}")
        add_field(form, key="size", kind=FieldKind.SINGLE_CHOICE, label="Team size", target=f"custom.{size.id}")
        make_contact("Old", "Timer", email="old@example.com", custom_fields={"budget": 500, "team_size": None})
        form_id = form.id
    new = submit(app, world.a.id, form_id, {"first_name": "New", "email": "new@example.com", "budget": "1200,5",
                                            "size": "11-50"})
    bad = submit(app, world.a.id, form_id, {"first_name": "Bad", "email": "bad@example.com", "budget": "lots",
                                            "size": "1-10"})
    old = submit(app, world.a.id, form_id, {"email": "old@example.com", "budget": "9999", "size": "1-10"})
    deliver()
    with as_tenant(app, world.a.id):
        by_email = {c.email: c for c in contacts()}
        assert by_email["new@example.com"].custom_fields == {"budget": 1200.5, "team_size": "11-50"}
        # A value the field refuses stays on the submission only, and staff are told why.
        assert by_email["bad@example.com"].custom_fields == {"team_size": "1-10"}
        assert submission(bad).state == SubmissionState.PROCESSED
        assert "Budget: enter a number." in submission(bad).error
        # A returning contact's value is not overwritten; its empty one is filled.
        assert by_email["old@example.com"].custom_fields == {"budget": 500, "team_size": "1-10"}
        assert submission(new).error == "" and submission(old).error == ""


def test_company_is_matched_by_the_tenants_threshold_or_created(app, world, deliver):
    with as_tenant(app, world.a.id):
        db.session.scalar(sa.select(CrmSettings)).company_match_threshold = 85
        acme = make_company("Analytical Engines")
        form = make_form("Partners", make_primary_contact=True,
                         fields=[*STANDARD_FIELDS, dict(key="site", kind=FieldKind.SHORT_TEXT, label="Website",
                                                        target="company.domain")])
        form_id, acme_id = form.id, acme.id
    first = submit(app, world.a.id, form_id, {**ADA, "company": "analytical engines, ltd.", "site": "ae.example"})
    second = submit(app, world.a.id, form_id, {"first_name": "Charles", "email": "cb@example.com",
                                               "company": "Analytical Enignes"})  # a typo, close enough
    third = submit(app, world.a.id, form_id, {"first_name": "Mary", "email": "ms@example.com",
                                              "company": "Difference Works"})
    deliver()
    with as_tenant(app, world.a.id):
        acme = db.session.get(Company, acme_id)
        assert acme.domain == "ae.example", "an empty company field is filled"
        assert submission(first).company_id == acme_id and submission(second).company_id == acme_id
        by_email = {c.email: c for c in contacts()}
        assert primary_contact_of(acme).email == "ada@example.com", "the first registrant; the second is not"
        assert by_email["cb@example.com"].company_id == acme_id and not by_email["cb@example.com"].is_primary_contact
        created = db.session.get(Company, submission(third).company_id)
        assert created.name == "Difference Works" and primary_contact_of(created).email == "ms@example.com"
        assert db.session.scalar(sa.select(sa.func.count(Company.id))) == 2


def test_a_contact_at_another_company_stays_there(app, world, deliver):
    with as_tenant(app, world.a.id):
        elsewhere = make_company("Babbage & Sons")
        make_contact("Ada", "L", email="ada@example.com", company_id=elsewhere.id)
        form_id = make_form("Partners").id
        elsewhere_id = elsewhere.id
    sid = submit(app, world.a.id, form_id, ADA)
    deliver()
    with as_tenant(app, world.a.id):
        [contact] = contacts()
        assert contact.company_id == elsewhere_id
        assert "the contact stays at Babbage & Sons" in submission(sid).error


def test_round_robin_takes_turns_and_skips_who_left(app, world, deliver):
    ids = [world.a.members[r].id for r in ("owner", "admin", "staff")]
    with as_tenant(app, world.a.id):
        staff(world, "admin").active = False
        form = make_form("Demo request", owner_mode=OwnerMode.ROUND_ROBIN, round_robin_staff_ids=ids)
        form_id, edited_at = form.id, form.updated_at
    for n in range(4):
        submit(app, world.a.id, form_id, {"first_name": f"P{n}", "email": f"p{n}@example.com"})
        deliver()  # one at a time, so the order of the turns is the order of the submissions
    with as_tenant(app, world.a.id):
        owners = [c.owner_id for c in contacts()]
        assert owners == [ids[0], ids[2], ids[0], ids[2]]
        form = db.session.get(Form, form_id)
        assert form.round_robin_next == 0
        assert form.updated_at == edited_at, "handing out turns is not an edit of the form"


def test_nothing_to_make_a_contact_from_fails_without_retrying(app, world, deliver):
    with as_tenant(app, world.a.id):
        form_id = make_form("Feedback").id
    sid = submit(app, world.a.id, form_id, {"email": "not an address", "company": "Somewhere"})
    deliver()
    assert huey.scheduled_count() == 0
    with as_tenant(app, world.a.id):
        sub = submission(sid)
        assert sub.state == SubmissionState.FAILED
        assert sub.error == "The submission has no name, e-mail address or phone number to make a contact from."
        assert sub.answers == {"email": "not an address", "company": "Somewhere"}
        assert contacts() == []


def test_an_unexpected_error_is_recorded_and_retried(app, world, deliver, monkeypatch):
    with as_tenant(app, world.a.id):
        form_id = make_form("Retry me", owner_mode=OwnerMode.FIXED, owner_id=world.a.members["staff"].id).id
    real = processing.next_owner

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(processing, "next_owner", broken)
    sid = submit(app, world.a.id, form_id, ADA)
    deliver()
    with as_tenant(app, world.a.id):
        sub = submission(sid)
        assert (sub.state, sub.error) == (SubmissionState.FAILED, "RuntimeError: database went away")
        assert contacts() == [], "nothing of the failed run is kept"
    assert huey.scheduled_count() == 1
    monkeypatch.setattr(processing, "next_owner", real)
    later = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(minutes=1)
    with app.app_context():
        from core.jobs import run_pending_jobs

        run_pending_jobs(now=later)
    with as_tenant(app, world.a.id):
        sub = submission(sid)
        assert (sub.state, sub.error) == (SubmissionState.PROCESSED, "")
        [contact] = contacts()
        assert contact.owner_id == world.a.members["staff"].id


def test_processing_twice_changes_nothing(app, world, deliver):
    from forms.submissions import process_submission

    with as_tenant(app, world.a.id):
        form_id = make_form("Once", tags=["once"]).id
    sid = submit(app, world.a.id, form_id, ADA)
    deliver()
    process_submission.call_local(sid, tenant_id=world.a.id)
    with as_tenant(app, world.a.id):
        [contact] = contacts()
        assert len(timeline(contact, "form_submission")) == 1
        assert len(timeline(contact, "tag_added")) == 1


def test_merged_contacts_submissions_move_to_the_survivor(app, world, deliver):
    with as_tenant(app, world.a.id):
        form_id = make_form("Twice").id
    first = submit(app, world.a.id, form_id, {"first_name": "Ada", "email": "ada@example.com"})
    second = submit(app, world.a.id, form_id, {"first_name": "Ada", "email": "ada.l@example.com"})
    deliver()
    with as_tenant(app, world.a.id):
        survivor, other = (db.session.get(Contact, submission(i).contact_id) for i in (first, second))
        assert survivor.id != other.id
        merge_contacts(survivor, [other], actor=staff(world))
    with as_tenant(app, world.a.id):
        assert submission(second).contact_id == submission(first).contact_id
        [contact] = contacts()
        assert len(timeline(contact, "form_submission")) == 2


def test_another_tenants_submission_lands_in_that_tenant(app, world, deliver):
    with as_tenant(app, world.b.id):
        form_id = make_form("CANARY-B form").id
    submit(app, world.b.id, form_id, {"first_name": "Bea", "email": "ada@example.com"})
    with as_tenant(app, world.a.id):
        make_contact("Ada", "A", email="ada@example.com")
    deliver()
    with as_tenant(app, world.a.id):
        [contact] = contacts()
        assert contact.first_name == "Ada" and timeline(contact, "form_submission") == []
    with as_tenant(app, world.b.id):
        [contact] = contacts()
        assert contact.first_name == "Bea" and contact.tenant_id == world.b.id


@pytest.mark.parametrize("answers, expected", [
    ({"a": ["x", "y"]}, [("A", "x, y")]),
    ({"a": "on"}, [("A", "Yes")]),
    ({"a": True}, [("A", "Yes")]),  # the public form sends a consent box as a boolean
    ({"a": False}, [("A", "No")]),
])
def test_answer_rows_read_as_people_write(app, world, answers, expected):
    kind = FieldKind.MULTI_CHOICE if isinstance(answers["a"], list) else FieldKind.CONSENT
    with as_tenant(app, world.a.id):
        form = make_form("Rows", fields=[dict(key="a", kind=kind, label="A"),
                                         dict(key="s", kind=FieldKind.SECTION, label="About you")])
        assert processing.answer_rows(form, answers) == expected


def test_what_the_form_could_not_apply_is_said_on_the_submission(app, world, deliver):
    from forms.models import PortalLogin

    with as_tenant(app, world.a.id):
        owner = staff(world)
        gone = create_circle("Old list", None, None, owner)
        kept = create_circle("Current", None, None, owner)
        gone.archived_at = kept.created_at
        retired = db.session.get(PipelineStatus, _status("Unqualified"))
        retired.archived_at = kept.created_at
        staff(world, "staff").active = False
        form = make_form("Outdated", circle_ids=[gone.id, kept.id], status_id=retired.id, tags=["t" * 61, "fine"],
                         owner_mode=OwnerMode.FIXED, owner_id=world.a.members["staff"].id,
                         portal_login=PortalLogin.EMAIL_LINK,
                         fields=[*STANDARD_FIELDS, dict(key="domain", kind=FieldKind.SHORT_TEXT, label="Website",
                                                        target="company.domain")])
        form_id = form.id
    sid = submit(app, world.a.id, form_id, {"first_name": "Bob", "phone": "+1 415 555 0199",
                                            "domain": "bob.example"})
    deliver()
    with as_tenant(app, world.a.id):
        [contact] = contacts()
        assert [c.name for c in circles_of_contact(contact)] == ["Current"]
        assert [t.name for t in tags_of_contact(contact)] == ["fine"]
        assert contact.status.name == "New" and contact.owner_id is None and contact.company_id is None
        sub = submission(sid)
        assert sub.state == SubmissionState.PROCESSED
        assert sub.error.splitlines() == [
            "Status: the form's status was archived; the contact got the default status.",
            "Circles: one of the form's circles was archived or deleted; it was skipped.",
            f"Tag “{'t' * 61}”: A tag can be at most 60 characters. It was skipped.",
            "Company details without a company name are kept on the submission only.",
            "Owner: the form's owner is no longer on the team; no owner was set.",
            "Portal login: the contact has no e-mail address, so no login was made.",
        ]
        [entry] = timeline(contact, "form_submission")
        assert entry.details["problems"] == sub.error.splitlines()


def test_a_returning_person_is_found_by_their_other_email_or_phone(app, world, deliver):
    """A merge keeps the merged contact's address among the survivor's other e-mails, and a
    form adds a new number to the other phones: the person is still one contact."""
    with as_tenant(app, world.a.id):
        ada = make_contact("Ada", "Lovelace", email="ada@work.example", extra_emails=["ada@home.example"],
                           phone="+14155550100", extra_phones=["+14155550199"])
        form_id = make_form("Come back").id
        ada_id = ada.id
    submit(app, world.a.id, form_id, {"first_name": "Ada", "email": "Ada@Home.example"})
    submit(app, world.a.id, form_id, {"first_name": "Ada", "phone": "(415) 555-0199"})
    deliver()
    with as_tenant(app, world.a.id):
        assert [c.id for c in contacts()] == [ada_id]
        assert len(timeline(contacts()[0], processing.TIMELINE_KIND)) == 2
