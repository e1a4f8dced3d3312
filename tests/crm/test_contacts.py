"""Staff add, view, change and remove contacts, within the rules of their role."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from crm.models import Company, Contact, CrmSettings, TimelineEntry
from tests.factories import add_to_circle, make_circle, make_contact, make_custom_field
from tests.support import in_tenant, post_form

FORM = {"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Example.COM ", "phone": "+44 20 7946 0958",
        "role": "lead", "is_active": "y"}




def _contact(app, world, **where):
    return in_tenant(app, world.a, lambda: db.session.scalars(sa.select(Contact).filter_by(**where)).one())


def test_add_a_contact_normalises_and_lands_on_their_page(world, staff_client, app):
    client = staff_client("staff")
    page = client.get("/staff/contacts/new").get_data(as_text=True)
    assert "Add a contact" in page and 'name="first_name"' in page
    response = post_form(client, "/staff/contacts/new", {**FORM, "company_name": "Analytical Engines Ltd."},
                         follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "Ada Lovelace is added." in body
    assert "ada@example.com" in body and "+44 20 7946 0958" in body and "Analytical Engines Ltd." in body
    contact = _contact(app, world, last_name="Lovelace")
    assert (contact.email, contact.phone, contact.role) == ("ada@example.com", "+442079460958", "lead")
    assert contact.owner_id == world.a.members["staff"].id  # whoever adds it owns it
    for typed in ("ada lovelace", "LOVE", "020 7946 0958", "+44 20 7946 0958", "analytical", "ada@example"):
        found = client.get("/staff/contacts", query_string={"q": typed}).get_data(as_text=True)
        assert "Ada Lovelace" in found, f"searching {typed!r} should find her"
    assert "Added by Sam Staff" in body  # on the timeline


def test_company_typed_on_the_form_is_matched_not_duplicated(world, staff_client, app):
    client = staff_client("owner")
    post_form(client, "/staff/contacts/new", {**FORM, "company_name": "ACME, Inc."})
    post_form(client, "/staff/contacts/new", {**FORM, "email": "charles@example.com", "first_name": "Charles",
                                              "company_name": "Acme Inc"})
    names = in_tenant(app, world.a, lambda: db.session.scalars(sa.select(Company.name)).all())
    assert names == ["ACME, Inc."]


@pytest.mark.parametrize("changes, message, field", [
    ({"first_name": "", "last_name": "", "email": "", "phone": ""},
     "Enter at least a name, an e-mail address or a phone number.", "first_name"),
    ({"email": "not an email"}, "That e-mail address is not valid", "email"),
    ({"phone": "12"}, "is not a valid phone number", "phone"),
    ({"country": "Narnia"}, "Use a two-letter country code", "country"),
    ({"first_name": "Ada\r\nBcc: x"}, "must be one line of plain text", "first_name"),
])
def test_bad_input_is_explained_beside_the_field_and_nothing_is_saved(world, staff_client, app, changes, message, field):
    response = post_form(staff_client("owner"), "/staff/contacts/new", {**FORM, **changes})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and message in body
    assert f'id="{field}-error"' in body
    assert 'value="Lovelace"' in body or changes.get("last_name") == ""  # what was typed is kept
    assert in_tenant(app, world.a, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Contact))) == 0


def test_email_is_unique_among_active_contacts(world, staff_client, app):
    client = staff_client("owner")
    post_form(client, "/staff/contacts/new", FORM)
    again = post_form(client, "/staff/contacts/new", {**FORM, "email": "ADA@example.com"})
    assert "Ada Lovelace already has this e-mail address." in again.get_data(as_text=True)
    # an inactive contact does not hold the address
    post_form(client, "/staff/contacts/new", {**FORM, "email": "old@example.com", "is_active": ""})
    fresh = post_form(client, "/staff/contacts/new", {**FORM, "email": "old@example.com"})
    assert fresh.status_code == 302


def test_the_same_email_may_live_in_two_tenants(world, staff_client):
    post_form(staff_client("owner"), "/staff/contacts/new", FORM)
    assert post_form(staff_client("owner", tenant="b"), "/staff/contacts/new", FORM).status_code == 302


def test_edit_shows_values_and_records_what_changed(world, staff_client, app):
    contact = in_tenant(app, world.a, lambda: make_contact("Grace", "Hopper", email="grace@example.com"))
    client = staff_client("owner")
    form = client.get(f"/staff/contacts/{contact.id}/edit").get_data(as_text=True)
    assert 'value="grace@example.com"' in form
    data = {"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.example", "job_title": "Rear Admiral",
            "is_active": "y", "status_id": str(contact.status_id)}
    page = post_form(client, f"/staff/contacts/{contact.id}/edit", data, follow_redirects=True).get_data(as_text=True)
    assert "Saved Grace Hopper." in page and "Changed e-mail, job title" in page
    events = in_tenant(app, world.a, lambda: db.session.scalars(
        sa.select(AuditEvent.details).where(AuditEvent.action == "contact.updated")).all())
    assert events == [{"fields": ["email", "job_title"]}]


def test_custom_fields_are_validated_and_shown(world, staff_client, app):
    contact = in_tenant(app, world.a, lambda: (make_custom_field("Shoe size", "number"),
                                         make_contact("Mary", "Jackson"))[1])
    client = staff_client("owner")
    base = {"first_name": "Mary", "last_name": "Jackson", "is_active": "y", "status_id": str(contact.status_id)}
    bad = post_form(client, f"/staff/contacts/{contact.id}/edit", {**base, "cf_shoe_size": "big"})
    assert "Shoe size: enter a number." in bad.get_data(as_text=True)
    post_form(client, f"/staff/contacts/{contact.id}/edit", {**base, "cf_shoe_size": "38,5"})
    page = client.get(f"/staff/contacts/{contact.id}").get_data(as_text=True)
    assert "Shoe size" in page and "38.5" in page


def test_role_moves_forward_freely_and_back_only_for_admins_with_confirmation(world, staff_client, app):
    contact = in_tenant(app, world.a, lambda: make_contact("Katherine", "Johnson", owner_id=world.a.members["staff"].id))
    staff = staff_client("staff")
    post_form(staff, f"/staff/contacts/{contact.id}/role", {"role": "client"})
    assert _contact(app, world, id=contact.id).role == "client"
    refused = post_form(staff, f"/staff/contacts/{contact.id}/role", {"role": "lead"}, follow_redirects=True)
    assert "Your role may not move a contact back to Lead." in refused.get_data(as_text=True)
    admin = staff_client("admin")
    ask = post_form(admin, f"/staff/contacts/{contact.id}/role", {"role": "prospect"})
    assert "Move back to Prospect?" in ask.get_data(as_text=True)
    assert _contact(app, world, id=contact.id).role == "client"
    post_form(admin, f"/staff/contacts/{contact.id}/role", {"role": "prospect", "confirm": "yes"})
    assert _contact(app, world, id=contact.id).role == "prospect"
    audit = in_tenant(app, world.a, lambda: db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "contact.role_changed").order_by(AuditEvent.id)).all())
    assert [(e.details["to"], e.details["backwards"], e.actor_label) for e in audit] == [
        ("client", False, "sam@acme.example"), ("prospect", True, "adam@acme.example")]
    timeline = in_tenant(app, world.a, lambda: db.session.scalars(sa.select(TimelineEntry.summary).where(
        TimelineEntry.contact_id == contact.id, TimelineEntry.kind == "role_changed")).all())
    assert timeline == ["Role changed from Lead to Client", "Role changed from Client to Prospect"]


def test_status_change_lands_on_the_timeline(world, staff_client, app):
    contact = in_tenant(app, world.a, lambda: make_contact("Dorothy", "Vaughan"))
    from crm.models import PipelineStatus
    qualified = in_tenant(app, world.a, lambda: db.session.scalar(sa.select(PipelineStatus.id).where(
        PipelineStatus.name == "Qualified")))
    page = post_form(staff_client("owner"), f"/staff/contacts/{contact.id}/status", {"status_id": qualified},
                     follow_redirects=True).get_data(as_text=True)
    assert "Status changed from New to Qualified" in page


def test_staff_edit_only_their_own_contacts(world, staff_client, app):
    mine = in_tenant(app, world.a, lambda: make_contact("Own", "Contact", owner_id=world.a.members["staff"].id))
    theirs = in_tenant(app, world.a, lambda: make_contact("Other", "Contact", owner_id=world.a.members["owner"].id))
    staff = staff_client("staff")
    assert staff.get(f"/staff/contacts/{theirs.id}").status_code == 200  # may see
    assert staff.get(f"/staff/contacts/{theirs.id}/edit").status_code == 403
    assert post_form(staff, f"/staff/contacts/{theirs.id}/archive").status_code == 403
    assert staff.get(f"/staff/contacts/{mine.id}/edit").status_code == 200
    assert "Edit" not in staff.get(f"/staff/contacts/{theirs.id}").get_data(as_text=True).split("Details")[0]


def test_restricted_staff_do_not_see_other_contacts_at_all(world, staff_client, app):
    def setup():
        db.session.scalar(sa.select(CrmSettings)).staff_visibility = CrmSettings.OWN_OR_CIRCLES
        mine = make_contact("Mine", "Own", owner_id=world.a.members["staff"].id)
        circle_member = make_contact("Circle", "Member", owner_id=world.a.members["owner"].id)
        hidden = make_contact("Hidden", "Person", owner_id=world.a.members["owner"].id)
        circle = make_circle("Assigned")
        add_to_circle(circle, contact=circle_member)
        from crm.models import CircleStaff
        db.session.add(CircleStaff(circle_id=circle.id, staff_id=world.a.members["staff"].id))
        return mine, circle_member, hidden
    mine, member, hidden = in_tenant(app, world.a, setup)
    staff = staff_client("staff")
    listing = staff.get("/staff/contacts").get_data(as_text=True)
    assert "Mine Own" in listing and "Circle Member" in listing and "Hidden Person" not in listing
    assert "2 contacts" in listing
    assert staff.get(f"/staff/contacts/{hidden.id}").status_code == 404
    assert staff.get(f"/staff/contacts/{hidden.id}/edit").status_code == 404
    assert "Hidden" not in staff.get("/staff/contacts?q=hidden").get_data(as_text=True).split("</form>")[-1]
    assert "Hidden Person" in staff_client("admin").get("/staff/contacts").get_data(as_text=True)


def test_history_archive_restore_and_delete(world, staff_client, app):
    contact = in_tenant(app, world.a, lambda: make_contact("Temp", "Person", email="temp@example.com"))
    client = staff_client("owner")
    link = f'href="/staff/contacts/{contact.id}"'
    post_form(client, f"/staff/contacts/{contact.id}/archive")
    assert link not in client.get("/staff/contacts").get_data(as_text=True)
    assert link in client.get("/staff/contacts?history=1").get_data(as_text=True)
    post_form(client, f"/staff/contacts/{contact.id}/restore")
    assert link in client.get("/staff/contacts").get_data(as_text=True)
    confirm = client.get(f"/staff/contacts/{contact.id}/delete").get_data(as_text=True)
    assert "Delete Temp Person?" in confirm
    done = post_form(client, f"/staff/contacts/{contact.id}/delete", follow_redirects=True)
    assert "Temp Person is deleted." in done.get_data(as_text=True)
    assert client.get(f"/staff/contacts/{contact.id}").status_code == 404
    assert in_tenant(app, world.a, lambda: db.session.scalars(sa.select(AuditEvent.target_label).where(
        AuditEvent.action == "contact.deleted")).all()) == ["Temp Person"]


def test_merged_contact_redirects_to_the_survivor(world, staff_client, app):
    survivor = in_tenant(app, world.a, lambda: make_contact("Real", "One"))
    merged = in_tenant(app, world.a, lambda: make_contact("Dup", "One", merged_into_id=survivor.id, email=None))
    response = staff_client("owner").get(f"/staff/contacts/{merged.id}")
    assert response.status_code == 301 and response.headers["Location"].endswith(f"/staff/contacts/{survivor.id}")


def test_contact_page_shows_and_changes_circles_and_tags(world, staff_client, app):
    contact, circle = in_tenant(app, world.a, lambda: (make_contact("Chip", "Person"), make_circle("Readers")))
    client = staff_client("owner")
    post_form(client, f"/staff/contacts/{contact.id}/circles", {"circle_id": circle.id})
    post_form(client, f"/staff/contacts/{contact.id}/tags", {"name": "Bookish"})
    page = client.get(f"/staff/contacts/{contact.id}").get_data(as_text=True)
    assert f'href="/staff/circles/{circle.id}">Readers</a>' in page
    assert ">Bookish</a>" in page
    assert "Remove from Readers" in page and "Remove the tag Bookish" in page


def test_archiving_a_circle_ends_the_access_it_gave(world, staff_client, app):
    from crm.circles import archive_circle
    from crm.models import CircleStaff

    def setup():
        db.session.scalar(sa.select(CrmSettings)).staff_visibility = CrmSettings.OWN_OR_CIRCLES
        member = make_contact("Member", "Seen", owner_id=world.a.members["owner"].id)
        circle = make_circle("Temporary")
        add_to_circle(circle, contact=member)
        db.session.add(CircleStaff(circle_id=circle.id, staff_id=world.a.members["staff"].id))
        return member, circle
    member, circle = in_tenant(app, world.a, setup)
    staff = staff_client("staff")
    assert staff.get(f"/staff/contacts/{member.id}").status_code == 200
    in_tenant(app, world.a, lambda: archive_circle(db.session.get(type(circle), circle.id), _owner(world)))
    assert staff.get(f"/staff/contacts/{member.id}").status_code == 404


def _owner(world):
    from core.identity import StaffUser
    return db.session.get(StaffUser, world.a.members["owner"].id)


def test_an_archived_status_is_kept_when_the_contact_is_edited(world, staff_client, app):
    from crm.models import PipelineStatus

    def setup():
        status = db.session.scalar(sa.select(PipelineStatus).where(PipelineStatus.name == "Contacted"))
        contact = make_contact("Kept", "Status", status_id=status.id)
        status.archived_at = tenancy_now()
        return contact
    contact = in_tenant(app, world.a, setup)
    client = staff_client("owner")
    form = client.get(f"/staff/contacts/{contact.id}/edit").get_data(as_text=True)
    assert "Contacted (archived)" in form
    post_form(client, f"/staff/contacts/{contact.id}/edit", {"first_name": "Kept", "last_name": "Status",
                                                              "is_active": "y", "status_id": str(contact.status_id)})
    assert _contact(app, world, id=contact.id).status_id == contact.status_id


def tenancy_now():
    from core.db import utcnow
    return utcnow()


def test_contact_page_notes_and_tasks(world, staff_client, app):
    contact = in_tenant(app, world.a, lambda: make_contact("Noted", "Person"))
    client = staff_client("owner")
    post_form(client, f"/staff/contacts/{contact.id}/notes", {"body": "See https://example.com/offer\nCall back."})
    post_form(client, f"/staff/contacts/{contact.id}/tasks", {"title": "Send the offer", "kind": "email",
                                                              "assignee_id": str(world.a.members["staff"].id)})
    page = client.get(f"/staff/contacts/{contact.id}").get_data(as_text=True)
    assert '<a href="https://example.com/offer" rel="nofollow noopener' in page
    assert "Send the offer" in page and "Sam Staff" in page
    assert "Add a note" in page and "Add a task" in page
