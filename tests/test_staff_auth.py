"""Staff sign-in, sign-out, remember-me and password reset, through the real pages."""
from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from freezegun import freeze_time

from core.audit import AuditEvent
from core.db import db, utcnow
from core.identity import StaffUser
from core.tenancy import Tenant, cross_tenant, tenant_context
from core.tenants import set_tenant_status
from tests.support import PASSWORD, login_staff, post_form

FAILED = "That e-mail and password do not match an account here."


def _page_text(response) -> str:
    # Drop the per-session CSRF token so two answers can be compared as a user sees them.
    return re.sub(r'(name="csrf[-_]token"[^>]*value|content)="[^"]*"', "", response.get_data(as_text=True))


def _audit_actions(app, tenant_id: int) -> list[str]:
    with app.app_context(), tenant_context(tenant_id):
        return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def test_sign_in_lands_on_dashboard_with_tenant_name(world, client_for, app):
    client = client_for("acme")
    assert client.get("/staff/").headers["Location"].startswith("/staff/login")
    response = login_staff(client, "olivia@acme.example")
    assert response.headers["Location"] == "/staff/"
    page = client.get("/staff/").get_data(as_text=True)
    assert "Acme Corp" in page and "Welcome back, Olivia Owner" in page
    assert "staff.login" in _audit_actions(app, world.a.id)


def test_email_is_matched_case_insensitively(world, client_for):
    client = client_for("acme")
    assert login_staff(client, "  Olivia@ACME.example ").status_code == 302


def test_wrong_password_and_unknown_email_look_the_same(world, client_for, monkeypatch):
    verified = []
    real_verify = PasswordHasher.verify

    def counting_verify(self, hash, password):
        verified.append(hash)
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    client = client_for("acme")
    wrong = login_staff(client, "olivia@acme.example", "not-the-password-at-all")
    after_wrong = len(verified)
    unknown = login_staff(client, "nobody@acme.example", "not-the-password-at-all")
    assert wrong.status_code == unknown.status_code == 200
    assert FAILED in wrong.get_data(as_text=True)
    assert _page_text(wrong).replace("olivia@acme.example", "X") == _page_text(unknown).replace("nobody@acme.example", "X")
    # Same work either way: one argon2 verification, so timing does not tell them apart.
    assert after_wrong == 1 and len(verified) == 2


def test_other_tenants_staff_cannot_sign_in_here(world, client_for):
    response = login_staff(client_for("acme"), world.b.members["owner"].email)
    assert FAILED in response.get_data(as_text=True)


def test_login_rate_limit(world, client_for):
    client = client_for("acme")
    for _ in range(10):
        assert login_staff(client, "olivia@acme.example", "wrong-password-xyz").status_code == 200
    blocked = login_staff(client, "olivia@acme.example", PASSWORD)
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    # Another tenant's sign-in page is not affected by this host's limit.
    assert login_staff(client_for("globex"), world.b.members["owner"].email).status_code == 302


def test_deactivated_user_is_told_only_after_the_right_password(world, client_for, app):
    with app.app_context(), tenant_context(world.a.id):
        db.session.get(StaffUser, world.a.members["staff"].id).active = False
        db.session.commit()
    client = client_for("acme")
    wrong = login_staff(client, "sam@acme.example", "wrong-password-xyz").get_data(as_text=True)
    assert FAILED in wrong and "deactivated" not in wrong
    right = login_staff(client, "sam@acme.example")
    assert right.status_code == 200
    assert "This account has been deactivated" in right.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_suspended_tenant_shows_suspended_page_and_ends_sessions(world, client_for, staff_client, app):
    signed_in = staff_client("owner")
    with app.app_context():
        with cross_tenant("suspend for a test", audit=False):
            set_tenant_status(db.session.get(Tenant, world.a.id), Tenant.SUSPENDED, reason="unpaid")
        db.session.commit()
    for client in (signed_in, client_for("acme")):
        for path in ("/", "/staff/", "/staff/login"):
            response = client.get(path)
            assert response.status_code == 403
            assert "Acme Corp is suspended" in response.get_data(as_text=True)
    anonymous = client_for("acme")
    assert anonymous.post("/staff/login", data={"email": "olivia@acme.example", "password": PASSWORD}).status_code == 403
    with app.app_context():
        with cross_tenant("reactivate for a test", audit=False):
            set_tenant_status(db.session.get(Tenant, world.a.id), Tenant.ACTIVE)
        db.session.commit()
    # Suspension rotated every session token: the old session does not come back.
    assert signed_in.get("/staff/").headers["Location"].startswith("/staff/login")


def test_sign_out_needs_post_and_ends_the_session(world, staff_client):
    client = staff_client("owner")
    assert client.get("/staff/logout").status_code == 405
    response = post_form(client, "/staff/logout", follow_redirects=True)
    assert "You are signed out." in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_remember_me_survives_the_browser_session(world, client_for):
    client = client_for("acme")
    login_staff(client, "olivia@acme.example", remember=True)
    remember = client.get_cookie("remember_token", domain="acme.localhost")
    assert remember is not None
    client.delete_cookie("session", domain="acme.localhost")
    assert client.get("/staff/").status_code == 200


