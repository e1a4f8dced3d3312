"""Roles and permissions: a tenant's Owners shape what Admins and Staff may do; can() reads the
tenant's sets (once per request); the guard-rails keep the tenant able to run itself."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from core.audit import AuditEvent
from core.db import db
from core.errors import ServiceError
from core.identity import StaffUser
from core.permissions import DEFAULT_ROLE_PERMISSIONS, PERMISSIONS, RolePermission, can
from core.roles import update_role_permissions
from core.tenancy import cross_tenant, tenant_context
from staff.roles import field_name
from tests.support import in_tenant, post_form
from tests.factories import make_contact, restrict_staff_visibility

PAGE = "/staff/settings/roles"


def matrix(roles=("admin", "staff"), grant=(), revoke=()) -> dict:
    """The form the page sends for the default sets, with `grant`/`revoke` ((role, permission)
    pairs) changed: every ticked box of the roles shown, fixed ones included."""
    data = {}
    for role in roles:
        wanted = (set(DEFAULT_ROLE_PERMISSIONS[role]) | {p for r, p in grant if r == role}) - {
            p for r, p in revoke if r == role}
        data.update({field_name(role, p): "y" for p in PERMISSIONS if p in wanted})
    return data


def _rows(app, tenant_id) -> list[tuple]:
    with app.app_context(), tenant_context(tenant_id):
        return sorted(db.session.execute(sa.select(RolePermission.role, RolePermission.permission,
                                                   RolePermission.granted)).all())


def _audits(app, tenant_id) -> list[AuditEvent]:
    with app.app_context(), tenant_context(tenant_id):
        events = db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "roles.permissions_changed").order_by(AuditEvent.id)).all()
        db.session.expunge_all()
        return events


def _member(world, role, tenant="a") -> StaffUser:
    return db.session.get(StaffUser, getattr(world, tenant).members[role].id)


@pytest.fixture
def contacts(app, world):
    """Two look-alike contacts in A, owned by the Staff member (so Staff may see and edit them)."""
    staff_id = world.a.members["staff"].id
    return in_tenant(app, world.a, lambda: [
        make_contact("Ada", "Lovelace", email="ada@example.com", owner_id=staff_id).id,
        make_contact("Ada", "Lovelace", phone="+14155550100", owner_id=staff_id).id,
    ])


# --- who may open the page -----------------------------------------------------------------------

def test_owner_sees_the_matrix_with_the_defaults(world, staff_client):
    page = staff_client("owner").get(PAGE).get_data(as_text=True)
    assert "<h1>Roles and permissions</h1>" in page
    for label in PERMISSIONS.values():
        assert label.replace("'", "&#39;") in page
    # Staff export by default, and may not merge; Admins merge; fixed boxes are explained.
    assert '<input checked id="staff-contacts-export" name="staff-contacts-export" type="checkbox"' in page
    assert '<input id="staff-contacts-merge" name="staff-contacts-merge" type="checkbox"' in page
    assert '<input checked id="admin-contacts-merge" name="admin-contacts-merge" type="checkbox"' in page
    assert "Owners can always do everything, so your business can never lock itself out." in page
    assert "Everyone keeps this, or the staff area would have nothing to show them." in page
    assert "Admins always keep this: running the team is what the Admin role is for." in page
    assert "Never for Staff: with it, a Staff member could give people more than their own role has." in page
    # The fixed boxes are greyed out and send their value as it is.
    assert f'<input type="hidden" name="{field_name("admin", "staff.manage")}" value="y">' in page
    assert f'name="{field_name("staff", "staff.manage")}"' not in page
    assert 'href="/staff/settings/roles"' in page  # in the account menu


@pytest.mark.parametrize("role, linked", [("owner", True), ("admin", False)])
def test_the_team_page_links_to_the_roles(world, staff_client, role, linked):
    assert ("What each role may do" in staff_client(role).get("/staff/team").get_data(as_text=True)) is linked


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_admin_and_staff_without_the_permission_get_403(world, staff_client, app, role):
    client = staff_client(role)
    assert client.get(PAGE).status_code == 403
    response = post_form(client, PAGE, matrix(grant=[("staff", "contacts.merge")]))
    assert response.status_code == 403
    assert _rows(app, world.a.id) == []
    assert 'href="/staff/settings/roles"' not in client.get("/staff/").get_data(as_text=True)


def test_signed_out_visitors_are_sent_to_sign_in(world, client_for):
    response = client_for(world.a.slug).get(PAGE)
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


# --- changes take effect --------------------------------------------------------------------------

def test_staff_lose_export_when_the_tenant_takes_it_away(world, staff_client, app, contacts):
    sam = staff_client("staff")
    assert 'href="/staff/contacts/export?' in sam.get("/staff/contacts").get_data(as_text=True)
    assert sam.get("/staff/contacts/export?format=csv").status_code == 200

    response = post_form(staff_client("owner"), PAGE, matrix(revoke=[("staff", "contacts.export")]))
    assert response.status_code == 302
    assert _rows(app, world.a.id) == [("staff", "contacts.export", False)]

    page = sam.get("/staff/contacts").get_data(as_text=True)
    assert "Ada" in page and "/staff/contacts/export" not in page
    assert sam.get("/staff/contacts/export?format=csv").status_code == 403
    assert sam.get("/staff/contacts/export?format=xlsx").status_code == 403
    # Admins keep theirs.
    assert staff_client("admin").get("/staff/contacts/export?format=csv").status_code == 200


def test_staff_may_merge_once_granted(world, staff_client, app, contacts):
    sam = staff_client("staff")
    merge_url = f"/staff/contacts/merge?ids={contacts[0]}&ids={contacts[1]}"
    assert sam.get(merge_url).status_code == 403

    owner = staff_client("owner")
    # Roles are nested: Staff may have it because Admins do.
    response = post_form(owner, PAGE, matrix(grant=[("staff", "contacts.merge")]))
    assert response.status_code == 302
    landing = owner.get(response.headers["Location"]).get_data(as_text=True)
    assert "Staff can now merge duplicate contacts." in landing

    assert sam.get(merge_url).status_code == 200
    assert sam.get("/staff/duplicates").status_code == 200
    merged = post_form(sam, "/staff/contacts/merge", {"ids": contacts, "survivor": contacts[0]})
    assert merged.status_code == 302 and merged.headers["Location"].endswith(f"/staff/contacts/{contacts[0]}")


def test_setting_back_to_the_default_leaves_no_row(world, staff_client, app):
    owner = staff_client("owner")
    post_form(owner, PAGE, matrix(grant=[("staff", "audit.view")], revoke=[("admin", "settings.manage")]))
    assert _rows(app, world.a.id) == [("admin", "settings.manage", False), ("staff", "audit.view", True)]
    response = post_form(owner, PAGE, matrix())
    landing = owner.get(response.headers["Location"]).get_data(as_text=True)
    assert "Admins can now change the tenant&#39;s name and branding. Staff can no longer read the audit log." in landing
    assert _rows(app, world.a.id) == []
    again = post_form(owner, PAGE, matrix())
    assert "Nothing to change." in owner.get(again.headers["Location"]).get_data(as_text=True)


def test_a_change_is_audited_with_before_and_after(world, staff_client, app):
    post_form(staff_client("owner"), PAGE, matrix(revoke=[("staff", "contacts.export"), ("staff", "contacts.delete")]))
    [entry] = _audits(app, world.a.id)
    assert entry.actor_id == world.a.members["owner"].id
    assert entry.details["summary"] == ("Staff can no longer delete or archive contacts and companies and "
                                        "export lists of contacts.")
    assert set(entry.details["staff"]["before"]) - set(entry.details["staff"]["after"]) == {
        "contacts.export", "contacts.delete"}
    assert "admin" not in entry.details  # unchanged roles are not repeated
    log = staff_client("owner").get("/staff/audit").get_data(as_text=True)
    assert "Role permissions changed" in log


def test_tenant_b_is_not_affected(world, staff_client, app):
    post_form(staff_client("owner"), PAGE, matrix(revoke=[("staff", "contacts.export"), ("admin", "audit.view")]))
    assert _rows(app, world.b.id) == []
    assert staff_client("staff", tenant="b").get("/staff/contacts/export?format=csv").status_code == 200
    assert staff_client("admin", tenant="b").get("/staff/audit").status_code == 200
    assert staff_client("admin").get("/staff/audit").status_code == 403
    assert _audits(app, world.b.id) == []


def test_owners_may_let_admins_shape_the_staff_role_only(world, staff_client, app):
    owner = staff_client("owner")
    post_form(owner, PAGE, matrix(grant=[("admin", "roles.manage")]))
    adam = staff_client("admin")
    page = adam.get(PAGE).get_data(as_text=True)
    assert "Only an Owner can change what Admins may do." in page
    assert f'name="{field_name("admin", "audit.view")}"' not in page  # shown, not editable
    assert f'name="{field_name("staff", "audit.view")}"' in page

    # Admin boxes in the form are ignored: only the Staff role is Adam's to change.
    response = post_form(adam, PAGE, {**matrix(roles=("admin",), revoke=[("admin", "crm.configure")]),
                                      **matrix(roles=("staff",), grant=[("staff", "audit.view")])})
    assert response.status_code == 302
    assert _rows(app, world.a.id) == [("admin", "roles.manage", True), ("staff", "audit.view", True)]
    with app.app_context(), tenant_context(world.a.id):
        with pytest.raises(ServiceError, match="Only an Owner can change what Admins may do."):
            update_role_permissions(_member(world, "admin"), {"admin": DEFAULT_ROLE_PERMISSIONS["admin"]})


# --- guard-rails ----------------------------------------------------------------------------------

@pytest.mark.parametrize("grant, revoke, message", [
    ([], [("admin", "staff.manage")],
     "Admins must keep “Invite, deactivate and change the role of staff”: running the team is what the Admin "
     "role is for. To take it from someone, make them Staff."),
    ([], [("staff", "contacts.view")], "Staff must keep “See contacts and companies (those visible to them)”: "
                                       "everyone keeps it, or the staff area would have nothing to show them."),
    ([], [("admin", "dashboard.view")], "Admins must keep “See the staff dashboard”"),
    ([("staff", "roles.manage")], [], "Staff cannot be given “Change what each staff role may do”"),
    ([("staff", "staff.manage")], [], "Staff cannot be given “Invite, deactivate and change the role of staff”"),
    ([], [("admin", "contacts.export")], "Staff cannot have “Export lists of contacts” while Admins do not: "
                                         "Admins may do everything Staff may."),
])
def test_guard_rails_refuse_in_plain_words_and_change_nothing(world, staff_client, app, grant, revoke, message):
    owner = staff_client("owner")
    # Something allowed rides along: it must not be saved either.
    response = post_form(owner, PAGE, matrix(grant=[("staff", "contacts.merge"), *grant], revoke=revoke))
    assert response.status_code == 200
    assert message.replace("'", "&#39;") in response.get_data(as_text=True)
    assert _rows(app, world.a.id) == []
    assert _audits(app, world.a.id) == []


def test_a_form_without_the_fixed_boxes_is_refused(world, staff_client, app):
    response = post_form(staff_client("owner"), PAGE, {})
    assert "must keep" in response.get_data(as_text=True)
    assert _rows(app, world.a.id) == []


def test_the_owner_role_cannot_be_changed(world, app):
    with app.app_context(), tenant_context(world.a.id):
        with pytest.raises(ServiceError, match="Owners can always do everything"):
            update_role_permissions(_member(world, "owner"), {"owner": {"dashboard.view"}})
        with pytest.raises(ServiceError, match="no permission “billing.everything”"):
            update_role_permissions(_member(world, "owner"), {"staff": {"dashboard.view", "contacts.view",
                                                                        "billing.everything"}})
        assert can(_member(world, "owner"), "roles.manage")


# --- how can() reads the sets -----------------------------------------------------------------------

def test_the_sets_are_read_once_per_process_not_per_request(world, staff_client, app, contacts):
    """Many can() calls a page, and none of them reads the sets once this process holds them
    (core.tenant_cache; tests/test_tenant_cache.py shows a change reaching every process)."""
    sam = staff_client("staff")
    sam.get("/staff/contacts")
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if "role_permission" in statement:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        page = sam.get("/staff/contacts").get_data(as_text=True)  # many can() calls: nav, rows, export
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert "Ada" in page
    assert seen == [], seen


def test_outside_a_request_the_sets_are_read_afresh(world, app):
    with app.app_context(), tenant_context(world.a.id):
        sam = _member(world, "staff")
        assert can(sam, "contacts.export")
        update_role_permissions(_member(world, "owner"), matrix_sets(revoke=[("staff", "contacts.export")]))
        db.session.commit()
        assert not can(sam, "contacts.export")
        # A member has no permissions in another tenant's context.
        with cross_tenant("test: load B's owner", audit=False):
            b_owner = db.session.get(StaffUser, world.b.members["owner"].id)
        assert not can(b_owner, "dashboard.view")


def matrix_sets(revoke=()) -> dict[str, set[str]]:
    return {role: set(DEFAULT_ROLE_PERMISSIONS[role]) - {p for r, p in revoke if r == role}
            for role in ("admin", "staff")}


def test_seeing_every_contact_is_a_permission_the_roles_page_gives_and_takes(app, world, staff_client):
    """"contacts.manage_all" decides who sees past the Staff visibility rule, not the role's name:
    a Staff member given it sees another's contact; an Admin without it does not."""
    def setup():
        restrict_staff_visibility()
        return make_contact("Hidden", "Owner-Only", owner_id=world.a.members["owner"].id).id
    hidden_id = in_tenant(app, world.a, setup)
    staff, admin = staff_client("staff"), staff_client("admin")
    assert staff.get(f"/staff/contacts/{hidden_id}").status_code == 404
    assert "Owner-Only" in admin.get(f"/staff/contacts/{hidden_id}").get_data(as_text=True)

    owner = staff_client("owner")
    post_form(owner, PAGE, matrix(grant=[("staff", "contacts.manage_all")]))
    assert _rows(app, world.a.id) == [("staff", "contacts.manage_all", True)]
    assert "Owner-Only" in staff.get(f"/staff/contacts/{hidden_id}").get_data(as_text=True)
    assert "Owner-Only" in staff.get("/staff/contacts?q=owner-only").get_data(as_text=True)

    post_form(owner, PAGE, matrix(revoke=[("admin", "contacts.manage_all")]))  # roles stay nested: Staff lose it too
    assert _rows(app, world.a.id) == [("admin", "contacts.manage_all", False)]
    assert admin.get(f"/staff/contacts/{hidden_id}").status_code == 404
    assert "Owner-Only" not in admin.get("/staff/contacts?q=owner-only").get_data(as_text=True)
    assert "Owner-Only" in owner.get(f"/staff/contacts/{hidden_id}").get_data(as_text=True)
