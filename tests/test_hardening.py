"""Odd and hostile input gets a clear answer, never a 500, and changes nothing it should not.
(Each case here was found by a review that tried it.)"""
from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from core.identity import StaffUser, create_platform_admin
from core.tenancy import Tenant, cross_tenant, tenant_context
from tests.support import CSRF_RE, PASSWORD, login_staff, post_form


@pytest.mark.parametrize("next_url", ["/%09/evil.example/x", "/%0d%0aSet-Cookie:x=1", "//evil.example",
                                      "https://evil.example/", "/\\evil.example", "%2F%2Fevil.example"])
def test_sign_in_never_redirects_off_site(world, client_for, next_url):
    client = client_for("acme")
    response = post_form(client, f"/staff/login?next={next_url}", {"email": "olivia@acme.example",
                                                                    "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"


def _attempt(client, base_url: str, email: str, remote: str = "127.0.0.1"):
    """A sign-in attempt from one client address, with the CSRF token of that host's session."""
    env = {"REMOTE_ADDR": remote}
    page = client.get("/staff/login", base_url=base_url, environ_base=env).get_data(as_text=True)
    token = CSRF_RE.search(page)
    data = {"email": email, "password": "wrong-password-xyz", "csrf_token": token.group(1) if token else ""}
    return client.post("/staff/login", base_url=base_url, environ_base=env, data=data)


def test_rate_limit_holds_across_host_spellings(world, app):
    client = app.test_client()
    statuses = [_attempt(client, "http://acme.localhost", "olivia@acme.example").status_code for _ in range(10)]
    assert statuses == [200] * 10
    for base in ("http://acme.localhost:1", "http://ACME.localhost.", "http://acme.localhost:8080"):
        assert _attempt(client, base, "olivia@acme.example").status_code == 429, base


@pytest.mark.parametrize("address, key", [
    ("198.51.100.7", "198.51.100.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2:ffff::1", "2001:db8:1:2::/64"),  # the same /64, however spelled
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),  # the next /64 is another client
    ("::ffff:198.51.100.7", "198.51.100.7"),  # IPv4 seen through an IPv6 socket
    ("", ""), ("not-an-address", "not-an-address"),
])
def test_rate_limits_count_an_ipv6_client_by_its_64(address, key):
    from core.extensions import client_network

    assert client_network(address) == key


def test_one_ipv6_64_shares_one_sign_in_budget(world, app):
    client = app.test_client()
    for n in range(10):  # a fresh address of the same /64 for every try
        assert _attempt(client, "http://acme.localhost", "olivia@acme.example",
                        remote=f"2001:db8:7:7::{n + 1:x}").status_code == 200
    assert _attempt(client, "http://acme.localhost", "olivia@acme.example",
                    remote="2001:db8:7:7:abcd::99").status_code == 429
    assert _attempt(client, "http://acme.localhost", "olivia@acme.example",
                    remote="2001:db8:7:8::1").status_code == 200  # another /64


def test_rate_limit_per_account_holds_across_email_spellings(world, app):
    for n in range(20):  # from twenty different addresses, under the per-address limit
        assert _attempt(app.test_client(), "http://acme.localhost", "olivia@acme.example",
                        remote=f"10.0.0.{n + 1}").status_code == 200
    response = _attempt(app.test_client(), "http://acme.localhost", "  OLIVIA@acme.EXAMPLE", remote="10.9.9.9")
    assert response.status_code == 429


def test_failed_sign_in_and_reset_requests_are_not_blamed_on_the_account(world, client_for, deliver, app):
    client = client_for("acme")
    login_staff(client, "olivia@acme.example", "wrong-password-xyz")
    login_staff(client, "nobody@acme.example", "wrong-password-xyz")
    post_form(client, "/staff/password/forgot", {"email": "olivia@acme.example"})
    deliver()
    with app.app_context(), tenant_context(world.a.id):
        events = db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action.in_(["staff.login_failed", "staff.password_reset_requested"]))
            .order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor_type, e.target_label) for e in events] == [
        ("staff.login_failed", "anonymous", "Olivia Owner <olivia@acme.example>"),
        ("staff.login_failed", "anonymous", None),
        ("staff.password_reset_requested", "anonymous", "Olivia Owner <olivia@acme.example>"),
    ]
    assert events[1].details == {"email": "nobody@acme.example"}


@pytest.mark.parametrize("path", ["/staff/team/99999999999999999999", "/staff/audit?before=99999999999999999999"])
def test_oversized_ids_are_not_errors(world, staff_client, path):
    response = staff_client("owner").get(path)
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert "Audit log" in response.get_data(as_text=True)


def test_nul_bytes_are_a_clear_400(world, staff_client):
    client = staff_client("owner")
    response = post_form(client, "/staff/account", {"form": "profile", "profile-name": "Olivia\x00"})
    assert response.status_code == 400
    assert client.get("/staff/audit?action=%00").status_code == 400


