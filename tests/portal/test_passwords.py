"""Portal passwords: changing it on the profile (the other devices are signed out), forgetting
it (a single-use, expiring link by real e-mail), and the devices list on the profile."""
from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from freezegun import freeze_time

from core.db import db, utcnow
from core.tenancy import tenant_context
from portal.models import PortalAccount, PortalSession
from tests.factories import make_contact, make_portal_account, make_portal_login
from tests.support import PASSWORD, PORTAL_COOKIE, login_portal, post_form

NEW = "Quiet-harbour-lantern-1987"
REFUSED = "This link no longer works"


def _text(response) -> str:
    return response.get_data(as_text=True)


def _field_error(page: str, field: str) -> str | None:
    match = re.search(rf'<small id="{field}-error" class="field-error">([^<]*)</small>', page)
    return match.group(1) if match else None


def _hash(app, world, account_id) -> str:
    with app.app_context(), tenant_context(world.a.id):
        return db.session.get(PortalAccount, account_id).password_hash


def _reset_link(deliver, email) -> str:
    box = deliver()
    (message,) = box.to(email)
    assert message["Subject"] == "Reset your Acme Corp portal password"
    (link,) = [u for u in box.links(message) if "/portal/reset/" in u]
    return link.replace("http://acme.localhost", "")


def test_changing_the_password_signs_out_the_other_devices_only(app, world, portal_client, client_for):
    here = portal_client("client")
    there = client_for("acme")
    assert login_portal(there, here.email).status_code == 302
    before = _hash(app, world, here.account_id)

    wrong = post_form(here, "/portal/profile", {"form": "password", "password-current_password": "nope-nope-nope",
                                                "password-password": NEW, "password-confirm": NEW})
    assert wrong.status_code == 200 and _field_error(_text(wrong), "password-current_password") == \
        "That is not your current password."
    weak = post_form(here, "/portal/profile", {"form": "password", "password-current_password": PASSWORD,
                                               "password-password": "password1", "password-confirm": "password1"})
    assert "Use at least 10 characters." in (_field_error(_text(weak), "password-password") or "")
    assert _hash(app, world, here.account_id) == before
    assert there.get("/portal/").status_code == 200

    done = post_form(here, "/portal/profile", {"form": "password", "password-current_password": PASSWORD,
                                               "password-password": NEW, "password-confirm": NEW})
    assert done.status_code == 302
    assert "Your other devices have been signed out" in _text(here.get("/portal/profile"))
    assert here.get("/portal/").status_code == 200
    assert there.get("/portal/").status_code == 302
    assert login_portal(client_for("acme"), here.email, PASSWORD).status_code == 200  # the old one is gone
    assert login_portal(client_for("acme"), here.email, NEW).status_code == 302


def test_forgot_then_reset_once_signs_out_everywhere(app, world, portal_client, client_for, deliver):
    signed_in = portal_client("client")
    visitor = client_for("acme")
    response = post_form(visitor, "/portal/forgot", {"email": signed_in.email})
    assert response.status_code == 302 and response.headers["Location"] == "/portal/login"
    assert "we have e-mailed it a link to choose a new password" in _text(visitor.get("/portal/login"))
    path = _reset_link(deliver, signed_in.email)

    page = visitor.get(path)
    assert page.status_code == 200 and "Choose a new password" in _text(page) and signed_in.email in _text(page)
    differ = post_form(visitor, path, {"password": NEW, "confirm": NEW + "x"})
    assert _field_error(_text(differ), "confirm") == "The two passwords differ."
    done = post_form(visitor, path, {"password": NEW, "confirm": NEW})
    assert done.status_code == 302 and done.headers["Location"] == "/portal/login"
    assert "Your new password is saved" in _text(visitor.get("/portal/login"))
    assert signed_in.get("/portal/").status_code == 302  # every device signed out

    for again in (visitor.get(path), post_form(visitor, path, {"password": "Other-lantern-harbour-77",
                                                               "confirm": "Other-lantern-harbour-77"})):
        assert again.status_code == 400 and REFUSED in _text(again)
    assert login_portal(visitor, signed_in.email, NEW).status_code == 302


def test_a_reset_link_expires(app, world, client_for, deliver):
    with app.app_context(), tenant_context(world.a.id):
        contact = make_contact("Kim", "Client", email="kim@example.com", role="client")
        make_portal_login(contact)
        db.session.commit()
    client = client_for("acme")
    with freeze_time(utcnow()) as clock:
        post_form(client, "/portal/forgot", {"email": "kim@example.com"})
        path = _reset_link(deliver, "kim@example.com")
        clock.tick(timedelta(seconds=app.config["PASSWORD_RESET_MAX_AGE"] - 60))
        assert client.get(path).status_code == 200
        clock.tick(timedelta(seconds=120))
        expired = client.get(path)
    assert expired.status_code == 400 and REFUSED in _text(expired) and "Ask for a new link" in _text(expired)


def test_forgot_says_the_same_for_any_address_and_mails_only_a_real_login(app, world, client_for, deliver):
    with app.app_context(), tenant_context(world.a.id):
        contact = make_contact("Kim", "Client", email="kim@example.com", role="client")
        make_portal_login(contact)
        waiting = make_contact("Noa", "Prospect", email="noa@example.com", role="prospect")
        make_portal_account(waiting, approval="approved")  # no password chosen yet
        db.session.commit()
    answers = []
    for address in ("kim@example.com", "nobody@example.com", world.b.members["owner"].email, "noa@example.com"):
        client = client_for("acme")
        response = post_form(client, "/portal/forgot", {"email": address}, follow_redirects=True)
        answers.append(re.sub(r'(name="csrf[-_]token"[^>]*value|content)="[^"]*"', "", _text(response)))
    assert len(set(answers)) == 1
    box = deliver()
    assert sorted(m["To"] for m in box.messages) == ["kim@example.com", "noa@example.com"]
    # A login still without a password is sent what it lacks: the choose-your-password link.
    (noa,) = box.to("noa@example.com")
    assert "/portal/set-password/" in box.body(noa)


def test_the_profile_lists_devices_and_ends_one(app, world, portal_client, client_for):
    here = portal_client("client")
    there = client_for("acme")
    there.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"
    login_portal(there, here.email)
    page = _text(here.get("/portal/profile"))
    assert "This device" in page and "Safari on iPhone" in page and "Sign out everywhere else" in page
    with app.app_context(), tenant_context(world.a.id):
        other = db.session.scalar(sa.select(PortalSession.id).where(
            PortalSession.token == there.get_cookie(PORTAL_COOKIE, domain="acme.localhost", path="/portal").value))
    response = post_form(here, "/portal/profile/sessions/end", {"session_id": other})
    assert response.status_code == 302 and "Signed out there." in _text(here.get("/portal/profile"))
    assert there.get("/portal/").status_code == 302 and here.get("/portal/").status_code == 200


def test_another_accounts_session_cannot_be_ended_from_a_profile(app, world, portal_client):
    mine = portal_client("client")
    theirs = portal_client("client", first_name="Theo", email="theo@example.com")
    with app.app_context(), tenant_context(world.a.id):
        their_session = db.session.scalar(sa.select(PortalSession.id).where(
            PortalSession.account_id == theirs.account_id))
    response = post_form(mine, "/portal/profile/sessions/end", {"session_id": their_session})
    assert "already signed out" in _text(mine.get(response.headers["Location"]))
    assert theirs.get("/portal/").status_code == 200
