"""Events: created by Owners/Admins with a title, start/end, a place or a link and a capacity;
contacts are invited one by one or a whole Circle at once, never beyond the capacity; each
attendee's status is tracked; hidden contacts never show."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from core.audit import AuditEvent
from core.db import db
from core.errors import ServiceError
from core.tenancy import tenant_context
from crm.activities import (CircleInvitation, NotAllowed, add_attendee, create_event, events_of, invite_circle,
                            remove_attendee, set_attendance, update_event)
from crm.models import Circle, CircleMember, Contact, Event, EventAttendee, TimelineEntry
from tests.factories import (add_attendee as add_attendee_row, add_to_circle, make_circle,
                             make_contact, make_event, restrict_staff_visibility)
from tests.support import post_form, staff_member, tenant_session
from tests.test_query_counts import counted_queries

UTC = timezone.utc
EVENT_FORM = {"title": "Spring open day", "starts_at": "2030-04-01T18:00", "ends_at": "2030-04-01T20:30",
              "location": "Main office, 2nd floor", "link": "https://meet.example/open-day", "capacity": "40",
              "description": "Drinks and demos.\nAgenda: https://acme.example/agenda"}






def _event_id(app, world, title="Board dinner", **fields) -> int:
    fields.setdefault("starts_at", datetime(2030, 6, 1, 19, 0, tzinfo=UTC))
    with tenant_session(app, world.a):
        return make_event(title, **fields).id


def _contact_id(app, world, first="Eve", last="Guest", owner="owner", **fields) -> int:
    with tenant_session(app, world.a):
        return make_contact(first, last, owner_id=world.a.members[owner].id, **fields).id


def _attendees(app, world, event_id) -> dict[int, str]:
    with tenant_session(app, world.a):
        return dict(db.session.execute(sa.select(EventAttendee.contact_id, EventAttendee.status)
                                       .where(EventAttendee.event_id == event_id)).tuples().all())


def _event(app, world, event_id) -> Event | None:
    with tenant_session(app, world.a):
        event = db.session.get(Event, event_id)
        if event is not None:
            db.session.expunge(event)
        return event


# --- creating and changing ------------------------------------------------------------------------

def test_admin_creates_an_event_and_lands_on_its_page(world, staff_client, app):
    client = staff_client("admin")
    response = post_form(client, "/staff/events/new", EVENT_FORM)
    assert response.status_code == 302
    event_id = int(urlsplit(response.headers["Location"]).path.rsplit("/", 1)[1])
    event = _event(app, world, event_id)
    assert event.starts_at == datetime(2030, 4, 1, 18, 0, tzinfo=UTC)
    assert event.ends_at == datetime(2030, 4, 1, 20, 30, tzinfo=UTC)
    assert (event.location, event.link, event.capacity) == ("Main office, 2nd floor", "https://meet.example/open-day", 40)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Event “Spring open day” created." in page
    assert "Mon 2030-04-01 18:00</time> – <time" in page and "20:30</time> UTC" in page
    assert "0 of 40 taken" in page and "40 left" in page
    assert '<a href="https://meet.example/open-day" rel="nofollow noopener">' in page
    assert 'Agenda: <a href="https://acme.example/agenda" rel="nofollow noopener">' in page
    assert "Nobody is invited yet." in page
    with tenant_session(app, world.a):
        assert db.session.scalar(sa.select(AuditEvent.target_label).where(AuditEvent.action == "event.created")) == \
            "Spring open day (2030-04-01 18:00 UTC)"


@pytest.mark.parametrize("changes, field, message", [
    ({"title": " "}, "title", "Enter a title."),
    ({"starts_at": ""}, "starts_at", "Enter when the event starts."),
    ({"starts_at": "tomorrow"}, "starts_at", "Enter a date and time, like 2025-03-14 09:30."),
    ({"ends_at": "2030-04-01T17:00"}, "ends_at", "The event must end after it starts."),
    ({"ends_at": "2030-04-01T18:00"}, "ends_at", "The event must end after it starts."),
    ({"link": "javascript:alert(1)"}, "link", "Enter a web address starting with https:// (or http://)."),
    ({"link": "meet.example/x"}, "link", "Enter a web address starting with https://"),
    ({"capacity": "0"}, "capacity", "Capacity must be at least 1; leave it empty for no limit."),
    ({"capacity": "lots"}, "capacity", "Enter the number of places as a whole number, or leave it empty."),
    ({"location": "Room\n5"}, "location", "The location must be one line of plain text."),
])
def test_bad_event_input_is_explained_beside_the_field_and_kept(world, staff_client, app, changes, field, message):
    response = post_form(staff_client("owner"), "/staff/events/new", {**EVENT_FORM, **changes})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="{field}-error"' in page and message in page
    assert "Drinks and demos." in page  # what was typed is kept
    with tenant_session(app, world.a):
        assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 0


def test_the_form_says_times_are_utc(world, staff_client):
    page = staff_client("owner").get("/staff/events/new").get_data(as_text=True)
    assert page.count('type="datetime-local"') == 2 and "Starts (UTC)" in page and "Ends (UTC, optional)" in page


@pytest.mark.parametrize("path", ["/staff/events/new", "/staff/events/{id}/edit"])
def test_staff_may_not_create_or_edit_events(world, staff_client, app, path):
    event_id = _event_id(app, world)
    client = staff_client("staff")
    assert client.get(path.format(id=event_id)).status_code == 403
    assert post_form(client, path.format(id=event_id), EVENT_FORM).status_code == 403
    assert post_form(client, f"/staff/events/{event_id}/delete").status_code == 403
    assert _event(app, world, event_id).title == "Board dinner"


def test_staff_see_the_events_without_manager_controls(world, staff_client, app):
    event_id = _event_id(app, world)
    client = staff_client("staff")
    assert "Board dinner" in client.get("/staff/events").get_data(as_text=True)
    page = client.get(f"/staff/events/{event_id}").get_data(as_text=True)
    assert "Edit event" not in page and "Invite a Circle" not in page
    assert "Add a contact by e-mail" in page  # they may invite the contacts they own


def test_edit_event_keeps_capacity_above_the_guests_already_in(world, staff_client, app):
    event_id = _event_id(app, world, capacity=10)
    with tenant_session(app, world.a):
        event = db.session.get(Event, event_id)
        for i in range(3):
            add_attendee_row(event, make_contact(f"G{i}", "Guest"))
        add_attendee_row(event, make_contact("No", "Show"), status="declined")
    client = staff_client("owner")
    page = client.get(f"/staff/events/{event_id}/edit").get_data(as_text=True)
    assert 'value="Board dinner"' in page and 'value="2030-06-01T19:00"' in page and 'value="10"' in page
    form = {"title": "Board dinner", "starts_at": "2030-06-01T19:00", "capacity": "2"}
    page = post_form(client, f"/staff/events/{event_id}/edit", form).get_data(as_text=True)
    assert "3 people already hold a place, so the capacity cannot be lower than 3." in page
    assert post_form(client, f"/staff/events/{event_id}/edit", {**form, "capacity": "3"}).status_code == 302
    assert _event(app, world, event_id).capacity == 3


def test_deleting_an_event_removes_its_guest_list_and_timeline_lines(world, staff_client, app):
    event_id = _event_id(app, world)
    contact_id = _contact_id(app, world)
    with tenant_session(app, world.a):
        add_attendee(db.session.get(Event, event_id), db.session.get(Contact, contact_id), staff_member(world.a, "owner"))
    response = post_form(staff_client("owner"), f"/staff/events/{event_id}/delete")
    assert urlsplit(response.headers["Location"]).path == "/staff/events"
    assert _event(app, world, event_id) is None
    with tenant_session(app, world.a):
        assert db.session.scalar(sa.select(sa.func.count(EventAttendee.id))) == 0
        assert db.session.scalar(sa.select(sa.func.count(TimelineEntry.id))) == 0
        audit = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "event.deleted"))
        assert audit.target_id == event_id and audit.details["attendees"] == 1


# --- inviting ------------------------------------------------------------------------------------

def test_invite_a_contact_by_email_once(world, staff_client, app):
    event_id = _event_id(app, world)
    contact_id = _contact_id(app, world, email="eve@example.com")
    client = staff_client("owner")
    response = post_form(client, f"/staff/events/{event_id}/attendees", {"email": "EVE@example.com"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/staff/events/{event_id}#attendees")
    page = client.get(f"/staff/events/{event_id}").get_data(as_text=True)
    assert "Invited Eve Guest." in page and "Eve Guest" in page and "eve@example.com" in page
    again = post_form(client, f"/staff/events/{event_id}/attendees", {"email": "eve@example.com"}, follow_redirects=True)
    assert "Eve Guest is already on the list." in again.get_data(as_text=True)
    assert _attendees(app, world, event_id) == {contact_id: "invited"}
    with tenant_session(app, world.a):
        entry = db.session.scalar(sa.select(TimelineEntry).where(TimelineEntry.contact_id == contact_id))
        assert (entry.kind, entry.subject_type, entry.subject_id) == ("event_invited", "event", event_id)
        assert entry.summary == "Invited to Board dinner (2030-06-01 19:00 UTC)"


@pytest.mark.parametrize("email, message", [
    ("", "Enter a valid e-mail address."),
    ("not-an-address", "Enter a valid e-mail address."),
    ("nobody@example.com", "No contact has the e-mail address nobody@example.com."),
    ("canary-b@globex.example", "No contact has the e-mail address canary-b@globex.example."),
])
def test_inviting_an_unknown_address_explains_and_keeps_it(world, staff_client, app, email, message):
    event_id = _event_id(app, world)
    with app.app_context(), tenant_context(world.b.id):
        make_contact("CANARY-B", "Guest", email="canary-b@globex.example")
        db.session.commit()
    page = post_form(staff_client("owner"), f"/staff/events/{event_id}/attendees", {"email": email}).get_data(as_text=True)
    assert 'id="email-error"' in page and message in page
    assert f'value="{email}"' in page if email else True
    assert "Board dinner" in page  # the event page, re-rendered
    assert _attendees(app, world, event_id) == {}


def test_a_full_event_refuses_one_more(world, staff_client, app):
    event_id = _event_id(app, world, capacity=1)
    _contact_id(app, world, "First", "In", email="first@example.com")
    _contact_id(app, world, "Too", "Late", email="late@example.com")
    client = staff_client("owner")
    post_form(client, f"/staff/events/{event_id}/attendees", {"email": "first@example.com"})
    page = post_form(client, f"/staff/events/{event_id}/attendees", {"email": "late@example.com"}).get_data(as_text=True)
    assert "The event is full: all 1 places are taken." in page
    assert len(_attendees(app, world, event_id)) == 1
    assert "Full</span>" in client.get(f"/staff/events/{event_id}").get_data(as_text=True)


def test_a_declined_guest_frees_a_place_and_cannot_take_it_back_when_full(world, app):
    event_id = _event_id(app, world, capacity=1)
    a, b = _contact_id(app, world, "A", "One"), _contact_id(app, world, "B", "Two")
    with tenant_session(app, world.a):
        event, owner = db.session.get(Event, event_id), staff_member(world.a, "owner")
        first = add_attendee(event, db.session.get(Contact, a), owner)
        set_attendance(first, "declined", owner)
        add_attendee(event, db.session.get(Contact, b), owner)  # the freed place
        with pytest.raises(ServiceError, match="The event is full"):
            set_attendance(first, "accepted", owner)
        with pytest.raises(ServiceError, match="Choose invited, accepted, declined or attended."):
            set_attendance(first, "maybe", owner)
    assert _attendees(app, world, event_id) == {a: "declined", b: "invited"}


def test_staff_invite_only_contacts_they_may_edit(world, staff_client, app):
    event_id = _event_id(app, world)
    mine = _contact_id(app, world, "My", "Client", owner="staff", email="mine@example.com")
    _contact_id(app, world, "Their", "Client", owner="owner", email="theirs@example.com")
    client = staff_client("staff")
    assert post_form(client, f"/staff/events/{event_id}/attendees", {"email": "mine@example.com"}).status_code == 302
    page = post_form(client, f"/staff/events/{event_id}/attendees", {"email": "theirs@example.com"}).get_data(as_text=True)
    assert "You may only invite contacts you can edit; Their Client is not one of them." in page
    assert _attendees(app, world, event_id) == {mine: "invited"}


def _circle_with(app, world, n, **event_fields):
    event_id = _event_id(app, world, **event_fields)
    with tenant_session(app, world.a):
        circle = make_circle("VIP")
        ids = []
        for i in range(n):
            contact = make_contact(f"Vip{i}", "Member")
            add_to_circle(circle, contact=contact)
            ids.append(contact.id)
        return event_id, circle.id, ids


def test_invite_a_whole_circle_up_to_capacity(world, staff_client, app):
    event_id, circle_id, ids = _circle_with(app, world, 5, capacity=4)
    with tenant_session(app, world.a):
        event = db.session.get(Event, event_id)
        add_attendee_row(event, db.session.get(Contact, ids[1]))  # already invited
        add_attendee_row(event, make_contact("Walk", "In"))  # holds a place too
        gone = make_contact("Left", "Circle")
        db.session.add(CircleMember(circle_id=circle_id, contact_id=gone.id, removed_at=datetime.now(UTC)))
        inactive = make_contact("Sleepy", "Member", is_active=False)
        add_to_circle(db.session.get(Circle, circle_id), contact=inactive)
    client = staff_client("admin")
    page = client.get(f"/staff/events/{event_id}").get_data(as_text=True)
    assert "Invite a Circle" in page and ">VIP</option>" in page
    response = post_form(client, f"/staff/events/{event_id}/circles", {"circle_id": str(circle_id)}, follow_redirects=True)
    body = response.get_data(as_text=True)
    assert ("VIP: Invited 2 contacts. 1 was already on the list. 2 did not fit: the event is full. "
            "1 inactive or archived contact was left out.") in body
    attendees = _attendees(app, world, event_id)
    assert len(attendees) == 4 and {ids[0], ids[2]} <= attendees.keys() and ids[3] not in attendees
    assert body.count("with VIP</small>") == 2  # who came in with the circle says so
    with tenant_session(app, world.a):
        vias = db.session.scalars(sa.select(EventAttendee.via_circle_id).where(EventAttendee.contact_id == ids[0])).all()
        assert vias == [circle_id]
        entries = db.session.scalars(sa.select(TimelineEntry.summary).where(TimelineEntry.contact_id == ids[0])).all()
        assert entries == ["Invited to Board dinner (2030-06-01 19:00 UTC) with the circle VIP"]
        audit = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "event.circle_invited"))
        assert audit.details["added"] == 2 and audit.details["left_out"] == 2


def test_invite_circle_without_capacity_adds_everyone_and_returns_a_count(world, app):
    event_id, circle_id, ids = _circle_with(app, world, 3)
    with tenant_session(app, world.a):
        result = invite_circle(db.session.get(Event, event_id), db.session.get(Circle, circle_id), staff_member(world.a, "owner"))
        assert isinstance(result, CircleInvitation) and result == 3 and result.left_out == 0
        assert result.message == "Invited 3 contacts."
        again = invite_circle(db.session.get(Event, event_id), db.session.get(Circle, circle_id), staff_member(world.a, "owner"))
        assert again == 0 and again.already == 3
    assert set(_attendees(app, world, event_id)) == set(ids)


def test_staff_may_not_invite_circles(world, staff_client, app):
    event_id, circle_id, _ = _circle_with(app, world, 2)
    assert post_form(staff_client("staff"), f"/staff/events/{event_id}/circles",
                     {"circle_id": str(circle_id)}).status_code == 403
    with tenant_session(app, world.a):
        with pytest.raises(NotAllowed):
            invite_circle(db.session.get(Event, event_id), db.session.get(Circle, circle_id), staff_member(world.a, "staff"))
    assert _attendees(app, world, event_id) == {}


def test_inviting_no_circle_or_another_tenants_circle_is_explained(world, staff_client, app):
    event_id = _event_id(app, world)
    with app.app_context(), tenant_context(world.b.id):
        b_circle = make_circle("CANARY-B circle").id
        db.session.commit()
    client = staff_client("owner")
    for value in ("", str(b_circle)):
        page = post_form(client, f"/staff/events/{event_id}/circles", {"circle_id": value}).get_data(as_text=True)
        assert 'id="circle_id-error"' in page and "Choose a circle." in page and "CANARY" not in page


# --- attendance ----------------------------------------------------------------------------------

def test_set_attendance_and_remove(world, staff_client, app):
    event_id = _event_id(app, world)
    contact_id = _contact_id(app, world)
    with tenant_session(app, world.a):
        add_attendee_row(db.session.get(Event, event_id), db.session.get(Contact, contact_id))
    client = staff_client("owner")
    page = client.get(f"/staff/events/{event_id}").get_data(as_text=True)
    assert f'<label for="status-{contact_id}"' in page  # each status control has a label
    response = post_form(client, f"/staff/events/{event_id}/attendees/{contact_id}/status", {"status": "attended"})
    assert response.headers["Location"].endswith(f"/staff/events/{event_id}#attendee-{contact_id}")
    assert _attendees(app, world, event_id) == {contact_id: "attended"}
    bad = post_form(client, f"/staff/events/{event_id}/attendees/{contact_id}/status", {"status": "maybe"},
                    follow_redirects=True)
    assert "Eve Guest: Choose invited, accepted, declined or attended." in bad.get_data(as_text=True)
    assert post_form(client, f"/staff/events/{event_id}/attendees/{contact_id}/remove").status_code == 302
    assert _attendees(app, world, event_id) == {}
    # Not on the list any more: nothing to change.
    assert post_form(client, f"/staff/events/{event_id}/attendees/{contact_id}/status",
                     {"status": "accepted"}).status_code == 404
    with tenant_session(app, world.a):
        kinds = db.session.scalars(sa.select(TimelineEntry.kind).where(TimelineEntry.contact_id == contact_id)
                                   .order_by(TimelineEntry.id)).all()
        assert kinds == ["event_attendance", "event_removed"]
        assert db.session.scalar(sa.select(AuditEvent.details).where(AuditEvent.action == "event.attendee_removed")) \
            == {"contact_id": contact_id, "contact": "Eve Guest", "status": "attended"}


def test_staff_may_change_attendance_only_of_their_own_contacts(world, staff_client, app):
    event_id = _event_id(app, world)
    mine = _contact_id(app, world, "Mine", "Guest", owner="staff")
    theirs = _contact_id(app, world, "Their", "Guest", owner="owner")
    with tenant_session(app, world.a):
        event = db.session.get(Event, event_id)
        add_attendee_row(event, db.session.get(Contact, mine))
        add_attendee_row(event, db.session.get(Contact, theirs))
    client = staff_client("staff")
    assert post_form(client, f"/staff/events/{event_id}/attendees/{theirs}/status", {"status": "declined"}).status_code == 403
    assert post_form(client, f"/staff/events/{event_id}/attendees/{theirs}/remove").status_code == 403
    assert post_form(client, f"/staff/events/{event_id}/attendees/{mine}/status", {"status": "accepted"}).status_code == 302
    assert _attendees(app, world, event_id) == {mine: "accepted", theirs: "invited"}
    with tenant_session(app, world.a):
        with pytest.raises(NotAllowed):
            remove_attendee(db.session.get(Event, event_id), db.session.get(Contact, theirs), staff_member(world.a, "staff"))


# --- hidden contacts -----------------------------------------------------------------------------

def test_hidden_contacts_never_show_on_an_event_for_restricted_staff(world, staff_client, app):
    event_id = _event_id(app, world, capacity=5)
    hidden = _contact_id(app, world, "Hidden", "Guest", owner="owner", email="hidden@example.com")
    own = _contact_id(app, world, "Own", "Guest", owner="staff")
    with tenant_session(app, world.a):
        event = db.session.get(Event, event_id)
        add_attendee_row(event, db.session.get(Contact, hidden))
        add_attendee_row(event, db.session.get(Contact, own))
        restrict_staff_visibility()
    client = staff_client("staff")
    page = client.get(f"/staff/events/{event_id}").get_data(as_text=True)
    assert "Own Guest" in page and "Hidden Guest" not in page and "hidden@example.com" not in page
    assert "Attendees <small class=\"muted\">(1)</small>" in page
    invited = post_form(client, f"/staff/events/{event_id}/attendees", {"email": "hidden@example.com"})
    assert "No contact has the e-mail address hidden@example.com." in invited.get_data(as_text=True)
    for action, data in (("status", {"status": "declined"}), ("remove", {})):
        assert post_form(client, f"/staff/events/{event_id}/attendees/{hidden}/{action}", data).status_code == 404
    assert _attendees(app, world, event_id) == {hidden: "invited", own: "invited"}
    assert "Hidden Guest" in staff_client("owner").get(f"/staff/events/{event_id}").get_data(as_text=True)


def test_circle_invitation_by_an_admin_includes_every_member(world, app):
    """Admins see every contact, so a restricted Staff setting does not thin their invitations."""
    event_id, circle_id, ids = _circle_with(app, world, 2)
    with tenant_session(app, world.a):
        restrict_staff_visibility()
        assert invite_circle(db.session.get(Event, event_id), db.session.get(Circle, circle_id),
                             staff_member(world.a, "admin")) == 2


# --- lists ---------------------------------------------------------------------------------------

@freeze_time("2025-03-12 10:00:00")
def test_events_list_upcoming_and_past(world, staff_client, app):
    at = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    with tenant_session(app, world.a):
        make_event("Last year's gala", starts_at=at(2024, 12, 1, 19, 0), ends_at=at(2024, 12, 1, 23, 0))
        make_event("Going on now", starts_at=at(2025, 3, 12, 9, 0), ends_at=at(2025, 3, 12, 12, 0), capacity=10)
        make_event("Next week", starts_at=at(2025, 3, 19, 9, 0), location="Harbour room")
        make_event("Earlier today", starts_at=at(2025, 3, 12, 8, 0))
    client = staff_client("staff")
    upcoming = client.get("/staff/events").get_data(as_text=True)
    titles = re.findall(r'<a href="/staff/events/\d+">([^<]+)</a>', upcoming)
    assert titles == ["Going on now", "Next week"]
    assert "Now</span>" in upcoming and "0 of 10" in upcoming and "Harbour room" in upcoming
    past = client.get("/staff/events?when=past").get_data(as_text=True)
    assert re.findall(r'<a href="/staff/events/\d+">([^<]+)</a>', past) == ["Earlier today", "Last year&#39;s gala"]


def test_events_of_a_contact(world, app):
    contact_id = _contact_id(app, world)
    with tenant_session(app, world.a):
        contact = db.session.get(Contact, contact_id)
        early = make_event("Early", starts_at=datetime(2030, 1, 1, tzinfo=UTC))
        late = make_event("Late", starts_at=datetime(2030, 2, 1, tzinfo=UTC))
        make_event("Not invited")
        add_attendee_row(early, contact, status="accepted")
        add_attendee_row(late, contact)
        rows = events_of(contact)
        assert [(e.title, a.status) for e, a in rows] == [("Late", "invited"), ("Early", "accepted")]


def test_service_validates_like_the_form(world, app):
    with tenant_session(app, world.a):
        owner = staff_member(world.a, "owner")
        start = datetime(2030, 1, 1, 9, tzinfo=UTC)
        with pytest.raises(NotAllowed):
            create_event("x", start, actor=staff_member(world.a, "staff"))
        with pytest.raises(ServiceError, match="must end after it starts"):
            create_event("x", start, ends_at=start - timedelta(minutes=1), actor=owner)
        with pytest.raises(ServiceError, match="https://"):
            create_event("x", start, link="javascript://x.test/%0aalert(1)", actor=owner)
        event = create_event("Fine", start, link="http://meet.example/x", capacity=2, actor=owner)
        with pytest.raises(ServiceError, match="at most 100,000"):
            update_event(event, title="Fine", starts_at=start, capacity=100_001, actor=owner)


def test_event_page_does_not_query_per_attendee(world, staff_client, app):
    event_id, circle_id, _ = _circle_with(app, world, 1)
    with tenant_session(app, world.a):
        invite_circle(db.session.get(Event, event_id), db.session.get(Circle, circle_id), staff_member(world.a, "owner"))
    path = f"/staff/events/{event_id}"
    for role in ("owner", "staff"):
        client = staff_client(role)
        client.get(path)
        with counted_queries(app) as few:
            assert client.get(path).status_code == 200
        with tenant_session(app, world.a):
            event = db.session.get(Event, event_id)
            circle = make_circle(f"More {role}")
            for i in range(30):
                contact = make_contact(f"Many{i}", role.title(), owner_id=world.a.members["owner"].id)
                add_to_circle(circle, contact=contact)
                add_attendee_row(event, contact, via_circle_id=circle.id, status="accepted" if i % 2 else "invited")
        client.get(path)  # a new circle is a change of configuration: the caches refill once
        with counted_queries(app) as many:
            page = client.get(path).get_data(as_text=True)
        assert f"Many29 {role.title()}" in page
        assert len(many) == len(few), f"{role}: {len(few)} queries with one attendee, {len(many)} with 30 more"


def test_event_list_does_not_query_per_event(world, staff_client, app):
    client = staff_client("owner")
    _event_id(app, world, "First")
    client.get("/staff/events")
    with counted_queries(app) as few:
        client.get("/staff/events")
    with tenant_session(app, world.a):
        for i in range(20):
            event = make_event(f"Event {i}", starts_at=datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=i), capacity=5)
            add_attendee_row(event, make_contact(f"Guest{i}", "X"))
    with counted_queries(app) as many:
        page = client.get("/staff/events").get_data(as_text=True)
    assert "Event 19" in page and "1 of 5" in page
    assert len(many) == len(few)


def test_update_event_changes_only_the_fields_given(world, app):
    with tenant_session(app, world.a):
        owner = staff_member(world.a, "owner")
        start = datetime(2030, 1, 1, 9, tzinfo=UTC)
        event = create_event("Before", start, ends_at=start + timedelta(hours=2), location="Hall", capacity=5,
                             actor=owner)
        update_event(event, title="After", actor=owner)
        assert (event.title, event.starts_at, event.location, event.capacity) == ("After", start, "Hall", 5)
        with pytest.raises(ServiceError, match="must end after it starts"):
            update_event(event, starts_at=start + timedelta(hours=3), actor=owner)
        update_event(event, capacity=None, actor=owner)
        assert event.capacity is None