@pytest.mark.parametrize("name", ["Acme\r\nBcc: everyone@example.com", "x" * 201, "Evil\u202eemaN"])
def test_names_are_one_line_of_plain_text(world, staff_client, name):
    client = staff_client("owner")
    for path, data in (("/staff/account", {"form": "profile", "profile-name": name}),
                       ("/staff/settings/branding", {"display_name": name, "primary_color": "#123456"})):
        page = post_form(client, path, data, content_type="multipart/form-data").get_data(as_text=True)
        assert "must be one line of plain text" in page or "200 characters" in page, path
    assert "Olivia Owner" in client.get("/staff/account").get_data(as_text=True)


def test_cli_refuses_an_overlong_name_in_one_line(app):
    result = app.test_cli_runner().invoke(args=["tenant", "create", "--slug", "longname", "--name", "N" * 300,
                                                "--owner-email", "o@long.example", "--owner-password",
                                                "quiet-maple-lantern-8"])
    assert result.exit_code != 0
    assert result.output.strip() == "Error: The business name can be at most 200 characters."


def test_no_invitation_for_a_deactivated_invitee(world, staff_client, deliver):
    admin = staff_client("admin")
    post_form(admin, "/staff/team/invite", {"email": "gone@acme.example", "role": "staff"})
    sent_before = len(deliver().messages)
    with admin.application.app_context(), tenant_context(world.a.id):
        invitee_id = db.session.scalar(sa.select(StaffUser.id).where(StaffUser.email == "gone@acme.example"))
    post_form(admin, f"/staff/team/{invitee_id}", {"role": "staff"})  # deactivate
    page = post_form(admin, f"/staff/team/{invitee_id}/resend-invitation", follow_redirects=True)
    assert "is deactivated; reactivate them before inviting them again" in page.get_data(as_text=True)
    assert len(deliver().messages) == sent_before


@pytest.fixture
def console(app, world, client_for):
    with app.app_context():
        create_platform_admin("ops@portico.example", PASSWORD)
        db.session.commit()
    client = client_for(None)
    post_form(client, "/admin/login", {"email": "ops@portico.example", "password": PASSWORD})
    return client


def test_console_edit_checks_like_the_settings_page(console, world, app):
    bad = post_form(console, f"/admin/tenant/edit/?id={world.a.id}",
                    {"name": "Acme Corp", "display_name": "", "primary_color": "#12345z"},
                    follow_redirects=True)
    assert "Use a colour like #1f6feb." in bad.get_data(as_text=True)
    post_form(console, f"/admin/tenant/edit/?id={world.a.id}",
              {"name": "Acme Corporation", "display_name": "", "primary_color": "#224466"})
    with app.app_context(), cross_tenant("check", audit=False):
        tenant = db.session.get(Tenant, world.a.id)
        assert (tenant.name, tenant.primary_color) == ("Acme Corporation", "#224466")
        renamed = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "tenant.renamed")).one()
        assert renamed.details == {"from": "Acme Corp", "to": "Acme Corporation"}
        assert renamed.actor_label == "ops@portico.example"


def test_console_cannot_deactivate_the_last_owner(console, world, staff_client):
    response = post_form(console, "/admin/staffuser/action/",
                         {"action": "deactivate", "rowid": [str(world.a.members["owner"].id)]}, follow_redirects=True)
    assert "is the last active Owner of their tenant" in response.get_data(as_text=True)
    assert staff_client("owner").get("/staff/").status_code == 200


def test_failed_operator_sign_in_is_audited(console, client_for, app):
    post_form(client_for(None), "/admin/login", {"email": "ops@portico.example", "password": "nope-nope-nope"})
    with app.app_context(), cross_tenant("check", audit=False):
        event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "platform.login_failed")).one()
    assert (event.actor_type, event.details) == ("anonymous", {"email": "ops@portico.example"})


def test_platform_subdomain_is_not_a_custom_domain(console, world):
    page = post_form(console, "/admin/tenantdomain/new/", {"tenant": str(world.a.id), "hostname": "globex.localhost"},
                     follow_redirects=True).get_data(as_text=True)
    assert "part of the platform&#39;s own domain" in page


def test_demo_refuses_production(app):
    app.config["PORTICO_ENV"] = "production"
    try:
        result = app.test_cli_runner().invoke(args=["demo"])
    finally:
        app.config["PORTICO_ENV"] = "development"
    assert result.exit_code != 0 and "does not run with PORTICO_ENV=production" in result.output


def test_a_queue_outage_after_commit_keeps_the_data_and_says_so(world, staff_client, app, monkeypatch, caplog):
    from core import jobs

    def broken_enqueue(task):
        raise ConnectionError("queue down")

    monkeypatch.setattr(jobs.huey, "enqueue", broken_enqueue)  # the queue store is down (simulated)
    with caplog.at_level(logging.ERROR, logger="core.jobs"):
        response = post_form(staff_client("admin"), "/staff/team/invite", {"email": "kept@acme.example",
                                                                             "role": "staff"})
    assert response.status_code == 302
    assert "could not queue job core.mail.deliver_mail" in caplog.text
    with app.app_context(), tenant_context(world.a.id):
        assert db.session.scalar(sa.select(StaffUser.id).where(StaffUser.email == "kept@acme.example"))
