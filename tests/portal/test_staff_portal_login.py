"""What staff do to a contact's portal login from the contact page: enable and disable it,
invite (choose-your-password link by real e-mail), resend the confirmation, see the last
sign-in and the devices, sign them all out. Every act audited; who may do what."""
from __future__ import annotations

import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from core.tenancy import tenant_context
from crm.models import TimelineEntry
from portal.models import PortalAccount, PortalSession
from tests.factories import make_contact, make_portal_account, make_portal_login
from tests.support import post_form

STRONG = "Quiet-harbour-lantern-1987"


def _text(response) -> str:
    return response.get_data(as_text=True)


def _contact(app, world, *, login: str | None = "ready", role="client", owner_id=None,
             **account_fields) -> tuple[int, int | None]:
    with app.app_context(), tenant_context(world.a.id):
        contact = make_contact("Dana", "Client", email="dana.client@example.com", role=role, owner_id=owner_id)
        account = None
        if login == "ready":
            account = make_portal_login(contact, **account_fields)
        elif login == "bare":
            account = make_portal_account(contact, **account_fields)
        db.session.commit()
        return contact.id, account.id if account else None


def _account(app, world, account_id) -> PortalAccount:
    with app.app_context(), tenant_context(world.a.id):
        account = db.session.get(PortalAccount, account_id)
        db.session.expunge(account)
        return account


def _actions(app, world) -> list[str]:
    with app.app_context(), tenant_context(world.a.id):
        return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def _sign_in(client_for, app, world):
    from tests.support import login_portal

    client = client_for("acme")
    assert login_portal(client, "dana.client@example.com").status_code == 302
    return client


def test_many_devices_show_the_latest_three_and_fold_the_rest(app, world, staff_client, client_for):
    import re

    contact_id, _ = _contact(app, world)
    for _ in range(5):
        _sign_in(client_for, app, world)
    page = _text(staff_client("admin").get(f"/staff/contacts/{contact_id}"))
    assert "5 devices" in page
    first_list, folded = page.split('<details class="portal-devices-more">')
    assert len(re.findall(r"<li>[^<]* · signed in", first_list)) == 3
    assert "<summary>2 more devices</summary>" in folded
    assert len(re.findall(r"<li>[^<]* · signed in", folded.split("</details>")[0])) == 2


def test_the_contact_page_shows_last_sign_in_and_devices_and_signs_them_all_out(app, world, staff_client,
                                                                                client_for):
    contact_id, account_id = _contact(app, world)
    staff = staff_client("admin")
    page = _text(staff.get(f"/staff/contacts/{contact_id}"))
    assert "Last sign-in</dt><dd>Never" in page and "no device" in page and "Sign out everywhere" not in page

    phone, laptop = _sign_in(client_for, app, world), _sign_in(client_for, app, world)
    page = _text(staff.get(f"/staff/contacts/{contact_id}"))
    assert "2 devices" in page and "Sign out everywhere" in page and "Last sign-in</dt><dd>Never" not in page

    response = post_form(staff, f"/staff/contacts/{contact_id}/portal/sign-out")
    assert response.status_code == 302
    assert "Signed out of the portal on 2 devices." in _text(staff.get(response.headers["Location"]))
    assert phone.get("/portal/").status_code == 302 and laptop.get("/portal/").status_code == 302
    assert "portal.sessions_ended" in _actions(app, world)
    with app.app_context(), tenant_context(world.a.id):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PortalSession)
                                 .where(PortalSession.revoked_at.is_(None))) == 0


def test_disable_signs_out_now_and_enable_lets_them_sign_in_again(app, world, staff_client, client_for):
    contact_id, account_id = _contact(app, world)
    portal = _sign_in(client_for, app, world)
    staff = staff_client("admin")
    response = post_form(staff, f"/staff/contacts/{contact_id}/portal/disable")
    assert "Portal login disabled; every device is signed out." in _text(staff.get(response.headers["Location"]))
    assert _account(app, world, account_id).active is False
    assert portal.get("/portal/").status_code == 302
    page = _text(staff.get(f"/staff/contacts/{contact_id}"))
    assert "Enable the login" in page and "Disabled" in page

    post_form(staff, f"/staff/contacts/{contact_id}/portal/enable")
    assert _account(app, world, account_id).active is True
    _sign_in(client_for, app, world)
    assert _actions(app, world)[-3:] == ["portal.login_disabled", "portal.login_enabled", "portal.login"]
    with app.app_context(), tenant_context(world.a.id):
        timeline = list(db.session.scalars(sa.select(TimelineEntry.summary).where(
            TimelineEntry.contact_id == contact_id)))
    assert "Portal login disabled" in timeline and "Portal login enabled" in timeline


