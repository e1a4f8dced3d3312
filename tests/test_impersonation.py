"""Impersonation (issue 15): who may see the product as whom, the banner, the time limit, what
ends it, what is refused meanwhile, and the record both identities leave."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from core.accounts import update_staff_member
from core.audit import AuditEvent
from core.db import db, utcnow
from core.identity import StaffUser, create_platform_admin  # noqa: F401
from core.impersonation import REFUSED, Impersonation
from core.roles import update_role_permissions
from core.permissions import role_permissions
from core.tenancy import Tenant, tenant_context
from crm.models import TimelineEntry
from portal.models import PortalAccount, PortalSession
from tests.factories import make_company, make_contact, make_portal_account, make_portal_login
from tests.support import PASSWORD, csrf_token, login_portal, login_staff, post_form, staff_member

BANNER = "Stop impersonating"


def _text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def client_contact(app, world):
    """A Client of tenant A with a portal login that may sign in: (contact id, account id)."""
    with app.app_context(), tenant_context(world.a.id):
        contact = make_contact("Bob", "Client", role="client", email="bob@client.example")
        account = make_portal_login(contact)
        ids = contact.id, account.id
        db.session.commit()
    return ids


def _impersonate_contact(client, contact_id, reason="they cannot find their invoice", **kwargs):
    return post_form(client, f"/staff/contacts/{contact_id}/impersonate",
                     {"reason": reason, "next": f"/staff/contacts/{contact_id}"}, **kwargs)


def _events(app, world, action):
    with app.app_context(), tenant_context(world.a.id):
        return [(e.actor_label, e.real_actor_label, e.details) for e in db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


def _live(app, world):
    with app.app_context(), tenant_context(world.a.id):
        return db.session.scalars(sa.select(Impersonation).where(Impersonation.ended_at.is_(None))).all()


# --- contacts: start, banner, stop ------------------------------------------------------------

def test_admin_sees_the_portal_as_a_client_and_stops_back_on_the_contact_page(app, world, staff_client, client_contact):
    contact_id, _ = client_contact
    admin = staff_client("admin")
    page = _text(admin.get(f"/staff/contacts/{contact_id}"))
    assert f'action="/staff/contacts/{contact_id}/impersonate"' in page and 'name="reason"' in page

    response = _impersonate_contact(admin, contact_id)
    assert response.status_code == 302 and response.headers["Location"].endswith("/portal/")
    portal = _text(admin.get("/portal/"))
    assert BANNER in portal and "Bob Client" in portal and "Adam Admin" in portal
    assert "min left" in portal
    staff_page = _text(admin.get("/staff/"))  # every page carries the banner
    assert BANNER in staff_page

    stopped = post_form(admin, "/staff/impersonation/stop")
    assert stopped.status_code == 302 and stopped.headers["Location"].endswith(f"/staff/contacts/{contact_id}")
    assert BANNER not in _text(admin.get(f"/staff/contacts/{contact_id}"))
    assert admin.get("/portal/").status_code == 302  # the portal is not theirs any more

    (started,) = _events(app, world, "impersonation.started")
    assert started[1] == "adam@acme.example" and started[2]["reason"] == "they cannot find their invoice"
    (ended,) = _events(app, world, "impersonation.stopped")
    assert ended[2]["why"] == "stopped" and ended[2]["reason"] == "they cannot find their invoice"
    log = _text(admin.get("/staff/audit"))
    assert "Impersonation started" in log and "Impersonation stopped" in log


def test_the_target_gets_no_session_or_cookie_of_their_own(app, world, staff_client, client_contact):
    contact_id, account_id = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    admin.get("/portal/")
    assert admin.get_cookie("portico_portal") is None
    with app.app_context(), tenant_context(world.a.id):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PortalSession)
                                 .where(PortalSession.account_id == account_id)) == 0


def test_a_get_or_a_post_without_csrf_cannot_start(app, world, staff_client, client_contact):
    contact_id, _ = client_contact
    admin = staff_client("admin")
    assert admin.get(f"/staff/contacts/{contact_id}/impersonate").status_code == 405
    assert admin.post(f"/staff/contacts/{contact_id}/impersonate", data={"reason": "x"}).status_code == 400
    assert _live(app, world) == []
    assert BANNER not in _text(admin.get("/staff/"))


def test_a_reason_is_required(app, world, staff_client, client_contact):
    contact_id, _ = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id, reason="  ")
    assert "Say why you need to impersonate" in _text(admin.get("/staff/"))
    assert _live(app, world) == []


def test_staff_without_the_permission_get_no_button_and_a_403(world, staff_client, client_contact):
    contact_id, _ = client_contact
    staff = staff_client("staff")
    assert "/impersonate" not in _text(staff.get(f"/staff/contacts/{contact_id}"))
    assert _impersonate_contact(staff, contact_id).status_code == 403


def test_a_contact_who_cannot_use_the_portal_cannot_be_impersonated(app, world, staff_client):
    with app.app_context(), tenant_context(world.a.id):
        lead = make_contact("Lee", "Lead", role="lead")
        make_portal_login(lead)
        pending = make_contact("Pen", "Ding", role="client")
        make_portal_account(pending)
        inactive = make_contact("Ina", "Ctive", role="client", is_active=False)
        make_portal_login(inactive)
        ids = lead.id, pending.id, inactive.id
        db.session.commit()
    admin = staff_client("admin")
    for contact_id in ids:
        assert "/impersonate" not in _text(admin.get(f"/staff/contacts/{contact_id}"))
        _impersonate_contact(admin, contact_id)
        assert "cannot use the portal now" in _text(admin.get("/staff/"))
    assert _live(app, world) == []


def test_another_tenants_contact_is_a_404(app, world, staff_client):
    with app.app_context(), tenant_context(world.b.id):
        contact = make_contact("CANARY-B", "Client", role="client")
        make_portal_login(contact)
        contact_id = contact.id
        db.session.commit()
    admin = staff_client("admin")
    assert _impersonate_contact(admin, contact_id).status_code == 404
    assert _live(app, world) == []


def test_a_company_is_impersonated_as_its_primary_contact(app, world, staff_client):
    with app.app_context(), tenant_context(world.a.id):
        company = make_company("Initech")
        contact = make_contact("Pia", "Primary", role="client", company_id=company.id, is_primary_contact=True)
        make_portal_login(contact)
        company_id = company.id
        db.session.commit()
    admin = staff_client("admin")
    page = _text(admin.get(f"/staff/companies/{company_id}"))
    assert f'action="/staff/companies/{company_id}/impersonate"' in page
    response = post_form(admin, f"/staff/companies/{company_id}/impersonate", {"reason": "billing question"})
    assert response.headers["Location"].endswith("/portal/")
    assert "Pia Primary" in _text(admin.get("/portal/"))


# --- staff -------------------------------------------------------------------------------------

def test_admin_sees_the_staff_area_as_a_staff_member_with_their_limits(app, world, staff_client):
    admin = staff_client("admin")
    team = _text(admin.get("/staff/team"))
    sam, olivia = world.a.members["staff"].id, world.a.members["owner"].id
    assert f'action="/staff/team/{sam}/impersonate"' in team
    assert f'action="/staff/team/{olivia}/impersonate"' not in team  # never an Owner

    response = post_form(admin, f"/staff/team/{sam}/impersonate", {"reason": "check what Sam sees"})
    assert response.headers["Location"].endswith("/staff/")
    dashboard = _text(admin.get("/staff/"))
    assert BANNER in dashboard and "Sam Staff" in dashboard
    assert admin.get("/staff/team").status_code == 403  # Sam's limits, not Adam's
    assert admin.get("/staff/audit").status_code == 403

    post_form(admin, "/staff/impersonation/stop")
    assert admin.get("/staff/team").status_code == 200


@pytest.mark.parametrize("target", ["owner", "admin", "self"])
def test_never_an_owner_an_equal_or_oneself(app, world, staff_client, target):
    with app.app_context(), tenant_context(world.a.id):
        from core.accounts import create_staff_user
        other = create_staff_user("ada@acme.example", "Ada Admin", "admin", password=PASSWORD)
        db.session.commit()
        ids = {"owner": world.a.members["owner"].id, "admin": other.id, "self": world.a.members["admin"].id}
    admin = staff_client("admin")
    post_form(admin, f"/staff/team/{ids[target]}/impersonate", {"reason": "curious"})
    assert _live(app, world) == []
    assert BANNER not in _text(admin.get("/staff/"))


def test_an_owner_may_impersonate_an_admin(world, staff_client):
    owner = staff_client("owner")
    post_form(owner, f"/staff/team/{world.a.members['admin'].id}/impersonate", {"reason": "check admin view"})
    assert BANNER in _text(owner.get("/staff/"))


def test_no_chaining(app, world, staff_client, client_contact):
    contact_id, _ = client_contact
    owner = staff_client("owner")
    post_form(owner, f"/staff/team/{world.a.members['admin'].id}/impersonate", {"reason": "one"})
    # Seen as the Admin, who may impersonate: still no second level.
    _impersonate_contact(owner, contact_id)
    assert "impersonating someone already" in _text(owner.get("/staff/"))
    assert len(_live(app, world)) == 1
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    post_form(admin, f"/staff/team/{world.a.members['staff'].id}/impersonate", {"reason": "two"})
    assert len(_live(app, world)) == 2  # one each: Olivia's and Adam's


def test_writes_while_impersonating_name_both(app, world, staff_client, client_contact):
    contact_id, _ = client_contact
    with app.app_context(), tenant_context(world.a.id):
        from crm.models import Contact
        db.session.get(Contact, contact_id).owner_id = world.a.members["staff"].id  # Sam edits his own
        db.session.commit()
    admin = staff_client("admin")
    post_form(admin, f"/staff/team/{world.a.members['staff'].id}/impersonate", {"reason": "help Sam"})
    post_form(admin, f"/staff/contacts/{contact_id}/notes", {"body": "Called while seen as Sam"})
    with app.app_context(), tenant_context(world.a.id):
        entry = db.session.scalars(sa.select(TimelineEntry).where(TimelineEntry.contact_id == contact_id)
                                   .order_by(TimelineEntry.id.desc())).first()
        assert entry.actor_label == "Adam Admin as Sam Staff"
        event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action.like("note%"))
                                   .order_by(AuditEvent.id.desc())).first()
    if event is not None:
        assert (event.actor_label, event.real_actor_label) == ("sam@acme.example", "adam@acme.example")
    page = _text(admin.get(f"/staff/contacts/{contact_id}"))
    assert "Adam Admin as Sam Staff" in page


# --- what ends it --------------------------------------------------------------------------------

def test_it_ends_by_itself_after_the_tenants_time_limit(app, world, staff_client, client_contact):
    contact_id, _ = client_contact
    with app.app_context():
        db.session.get(Tenant, world.a.id).impersonation_minutes = 10
        db.session.commit()
    with freeze_time(utcnow()) as clock:
        admin = staff_client("admin")
        _impersonate_contact(admin, contact_id)
        clock.tick(timedelta(minutes=9))
        assert "1 min left" in _text(admin.get("/portal/"))
        clock.tick(timedelta(minutes=1, seconds=1))
        assert admin.get("/portal/").status_code == 302  # back to the admin: no portal login
        page = _text(admin.get("/staff/"))
        assert BANNER not in page and "its time was up" in page
    (ended,) = _events(app, world, "impersonation.ended")
    assert ended[2]["why"] == "expired"


def test_signing_out_ends_it(app, world, staff_client, client_contact):
    contact_id, _ = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    post_form(admin, "/staff/logout")
    assert admin.get("/portal/").status_code == 302
    login_staff(admin, world.a.members["admin"].email)
    assert BANNER not in _text(admin.get("/staff/"))
    assert _live(app, world) == []
    assert _events(app, world, "impersonation.stopped")[0][2]["why"] == "signed_out"


def test_deactivating_the_admin_ends_it(app, world, staff_client, client_contact):
    contact_id, _ = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    with app.app_context(), tenant_context(world.a.id):
        update_staff_member(staff_member(world.a, "owner"), staff_member(world.a, "admin"), role="admin", active=False)
        db.session.commit()
    assert admin.get("/portal/").status_code == 302
    assert BANNER not in _text(admin.get("/staff/login"))


def test_losing_the_permission_ends_it(app, world, staff_client, client_contact):
    contact_id, _ = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    with app.app_context(), tenant_context(world.a.id):
        perms = set(role_permissions(world.a.id)["admin"]) - {"people.impersonate"}
        update_role_permissions(staff_member(world.a, "owner"), {"admin": perms})
        db.session.commit()
    assert admin.get("/portal/").status_code == 302
    assert "you may no longer impersonate" in _text(admin.get("/staff/"))
    assert _events(app, world, "impersonation.ended")[0][2]["why"] == "permission"


def test_the_target_leaving_the_portal_ends_it(app, world, staff_client, client_contact):
    contact_id, account_id = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    with app.app_context(), tenant_context(world.a.id):
        db.session.get(PortalAccount, account_id).active = False
        db.session.commit()
    assert admin.get("/portal/").status_code == 302
    assert _events(app, world, "impersonation.ended")[0][2]["why"] == "target"


def test_portal_sign_out_while_impersonating_stops_and_leaves_the_targets_devices(app, world, staff_client,
                                                                                  client_contact, client_for):
    contact_id, account_id = client_contact
    own = client_for(world.a.slug)
    login_portal(own, "bob@client.example")
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    assert "Sign out" not in _text(admin.get("/portal/")).split(BANNER)[1]
    post_form(admin, "/portal/logout")
    assert _live(app, world) == []
    assert own.get("/portal/").status_code == 200  # Bob's own device is still signed in


# --- refused while impersonating ----------------------------------------------------------------

def test_portal_password_change_is_refused(app, world, staff_client, client_contact):
    contact_id, account_id = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    profile = _text(admin.get("/portal/profile"))
    assert 'name="password-current_password"' not in profile and "not possible while you are impersonating" in profile
    with app.app_context(), tenant_context(world.a.id):
        before = db.session.get(PortalAccount, account_id).password_hash
    response = admin.post("/portal/profile", data={
        "csrf_token": csrf_token(admin, "/portal/profile"), "form": "password",
        "password-current_password": PASSWORD, "password-password": "Quiet-harbour-lantern-1987",
        "password-confirm": "Quiet-harbour-lantern-1987"})
    assert REFUSED.split(":")[0] in _text(response) or REFUSED.split(":")[0] in _text(admin.get("/portal/profile"))
    with app.app_context(), tenant_context(world.a.id):
        assert db.session.get(PortalAccount, account_id).password_hash == before


def test_portal_device_sign_out_and_reset_requests_are_refused(app, world, staff_client, client_contact, client_for):
    contact_id, account_id = client_contact
    own = client_for(world.a.slug)
    login_portal(own, "bob@client.example")
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    response = post_form(admin, "/portal/profile/sessions/end", follow_redirects=True)
    assert REFUSED.split(":")[0] in _text(response)
    assert own.get("/portal/").status_code == 200
    response = admin.post("/portal/forgot", data={"csrf_token": csrf_token(admin, "/portal/forgot"),
                                                   "email": "bob@client.example"}, follow_redirects=True)
    assert REFUSED.split(":")[0] in _text(response)


def test_staff_password_change_is_refused(app, world, staff_client):
    admin = staff_client("admin")
    post_form(admin, f"/staff/team/{world.a.members['staff'].id}/impersonate", {"reason": "help Sam"})
    account = _text(admin.get("/staff/account"))
    assert 'name="password-current_password"' not in account
    with app.app_context(), tenant_context(world.a.id):
        before = staff_member(world.a, "staff").password_hash
    response = admin.post("/staff/account", data={
        "csrf_token": csrf_token(admin, "/staff/account"), "form": "password",
        "password-current_password": PASSWORD, "password-password": "Quiet-harbour-lantern-1987",
        "password-confirm": "Quiet-harbour-lantern-1987"}, follow_redirects=True)
    assert REFUSED.split(":")[0] in _text(response)
    with app.app_context(), tenant_context(world.a.id):
        assert staff_member(world.a, "staff").password_hash == before


# --- the record the person sees -----------------------------------------------------------------

def test_the_person_sees_when_and_by_whom_in_their_profile(app, world, staff_client, client_contact, client_for):
    contact_id, _ = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    post_form(admin, "/staff/impersonation/stop")
    own = client_for(world.a.slug)
    login_portal(own, "bob@client.example")
    profile = _text(own.get("/portal/profile"))
    assert "When staff saw your account as you" in profile and "Adam Admin" in profile
    contact_page = _text(admin.get(f"/staff/contacts/{contact_id}"))
    assert "Adam Admin started seeing the portal as them" in contact_page


def test_the_switcher_jumps_to_another_person(app, world, staff_client, client_contact):
    contact_id, _ = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    response = post_form(admin, "/staff/impersonation/switch", {"email": world.a.members["staff"].email})
    assert response.headers["Location"].endswith("/staff/")
    assert "Sam Staff" in _text(admin.get("/staff/")).split(BANNER)[0]
    live = _live(app, world)
    assert len(live) == 1 and live[0].target_staff_id == world.a.members["staff"].id
    post_form(admin, "/staff/impersonation/switch", {"email": world.a.members["owner"].email})
    assert len(_live(app, world)) == 1  # refused: still Sam


def test_the_notice_email_is_sent_when_the_tenant_wants_it(app, world, staff_client, client_contact, deliver):
    contact_id, _ = client_contact
    with app.app_context():
        db.session.get(Tenant, world.a.id).impersonation_notify = True
        db.session.commit()
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    (message,) = deliver().to("bob@client.example")
    assert "Adam Admin" in message.get_body(("plain",)).get_content()


def test_the_tenant_sets_the_time_limit(app, world, staff_client):
    owner = staff_client("owner")
    assert post_form(owner, "/staff/settings/impersonation", {"minutes": "15"}).status_code == 302
    with app.app_context():
        assert db.session.get(Tenant, world.a.id).impersonation_minutes == 15
    page = _text(post_form(owner, "/staff/settings/impersonation", {"minutes": "0"}))
    assert "Number must be between" in page


def test_a_portal_write_while_impersonating_names_both(app, world, staff_client, client_contact):
    from tests.portal.test_home import DETAILS

    contact_id, _ = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    response = admin.post("/portal/profile", data={"form": "details",
                                                   "details-csrf_token": csrf_token(admin, "/portal/profile"),
                                                   **DETAILS, "details-first_name": "Bobby"})
    assert response.status_code == 302
    with app.app_context(), tenant_context(world.a.id):
        entry = db.session.scalars(sa.select(TimelineEntry).where(TimelineEntry.contact_id == contact_id)
                                   .order_by(TimelineEntry.id.desc())).first()
        assert entry.actor_label.startswith("Adam Admin as ")
    page = _text(admin.get(f"/staff/contacts/{contact_id}"))
    assert "Adam Admin as " in page and "on the portal" in page


def test_a_staff_password_reset_request_is_refused(app, world, staff_client, client_contact, deliver):
    contact_id, _ = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    response = admin.post("/staff/password/forgot", data={"csrf_token": csrf_token(admin, "/staff/password/forgot"),
                                                          "email": world.a.members["admin"].email},
                          follow_redirects=True)
    assert REFUSED.split(":")[0] in _text(response)
    assert deliver().to(world.a.members["admin"].email) == []


@pytest.mark.parametrize("path", ["/portal/billing/checkout", "/portal/billing/manage"])
def test_checkout_and_payment_methods_are_refused(app, world, staff_client, client_contact, path):
    contact_id, _ = client_contact
    admin = staff_client("admin")
    _impersonate_contact(admin, contact_id)
    response = post_form(admin, path, {"plan_id": "1"})
    assert response.status_code == 422 and REFUSED.split(":")[0] in _text(response)
