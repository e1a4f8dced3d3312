"""Who may manage the team, and the invitation flow."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from core.identity import StaffUser
from core.tenancy import tenant_context
from tests.support import login_staff, post_form


def _member(app, tenant_id, member_id) -> StaffUser:
    with app.app_context(), tenant_context(tenant_id):
        user = db.session.get(StaffUser, member_id)
        db.session.expunge(user)
        return user


@pytest.mark.parametrize("path", ["/staff/team", "/staff/team/invite", "/staff/audit", "/staff/settings/branding"])
def test_staff_role_cannot_reach_admin_pages(world, staff_client, path):
    response = staff_client("staff").get(path)
    assert response.status_code == 403
    assert "Your account does not have permission" in response.get_data(as_text=True)


def test_staff_role_cannot_change_a_member(world, staff_client, app):
    owner = world.a.members["owner"]
    response = post_form(staff_client("staff"), f"/staff/team/{owner.id}", {"role": "staff", "active": "y"})
    assert response.status_code == 403
    assert _member(app, world.a.id, owner.id).role == "owner"


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_staff_navigation_shows_only_what_the_role_may_use(world, staff_client, role):
    page = staff_client(role).get("/staff/").get_data(as_text=True)
    assert ('href="/staff/team"' in page) is (role == "admin")
    assert ('href="/staff/audit"' in page) is (role == "admin")


def test_admin_cannot_demote_or_deactivate_the_owner(world, staff_client, app):
    admin = staff_client("admin")
    owner = world.a.members["owner"]
    for data in ({"role": "admin", "active": "y"}, {"role": "owner"}):
        response = post_form(admin, f"/staff/team/{owner.id}", data)
        assert response.status_code == 200
        assert "Only an Owner can change an Owner" in response.get_data(as_text=True)
    stored = _member(app, world.a.id, owner.id)
    assert (stored.role, stored.active) == ("owner", True)


def test_admin_cannot_make_someone_owner(world, staff_client, app):
    staff = world.a.members["staff"]
    response = post_form(staff_client("admin"), f"/staff/team/{staff.id}", {"role": "owner", "active": "y"})
    assert "Only an Owner can change an Owner or make someone an Owner." in response.get_data(as_text=True)
    assert _member(app, world.a.id, staff.id).role == "staff"


def test_nobody_changes_their_own_role(world, staff_client, app):
    owner = world.a.members["owner"]
    response = post_form(staff_client("owner"), f"/staff/team/{owner.id}", {"role": "staff", "active": "y"})
    assert "You cannot change your own role or access" in response.get_data(as_text=True)
    assert _member(app, world.a.id, owner.id).role == "owner"


def test_the_last_owner_stays(world, staff_client, app):
    # Make the admin a second owner; then each may demote the other only while one remains.
    owner, admin = world.a.members["owner"], world.a.members["admin"]
    olivia = staff_client("owner")
    post_form(olivia, f"/staff/team/{admin.id}", {"role": "owner", "active": "y"})
    assert _member(app, world.a.id, admin.id).role == "owner"
    adam = staff_client("admin")
    demoted = post_form(adam, f"/staff/team/{owner.id}", {"role": "admin", "active": "y"})
    assert demoted.status_code == 302
    assert _member(app, world.a.id, owner.id).role == "admin"
    # Olivia (now admin) cannot touch Adam, the only owner left.
    refused = post_form(olivia, f"/staff/team/{admin.id}", {"role": "admin", "active": "y"})
    assert "Only an Owner can change an Owner" in refused.get_data(as_text=True)


def test_owner_changes_role_and_it_is_audited(world, staff_client, app):
    staff = world.a.members["staff"]
    response = post_form(staff_client("owner"), f"/staff/team/{staff.id}", {"role": "admin", "active": "y"},
                         follow_redirects=True)
    assert f"Saved {staff.name}." in response.get_data(as_text=True)
    with app.app_context(), tenant_context(world.a.id):
        event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.role_changed")).one()
        assert (event.actor_label, event.real_actor_label, event.target_id) == (
            "olivia@acme.example", "olivia@acme.example", staff.id)
        assert event.details == {"from": "staff", "to": "admin"}


def test_deactivating_signs_the_member_out_at_once(world, staff_client, app):
    sam = staff_client("staff")
    assert sam.get("/staff/").status_code == 200
    post_form(staff_client("admin"), f"/staff/team/{world.a.members['staff'].id}", {"role": "staff"})
    assert sam.get("/staff/").status_code == 302
    team = staff_client("admin").get("/staff/team").get_data(as_text=True)
    assert "Deactivated" in team


def test_invitation_flow(world, staff_client, client_for, deliver, app):
    admin = staff_client("admin")
    response = post_form(admin, "/staff/team/invite", {"email": "Nora@Acme.example", "name": "", "role": "staff"},
                         follow_redirects=True)
    assert "Invitation sent to nora@acme.example." in response.get_data(as_text=True)
    assert "Invited" in admin.get("/staff/team").get_data(as_text=True)
    box = deliver()
    (mail,) = box.to("nora@acme.example")
    assert "Adam Admin has invited you to join Acme Corp" in box.body(mail)
    path = box.links(mail)[0].replace("http://acme.localhost", "")
    nora = client_for("acme")
    page = nora.get(path).get_data(as_text=True)
    assert "You are joining as <strong>Staff</strong>" in page
    mismatch = post_form(nora, path, {"name": "Nora N", "password": "lilac-harbor-window-3", "confirm": "other"})
    assert "The two passwords differ." in mismatch.get_data(as_text=True)
    joined = post_form(nora, path, {"name": "Nora N", "password": "lilac-harbor-window-3",
                                    "confirm": "lilac-harbor-window-3"}, follow_redirects=True)
    assert "Welcome to Acme Corp, Nora N." in joined.get_data(as_text=True)
    assert client_for("acme").get(path).status_code == 400  # used up
    assert login_staff(client_for("acme"), "nora@acme.example", "lilac-harbor-window-3").status_code == 302


def test_invite_rejects_bad_and_duplicate_emails(world, staff_client):
    admin = staff_client("admin")
    bad = post_form(admin, "/staff/team/invite", {"email": "not-an-email", "role": "staff"})
    assert "Enter a valid e-mail address." in bad.get_data(as_text=True)
    dup = post_form(admin, "/staff/team/invite", {"email": "SAM@acme.example", "role": "staff"})
    assert "sam@acme.example is already on the team." in dup.get_data(as_text=True)
    owner = post_form(admin, "/staff/team/invite", {"email": "boss@acme.example", "role": "owner"})
    assert "Only an Owner can invite another Owner." in owner.get_data(as_text=True)


def test_the_same_email_may_work_for_two_tenants(world, staff_client, app):
    response = post_form(staff_client("owner"), "/staff/team/invite",
                         {"email": world.b.members["staff"].email, "role": "staff"})
    assert response.status_code == 302


def test_audit_log_page_lists_events_for_admins(world, staff_client):
    admin = staff_client("admin")
    post_form(admin, f"/staff/team/{world.a.members['staff'].id}", {"role": "admin", "active": "y"})
    page = admin.get("/staff/audit").get_data(as_text=True)
    assert "staff.role_changed" in page and "Sam Staff" in page
    filtered = admin.get("/staff/audit?action=staff.login").get_data(as_text=True)
    assert "staff.login" in filtered and "<code>staff.role_changed</code>" not in filtered


def test_profile_name_change(world, staff_client):
    client = staff_client("staff")
    empty = post_form(client, "/staff/account", {"form": "profile", "profile-name": ""})
    assert "Enter your name." in empty.get_data(as_text=True)
    saved = post_form(client, "/staff/account", {"form": "profile", "profile-name": "Samantha"}, follow_redirects=True)
    assert "Your name is saved." in saved.get_data(as_text=True) and "Samantha" in saved.get_data(as_text=True)
