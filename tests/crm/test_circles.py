"""Circles: admins create, rename, colour, archive them and assign staff; staff put their
contacts in them; membership history is kept; restricted Staff never see hidden contacts."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from core.errors import ServiceError
from core.identity import StaffUser
from core.tenancy import tenant_context
from crm import circles
from crm.models import Circle, CircleMember, CircleStaff, Contact, TimelineEntry
from tests.factories import (add_to_circle, assign_to_circle, make_circle, make_company, make_contact,
                             restrict_staff_visibility)
from tests.support import post_form
from tests.test_query_counts import counted_queries


def _run(app, tenant_id, fn):
    with app.app_context(), tenant_context(tenant_id):
        result = fn()
        db.session.commit()
        for obj in result if isinstance(result, (list, tuple)) else [result]:
            if isinstance(obj, db.Model):  # readable after the session ends
                db.session.refresh(obj)
                db.session.expunge(obj)
        return result


def in_a(app, world, fn):
    """Run fn as tenant A (the world's first tenant) and commit; returned rows stay readable."""
    return _run(app, world.a.id, fn)


def in_b(app, world, fn):
    return _run(app, world.b.id, fn)


def member(world, role, tenant="a"):
    return db.session.get(StaffUser, getattr(world, tenant).members[role].id)


def audit_actions(app, world):
    return in_a(app, world, lambda: db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all())


# --- creating and changing circles -----------------------------------------------------------------------

def test_admin_creates_a_circle_and_lands_on_its_page(world, staff_client, app):
    client = staff_client("admin")
    listing = client.get("/staff/circles").get_data(as_text=True)
    assert "New circle" in listing and "No circles yet." in listing
    assert client.get("/staff/circles/new").status_code == 200

    response = post_form(client, "/staff/circles/new",
                         {"name": "  VIP   clients ", "description": "Our best\nclients", "color": "#AA3300"})
    assert response.status_code == 302
    circle = in_a(app, world, lambda: db.session.scalars(sa.select(Circle)).one())
    assert (circle.name, circle.description, circle.color) == ("VIP clients", "Our best\nclients", "#aa3300")
    assert response.headers["Location"].endswith(f"/staff/circles/{circle.id}")

    page = client.get(f"/staff/circles/{circle.id}").get_data(as_text=True)
    assert "VIP clients" in page and "Our best" in page and "background: #aa3300" in page
    assert "circle.created" in audit_actions(app, world)

    listing = client.get("/staff/circles").get_data(as_text=True)
    assert "VIP clients" in listing and "background: #aa3300" in listing and "Our best" in listing


def test_duplicate_names_are_refused_whatever_the_case(world, staff_client, app):
    in_a(app, world, lambda: make_circle("VIP"))
    response = post_form(staff_client("owner"), "/staff/circles/new",
                         {"name": "vip", "description": "kept as typed", "color": "#123456"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "There is already a circle called “VIP”. Choose another name." in body
    assert 'id="name-error"' in body and 'aria-invalid="true"' in body
    assert 'value="vip"' in body and "kept as typed" in body and 'value="#123456"' in body  # input kept
    assert in_a(app, world, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Circle))) == 1


def test_an_archived_circle_still_holds_its_name(world, app):
    def run():
        admin = member(world, "admin")
        old = circles.create_circle("Region North", None, "#00aa00", admin)
        circles.archive_circle(old, admin)
        with pytest.raises(ServiceError) as refused:
            circles.create_circle("REGION NORTH", None, "#00aa00", admin)
        return refused.value
    refused = in_a(app, world, run)
    assert refused.field == "name" and "among the archived circles" in refused.message


def test_the_same_name_in_another_tenant_is_fine(world, app):
    in_b(app, world, lambda: make_circle("VIP"))
    circle = in_a(app, world, lambda: circles.create_circle("VIP", "", "#123456", member(world, "owner")))
    assert circle.id


@pytest.mark.parametrize("data, field, message", [
    ({"name": ""}, "name", "Enter a name for the circle."),
    ({"name": "Two\nlines"}, "name", "must be one line of plain text"),
    ({"name": "x" * 121}, "name", "at most 120 characters"),
    ({"color": "red"}, "color", "Choose a colour like #2563eb."),
    ({"color": "#12345"}, "color", "Choose a colour like #2563eb."),
    ({"description": "y" * 2001}, "description", "at most 2000 characters"),
])
def test_bad_input_is_explained_beside_the_field(world, staff_client, app, data, field, message):
    form = {"name": "Partners", "description": "", "color": "#2563eb", **data}
    response = post_form(staff_client("admin"), "/staff/circles/new", form)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and message in body and f'id="{field}-error"' in body
    assert in_a(app, world, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Circle))) == 0


