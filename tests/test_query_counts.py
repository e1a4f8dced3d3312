"""List pages run the same number of queries however many rows they show (no N+1)."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from core.accounts import create_staff_user
from core.audit import record
from core.db import db
from core.tenancy import tenant_context
from tests.factories import make_contact


@contextmanager
def counted_queries(app):
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _grow(app, tenant_id, n):
    with app.app_context(), tenant_context(tenant_id):
        for i in range(n):
            user = create_staff_user(f"extra{i}@acme.example", f"Extra {i}", "staff", password=None)
            record("staff.created", user)
        db.session.commit()


@pytest.mark.parametrize("path", ["/staff/team", "/staff/audit"])
def test_list_pages_do_not_query_per_row(world, staff_client, app, path):
    client = staff_client("owner")
    client.get(path)  # warm up: session loads, template compile
    with counted_queries(app) as few:
        assert client.get(path).status_code == 200
    _grow(app, world.a.id, 30)
    # New members bump the tenant's configuration version (core.tenant_cache): the next page
    # reads the role permissions afresh once (the team page asks them for its Impersonate
    # buttons), whatever the number of rows. Warm up again, then count.
    client.get(path)
    with counted_queries(app) as many:
        page = client.get(path).get_data(as_text=True)
    assert "Extra 29" in page or "extra29@acme.example" in page
    assert len(many) == len(few), f"{path}: {len(few)} queries with few rows, {len(many)} with 30 more"


CONFIGURATION_TABLES = ("role_permission", "pipeline_status", "circle ", "tag ", "custom_field", "crm_settings",
                        "kickoff_form_field")


def _make_public_form(app, tenant) -> None:
    from core.identity import StaffUser
    from forms import definitions
    from forms.models import FieldKind

    with app.app_context(), tenant_context(tenant.id):
        owner = db.session.get(StaffUser, tenant.members["owner"].id)
        form = definitions.create_form("Start here", "start-here", actor=owner)
        definitions.add_field(form, {"kind": FieldKind.EMAIL, "label": "E-mail", "target": "contact.email",
                                     "required": True}, actor=owner)
        make_contact("Listed", "Person")  # a list with rows: an empty one fetches its figures apart
        db.session.commit()


@pytest.mark.parametrize("role, path, budget", [
    # The tenant (with its set_config), the session with its member, and the list, which
    # brings its count, the selection's size and the approvals badge along (core.scalars).
    ("staff", "/staff/contacts", 3),
    ("owner", "/staff/contacts", 3),
    (None, "/f/start-here", 1),  # the tenant (with its set_config); the form is cached
    (None, "/staff/login", 1),  # the tenant (with its set_config)
])
def test_a_warm_page_reads_no_configuration_and_stays_in_its_budget(app, world, staff_client, client_for,
                                                                     role, path, budget):
    """The tenant's configuration comes from the process's cache (core.tenant_cache) once warm:
    no role permissions, pipeline, circles, tags, custom fields, settings or form fields per request."""
    _make_public_form(app, world.a)
    client = staff_client(role) if role else client_for(world.a.slug)
    assert client.get(path).status_code == 200  # warm up
    with counted_queries(app) as statements:
        assert client.get(path).status_code == 200
    read = [s for s in statements if any(f"FROM {t}" in s or f"JOIN {t}" in s for t in CONFIGURATION_TABLES)]
    assert read == [], read
    assert len(statements) <= budget, statements


def test_the_portal_sign_in_rule_costs_one_query(app, world, portal_client, monkeypatch):
    """Every portal request asks may_sign_in over its session: one statement loads the session
    row, the account and its contact (the tenant's own statement comes first, as on every page).
    The home's panels are left out here: each panel's own queries are its module's budget."""
    from portal import home

    monkeypatch.setattr(home, "HOME_PANELS", {})
    client = portal_client("client")
    assert client.get("/portal/").status_code == 200  # warm up
    with counted_queries(app) as statements:
        page = client.get("/portal/")
    assert page.status_code == 200 and "Welcome, Cleo" in page.get_data(as_text=True)
    rule = [s for s in statements if "portal_session" in s]
    assert len(rule) == 1 and "JOIN portal_account" in rule[0] and "JOIN contact" in rule[0], statements
    assert not [s for s in statements if "portal_account" in s and s not in rule], statements
    assert len(statements) == 2, statements  # the tenant, then the rule


# Processing one kickoff-form submission of a new person at a new company (e-mail, phone; a
# note to staff and a confirmation), as the job worker does, counted at the driver. On
# PostgreSQL: the tenant (with set_config), the submission (locked, with its form), the
# advisory locks, the identity lookup, the company by its name, the names like it, the
# company, the contact, its search words, its addresses, then at the commit the timeline
# entries, the audit events and the submission's outcome (one statement each). The tenant's
# settings, default status and the staff to notify come from the process's cache at its
# configuration version. SQLite has no advisory locks, takes its write lock with an UPDATE and
# inserts rows whose ids it returns one statement each.
PROCESSING_BUDGET = {"postgresql": 13, "sqlite": 17}


def test_processing_a_submission_stays_in_its_statement_budget(app, world):
    from core.jobs import run_pending_jobs
    from tests.forms.factories import make_form
    from tests.forms.submitting import as_tenant, submit

    owner_id = world.a.members["owner"].id
    with as_tenant(app, world.a.id):
        form_id = make_form(send_confirmation=True, notify_staff_ids=[owner_id]).id
    answers = {"first_name": "Ada", "last_name": "Lovelace", "phone": "+1 212 555 0100", "company": "Analytical Engines"}
    submit(app, world.a.id, form_id, {**answers, "email": "warm@example.com"})
    with app.app_context():
        run_pending_jobs()  # warm: the caches of the tenant's configuration, the compiled statements
    submit(app, world.a.id, form_id, {**answers, "email": "ada@example.com", "company": "Difference Engines"})
    with counted_queries(app) as statements:
        with app.app_context():
            assert run_pending_jobs() == 2  # the processing and the e-mails (one job for both)
    read = [s for s in statements if any(f"FROM {t}" in s for t in CONFIGURATION_TABLES)]
    assert read == [], read
    with app.app_context():
        dialect = db.engine.dialect.name
    assert len(statements) <= PROCESSING_BUDGET[dialect], "\n".join(statements)
