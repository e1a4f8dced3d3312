"""The operator console: super admins only, on the platform host only, audited."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from core.identity import StaffUser, create_platform_admin
from core.tenancy import Tenant, cross_tenant
from tests.support import PASSWORD, login_staff, post_form

OPERATOR = "ops@portico.example"


@pytest.fixture
def operator(app, world):
    with app.app_context():
        create_platform_admin(OPERATOR, PASSWORD, name="Ops")
        db.session.commit()


@pytest.fixture
def console(operator, client_for):
    client = client_for(None)
    response = post_form(client, "/admin/login", {"email": OPERATOR, "password": PASSWORD})
    assert response.headers["Location"] == "/admin/"
    return client


def _platform_events(app, action):
    with app.app_context(), cross_tenant("test reads audit", audit=False):
        return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)).all()


def test_console_needs_a_super_admin(operator, client_for):
    anonymous = client_for(None)
    assert anonymous.get("/admin/").headers["Location"].startswith("/admin/login")
    assert anonymous.get("/admin/tenant/").headers["Location"].startswith("/admin/login")
    wrong = post_form(anonymous, "/admin/login", {"email": OPERATOR, "password": "nope-nope-nope"})
    assert "do not match an operator account" in wrong.get_data(as_text=True)


def test_console_does_not_exist_on_tenant_hosts(operator, world, staff_client, client_for):
    for client in (client_for("acme"), staff_client("owner")):
        for path in ("/admin/", "/admin/login", "/admin/tenant/"):
            assert client.get(path).status_code == 404


def test_staff_password_does_not_open_the_console(world, client_for):
    response = post_form(client_for(None), "/admin/login", {"email": "olivia@acme.example", "password": PASSWORD})
    assert "do not match an operator account" in response.get_data(as_text=True)


def test_overview_lists_every_tenant_and_is_audited(console, app):
    overview = console.get("/admin/").get_data(as_text=True)
    assert "Platform overview" in overview
    tenants = console.get("/admin/tenant/").get_data(as_text=True)
    assert "acme" in tenants and "globex" in tenants
    reasons = [e.details["reason"] for e in _platform_events(app, "platform.cross_tenant")]
    assert "operator console: GET /admin/tenant/" in reasons
    assert all(e.actor_label == OPERATOR for e in _platform_events(app, "platform.cross_tenant")
               if e.details["reason"].startswith("operator console"))


def test_staff_users_and_audit_log_across_tenants(console):
    staff = console.get("/admin/staffuser/").get_data(as_text=True)
    assert "olivia@acme.example" in staff and "canary-b-owner@globex.example" in staff
    assert "password_hash" not in staff and "$argon2" not in staff
    audit = console.get("/admin/auditevent/").get_data(as_text=True)
    assert "tenant.created" in audit


def test_create_tenant_from_console_invites_the_owner(console, app, deliver, client_for):
    response = post_form(console, "/admin/tenant/new/", {
        "slug": "initech", "name": "Initech", "owner_email": "bill@initech.example", "owner_name": "Bill",
        "owner_password": ""}, follow_redirects=True)
    assert "Created initech with owner bill@initech.example." in response.get_data(as_text=True)
    box = deliver()
    (mail,) = box.to("bill@initech.example")
    assert box.links(mail)[0].startswith("http://initech.localhost/staff/invitation/")
    assert "Initech" in client_for("initech").get("/").get_data(as_text=True)
    (created,) = [e for e in _platform_events(app, "tenant.created") if e.details["slug"] == "initech"]
    assert created.actor_label == OPERATOR


def test_create_tenant_refuses_taken_or_bad_slug(console, app):
    for slug, message in (("acme", "already taken"), ("Bad Slug!", "lowercase letters"), ("admin", "reserved")):
        response = post_form(console, "/admin/tenant/new/", {
            "slug": slug, "name": "X", "owner_email": "x@x.example", "owner_password": ""}, follow_redirects=True)
        assert message in response.get_data(as_text=True)
    with app.app_context(), cross_tenant("count", audit=False):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Tenant)) == 2


def test_suspend_action_closes_the_tenant(console, world, app, client_for):
    response = post_form(console, "/admin/tenant/action/", {"action": "suspend", "rowid": [str(world.a.id)]},
                         follow_redirects=True)
    assert "1 tenant(s) suspended." in response.get_data(as_text=True)
    page = client_for("acme").get("/staff/login")
    assert page.status_code == 403 and "Acme Corp is suspended" in page.get_data(as_text=True)
    assert client_for("globex").get("/staff/login").status_code == 200
    (event,) = _platform_events(app, "tenant.suspended")
    assert (event.tenant_id, event.actor_label) == (world.a.id, OPERATOR)
    post_form(console, "/admin/tenant/action/", {"action": "reactivate", "rowid": [str(world.a.id)]})
    assert login_staff(client_for("acme"), "olivia@acme.example").status_code == 302


def test_add_custom_domain(console, world, app):
    response = post_form(console, "/admin/tenantdomain/new/", {"tenant": str(world.a.id), "hostname": "crm.acme.example"},
                         follow_redirects=True)
    assert response.status_code == 200
    page = app.test_client().get("/", base_url="http://crm.acme.example").get_data(as_text=True)
    assert "Acme Corp" in page
    bad = post_form(console, "/admin/tenantdomain/new/", {"tenant": str(world.a.id), "hostname": "no spaces"},
                    follow_redirects=True)
    assert "Enter a host name like portal.example.com." in bad.get_data(as_text=True)


def test_operator_sign_out(console):
    response = post_form(console, "/admin/logout", follow_redirects=True)
    assert "You are signed out." in response.get_data(as_text=True)
    assert console.get("/admin/").status_code == 302


def test_audit_log_names_tenant_and_target_not_ids_or_code(console, world, app):
    from core.audit import record

    with app.app_context(), cross_tenant("test writes audit", audit=False):
        tenant = db.session.get(Tenant, world.a.id)

        class FormSubmission:  # an object whose str() is only code
            audit_type, id, tenant_id = "FormSubmission", 987654, world.a.id

            def __str__(self):
                return "<FormSubmission 987654>"

        import forms.models  # noqa: F401  (registers the form actions)
        record("form.changed", FormSubmission(), tenant_id=tenant.id)
        db.session.commit()
    audit = console.get("/admin/auditevent/").get_data(as_text=True)
    assert "Acme Corp" in audit and "Platform" in audit
    assert "Form submission" in audit
    assert "&lt;FormSubmission" not in audit and "<FormSubmission" not in audit
    assert "987654" not in audit


def test_an_object_without_a_name_is_logged_by_its_title_or_kind_never_by_code(world, app, staff_client):
    """core.audit.target_label, at the source: most models have no __str__ of their own, and
    str() of one is SQLAlchemy's `<FormSubmission 12>`; the staff audit page shows the words."""
    from core.audit import kind_in_words, record, target_label
    from core.tenancy import tenant_context
    from crm.models import Event

    class Unnamed:
        audit_type, id = "FormSubmission", 12

    assert target_label(Unnamed()) == "Form submission" == kind_in_words("form_submission")
    with app.app_context(), tenant_context(world.a.id):
        from core.db import utcnow

        event = Event(title="Spring open day", starts_at=utcnow())
        db.session.add(event)
        db.session.flush()
        assert target_label(event) == "Spring open day"
        import crm.activities  # noqa: F401  (registers the event actions)
        record("event.created", event, actor=db.session.get(StaffUser, world.a.members["owner"].id))
        db.session.commit()
    page = staff_client("owner").get("/staff/audit").get_data(as_text=True)
    assert "Event: Spring open day" in page and "&lt;Event" not in page