def test_admin_renames_and_recolours_and_it_is_audited(world, staff_client, app):
    circle_id = in_a(app, world, lambda: make_circle("Partners", color="#111111").id)
    make_other = in_a(app, world, lambda: make_circle("Suppliers").id)
    client = staff_client("admin")
    page = client.get(f"/staff/circles/{circle_id}/edit").get_data(as_text=True)
    assert 'value="Partners"' in page and 'value="#111111"' in page

    clash = post_form(client, f"/staff/circles/{circle_id}/edit", {"name": "SUPPLIERS", "color": "#111111"})
    assert "There is already a circle called “Suppliers”" in clash.get_data(as_text=True)

    response = post_form(client, f"/staff/circles/{circle_id}/edit",
                         {"name": "Channel partners", "description": "Resellers", "color": "#22aa22"})
    assert response.status_code == 302
    circle = in_a(app, world, lambda: db.session.get(Circle, circle_id))
    assert (circle.name, circle.description, circle.color) == ("Channel partners", "Resellers", "#22aa22")
    event = in_a(app, world, lambda: db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "circle.updated")).one())
    assert event.details["name"] == {"from": "Partners", "to": "Channel partners"}
    assert event.target_id == circle_id and make_other


def test_archive_hides_the_circle_keeps_members_and_refuses_new_ones(world, staff_client, app):
    def setup():
        circle = make_circle("Old campaign")
        contact = make_contact("Ola")
        add_to_circle(circle, contact=contact)
        return circle.id, contact.id, make_contact("Newt").id
    circle_id, contact_id, newcomer_id = in_a(app, world, setup)
    client = staff_client("admin")
    assert post_form(client, f"/staff/circles/{circle_id}/archive").status_code == 302
    listing = client.get("/staff/circles").get_data(as_text=True)
    assert "Archived circles (1)" in listing
    assert in_a(app, world, lambda: [c.id for c in circles.active_circles()]) == []

    refused = post_form(client, f"/staff/contacts/{newcomer_id}/circles", {"circle_id": circle_id},
                        follow_redirects=True)
    assert "is archived; restore it before adding to it." in refused.get_data(as_text=True)
    page = client.get(f"/staff/circles/{circle_id}").get_data(as_text=True)
    assert "Ola" in page and "Archived" in page and 'name="find"' not in page

    assert post_form(client, f"/staff/circles/{circle_id}/restore").status_code == 302
    assert in_a(app, world, lambda: [c.id for c in circles.active_circles()]) == [circle_id]
    assert {"circle.archived", "circle.restored"} <= set(audit_actions(app, world))
    assert contact_id


# --- who may do what: 404 before 403 -----------------------------------------------------------------------

