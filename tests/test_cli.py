"""Operator commands print one clear line on error and exit non-zero."""
from __future__ import annotations

import sqlalchemy as sa

from core.db import db
from core.identity import PlatformAdmin, StaffUser
from core.tenancy import Tenant, cross_tenant
from forms.models import Form
from tests.support import login_portal, login_staff


def _run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_tenant_create_then_sign_in(app, client_for):
    result = _run(app, "tenant", "create", "--slug", "umbrella", "--name", "Umbrella Ltd",
                  "--owner-email", "alice@umbrella.example", "--owner-password", "quiet-maple-lantern-8")
    assert result.exit_code == 0, result.output
    assert "Created tenant umbrella: http://umbrella.localhost/staff" in result.output
    assert login_staff(client_for("umbrella"), "alice@umbrella.example", "quiet-maple-lantern-8").status_code == 302


def test_tenant_create_errors_are_one_clear_line(app, world):
    cases = [
        (["--slug", "acme", "--name", "X", "--owner-email", "a@b.example", "--owner-password", "quiet-maple-lantern-8"],
         "already taken"),
        (["--slug", "newco", "--name", "X", "--owner-email", "not-an-email", "--owner-password", "quiet-maple-lantern-8"],
         "email address"),
        (["--slug", "newco", "--name", "X", "--owner-email", "a@b.example", "--owner-password", "password"],
         "at least"),
        (["--slug", "newco", "--name", "X", "--owner-email", "a@b.example", "--owner-password", "aaaaaaaaaaaa"],
         "too weak"),
    ]
    for args, message in cases:
        result = _run(app, "tenant", "create", *args)
        assert result.exit_code != 0
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    with app.app_context(), cross_tenant("count", audit=False):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Tenant)) == 2


def test_superadmin_create(app):
    ok = _run(app, "superadmin", "create", "--email", "Root@Portico.example", "--password", "quiet-maple-lantern-8")
    assert ok.exit_code == 0 and "Created super admin root@portico.example" in ok.output
    again = _run(app, "superadmin", "create", "--email", "root@portico.example", "--password", "quiet-maple-lantern-8")
    assert again.exit_code != 0 and "already exists" in again.output


def test_demo_is_idempotent_and_prints_logins(app, client_for):
    first = _run(app, "demo")
    second = _run(app, "demo")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "Staff sign-in:    http://demo.localhost/staff" in second.output
    assert "owner@demo.example / harbour-lantern-42" in second.output
    assert "Operator console: http://localhost/admin" in second.output
    with app.app_context(), cross_tenant("count", audit=False):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Tenant)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(StaffUser)) == 3
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PlatformAdmin)) == 1
    page = client_for("demo")
    assert login_staff(page, "staff@demo.example", "harbour-lantern-42").status_code == 302
    assert "Northwind Studio" in page.get("/staff/").get_data(as_text=True)
    # a living CRM: people at every stage, companies, circles (and it is seeded once only)
    contacts = page.get("/staff/contacts").get_data(as_text=True)
    assert "30 contacts" in contacts and "Amelia Hart" in contacts
    assert "8 companies" in page.get("/staff/companies").get_data(as_text=True)
    assert "VIP clients" in page.get("/staff/circles").get_data(as_text=True)
    clients = page.get("/staff/contacts?role=client").get_data(as_text=True)
    assert "9 contacts match" in clients
    # a kickoff form to try, printed with the logins, once only
    assert "Kickoff form:     http://demo.localhost/f/get-started" in second.output
    public = client_for("demo").get("/f/get-started").get_data(as_text=True)
    assert "Start your project" in public and "What do you need?" in public
    with app.app_context(), cross_tenant("count", audit=False):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Form)) == 1
    # a client to sign into the portal as, printed with the logins, with a Circle page to read
    assert "Client portal:    http://demo.localhost/portal/login" in second.output
    assert "client jasmine.patel@kettleandco.example / harbour-lantern-42" in second.output
    portal = client_for("demo")
    assert login_portal(portal, "jasmine.patel@kettleandco.example", "harbour-lantern-42").status_code == 302
    home = portal.get("/portal/").get_data(as_text=True)
    assert "Jasmine" in home and "Welcome, VIP clients" in home and "Brand review checklist" in home
    assert "Brand review workshop" in home and "Send us your logo files" in home  # an event, a shared task
    assert "Kettle &amp; Co Design" in portal.get("/portal/company").get_data(as_text=True)


def test_tenant_list(app, world):
    result = _run(app, "tenant", "list")
    assert "acme" in result.output and "globex" in result.output and "active" in result.output