def test_invite_a_contact_without_a_login(app, world, staff_client, client_for, deliver):
    contact_id, _ = _contact(app, world, login=None)
    staff = staff_client("admin")
    assert "Invite to the portal" in _text(staff.get(f"/staff/contacts/{contact_id}"))
    response = post_form(staff, f"/staff/contacts/{contact_id}/portal/invite")
    assert "Invitation sent to dana.client@example.com" in _text(staff.get(response.headers["Location"]))
    box = deliver()
    (message,) = box.to("dana.client@example.com")
    assert message["Subject"] == "Choose your password for Acme Corp"
    link = [u for u in box.links(message) if "/portal/set-password/" in u][0].replace("http://acme.localhost", "")
    portal = client_for("acme")
    done = post_form(portal, link, {"password": STRONG, "confirm": STRONG})
    assert done.headers["Location"] == "/portal/login"
    from tests.support import login_portal

    assert login_portal(portal, "dana.client@example.com", STRONG).status_code == 302
    assert portal.get("/portal/").status_code == 200
    actions = _actions(app, world)
    assert "portal.account_registered" in actions and "portal.invited" in actions


def test_invite_again_resends_the_link_but_not_once_a_password_is_chosen(app, world, staff_client, deliver):
    contact_id, account_id = _contact(app, world, login="bare", approval="approved")
    staff = staff_client("admin")
    post_form(staff, f"/staff/contacts/{contact_id}/portal/invite")
    assert len(deliver().to("dana.client@example.com")) == 1

    other_id, _ = _contact_with_password(app, world)
    response = post_form(staff, f"/staff/contacts/{other_id}/portal/invite", follow_redirects=True)
    assert "has already chosen a password" in _text(response)


def _contact_with_password(app, world):
    with app.app_context(), tenant_context(world.a.id):
        contact = make_contact("Eli", "Ready", email="eli.ready@example.com", role="client")
        account = make_portal_login(contact)
        db.session.commit()
        return contact.id, account.id


def test_resend_verification(app, world, staff_client, deliver):
    contact_id, account_id = _contact(app, world, email_verified_at=None)
    staff = staff_client("admin")
    page = _text(staff.get(f"/staff/contacts/{contact_id}"))
    assert "Resend the confirmation link" in page
    response = post_form(staff, f"/staff/contacts/{contact_id}/portal/resend-verification", follow_redirects=True)
    assert "Confirmation link sent again to dana.client@example.com." in _text(response)
    (message,) = deliver().to("dana.client@example.com")
    assert "/portal/verify/" in message.get_body(("plain",)).get_content()
    assert "portal.verification_resent" in _actions(app, world)


def test_staff_may_disable_but_only_approvers_let_people_in(app, world, staff_client, client_for):
    # The Staff role edits its own contacts, and by default does not approve portal logins.
    contact_id, account_id = _contact(app, world, owner_id=world.a.members["staff"].id)
    portal = _sign_in(client_for, app, world)
    staff = staff_client("staff")
    page = _text(staff.get(f"/staff/contacts/{contact_id}"))
    assert "Disable the login" in page and "Sign out everywhere" in page
    post_form(staff, f"/staff/contacts/{contact_id}/portal/disable")
    assert _account(app, world, account_id).active is False and portal.get("/portal/").status_code == 302

    page = _text(staff.get(f"/staff/contacts/{contact_id}"))
    assert "Enable the login" not in page
    response = post_form(staff, f"/staff/contacts/{contact_id}/portal/enable", follow_redirects=True)
    assert "takes the right to approve portal registrations" in _text(response)
    assert _account(app, world, account_id).active is False


def test_a_contact_the_member_may_not_edit_is_refused(app, world, staff_client):
    contact_id, account_id = _contact(app, world, owner_id=world.a.members["admin"].id)
    staff = staff_client("staff")
    assert "Disable the login" not in _text(staff.get(f"/staff/contacts/{contact_id}"))
    assert post_form(staff, f"/staff/contacts/{contact_id}/portal/disable").status_code == 403
    assert _account(app, world, account_id).active is True


def test_another_tenants_contact_is_a_404(app, world, staff_client):
    with app.app_context(), tenant_context(world.b.id):
        contact = make_contact("Bo", "Other", role="client")
        make_portal_login(contact)
        db.session.commit()
        b_contact = contact.id
    staff = staff_client("owner")
    for action in ("enable", "disable", "invite", "resend-verification", "sign-out"):
        assert post_form(staff, f"/staff/contacts/{b_contact}/portal/{action}").status_code == 404
