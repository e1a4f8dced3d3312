"""The portal's home, profile details and company page, as the signed-in contact sees them:
their upcoming events with going / not going, the tasks staff shared with them, their own
details (with the custom fields staff let them edit) and, for a company's primary contact,
the company. The services' rules are tested in tests/crm/test_contact_self_service.py."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from core.db import db, utcnow
from crm.models import Contact, EventAttendee, Task, TimelineEntry
from tests.factories import (add_attendee, make_company, make_contact, make_custom_field, make_event,
                             make_portal_login, make_task)
from tests.support import csrf_token, in_tenant, login_portal, tenant_session

UTC = timezone.utc
LATER = datetime(2031, 5, 4, 18, 0, tzinfo=UTC)


def _post(client, path: str, data: dict | None = None):
    return client.post(path, data={"csrf_token": csrf_token(client, "/portal/"), **(data or {})})


def _flash_and_page(client, response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get(response.headers["Location"]).get_data(as_text=True)


# --- events --------------------------------------------------------------------------------------

def test_the_home_lists_upcoming_events_and_the_contact_answers(world, app, portal_client, staff_client):
    client = portal_client("client", first_name="Jane")

    def build():
        contact = db.session.get(Contact, client.contact_id)
        soon = make_event("Spring open day", starts_at=LATER, location="Main office")
        add_attendee(soon, contact)
        add_attendee(make_event("Last year's party", starts_at=utcnow() - timedelta(days=3)), contact)
        make_event("Not invited", starts_at=LATER)
        return soon.id
    event_id = in_tenant(app, world.a, build)
    home = client.get("/portal/").get_data(as_text=True)
    assert "Your upcoming events" in home and "Spring open day" in home and "Main office" in home
    assert "Last year's party" not in home and "Not invited" not in home
    assert "Your answer:" in home and "not given yet" in home
    page = _flash_and_page(client, _post(client, f"/portal/events/{event_id}/answer", {"answer": "going"}))
    assert "You are going to “Spring open day”. See you there!" in page
    assert re.search(r'aria-pressed="true"\s+class="">Going<', page)
    with tenant_session(app, world.a):
        attendee = db.session.scalar(sa.select(EventAttendee).where(EventAttendee.event_id == event_id))
        assert (attendee.rsvp, attendee.status) == ("going", "accepted")
    staff_page = staff_client("admin").get(f"/staff/events/{event_id}").get_data(as_text=True)
    assert "<strong>Going</strong>" in staff_page
    page = _flash_and_page(client, _post(client, f"/portal/events/{event_id}/answer", {"answer": "not_going"}))
    assert "Thanks for letting us know you cannot come to “Spring open day”." in page
    assert "<strong>Not going</strong>" in staff_client("admin").get(f"/staff/events/{event_id}").get_data(as_text=True)


def test_only_an_attendee_may_answer_and_a_bad_answer_changes_nothing(world, app, portal_client):
    client = portal_client("client")

    def build():
        other = make_contact("Joe", "Other", role="client")
        theirs = make_event("Joe's dinner", starts_at=LATER)
        add_attendee(theirs, other)
        mine = make_event("My dinner", starts_at=LATER, capacity=1)
        add_attendee(mine, db.session.get(Contact, client.contact_id))
        return theirs.id, mine.id
    theirs, mine = in_tenant(app, world.a, build)
    assert _post(client, f"/portal/events/{theirs}/answer", {"answer": "going"}).status_code == 404
    assert _post(client, "/portal/events/999999/answer", {"answer": "going"}).status_code == 404
    page = _flash_and_page(client, _post(client, f"/portal/events/{mine}/answer", {"answer": "maybe"}))
    assert "Choose going or not going." in page
    with tenant_session(app, world.a):
        assert db.session.scalar(sa.select(sa.func.count(EventAttendee.id)).where(
            EventAttendee.rsvp.is_not(None))) == 0


# --- tasks ---------------------------------------------------------------------------------------

def test_a_shared_task_is_on_the_home_and_the_contact_marks_it_done(world, app, portal_client, staff_client):
    client = portal_client("client", first_name="Jane")

    def build():
        shared = make_task("Send us your floor plan", contact_id=client.contact_id, shared_with_contact=True,
                           description="A photo is fine.", due_at=LATER)
        make_task("Internal: check credit", contact_id=client.contact_id)
        return shared.id
    task_id = in_tenant(app, world.a, build)
    home = client.get("/portal/").get_data(as_text=True)
    assert "Things to do" in home and "Send us your floor plan" in home and "A photo is fine." in home
    assert "Internal: check credit" not in home
    page = _flash_and_page(client, _post(client, f"/portal/tasks/{task_id}/done"))
    assert "Done: “Send us your floor plan”. Thank you!" in page and "Mark as not done" in page
    with tenant_session(app, world.a):
        task = db.session.get(Task, task_id)
        assert task.done_at is not None and task.done_by_portal_account_id == client.account_id
        entry = db.session.scalar(sa.select(TimelineEntry).where(TimelineEntry.kind == "task_done"))
        assert (entry.actor_type, entry.actor_portal_account_id) == ("portal", client.account_id)
    assert "by Jane Portal on the portal" in staff_client("owner").get(f"/staff/tasks/{task_id}").get_data(as_text=True)
    page = _flash_and_page(client, _post(client, f"/portal/tasks/{task_id}/reopen"))
    assert "“Send us your floor plan” is back on your list." in page
    with tenant_session(app, world.a):
        assert db.session.get(Task, task_id).done_at is None


def test_a_task_not_shared_or_of_another_contact_is_a_404(world, app, portal_client):
    client = portal_client("client")

    def build():
        other = make_contact("Joe", "Other", role="client")
        return (make_task("Internal", contact_id=client.contact_id).id,
                make_task("Joe's", contact_id=other.id, shared_with_contact=True).id)
    for task_id in in_tenant(app, world.a, build):
        for step in ("done", "reopen"):
            assert _post(client, f"/portal/tasks/{task_id}/{step}").status_code == 404
    with tenant_session(app, world.a):
        assert db.session.scalar(sa.select(sa.func.count(Task.id)).where(Task.done_at.is_not(None))) == 0


def test_with_nothing_shared_the_home_draws_no_empty_panels(world, app, portal_client):
    home = portal_client("client").get("/portal/").get_data(as_text=True)
    assert "Your upcoming events" not in home and "Things to do" not in home
    assert 'data-panel="payments"' not in home


# --- profile details -----------------------------------------------------------------------------

DETAILS = {"details-first_name": "Janet", "details-last_name": "Portal", "details-phone": "+44 20 7946 0958",
           "details-street": "1 High St", "details-city": "London", "details-postal_code": "N1 9GU",
           "details-region": "", "details-country": "gb"}


def _fields(app, world):
    def build():
        make_custom_field("Shoe size", "number", editable_by_contact=True)
        make_custom_field("Credit score", "number")
    in_tenant(app, world.a, build)


def _profile_post(client, data):
    return client.post("/portal/profile", data={"form": "details",
                                                "details-csrf_token": csrf_token(client, "/portal/profile"), **data})


def test_the_contact_edits_their_details_and_the_timeline_names_them(world, app, portal_client, staff_client):
    _fields(app, world)
    client = portal_client("client", first_name="Jane", phone="+14155550123", custom_fields={"credit_score": 700})
    page = client.get("/portal/profile").get_data(as_text=True)
    # The phone as people write it (the one display_phone), and the e-mail said once, not twice.
    assert "Your details" in page and 'value="+1 415-555-0123"' in page and "+14155550123" not in page
    assert page.count(client.email) == 1
    assert "Shoe size" in page and "Credit score" not in page
    saved = _profile_post(client, {**DETAILS, "details-cf_shoe_size": "38"})
    # The page opens at the flash (main's top), not scrolled past it to the form.
    assert saved.headers["Location"].endswith("/portal/profile#main")
    page = _flash_and_page(client, saved)
    assert "Your details are saved." in page and 'value="Janet"' in page and 'value="+44 20 7946 0958"' in page
    unchanged = _flash_and_page(client, _profile_post(client, {**DETAILS, "details-cf_shoe_size": "38"}))
    assert "Nothing to save: your details were already so." in unchanged  # the formatted phone is no change
    with tenant_session(app, world.a):
        contact = db.session.get(Contact, client.contact_id)
        assert (contact.first_name, contact.phone, contact.city, contact.country) == ("Janet", "+442079460958",
                                                                                      "London", "GB")
        assert contact.custom_fields == {"credit_score": 700, "shoe_size": 38}
        entry = db.session.scalar(sa.select(TimelineEntry).where(TimelineEntry.kind == "updated"))
        assert (entry.actor_type, entry.actor_portal_account_id) == ("portal", client.account_id)
    staff_page = staff_client("owner").get(f"/staff/contacts/{client.contact_id}").get_data(as_text=True)
    assert "Changed first name, phone, street, city, postal code, country, custom fields" in staff_page
    assert "on the portal" in staff_page


def test_bad_details_re_render_with_the_errors_beside_the_fields_and_save_nothing(world, app, portal_client):
    _fields(app, world)
    client = portal_client("client", first_name="Jane", phone="+14155550123")
    response = _profile_post(client, {**DETAILS, "details-phone": "12345", "details-cf_shoe_size": "38"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert re.search(r'id="details-phone-error" class="field-error">“12345” is not a valid phone number', page)
    assert 'value="Janet"' in page  # what was typed stays
    response = _profile_post(client, {**DETAILS, "details-cf_shoe_size": "big"})
    assert "Shoe size: enter a number." in response.get_data(as_text=True)
    with tenant_session(app, world.a):
        contact = db.session.get(Contact, client.contact_id)
        assert (contact.first_name, contact.phone, contact.custom_fields) == ("Jane", "+14155550123", {})
        assert db.session.scalar(sa.select(sa.func.count(TimelineEntry.id)).where(TimelineEntry.kind == "updated")) == 0


def test_a_forged_post_of_a_field_the_contact_may_not_edit_changes_nothing(world, app, portal_client):
    _fields(app, world)
    client = portal_client("client", first_name="Jane", custom_fields={"credit_score": 700})
    with tenant_session(app, world.a):
        before = db.session.get(Contact, client.contact_id)
        email, role, owner = before.email, before.role, before.owner_id
    response = _profile_post(client, {**DETAILS, "details-cf_credit_score": "850", "details-email": "x@evil.example",
                                      "details-role": "lead", "cf_credit_score": "850", "email": "x@evil.example"})
    assert response.status_code == 302
    with tenant_session(app, world.a):
        contact = db.session.get(Contact, client.contact_id)
        assert contact.custom_fields.get("credit_score") == 700
        assert (contact.email, contact.role, contact.owner_id) == (email, role, owner)
        assert contact.first_name == "Janet"


# --- company -------------------------------------------------------------------------------------

def _company_with_people(app, world):
    def build():
        company = make_company("Initrode Ltd", phone="+14155550100", city="Springfield")
        boss = make_contact("Bea", "Boss", role="client", company_id=company.id, is_primary_contact=True)
        make_portal_login(boss)
        colleague = make_contact("Carl", "Colleague", role="client", company_id=company.id, job_title="Buyer")
        make_portal_login(colleague)
        make_contact("Gone", "Former", company_id=company.id, is_active=False)
        make_contact("Other", "Firm", role="client", company_id=make_company("Elsewhere Inc").id)
        return boss.email, colleague.email
    return in_tenant(app, world.a, build)


def test_the_primary_contact_sees_the_company_and_its_other_people(world, app, client_for):
    boss, _ = _company_with_people(app, world)
    client = client_for(world.a.slug)
    assert login_portal(client, boss).status_code == 302
    home = client.get("/portal/").get_data(as_text=True)
    assert 'href="/portal/company"' in home
    page = client.get("/portal/company").get_data(as_text=True)
    assert "<h1>Initrode Ltd</h1>" in page and "Springfield" in page and "+1 415-555-0100" in page
    assert "Carl Colleague" in page and "Buyer" in page and "carl.colleague" in page
    assert "Gone Former" not in page and "Other Firm" not in page and "Bea Boss" not in page.split("Other people")[1]


def test_anyone_else_gets_no_company_link_and_a_404(world, app, client_for, portal_client):
    _, colleague = _company_with_people(app, world)
    client = client_for(world.a.slug)
    assert login_portal(client, colleague).status_code == 302
    assert 'href="/portal/company"' not in client.get("/portal/").get_data(as_text=True)
    assert client.get("/portal/company").status_code == 404
    loner = portal_client("client")
    assert loner.get("/portal/company").status_code == 404


def test_the_events_and_tasks_panels_cost_one_query_each_however_many(world, app, portal_client, monkeypatch):
    from portal import home
    from tests.test_query_counts import counted_queries

    monkeypatch.setattr(home, "HOME_PANELS", {k: v for k, v in home.HOME_PANELS.items() if k in ("events", "tasks")})
    client = portal_client("client")

    def build():
        contact = db.session.get(Contact, client.contact_id)
        for n in range(8):
            add_attendee(make_event(f"Event {n}", starts_at=LATER + timedelta(days=n)), contact)
            make_task(f"Task {n}", contact_id=contact.id, shared_with_contact=True)
    in_tenant(app, world.a, build)
    assert client.get("/portal/").status_code == 200  # warm up
    with counted_queries(app) as statements:
        page = client.get("/portal/").get_data(as_text=True)
    assert "Event 7" in page and "Task 7" in page
    assert len(statements) == 4, statements  # the tenant, the sign-in rule, then one per panel