def test_next_parameter_only_goes_to_this_site(world, client_for):
    client = client_for("acme")
    client.get("/staff/login?next=//evil.example/steal")
    response = post_form(client, "/staff/login?next=//evil.example/steal",
                         {"email": "olivia@acme.example", "password": PASSWORD})
    assert response.headers["Location"] == "/staff/"
    client2 = client_for("acme")
    response = post_form(client2, "/staff/login?next=/staff/account",
                         {"email": "olivia@acme.example", "password": PASSWORD})
    assert response.headers["Location"] == "/staff/account"


# --- password reset ---------------------------------------------------------------------------

def _request_reset(client, email):
    return post_form(client, "/staff/password/forgot", {"email": email}, follow_redirects=True)


def _reset_link(deliver, email) -> str:
    box = deliver()
    messages = box.to(email)
    assert len(messages) == 1, [m["To"] for m in box.messages]
    link = box.links(messages[0])[0]
    assert link.startswith("http://acme.localhost/staff/password/reset/")
    return link.replace("http://acme.localhost", "")


def test_reset_flow_and_token_is_single_use(world, client_for, deliver):
    client = client_for("acme")
    page = _request_reset(client, "olivia@acme.example").get_data(as_text=True)
    assert "If an account exists for that address" in page
    path = _reset_link(deliver, "olivia@acme.example")
    form = client.get(path)
    assert "Choose a new password" in form.get_data(as_text=True)
    weak = post_form(client, path, {"password": "password1", "confirm": "password1"})
    assert "too weak" in weak.get_data(as_text=True) or "at least" in weak.get_data(as_text=True)
    done = post_form(client, path, {"password": "violet-kettle-mountain-7", "confirm": "violet-kettle-mountain-7"},
                     follow_redirects=True)
    assert "Your password is changed" in done.get_data(as_text=True)
    assert login_staff(client_for("acme"), "olivia@acme.example", "violet-kettle-mountain-7").status_code == 302
    assert login_staff(client_for("acme"), "olivia@acme.example", PASSWORD).status_code == 200
    reused = client.get(path)
    assert reused.status_code == 400
    assert "This link no longer works" in reused.get_data(as_text=True)


def test_reset_token_expires_after_an_hour(world, client_for, deliver):
    client = client_for("acme")
    with freeze_time(utcnow()) as clock:
        _request_reset(client, "olivia@acme.example")
        path = _reset_link(deliver, "olivia@acme.example")
        clock.tick(timedelta(minutes=59))
        assert client.get(path).status_code == 200
        clock.tick(timedelta(minutes=2))
        expired = client.get(path)
    assert expired.status_code == 400
    assert "expired or has already been used" in expired.get_data(as_text=True)


def test_reset_for_unknown_or_other_tenant_email_sends_nothing(world, client_for, deliver):
    client = client_for("acme")
    known = _request_reset(client, "nobody@acme.example").get_data(as_text=True)
    assert "If an account exists for that address" in known
    _request_reset(client, world.b.members["owner"].email)
    assert deliver().messages == []


def test_changing_password_signs_out_other_devices(world, staff_client):
    laptop, phone = staff_client("owner"), staff_client("owner")
    response = post_form(laptop, "/staff/account", {
        "form": "password", "password-current_password": PASSWORD,
        "password-password": "granite-otter-sunrise-5", "password-confirm": "granite-otter-sunrise-5"},
        follow_redirects=True)
    assert "Your password is changed" in response.get_data(as_text=True)
    assert laptop.get("/staff/").status_code == 200
    assert phone.get("/staff/").status_code == 302


def test_changing_password_needs_the_current_one(world, staff_client):
    client = staff_client("owner")
    response = post_form(client, "/staff/account", {
        "form": "password", "password-current_password": "not-it-at-all",
        "password-password": "granite-otter-sunrise-5", "password-confirm": "granite-otter-sunrise-5"})
    assert "That is not your current password." in response.get_data(as_text=True)


def test_csrf_is_required(world, client_for):
    response = client_for("acme").post("/staff/login", data={"email": "olivia@acme.example", "password": PASSWORD})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)


def test_sign_out_ends_the_session_on_the_server(world, client_for):
    """A copy of the cookies taken before signing out is worth nothing afterwards."""
    client = client_for("acme")
    login_staff(client, "olivia@acme.example", remember=True)
    stolen = {name: client.get_cookie(name, domain="acme.localhost").value for name in ("session", "remember_token")}
    post_form(client, "/staff/logout")
    for name, value in stolen.items():
        thief = client_for("acme")
        thief.set_cookie(name, value, domain="acme.localhost")
        assert thief.get("/staff/").status_code == 302, f"the copied {name} cookie still signs in"


def test_each_device_signs_out_on_its_own(world, staff_client):
    laptop, phone = staff_client("owner"), staff_client("owner")
    post_form(laptop, "/staff/logout")
    assert laptop.get("/staff/").status_code == 302
    assert phone.get("/staff/").status_code == 200