def test_staff_see_circles_but_cannot_manage_them(world, staff_client, app):
    circle_id = in_a(app, world, lambda: make_circle("Partners").id)
    client = staff_client("staff")
    listing = client.get("/staff/circles").get_data(as_text=True)
    assert "Partners" in listing and "New circle" not in listing
    page = client.get(f"/staff/circles/{circle_id}").get_data(as_text=True)
    assert "Edit circle" not in page and "Assign a teammate" not in page
    assert client.get("/staff/circles/new").status_code == 403
    assert post_form(client, "/staff/circles/new", {"name": "Mine", "color": "#123456"}).status_code == 403
    assert client.get(f"/staff/circles/{circle_id}/edit").status_code == 403
    assert post_form(client, f"/staff/circles/{circle_id}/archive").status_code == 403
    assert post_form(client, f"/staff/circles/{circle_id}/staff",
                     {"staff_id": world.a.members["staff"].id}).status_code == 403
    assert in_a(app, world, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Circle))) == 1


def test_another_tenants_circle_is_404_before_any_permission_check(world, staff_client, app):
    b_circle = in_b(app, world, lambda: make_circle("CANARY-B circle").id)
    own_contact = in_a(app, world, lambda: make_contact("Own", owner_id=world.a.members["staff"].id).id)
    client = staff_client("staff")
    for path in (f"/staff/circles/{b_circle}", f"/staff/circles/{b_circle}/edit"):
        assert client.get(path).status_code == 404
    for path in (f"/staff/circles/{b_circle}/archive", f"/staff/circles/{b_circle}/staff",
                 f"/staff/circles/{b_circle}/contacts", f"/staff/contacts/{own_contact}/circles/{b_circle}/remove"):
        assert post_form(client, path, {"contact_id": own_contact}).status_code == 404
    # B's circle named in a form on A's own contact is "no such circle", not a change
    response = post_form(client, f"/staff/contacts/{own_contact}/circles", {"circle_id": b_circle},
                         follow_redirects=True)
    assert "Choose a circle." in response.get_data(as_text=True)
    assert "CANARY-B" not in response.get_data(as_text=True)
    assert in_a(app, world, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(CircleMember))) == 0


def test_staff_change_circles_of_their_own_contacts_only(world, staff_client, app):
    staff_id = world.a.members["staff"].id

    def setup():
        circle = make_circle("Newsletter")
        return circle.id, make_contact("Mine", owner_id=staff_id).id, make_contact("Theirs").id
    circle_id, mine, theirs = in_a(app, world, setup)
    client = staff_client("staff")

    response = post_form(client, f"/staff/contacts/{mine}/circles", {"circle_id": circle_id})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/staff/contacts/{mine}")
    assert post_form(client, f"/staff/contacts/{theirs}/circles", {"circle_id": circle_id}).status_code == 403
    assert post_form(client, f"/staff/circles/{circle_id}/contacts", {"contact_id": theirs}).status_code == 403

    # the circle page offers "Remove" only where they may use it
    in_a(app, world, lambda: add_to_circle(db.session.get(Circle, circle_id), contact=db.session.get(Contact, theirs)))
    page = client.get(f"/staff/circles/{circle_id}").get_data(as_text=True)
    assert f"/staff/circles/{circle_id}/contacts/{mine}/remove" in page
    assert f"/staff/circles/{circle_id}/contacts/{theirs}/remove" not in page
    assert post_form(client, f"/staff/circles/{circle_id}/contacts/{theirs}/remove").status_code == 403
    assert post_form(client, f"/staff/contacts/{theirs}/circles/{circle_id}/remove").status_code == 403

    response = post_form(client, f"/staff/contacts/{mine}/circles/{circle_id}/remove")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/staff/contacts/{mine}")
    current = in_a(app, world, lambda: sorted(db.session.scalars(
        sa.select(CircleMember.contact_id).where(CircleMember.removed_at.is_(None)))))
    assert current == [theirs]


def test_services_refuse_without_permission(world, app):
    def run():
        staff = member(world, "staff")
        circle = make_circle("Partners")
        theirs = make_contact("Theirs")
        with pytest.raises(ServiceError, match="permission to change this contact's circles"):
            circles.add_contact_to_circle(circle, theirs, staff)
        with pytest.raises(ServiceError, match="permission to manage circles"):
            circles.create_circle("Mine", None, "#123456", staff)
        with pytest.raises(ServiceError, match="permission to manage circles"):
            circles.assign_staff(circle, staff, staff)
    in_a(app, world, run)


