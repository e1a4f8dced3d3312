"""What a submission sets off besides the contact: the portal login, the e-mails (through the
real SMTP sink, surviving an outage), and the sweep and command that process again what a
dead worker or a failure left behind."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from freezegun import freeze_time

from core.db import db, utcnow
from core.identity import verify_password
from core.jobs import huey, pending_count, run_pending_jobs
from crm.models import Contact
from forms.models import FieldKind, FormSubmission, OwnerMode, PortalLogin, SubmissionState
from forms.submissions import requeue_stalled
from portal.accounts import account_for, approve, may_sign_in, sign_in_blockers
from portal.models import Approval
from tests.factories import assign_to_circle, make_circle, make_contact, restrict_staff_visibility
from tests.forms.factories import STANDARD_FIELDS, make_form
from tests.forms.submitting import as_tenant, contacts, staff, submission, submit, timeline

STRONG = "Quiet-harbour-lantern-1987"
ADA = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}


def _links(mailbox, message, path: str) -> list[str]:
    return [link for link in mailbox.links(message) if path in link]


# --- portal logins -----------------------------------------------------------------------------------

def test_password_chosen_on_the_form_becomes_the_login_after_email_verification(app, world, deliver, client_for):
    with as_tenant(app, world.a.id):
        form_id = make_form("Client sign-up", role="prospect", portal_login=PortalLogin.PASSWORD).id
    sid = submit(app, world.a.id, form_id, ADA, password=STRONG)
    with as_tenant(app, world.a.id):
        stored = submission(sid)
        assert STRONG not in str(stored.answers) and stored.portal_password_hash.startswith("$argon2id$")
    box = deliver()
    with as_tenant(app, world.a.id):
        [contact] = contacts()
        account = account_for(contact)
        assert verify_password(account, STRONG)
        assert account.approval == Approval.APPROVED and account.source == "Client sign-up"
        assert account.form_id == form_id, "the form it registered through is kept: its payment rule is theirs"
        assert [b for b, _ in sign_in_blockers(account)] == ["unverified"]
        assert submission(sid).portal_password_hash is None, "the hash is cleared once the login has it"
    [message] = box.to("ada@example.com")
    assert message["Subject"] == "Confirm your e-mail address for Acme Corp"
    [link] = _links(box, message, "/portal/verify/")
    client = client_for("acme")
    path = link.replace("http://acme.localhost", "")
    client.post(path, data={"csrf_token": _csrf(client, path)})
    with as_tenant(app, world.a.id):
        assert may_sign_in(account_for(contacts()[0]))


def _csrf(client, path):
    from tests.support import csrf_token

    return csrf_token(client, path)


def test_set_password_email_when_the_form_says_so(app, world, deliver):
    with as_tenant(app, world.a.id):
        form_id = make_form("Portal invite", role="client", portal_login=PortalLogin.EMAIL_LINK).id
    submit(app, world.a.id, form_id, ADA)
    box = deliver()
    [message] = box.to("ada@example.com")
    assert message["Subject"] == "Choose your password for Acme Corp"
    assert _links(box, message, "/portal/set-password/")


def test_approval_first_then_the_set_password_email(app, world, deliver):
    with as_tenant(app, world.a.id):
        form_id = make_form("Members", role="prospect", portal_login=PortalLogin.EMAIL_LINK,
                            portal_requires_approval=True).id
    submit(app, world.a.id, form_id, ADA)
    box = deliver()
    assert box.to("ada@example.com") == [], "nobody who may be turned down is asked for a password"
    with as_tenant(app, world.a.id):
        account = account_for(contacts()[0])
        assert account.approval == Approval.PENDING
        approve(account, staff(world, "admin"))
    box = deliver()
    [message] = box.to("ada@example.com")
    assert message["Subject"] == "You're approved for Acme Corp"
    assert _links(box, message, "/portal/set-password/")


def test_no_portal_login_unless_the_form_asks(app, world, deliver):
    with as_tenant(app, world.a.id):
        form_id = make_form("Newsletter").id
    sid = submit(app, world.a.id, form_id, ADA, password=STRONG)
    deliver()
    with as_tenant(app, world.a.id):
        assert account_for(contacts()[0]) is None
        assert submission(sid).portal_password_hash is None


def test_a_returning_person_keeps_the_login_they_have(app, world, deliver):
    with as_tenant(app, world.a.id):
        form_id = make_form("Sign-up", role="prospect", portal_login=PortalLogin.PASSWORD).id
    submit(app, world.a.id, form_id, ADA, password=STRONG)
    submit(app, world.a.id, form_id, ADA, password="Another-long-passphrase-42")
    deliver()
    with as_tenant(app, world.a.id):
        [contact] = contacts()
        account = account_for(contact)
        assert verify_password(account, STRONG) and not verify_password(account, "Another-long-passphrase-42")
        assert db.session.scalar(sa.select(sa.func.count(FormSubmission.id)).where(
            FormSubmission.portal_password_hash.is_not(None))) == 0


# --- e-mails -----------------------------------------------------------------------------------------

def _notifying_form(world, **attrs):
    fields = [*STANDARD_FIELDS,
              dict(key="topics", kind=FieldKind.MULTI_CHOICE, label="Topics", choices=["Pricing", "Demo"]),
              dict(key="utm_source", kind=FieldKind.HIDDEN, label="Campaign", url_parameter="utm_source")]
    return make_form("Spring kickoff", fields=fields,
                     notify_staff_ids=[world.a.members["staff"].id, world.a.members["admin"].id],
                     send_confirmation=True, confirmation_subject="Thanks for joining us",
                     confirmation_body="We will call you within two working days.", **attrs)


def test_staff_are_notified_and_the_registrant_gets_a_confirmation(app, world, deliver):
    with as_tenant(app, world.a.id):
        staff(world, "admin").active = False  # left the team: not notified
        form_id = _notifying_form(world).id
    submit(app, world.a.id, form_id, {**ADA, "email": "Ada@Example.com", "topics": ["Pricing", "Demo"],
                                      "utm_source": "newsletter"}, source_url="https://acme.example/spring")
    box = deliver()
    with as_tenant(app, world.a.id):
        contact_id = contacts()[0].id
    assert sorted(m["To"] for m in box.messages) == ["ada@example.com", "sam@acme.example"]

    [note] = box.to("sam@acme.example")
    assert note["Subject"] == "New submission of Spring kickoff: Ada Lovelace"
    body = box.body(note)
    for line in ("Ada Lovelace <ada@example.com> sent the form “Spring kickoff” and is new to Acme Corp.",
                 "First name: Ada", "E-mail: Ada@Example.com", "Topics: Pricing, Demo", "Campaign: newsletter",
                 "Sent from: https://acme.example/spring",
                 f"http://acme.localhost/staff/contacts/{contact_id}"):
        assert line in body, (line, body)

    [confirmation] = box.to("ada@example.com")
    assert confirmation["Subject"] == "Thanks for joining us"
    body = box.body(confirmation)
    for line in ("Hello Ada,", "We will call you within two working days.", "Topics: Pricing, Demo", "Acme Corp"):
        assert line in body, (line, body)
    assert "newsletter" not in body, "hidden fields are the tenant's, not the registrant's"
    assert "CANARY-B" not in body


def test_only_the_chosen_staff_who_may_see_the_contact_are_notified(app, world, deliver):
    """Staff restricted to their own contacts and their circles' hear of a submission only when
    it lands on one of those: the note names the contact and carries the answers."""
    with as_tenant(app, world.a.id):
        restrict_staff_visibility()
        circle = make_circle("Spring leads")
        assign_to_circle(circle, world.a.members["staff"].id)
        notify = [world.a.members["staff"].id, world.a.members["admin"].id]
        nobodys = make_form("Spring kickoff", notify_staff_ids=notify).id
        in_sams_circle = make_form("Spring kickoff", notify_staff_ids=notify, circle_ids=[circle.id]).id
        owned_by_sam = make_form("Spring kickoff", notify_staff_ids=notify, owner_mode=OwnerMode.FIXED,
                                 owner_id=world.a.members["staff"].id).id

    submit(app, world.a.id, nobodys, ADA)
    box = deliver()
    assert [m["To"] for m in box.messages] == ["adam@acme.example"], "Sam may not see Ada: no note for Sam"
    box.messages.clear()

    submit(app, world.a.id, in_sams_circle, {**ADA, "email": "bea@example.com", "first_name": "Bea"})
    submit(app, world.a.id, owned_by_sam, {**ADA, "email": "cy@example.com", "first_name": "Cy"})
    box = deliver()
    assert sorted((m["To"], m["Subject"].rsplit(": ", 1)[1]) for m in box.messages) == [
        ("adam@acme.example", "Bea Lovelace"), ("adam@acme.example", "Cy Lovelace"),
        ("sam@acme.example", "Bea Lovelace"), ("sam@acme.example", "Cy Lovelace")]
    box.messages.clear()

    with as_tenant(app, world.a.id):
        restrict_staff_visibility(False)
    submit(app, world.a.id, nobodys, {**ADA, "email": "di@example.com", "first_name": "Di"})
    assert sorted(m["To"] for m in deliver().messages) == ["adam@acme.example", "sam@acme.example"]


def test_no_confirmation_unless_asked_and_none_without_an_address(app, world, deliver):
    with as_tenant(app, world.a.id):
        quiet = make_form("Quiet").id
        phone_only = make_form("Call me", send_confirmation=True).id
    submit(app, world.a.id, quiet, ADA)
    submit(app, world.a.id, phone_only, {"first_name": "Bob", "phone": "+1 415 555 0199"})
    assert deliver().messages == []


def test_an_smtp_outage_loses_no_email(app, world, deliver, mailbox):
    with as_tenant(app, world.a.id):
        form_id = _notifying_form(world).id
    real_port = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = 1  # nothing listens there: the SMTP server is down
    try:
        sid = submit(app, world.a.id, form_id, ADA)
        with app.app_context():
            run_pending_jobs()
        assert mailbox.messages == []
        with as_tenant(app, world.a.id):
            assert submission(sid).state == SubmissionState.PROCESSED, "the outage does not hold up the contact"
        assert huey.scheduled_count() == 3, "every e-mail waits to be tried again"
    finally:
        app.config["MAIL_PORT"] = real_port
    later = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=31)
    with app.app_context():
        assert run_pending_jobs(now=later) == 3
    assert sorted(m["To"] for m in mailbox.messages) == ["ada@example.com", "adam@acme.example",
                                                          "sam@acme.example"]


# --- the sweep and the command -----------------------------------------------------------------------

def test_the_sweep_queues_again_what_a_dead_worker_left(app, world, deliver):
    with as_tenant(app, world.a.id):
        form_id = make_form("Lost").id
    sid = submit(app, world.a.id, form_id, ADA)
    huey.flush()  # the worker took the job and died with it
    with app.app_context():
        assert requeue_stalled() == [], "a fresh submission is not stalled"
        in_six_minutes = utcnow() + timedelta(minutes=6)
        assert requeue_stalled(in_six_minutes) == [sid]
        assert requeue_stalled(in_six_minutes + timedelta(minutes=1)) == [], "each try waits longer"
        db.session.remove()
    deliver()
    with as_tenant(app, world.a.id):
        assert submission(sid).state == SubmissionState.PROCESSED
        assert submission(sid).attempts == 2
        assert [c.email for c in contacts()] == ["ada@example.com"]
    with app.app_context():
        assert requeue_stalled(utcnow() + timedelta(hours=1)) == [], "processed submissions are left alone"


def test_the_sweep_runs_every_minute_on_the_worker(app):
    from forms.submissions import requeue_stalled_submissions

    [task] = [t for t in huey._registry.periodic_tasks if t.name == requeue_stalled_submissions.name]
    assert task.validate_datetime(datetime(2026, 3, 1, 9, 31)), "due every minute"


def test_reprocess_command(app, world, deliver):
    with as_tenant(app, world.a.id):
        form_id = make_form("Retry").id
    failed = submit(app, world.a.id, form_id, {"company": "No one"})
    deliver()
    waiting = submit(app, world.a.id, form_id, ADA)
    huey.flush()
    with as_tenant(app, world.b.id):
        other_form = make_form("CANARY-B").id
    other = submit(app, world.b.id, other_form, ADA)
    huey.flush()
    runner = app.test_cli_runner()

    result = runner.invoke(args=["forms", "reprocess", "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Queued 1 waiting submission of acme for the worker."
    assert pending_count() == 1
    deliver()
    with as_tenant(app, world.a.id):
        assert submission(waiting).state == SubmissionState.PROCESSED
        assert submission(failed).state == SubmissionState.FAILED
        # The failed one had nothing to make a contact from; staff fix its answers by hand.
        submission(failed).answers = {"first_name": "Nobody", "email": "nobody@example.com"}

    result = runner.invoke(args=["forms", "reprocess", "--tenant", "acme", "--failed", "--inline"])
    assert result.exit_code == 0, result.output
    assert "Processed: 1" in result.output and "Failed: 0" in result.output
    with as_tenant(app, world.a.id):
        assert submission(failed).state == SubmissionState.PROCESSED
        assert sorted(c.email for c in contacts()) == ["ada@example.com", "nobody@example.com"]
    with as_tenant(app, world.b.id):
        assert submission(other).state == SubmissionState.RECEIVED, "another tenant's are not touched"

    result = runner.invoke(args=["forms", "reprocess", "--tenant", "acme"])
    assert result.output.strip() == "No waiting submissions in acme."
    result = runner.invoke(args=["forms", "reprocess", "--tenant", "nope"])
    assert result.exit_code != 0 and "No tenant 'nope'" in result.output


def test_timeline_entry_shows_when_it_was_submitted(app, world, deliver):
    with as_tenant(app, world.a.id):
        make_contact("Ada", "L", email="ada@example.com")
        form_id = make_form("Later").id
    with freeze_time("2026-03-01 09:30:00"):
        sid = submit(app, world.a.id, form_id, ADA)
    deliver()
    with as_tenant(app, world.a.id):
        [entry] = timeline(contacts()[0], "form_submission")
        assert entry.occurred_at == submission(sid).submitted_at
        assert entry.occurred_at.isoformat().startswith("2026-03-01T09:30")


def test_a_phone_number_does_not_hand_a_contact_to_whoever_types_it(app, world, deliver):
    """A contact known only by phone: a stranger who types that number and their own address
    neither gets the address onto the contact nor a portal login for it, nor learns its name."""
    from tests.factories import make_contact

    with as_tenant(app, world.a.id):
        vera = make_contact("Vera", "Victim", email=None, phone="+14155550142", role="client")
        form_id = make_form("Client sign-up", role="prospect", portal_login=PortalLogin.PASSWORD,
                            send_confirmation=True).id
        vera_id = vera.id
    submit(app, world.a.id, form_id, {"first_name": "Mallory", "email": "mallory@evil.example",
                                      "phone": "+1 415 555 0142"}, password=STRONG)
    box = deliver()
    with as_tenant(app, world.a.id):
        vera = db.session.get(Contact, vera_id)
        assert vera.email is None and account_for(vera) is None
    [confirmation] = box.to("mallory@evil.example")
    body = confirmation.get_content()
    assert "Vera" not in body and "Hello Mallory," in body


def test_a_password_typed_for_an_existing_contact_is_not_used(app, world, deliver):
    """Someone registering with a known person's address cannot choose that person's password:
    the login is made without it, and the set-password link goes to the person's address."""
    from tests.factories import make_contact

    with as_tenant(app, world.a.id):
        make_contact("Ada", "Lovelace", email="ada@example.com", role="client")
        form_id = make_form("Client sign-up", role="prospect", portal_login=PortalLogin.PASSWORD).id
    sid = submit(app, world.a.id, form_id, ADA, password=STRONG)
    box = deliver()
    with as_tenant(app, world.a.id):
        ada = db.session.scalars(sa.select(Contact).where(Contact.email == "ada@example.com")).one()
        account = account_for(ada)
        assert account is not None and not account.has_password
        assert submission(sid).portal_password_hash is None
        assert "password typed on the form was not used" in submission(sid).error
    [message] = box.to("ada@example.com")
    assert _links(box, message, "/portal/set-password/") or _links(box, message, "/portal/verify/")
