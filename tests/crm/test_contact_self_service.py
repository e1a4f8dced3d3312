"""What a contact does for themselves on the portal, and what staff see of it: answering an
event's invitation (going / not going), ticking off a task staff shared with them, changing
their own details and the custom fields marked "editable by the contact". The services and
the staff pages here; the portal's own pages are in tests/portal/test_home.py."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db, utcnow
from core.errors import ServiceError
from crm import custom_fields
from crm.activities import (NotAllowed, answer_invitation, complete_task, create_task, reopen_task,
                            shared_tasks_of, update_task, upcoming_invitations_of)
from crm.contacts import update_own_details
from crm.models import Contact, ContactAddress, CustomField, EventAttendee, Task, TimelineEntry
from portal.models import PortalAccount
from tests.factories import (add_attendee, make_contact, make_custom_field, make_event, make_portal_account,
                             make_task)
from tests.support import in_tenant, post_form, staff_member, tenant_session

UTC = timezone.utc
LATER = datetime(2031, 5, 4, 18, 0, tzinfo=UTC)


def _people(app, world, **contact_fields):
    """A contact with an approved portal login, and a second contact with one too."""
    def build():
        jane = make_contact("Jane", "Doe", owner_id=world.a.members["owner"].id, role="client",
                            phone="+14155550123", **contact_fields)
        joe = make_contact("Joe", "Other", role="client")
        return (jane.id, make_portal_account(jane, approval="approved").id,
                joe.id, make_portal_account(joe, approval="approved").id)
    return in_tenant(app, world.a, build)


def _account(account_id: int) -> PortalAccount:
    return db.session.get(PortalAccount, account_id)


def _entries(contact_id: int, kind: str) -> list[TimelineEntry]:
    return list(db.session.scalars(sa.select(TimelineEntry).where(TimelineEntry.contact_id == contact_id,
                                                                  TimelineEntry.kind == kind)
                                   .order_by(TimelineEntry.id)))


# --- events: the attendee's own answer ------------------------------------------------------------

def test_an_attendee_answers_going_and_staff_see_the_answer_on_the_event(world, app, staff_client):
    jane_id, jane_login, _, _ = _people(app, world)
    with tenant_session(app, world.a):
        event = make_event("Spring open day", starts_at=LATER)
        attendee = add_attendee(event, db.session.get(Contact, jane_id))
        event_id = event.id
        answer_invitation(attendee, "going", _account(jane_login))
    with tenant_session(app, world.a):
        row = db.session.scalar(sa.select(EventAttendee).where(EventAttendee.event_id == event_id))
        assert (row.rsvp, row.status) == ("going", "accepted") and row.rsvp_at is not None
        entry, = _entries(jane_id, "event_rsvp")
        assert entry.summary.startswith("Going: Spring open day")
        assert (entry.actor_type, entry.actor_portal_account_id, entry.actor_id) == ("portal", jane_login, None)
    page = staff_client("admin").get(f"/staff/events/{event_id}").get_data(as_text=True)
    assert "Their answer" in page
    assert "<strong>Going</strong>" in page and "on the portal" in page
    contact_page = staff_client("owner").get(f"/staff/contacts/{jane_id}").get_data(as_text=True)
    assert "Going: Spring open day" in contact_page and "on the portal" in contact_page


def test_not_going_declines_and_an_unanswered_attendee_says_so_to_staff(world, app, staff_client):
    jane_id, jane_login, joe_id, _ = _people(app, world)
    with tenant_session(app, world.a):
        event = make_event("Board dinner", starts_at=LATER)
        attendee = add_attendee(event, db.session.get(Contact, jane_id))
        add_attendee(event, db.session.get(Contact, joe_id))
        event_id = event.id
        answer_invitation(attendee, "not_going", _account(jane_login))
        assert attendee.status == "declined"
    page = staff_client("admin").get(f"/staff/events/{event_id}").get_data(as_text=True)
    assert "<strong>Not going</strong>" in page
    assert "No answer yet" in page  # Joe


def test_only_the_invited_contact_may_answer(world, app):
    jane_id, _, _, joe_login = _people(app, world)
    with tenant_session(app, world.a):
        event = make_event("Board dinner", starts_at=LATER)
        attendee = add_attendee(event, db.session.get(Contact, jane_id))
        for someone in (_account(joe_login), staff_member(world.a, "owner"), None):
            with pytest.raises(NotAllowed):
                answer_invitation(attendee, "going", someone)
        assert attendee.rsvp is None and attendee.status == "invited"


def test_a_full_event_or_one_that_is_over_refuses_the_answer_in_plain_words(world, app):
    jane_id, jane_login, joe_id, _ = _people(app, world)
    with tenant_session(app, world.a):
        jane = db.session.get(Contact, jane_id)
        full = make_event("Small dinner", starts_at=LATER, capacity=1)
        add_attendee(full, db.session.get(Contact, joe_id), status="accepted")
        mine = add_attendee(full, jane, status="declined")
        with pytest.raises(ServiceError, match="is full: all 1 places are taken"):
            answer_invitation(mine, "going", _account(jane_login))
        answer_invitation(mine, "not_going", _account(jane_login))  # saying no is always possible
        past = make_event("Last year's party", starts_at=utcnow() - timedelta(days=2))
        old = add_attendee(past, jane)
        with pytest.raises(ServiceError, match="is over"):
            answer_invitation(old, "going", _account(jane_login))
        with pytest.raises(ServiceError, match="Choose going or not going"):
            answer_invitation(mine, "maybe", _account(jane_login))


def test_upcoming_invitations_are_the_contacts_own_and_not_over(world, app):
    jane_id, _, joe_id, _ = _people(app, world)
    with tenant_session(app, world.a):
        jane, joe = db.session.get(Contact, jane_id), db.session.get(Contact, joe_id)
        soon = make_event("Soon", starts_at=utcnow() + timedelta(days=1))
        later = make_event("Later", starts_at=LATER)
        past = make_event("Past", starts_at=utcnow() - timedelta(days=1))
        for event in (later, soon, past):
            add_attendee(event, jane)
        add_attendee(make_event("Joe's", starts_at=LATER), joe)
        assert [e.title for e, _ in upcoming_invitations_of(jane)] == ["Soon", "Later"]


# --- tasks shared with the contact ------------------------------------------------------------------

def test_a_shared_task_is_done_by_its_contact_and_staff_see_who(world, app, staff_client):
    jane_id, jane_login, _, _ = _people(app, world)
    with tenant_session(app, world.a):
        task = create_task("Send us your floor plan", contact=db.session.get(Contact, jane_id),
                           shared_with_contact=True, actor=staff_member(world.a, "owner"))
        task_id = task.id
    with tenant_session(app, world.a):
        task = db.session.get(Task, task_id)
        assert [t.id for t in shared_tasks_of(db.session.get(Contact, jane_id))] == [task_id]
        complete_task(task, _account(jane_login))
        assert (task.done_by_portal_account_id, task.done_by_id) == (jane_login, None)
        entry, = _entries(jane_id, "task_done")
        assert (entry.actor_type, entry.actor_portal_account_id) == ("portal", jane_login)
    client = staff_client("owner")
    page = client.get(f"/staff/tasks/{task_id}").get_data(as_text=True)
    assert "Shared with the contact" in page and "by Jane Doe on the portal" in page
    listing = client.get("/staff/tasks?who=all&status=done").get_data(as_text=True)
    assert "by Jane Doe on the portal" in listing
    with tenant_session(app, world.a):
        reopen_task(db.session.get(Task, task_id), _account(jane_login))
        complete_task(db.session.get(Task, task_id), staff_member(world.a, "admin"))
    assert "by Adam Admin" in client.get(f"/staff/tasks/{task_id}").get_data(as_text=True)


def test_a_task_not_shared_or_of_another_contact_is_not_the_contacts_to_tick_off(world, app):
    jane_id, jane_login, joe_id, _ = _people(app, world)
    with tenant_session(app, world.a):
        private = make_task("Internal: check credit", contact_id=jane_id)
        joes = make_task("Joe's paperwork", contact_id=joe_id, shared_with_contact=True)
        for task in (private, joes):
            with pytest.raises(NotAllowed):
                complete_task(task, _account(jane_login))
            assert task.done_at is None
        assert shared_tasks_of(db.session.get(Contact, jane_id)) == []


def test_staff_share_a_task_from_its_page_and_from_the_contact_page(world, app, staff_client):
    jane_id, _, _, _ = _people(app, world)
    client = staff_client("owner")
    response = post_form(client, f"/staff/contacts/{jane_id}/tasks",
                         {"title": "Sign the lease", "kind": "task", "shared_with_contact": "y"})
    assert response.status_code == 302
    page = client.get(f"/staff/contacts/{jane_id}").get_data(as_text=True)
    assert "Sign the lease" in page and "Shared with them" in page
    with tenant_session(app, world.a):
        task_id = db.session.scalar(sa.select(Task.id).where(Task.title == "Sign the lease"))
        assert db.session.get(Task, task_id).shared_with_contact
    form = client.get(f"/staff/tasks/{task_id}").get_data(as_text=True)
    box, = re.findall(r'<input[^>]*name="shared_with_contact"[^>]*>', form)
    assert "checked" in box
    response = post_form(client, f"/staff/tasks/{task_id}", {"title": "Sign the lease", "kind": "task"})
    assert response.status_code == 302
    with tenant_session(app, world.a):
        assert not db.session.get(Task, task_id).shared_with_contact
        assert [e.summary for e in _entries(jane_id, "task_unshared")] == [
            "Task no longer shared with the contact: Sign the lease"]


def test_a_task_about_nobody_cannot_be_shared(world, app, staff_client):
    client = staff_client("owner")
    response = post_form(client, "/staff/tasks/new", {"title": "Order paper", "kind": "task",
                                                      "shared_with_contact": "y"})
    assert response.status_code == 200
    assert "Only a task about a contact can be shared with them." in response.get_data(as_text=True)
    with tenant_session(app, world.a):
        assert db.session.scalar(sa.select(sa.func.count(Task.id))) == 0
        task_id = make_task("Order toner").id
    page = client.get(f"/staff/tasks/{task_id}").get_data(as_text=True)
    assert 'name="shared_with_contact"' not in page
    with tenant_session(app, world.a):
        with pytest.raises(ServiceError):
            update_task(db.session.get(Task, task_id), shared_with_contact=True, actor=staff_member(world.a, "owner"))


# --- custom fields editable by the contact ------------------------------------------------------------

def test_staff_mark_a_contact_field_editable_by_the_contact(world, app, staff_client):
    client = staff_client("owner")
    response = post_form(client, "/staff/settings/crm/fields/new", {
        "entity": "contact", "label": "Dietary needs", "field_type": "text", "editable_by_contact": "y"})
    assert response.status_code == 302
    with tenant_session(app, world.a):
        field = db.session.scalar(sa.select(CustomField).where(CustomField.label == "Dietary needs"))
        assert field.editable_by_contact
        field_id = field.id
        assert [f.key for f in custom_fields.editable_by_contact()] == ["dietary_needs"]
        audit = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "custom_field.created"))
        assert audit.details["editable_by_contact"] is True
    listing = client.get("/staff/settings/crm").get_data(as_text=True)
    assert "Contact can edit" in listing and "Yes, on their portal profile" in listing
    response = post_form(client, f"/staff/settings/crm/fields/{field_id}", {"label": "Dietary needs"})
    assert response.status_code == 302
    with tenant_session(app, world.a):
        assert not db.session.get(CustomField, field_id).editable_by_contact


def test_a_company_field_cannot_be_editable_by_the_contact(world, app, staff_client):
    client = staff_client("owner")
    response = post_form(client, "/staff/settings/crm/fields/new", {
        "entity": "company", "label": "Fleet size", "field_type": "number", "editable_by_contact": "y"})
    assert response.status_code == 200
    assert "Only contact fields can be editable by the contact." in response.get_data(as_text=True)
    with tenant_session(app, world.a):
        assert db.session.scalar(sa.select(sa.func.count(CustomField.id))) == 0
        field_id = make_custom_field("Fleet size", "number", entity="company").id
    page = client.get(f"/staff/settings/crm/fields/{field_id}").get_data(as_text=True)
    assert "Editable by the contact" not in page


# --- the contact's own details ------------------------------------------------------------------------

def _fields(app, world):
    def build():
        size = make_custom_field("Shoe size", "number", editable_by_contact=True)
        score = make_custom_field("Credit score", "number")
        return size.key, score.key
    return in_tenant(app, world.a, build)


def test_a_contact_changes_their_details_and_the_timeline_names_them(world, app, staff_client):
    size, score = _fields(app, world)
    jane_id, jane_login, _, _ = _people(app, world, custom_fields={"credit_score": 700})
    with tenant_session(app, world.a):
        changed = update_own_details(db.session.get(Contact, jane_id), {
            "first_name": "Janet", "phone": "+44 20 7946 0958", "country": "gb", "city": "London",
            "custom_fields": {size: "38"}}, actor=_account(jane_login))
    assert set(changed) == {"first_name", "phone", "city", "country", "custom_fields"}
    with tenant_session(app, world.a):
        jane = db.session.get(Contact, jane_id)
        assert (jane.first_name, jane.city, jane.country) == ("Janet", "London", "GB")
        assert jane.phone == "+442079460958"
        assert jane.custom_fields == {"credit_score": 700, size: 38}
        addresses = set(db.session.scalars(sa.select(ContactAddress.address).where(ContactAddress.contact_id == jane_id)))
        assert jane.phone in addresses and "+14155550123" not in addresses
        entry, = _entries(jane_id, "updated")
        assert (entry.actor_type, entry.actor_portal_account_id, entry.actor_id) == ("portal", jane_login, None)
        audit = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "contact.updated"))
        assert (audit.actor_type, audit.actor_id) == ("portal", jane_login)
    page = staff_client("owner").get(f"/staff/contacts/{jane_id}").get_data(as_text=True)
    assert "Changed first name, phone, city, country, custom fields" in page
    assert "on the portal" in page


def test_fields_the_contact_may_not_change_stay_as_they_are_whatever_is_sent(world, app):
    size, score = _fields(app, world)
    jane_id, jane_login, _, _ = _people(app, world, custom_fields={score: 700})
    with tenant_session(app, world.a):
        jane = db.session.get(Contact, jane_id)
        before = (jane.email, jane.role, jane.owner_id, jane.notes)
        changed = update_own_details(jane, {
            "email": "forged@example.com", "role": "lead", "owner_id": None, "notes": "forged",
            "is_active": False, "custom_fields": {score: "850"}}, actor=_account(jane_login))
        assert changed == []
        assert (jane.email, jane.role, jane.owner_id, jane.notes) == before and jane.is_active
        assert jane.custom_fields == {score: 700}


def test_a_bad_phone_saves_nothing_and_says_why_beside_the_field(world, app):
    size, _ = _fields(app, world)
    jane_id, jane_login, _, _ = _people(app, world)
    with tenant_session(app, world.a):
        jane = db.session.get(Contact, jane_id)
        with pytest.raises(ServiceError) as refused:
            update_own_details(jane, {"first_name": "Janet", "phone": "12", "custom_fields": {size: "38"}},
                               actor=_account(jane_login))
        assert refused.value.field == "phone" and "not a valid phone number" in refused.value.message
        with pytest.raises(ServiceError) as refused:
            update_own_details(jane, {"first_name": "Janet", "custom_fields": {size: "big"}},
                               actor=_account(jane_login))
        assert refused.value.field == f"cf_{size}"
        db.session.rollback()
        jane = db.session.get(Contact, jane_id)
        assert (jane.first_name, jane.phone, jane.custom_fields) == ("Jane", "+14155550123", {})
        assert _entries(jane_id, "updated") == []


def test_only_the_contact_themselves_changes_their_details_here(world, app):
    jane_id, _, _, joe_login = _people(app, world)
    with tenant_session(app, world.a):
        jane = db.session.get(Contact, jane_id)
        for someone in (_account(joe_login), staff_member(world.a, "owner")):
            with pytest.raises(ServiceError, match="Only the contact"):
                update_own_details(jane, {"first_name": "Hacked"}, actor=someone)
        assert jane.first_name == "Jane"