# --- membership and its history ----------------------------------------------------------------------

def test_history_is_kept_when_a_contact_leaves_and_comes_back(world, staff_client, app):
    def setup():
        return make_circle("Board").id, make_contact("Hana", "Hist").id
    circle_id, contact_id = in_a(app, world, setup)
    admin, owner = staff_client("admin"), staff_client("owner")

    post_form(admin, f"/staff/contacts/{contact_id}/circles", {"circle_id": circle_id})
    again = post_form(admin, f"/staff/contacts/{contact_id}/circles", {"circle_id": circle_id}, follow_redirects=True)
    assert "Already in “Board”." in again.get_data(as_text=True)
    post_form(owner, f"/staff/circles/{circle_id}/contacts/{contact_id}/remove")
    post_form(admin, f"/staff/circles/{circle_id}/contacts", {"contact_id": contact_id})

    def check():
        contact = db.session.get(Contact, contact_id)
        rows = circles.membership_history(contact)
        assert [r.circle.name for r in rows] == ["Board", "Board"]
        newest, oldest = rows
        assert newest.current and newest.added_by.name == "Adam Admin" and newest.removed_by is None
        assert not oldest.current and oldest.added_by.name == "Adam Admin"
        assert oldest.removed_by.name == "Olivia Owner" and oldest.removed_at >= oldest.added_at
        assert [c.name for c in circles.circles_of_contact(contact)] == ["Board"]
        timeline = db.session.scalars(sa.select(TimelineEntry).where(TimelineEntry.contact_id == contact_id)
                                      .order_by(TimelineEntry.id)).all()
        assert [(t.kind, t.summary, t.actor_label) for t in timeline] == [
            ("circle_added", "Added to the circle “Board”", "Adam Admin"),
            ("circle_removed", "Removed from the circle “Board”", "Olivia Owner"),
            ("circle_added", "Added to the circle “Board”", "Adam Admin"),
        ]
        assert all(t.subject_type == "circle" and t.subject_id == circle_id for t in timeline)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CircleMember)) == 2
    in_a(app, world, check)

    page = owner.get(f"/staff/circles/{circle_id}").get_data(as_text=True)
    history = page[page.index('id="history"'):]
    assert history.count("Hana Hist") == 2 and "by Olivia Owner" in history and "Still a member" in history


def test_services_say_whether_anything_changed(world, app):
    def run():
        admin = member(world, "admin")
        circle = make_circle("Partners")
        contact, company = make_contact("Sol"), make_company("Solar Ltd")
        assert circles.add_contact_to_circle(circle, contact, admin) is True
        assert circles.add_contact_to_circle(circle, contact, admin) is False
        assert circles.add_company_to_circle(circle, company, admin) is True
        assert circles.add_company_to_circle(circle, company, admin) is False
        assert circles.member_counts() == {circle.id: 2}
        assert circles.remove_company_from_circle(circle, company, admin) is True
        assert circles.remove_company_from_circle(circle, company, admin) is False
        assert circles.remove_contact_from_circle(circle, contact, admin) is True
        assert circles.remove_contact_from_circle(circle, contact, admin) is False
        assert circles.member_counts() == {}
        kinds = db.session.scalars(sa.select(TimelineEntry.kind).where(TimelineEntry.company_id == company.id)
                                   .order_by(TimelineEntry.id)).all()
        assert kinds == ["circle_added", "circle_removed"]
        assert [r.removed_by.id for r in circles.company_membership_history(company)] == [admin.id]
    in_a(app, world, run)


