"""Signing in to the portal: who gets in (the one rule, before and after the password), the
portal's own sessions and cookie beside the staff ones, signing out, the safe `next`."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db, utcnow
from core.tenancy import tenant_context
from crm.models import Contact
from portal.models import PortalAccount, PortalSession
from tests.factories import make_contact, make_portal_login
from tests.support import PASSWORD, PORTAL_COOKIE, login_portal, login_staff, post_form

GENERIC = "That e-mail address and password do not match a portal login here."


def _text(response) -> str:
    return response.get_data(as_text=True)


def _without_tokens(page: str) -> str:
    return re.sub(r'(name="csrf[-_]token"[^>]*value|content)="[^"]*"', "", page)


def _ready(app, world, *, role="client", tenant="a", email=None, **account_fields) -> tuple[int, int, str]:
    """A contact of the tenant with a login that may sign in; (contact id, account id, e-mail)."""
    with app.app_context(), tenant_context(getattr(world, tenant).id):
        fields = {"role": role}
        if email:
            fields["email"] = email
        contact = make_contact("Robin", "Client", **fields)
        account = make_portal_login(contact, **account_fields)
        db.session.commit()
        return contact.id, account.id, account.email


def _change(app, world, model, ident, tenant="a", **values) -> None:
    with app.app_context(), tenant_context(getattr(world, tenant).id):
        row = db.session.get(model, ident)
        for name, value in values.items():
            setattr(row, name, value)
        db.session.commit()


def _sessions(app, world, account_id, tenant="a") -> list[PortalSession]:
    with app.app_context(), tenant_context(getattr(world, tenant).id):
        rows = list(db.session.scalars(sa.select(PortalSession).where(PortalSession.account_id == account_id)
                                       .order_by(PortalSession.id)))
        db.session.expunge_all()
        return rows


# --- signing in ------------------------------------------------------------------------------------

def test_sign_in_lands_on_the_branded_home_and_sets_the_portal_cookie_only(app, world, client_for):
    _, account_id, email = _ready(app, world)
    client = client_for("acme")
    page = client.get("/portal/login")
    assert page.status_code == 200 and "Sign in to Acme Corp" in _text(page)
    assert "Keep me signed in" in _text(page)

    response = login_portal(client, email)
    assert response.status_code == 302 and response.headers["Location"] == "/portal/"
    cookie = client.get_cookie(PORTAL_COOKIE, domain="acme.localhost", path="/portal")
    assert cookie is not None and cookie.http_only and cookie.path == "/portal" and cookie.expires is None
    set_cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(PORTAL_COOKIE)][0]
    assert "SameSite=Lax" in set_cookie and "HttpOnly" in set_cookie and "Max-Age" not in set_cookie

    home = client.get("/portal/")
    body = _text(home)
    assert home.status_code == 200 and "Welcome, Robin" in body and "This is your portal at Acme Corp" in body
    assert "Nothing here yet" in body
    assert "Sign out" in body and 'href="/portal/profile"' in body
    (row,) = _sessions(app, world, account_id)
    assert row.revoked_at is None and row.token == cookie.value
    # Without "keep me signed in" the row ends on the server within the short lifetime.
    assert (row.expires_at - row.created_at).total_seconds() == app.config["PORTAL_SESSION_MAX_AGE"]
    with app.app_context(), tenant_context(world.a.id):
        assert db.session.get(PortalAccount, account_id).last_login_at is not None
        assert "portal.login" in db.session.scalars(sa.select(AuditEvent.action)).all()


def test_keep_me_signed_in_makes_a_lasting_cookie(app, world, client_for):
    _, account_id, email = _ready(app, world)
    client = client_for("acme")
    response = login_portal(client, email, remember=True)
    set_cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(PORTAL_COOKIE)][0]
    assert f"Max-Age={app.config['REMEMBER_COOKIE_DURATION']}" in set_cookie
    (row,) = _sessions(app, world, account_id)
    assert (row.expires_at - row.created_at).total_seconds() == app.config["REMEMBER_COOKIE_DURATION"]


def test_anonymous_visitors_go_to_sign_in_with_a_safe_next(app, world, client_for):
    client = client_for("acme")
    response = client.get("/portal/profile")
    assert response.status_code == 302 and response.headers["Location"] == "/portal/login?next=/portal/profile"
    bare = client.get("/portal")
    assert bare.status_code in (301, 308) and bare.headers["Location"].endswith("/portal/")
    assert client.get("/portal/").headers["Location"] == "/portal/login?next=/portal/"

    # A form sent after the session ended brings them back to the home, not to a POST-only address.
    ended = post_form(client, "/portal/profile/sessions/end")
    assert ended.status_code == 302 and ended.headers["Location"] == "/portal/login"

    _, _, email = _ready(app, world)
    assert login_portal(client, email, next="/portal/profile").headers["Location"] == "/portal/profile"
    signed_in = client.get("/portal/profile")
    assert signed_in.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("target", ["https://evil.example/portal/", "//evil.example/portal/", "/\\evil.example",
                                    "/staff/", "/portalx", "javascript:alert(1)"])
def test_next_elsewhere_is_ignored(app, world, client_for, target):
    _, _, email = _ready(app, world)
    client = client_for("acme")
    response = login_portal(client, email, next=target)
    assert response.status_code == 302 and response.headers["Location"] == "/portal/"


# --- one generic answer before the password --------------------------------------------------------

def test_wrong_password_and_unknown_address_get_the_same_answer(app, world, client_for):
    _, _, email = _ready(app, world)
    _, _, b_email = _ready(app, world, tenant="b", email="robin-b@globex.example")
    answers = []
    for address, password in ((email, "wrong-password-here"), ("nobody@acme.example", PASSWORD),
                              (b_email, PASSWORD), ("not an address", PASSWORD)):
        client = client_for("acme")
        response = login_portal(client, address, password)
        answers.append((response.status_code, _without_tokens(_text(response)).replace(address, "ADDR")))
        assert client.get_cookie(PORTAL_COOKIE, domain="acme.localhost", path="/portal") is None
    assert {status for status, _ in answers} == {200}
    assert all(page == answers[0][1] for _, page in answers), "the answers differ"
    assert GENERIC in answers[0][1]


REFUSALS = [
    ("lead", {}, {}, "prospects and clients, and your account does not have access yet"),
    ("client", {"is_active": False}, {}, "Ask Acme Corp to reactivate your account"),
    ("client", {"archived_at": "now"}, {}, "Ask Acme Corp to reactivate your account"),
    ("prospect", {}, {"approval": "pending"}, "Your registration is waiting for approval"),
    ("prospect", {}, {"approval": "rejected"}, "Your registration for the portal was not approved"),
    ("client", {}, {"active": False}, "Your portal login is switched off"),
    ("client", {}, {"email_verified_at": None}, "Please confirm your e-mail address first"),
]


@pytest.mark.parametrize("role, contact_change, account_change, words", REFUSALS)
def test_each_refusal_is_explained_only_after_the_right_password(app, world, client_for, role, contact_change,
                                                                  account_change, words):
    contact_id, account_id, email = _ready(app, world, role=role, **account_change)
    if contact_change:
        _change(app, world, Contact, contact_id,
                **{k: (utcnow() if v == "now" else v) for k, v in contact_change.items()})
    client = client_for("acme")

    wrong = login_portal(client, email, "not-the-password-at-all")
    assert wrong.status_code == 200 and GENERIC in _text(wrong) and words not in _text(wrong)

    right = login_portal(client, email)
    body = _text(right)
    assert right.status_code == 403 and "You can't sign in to the portal yet" in body and words in body
    assert GENERIC not in body
    assert client.get_cookie(PORTAL_COOKIE, domain="acme.localhost", path="/portal") is None
    assert _sessions(app, world, account_id) == []
    assert client.get("/portal/").status_code == 302


def test_a_login_without_a_password_never_signs_in(app, world, client_for):
    _, _, email = _ready(app, world, password_hash=None)
    for password in ("", PASSWORD):
        response = login_portal(client_for("acme"), email, password)
        assert response.status_code == 200 and "You can't sign in" not in _text(response)


# --- the rule on every request --------------------------------------------------------------------

@pytest.mark.parametrize("model, change", [
    (Contact, {"is_active": False}),
    (Contact, {"role": "lead"}),
    (PortalAccount, {"active": False}),
])
def test_deactivation_demotion_or_disabling_ends_a_live_session_on_the_next_request(app, world, client_for,
                                                                                     model, change):
    contact_id, account_id, email = _ready(app, world)
    client = client_for("acme")
    login_portal(client, email)
    assert client.get("/portal/").status_code == 200
    _change(app, world, model, contact_id if model is Contact else account_id, **change)

    response = client.get("/portal/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/portal/login")
    landing = client.get(response.headers["Location"])
    assert "You have been signed out" in _text(landing)
    (row,) = _sessions(app, world, account_id)
    assert row.revoked_at is not None
    # Undoing the change does not bring the old session back.
    _change(app, world, model, contact_id if model is Contact else account_id,
            **{k: ("client" if k == "role" else True) for k in change})
    assert client.get("/portal/").status_code == 302


def test_a_prospect_made_client_keeps_the_session(app, world, client_for):
    contact_id, account_id, email = _ready(app, world, role="prospect")
    client = client_for("acme")
    login_portal(client, email)
    assert client.get("/portal/").status_code == 200
    _change(app, world, Contact, contact_id, role="client")
    assert client.get("/portal/").status_code == 200
    assert _sessions(app, world, account_id)[0].revoked_at is None


# --- signing out, copied cookies ---------------------------------------------------------------------

def test_sign_out_ends_the_row_and_a_copied_cookie_is_worthless(app, world, client_for):
    _, account_id, email = _ready(app, world)
    client = client_for("acme")
    login_portal(client, email, remember=True)
    token = client.get_cookie(PORTAL_COOKIE, domain="acme.localhost", path="/portal").value
    thief = client_for("acme")
    thief.set_cookie(PORTAL_COOKIE, token, domain="acme.localhost", path="/portal")
    assert thief.get("/portal/").status_code == 200  # a copy works while the session lives

    response = post_form(client, "/portal/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/portal/login"
    assert "You are signed out" in _text(client.get("/portal/login"))
    assert client.get_cookie(PORTAL_COOKIE, domain="acme.localhost", path="/portal") is None
    assert _sessions(app, world, account_id)[0].revoked_at is not None
    assert thief.get("/portal/").status_code == 302


def test_a_forged_or_foreign_token_is_nothing(app, world, client_for):
    client = client_for("acme")
    for value in ("x" * 43, "", "y" * 500):
        client.set_cookie(PORTAL_COOKIE, value, domain="acme.localhost", path="/portal")
        assert client.get("/portal/").status_code == 302


def test_tenant_a_session_and_password_mean_nothing_on_b(app, world, client_for):
    _, _, email = _ready(app, world)
    on_a = client_for("acme")
    login_portal(on_a, email)
    token = on_a.get_cookie(PORTAL_COOKIE, domain="acme.localhost", path="/portal").value
    on_b = client_for("globex")
    on_b.set_cookie(PORTAL_COOKIE, token, domain="globex.localhost", path="/portal")
    assert on_b.get("/portal/").status_code == 302
    response = login_portal(on_b, email)
    assert response.status_code == 200 and GENERIC in _text(response)
    assert "Robin" not in _text(response)


# --- staff and portal sessions are independent ----------------------------------------------------------

def test_a_staff_session_gives_no_portal_access(app, world, client_for, staff_client):
    # The staff member also has a portal login with the same address and password.
    _ready(app, world, email=world.a.members["owner"].email)
    client = staff_client("owner")
    assert client.get("/staff/").status_code == 200
    assert client.get("/portal/").status_code == 302
    assert client.get("/portal/profile").status_code == 302


def test_a_portal_session_gives_no_staff_access(app, world, portal_client):
    client = portal_client("client", email=world.a.members["owner"].email)
    assert client.get("/portal/").status_code == 200
    response = client.get("/staff/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login")


def test_both_at_once_and_signing_out_of_one_keeps_the_other(app, world, client_for):
    owner = world.a.members["owner"]
    _ready(app, world, email=owner.email)
    client = client_for("acme")
    assert login_staff(client, owner.email).status_code == 302
    assert login_portal(client, owner.email).status_code == 302
    assert client.get("/staff/").status_code == 200 and client.get("/portal/").status_code == 200

    post_form(client, "/portal/logout")
    assert client.get("/portal/").status_code == 302
    assert client.get("/staff/").status_code == 200

    login_portal(client, owner.email)
    post_form(client, "/staff/logout")
    assert client.get("/staff/").status_code == 302
    assert client.get("/portal/").status_code == 200


def test_expired_session_is_refused(app, world, client_for):
    from datetime import timedelta

    from freezegun import freeze_time

    _, account_id, email = _ready(app, world)
    client = client_for("acme")
    with freeze_time(utcnow()) as clock:
        login_portal(client, email)
        clock.tick(timedelta(seconds=app.config["PORTAL_SESSION_MAX_AGE"] - 60))
        assert client.get("/portal/").status_code == 200
        clock.tick(timedelta(seconds=120))
        assert client.get("/portal/").status_code == 302


def test_sign_in_is_rate_limited_per_address(app, world, client_for):
    _, _, email = _ready(app, world)
    limit = int(app.config["RATELIMIT_LOGIN_PER_EMAIL"].split()[0])
    for n in range(limit):
        # Each try from another client address, so only the per-address limit can stop it.
        client = client_for("acme")
        client.environ_base["REMOTE_ADDR"] = f"10.0.{n // 200}.{n % 200 + 1}"
        assert login_portal(client, email, "wrong-password-here").status_code == 200
    client = client_for("acme")
    client.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    assert login_portal(client, email).status_code == 429


def test_sign_in_is_rate_limited_per_client_address(app, world, client_for):
    client = client_for("acme")
    per_minute = int(app.config["RATELIMIT_LOGIN"].split()[0])
    for n in range(per_minute):
        assert login_portal(client, f"someone{n}@acme.example", "wrong-password-here").status_code == 200
    assert login_portal(client, "someone-else@acme.example", "wrong-password-here").status_code == 429


def test_an_unknown_address_costs_the_same_password_work_as_a_wrong_password(app, world, client_for, monkeypatch):
    """Timing: every sign-in attempt checks one argon2 hash, a dummy one when the address is unknown."""
    from argon2 import PasswordHasher

    calls = []

    class CountingHasher(PasswordHasher):
        def verify(self, stored, password):
            calls.append(stored)
            return super().verify(stored, password)

    cfg = app.config
    monkeypatch.setitem(app.extensions, "portico_password_hasher", CountingHasher(
        time_cost=cfg["ARGON2_TIME_COST"], memory_cost=cfg["ARGON2_MEMORY_COST"], parallelism=cfg["ARGON2_PARALLELISM"]))
    _, _, email = _ready(app, world)
    for address in (email, "nobody@acme.example"):
        calls.clear()
        login_portal(client_for("acme"), address, "wrong-password-here")
        assert len(calls) == 1 and calls[0].startswith("$argon2id$"), address


def test_the_cookie_is_secure_when_the_app_is(app, world, client_for, monkeypatch):
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    _, _, email = _ready(app, world)
    client = client_for("acme")
    response = client.post("/portal/login", base_url="https://acme.localhost",
                           headers={"Referer": "https://acme.localhost/portal/login"}, data={
        "email": email, "password": PASSWORD,
        "csrf_token": re.search(r'name="csrf-token" content="([^"]+)"',
                                _text(client.get("/portal/login", base_url="https://acme.localhost"))).group(1)})
    set_cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(PORTAL_COOKIE)][0]
    assert "Secure" in set_cookie and "Path=/portal" in set_cookie
    assert response.headers["Cache-Control"] == "no-store"


def test_a_pending_registrant_is_refused_then_approved_and_signs_in_from_the_email(app, world, client_for,
                                                                                    staff_client, deliver):
    _, account_id, email = _ready(app, world, role="prospect", approval="pending")
    client = client_for("acme")
    refused = login_portal(client, email)
    assert refused.status_code == 403 and "Your registration is waiting for approval" in _text(refused)

    post_form(staff_client("owner"), f"/staff/portal/approvals/{account_id}/approve")
    box = deliver()
    (message,) = box.to(email)
    assert "Your portal login is" in box.body(message)
    assert "http://acme.localhost/portal/login" in box.links(message)
    assert login_portal(client, email).status_code == 302 and client.get("/portal/").status_code == 200