def test_a_contact_may_be_in_many_circles(world, app):
    def run():
        admin = member(world, "admin")
        contact = make_contact("Multi")
        for name in ("b circle", "A circle", "c circle"):
            circles.add_contact_to_circle(make_circle(name), contact, admin)
        return [c.name for c in circles.circles_of_contact(contact)]
    assert in_a(app, world, run) == ["A circle", "b circle", "c circle"]


def test_add_and_remove_companies_from_the_circle_page(world, staff_client, app):
    def setup():
        return make_circle("Suppliers").id, make_company("Widgets Ltd", domain="widgets.example").id
    circle_id, company_id = in_a(app, world, setup)
    client = staff_client("admin")
    found = client.get(f"/staff/circles/{circle_id}?find_company=widg").get_data(as_text=True)
    assert "Widgets Ltd" in found and 'name="company_id"' in found
    assert "No company matches" in client.get(f"/staff/circles/{circle_id}?find_company=zzz").get_data(as_text=True)
    response = post_form(client, f"/staff/circles/{circle_id}/companies", {"company_id": company_id})
    assert response.status_code == 302
    page = client.get(f"/staff/circles/{circle_id}").get_data(as_text=True)
    assert "Companies <small class=\"muted\">(1)</small>" in page and "widgets.example" in page
    post_form(client, f"/staff/circles/{circle_id}/companies/{company_id}/remove")
    assert in_a(app, world, lambda: circles.member_counts()) == {}


def test_find_by_email_or_name_and_add_from_the_results(world, staff_client, app):
    def setup():
        circle = make_circle("Prospects")
        make_contact("Grace", "Hopper", email="grace@navy.example")
        make_contact("Alan", "Turing", email="alan@bletchley.example")
        return circle.id
    circle_id = in_a(app, world, setup)
    client = staff_client("admin")
    by_email = client.get(f"/staff/circles/{circle_id}?find=GRACE@navy.example").get_data(as_text=True)
    assert "Grace Hopper" in by_email and "Alan Turing" not in by_email
    by_name = client.get(f"/staff/circles/{circle_id}?find=turing").get_data(as_text=True)
    assert "Alan Turing" in by_name and "Grace Hopper" not in by_name
    nothing = client.get(f"/staff/circles/{circle_id}?find=nobody%25").get_data(as_text=True)
    assert "No contact matches “nobody%”" in nothing and 'id="find-error"' in nothing and 'value="nobody%"' in nothing

    alan = in_a(app, world, lambda: db.session.scalar(sa.select(Contact.id).where(Contact.last_name == "Turing")))
    response = post_form(client, f"/staff/circles/{circle_id}/contacts", {"contact_id": alan, "find": "turing"})
    assert response.headers["Location"].endswith(f"/staff/circles/{circle_id}?find=turing#contacts")
    page = client.get(f"/staff/circles/{circle_id}?find=turing").get_data(as_text=True)
    assert "Already in this circle" in page and "Added" in page


def test_contacts_are_paginated(world, staff_client, app):
    def setup():
        circle = make_circle("Big")
        for i in range(30):
            add_to_circle(circle, contact=make_contact("Member", f"N{i:02d}"))
        return circle.id
    circle_id = in_a(app, world, setup)
    client = staff_client("admin")

    def contacts_section(query=""):
        page = client.get(f"/staff/circles/{circle_id}{query}").get_data(as_text=True)
        return page[page.index('id="contacts"'):page.index('id="companies"')]

    first = contacts_section()
    assert "Contacts <small class=\"muted\">(30)</small>" in first
    assert "Member N00" in first and "Member N24" in first and "Member N25" not in first
    assert "Page 1 of 2" in first and "page=2" in first
    second = contacts_section("?page=2")
    assert "Member N25" in second and "Member N29" in second and "Member N00" not in second
    assert "Member N29" in contacts_section("?page=99")  # past the end: the last page


# --- staff assigned to circles, and restricted visibility ---------------------------------------------

def test_admin_assigns_and_unassigns_staff(world, staff_client, app):
    circle_id = in_a(app, world, lambda: make_circle("North").id)
    staff_id = world.a.members["staff"].id
    client = staff_client("admin")
    page = client.get(f"/staff/circles/{circle_id}").get_data(as_text=True)
    assert "Nobody is assigned to this circle." in page and "Assign a teammate" in page
    response = post_form(client, f"/staff/circles/{circle_id}/staff", {"staff_id": staff_id}, follow_redirects=True)
    assert "Sam Staff is assigned to “North”." in response.get_data(as_text=True)
    assigned = in_a(app, world, lambda: [s.id for s in circles.staff_of_circle(db.session.get(Circle, circle_id))])
    assert assigned == [staff_id]
    assert post_form(client, f"/staff/circles/{circle_id}/staff/{staff_id}/remove").status_code == 302
    assert in_a(app, world, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(CircleStaff))) == 0
    assert {"circle.staff_assigned", "circle.staff_unassigned"} <= set(audit_actions(app, world))
    # another tenant's staff member is not someone to assign
    b_staff = world.b.members["staff"].id
    refused = post_form(client, f"/staff/circles/{circle_id}/staff", {"staff_id": b_staff}, follow_redirects=True)
    assert "Choose a teammate to assign." in refused.get_data(as_text=True)
    assert post_form(client, f"/staff/circles/{circle_id}/staff/{b_staff}/remove").status_code == 404


@pytest.fixture
def restricted(app, world):
    """Tenant A restricts Staff to their own contacts and their circles. Circle "North" holds
    Sam's own contact, one of Olivia's (hidden from Sam) and a company; circle "South" is
    assigned to Sam and holds another of Olivia's contacts, also in "North"."""
    staff_id, owner_id = world.a.members["staff"].id, world.a.members["owner"].id

    def setup():
        restrict_staff_visibility()
        north, south = make_circle("North"), make_circle("South")
        own = make_contact("Own", "Contact", owner_id=staff_id)
        hidden = make_contact("Hidden", "Person", owner_id=owner_id, email="hidden@acme.example")
        shared = make_contact("Shared", "ViaSouth", owner_id=owner_id)
        for c in (own, hidden, shared):
            add_to_circle(north, contact=c)
        add_to_circle(south, contact=shared)
        add_to_circle(north, company=make_company("Northwind"))
        assign_to_circle(south, staff_id)
        return {"north": north.id, "south": south.id, "own": own.id, "hidden": hidden.id, "shared": shared.id}
    return in_a(app, world, setup)


def test_restricted_staff_do_not_see_hidden_contacts_in_circles(world, staff_client, app, restricted):
    client = staff_client("staff")
    north = restricted["north"]
    page = client.get(f"/staff/circles/{north}").get_data(as_text=True)
    assert "Own Contact" in page and "Shared ViaSouth" in page and "Northwind" in page
    assert "Hidden Person" not in page and "hidden@acme.example" not in page
    assert "Contacts <small class=\"muted\">(2)</small>" in page

    counts = in_a(app, world, lambda: circles.member_counts(member(world, "staff")))
    assert counts == {north: 3, restricted["south"]: 1}  # 2 visible contacts + the company
    listing = client.get("/staff/circles").get_data(as_text=True)
    assert '<td data-label="Members">3</td>' in listing

    # nor in search, nor by id
    assert "Hidden Person" not in client.get(f"/staff/circles/{north}?find=hidden").get_data(as_text=True)
    assert post_form(client, f"/staff/circles/{north}/contacts/{restricted['hidden']}/remove").status_code == 404
    assert post_form(client, f"/staff/contacts/{restricted['hidden']}/circles", {"circle_id": north}).status_code == 404
    refused = post_form(client, f"/staff/circles/{north}/contacts", {"contact_id": restricted["hidden"]},
                        follow_redirects=True)
    assert "That contact could not be found." in refused.get_data(as_text=True)

    # the owner sees everything
    owner_page = staff_client("owner").get(f"/staff/circles/{north}").get_data(as_text=True)
    assert "Hidden Person" in owner_page and "Contacts <small class=\"muted\">(3)</small>" in owner_page
    assert in_a(app, world, lambda: circles.member_counts(member(world, "owner")))[north] == 4


def test_assigning_a_circle_lets_restricted_staff_see_its_contacts(world, staff_client, app, restricted):
    north = restricted["north"]
    admin = staff_client("admin")
    post_form(admin, f"/staff/circles/{north}/staff", {"staff_id": world.a.members["staff"].id})
    page = staff_client("staff").get(f"/staff/circles/{north}").get_data(as_text=True)
    assert "Hidden Person" in page and "Contacts <small class=\"muted\">(3)</small>" in page


def test_history_leaves_out_hidden_contacts(world, staff_client, app, restricted):
    page = staff_client("staff").get(f"/staff/circles/{restricted['north']}").get_data(as_text=True)
    history = page[page.index('id="history"'):]
    assert "Own Contact" in history and "Northwind" in history and "Hidden Person" not in history


def test_archived_and_merged_contacts_are_not_counted(world, app):
    def run():
        from core.db import utcnow
        circle = make_circle("Mixed")
        live, gone = make_contact("Live"), make_contact("Gone")
        add_to_circle(circle, contact=live)
        add_to_circle(circle, contact=gone)
        gone.archived_at = utcnow()
        db.session.flush()
        return circles.member_counts()[circle.id], circles.circle_contacts(circle, None).total
    assert in_a(app, world, run) == (1, 1)


# --- no N+1 ----------------------------------------------------------------------------------------------

def _grow_circle(app, world, circle_id, n):
    staff_id, owner_id = world.a.members["staff"].id, world.a.members["owner"].id

    def run():
        circle = db.session.get(Circle, circle_id)
        admin = member(world, "admin")
        for i in range(n):
            contact = make_contact("Grown", f"G{i}", owner_id=staff_id if i % 2 else owner_id)
            circles.add_contact_to_circle(circle, contact, admin)
            company = make_company(f"Grown Co {i}")
            circles.add_company_to_circle(circle, company, admin)
            if i % 3 == 0:
                circles.remove_company_from_circle(circle, company, admin)
    in_a(app, world, run)


@pytest.mark.parametrize("role, restricted", [("admin", False), ("staff", False), ("staff", True)])
def test_circle_page_runs_the_same_queries_however_many_members(world, staff_client, app, role, restricted):
    def setup():
        if restricted:
            restrict_staff_visibility()
        return make_circle("Counted").id
    circle_id = in_a(app, world, setup)
    _grow_circle(app, world, circle_id, 2)
    client = staff_client(role)
    path = f"/staff/circles/{circle_id}?find=grown&find_company=grown"
    client.get(path)  # warm up
    with counted_queries(app) as few:
        assert client.get(path).status_code == 200
    _grow_circle(app, world, circle_id, 20)
    with counted_queries(app) as many:
        page = client.get(path).get_data(as_text=True)
    assert "Grown G19" in page or "Page 1 of" in page
    assert len(many) == len(few), f"{len(few)} queries with few members, {len(many)} with 40 more"


def test_circle_list_runs_the_same_queries_however_many_circles(world, staff_client, app):
    client = staff_client("staff")
    in_a(app, world, lambda: add_to_circle(make_circle("First"), contact=make_contact("One")))
    client.get("/staff/circles")
    with counted_queries(app) as few:
        client.get("/staff/circles")

    def more():
        for i in range(15):
            circle = make_circle(f"More {i}", description="d")
            add_to_circle(circle, contact=make_contact("X"))
            add_to_circle(circle, company=make_company())
    in_a(app, world, more)
    client.get("/staff/circles")  # new circles are a change of configuration: the caches refill once
    with counted_queries(app) as many:
        assert "More 14" in client.get("/staff/circles").get_data(as_text=True)
    assert len(many) == len(few)
