"""Values a page shows beside its content (core.scalars) come along with its main statement, or
all together in one: never one round trip each, never another tenant's, always the right figure."""
from __future__ import annotations

import re

import sqlalchemy as sa

from core import scalars
from core.db import db
from core.tenancy import tenant_context
from crm.models import Contact
from tests.factories import make_contact, make_portal_account
from tests.support import in_tenant, post_form
from tests.test_query_counts import counted_queries


def _contacts_of(app, tenant, names):
    return in_tenant(app, tenant, lambda: [make_contact(name, "Scalar").id for name in names])


def _count_contacts():
    return sa.select(sa.func.count()).select_from(Contact)


def test_wanted_values_come_in_one_statement_and_only_the_current_tenants(app, world):
    _contacts_of(app, world.a, ["Ann", "Bea"])
    _contacts_of(app, world.b, ["Cy", "Di", "Ed"])
    with app.test_request_context(base_url=f"http://{world.a.slug}.portico.test"), tenant_context(world.a.id):
        with counted_queries(app) as statements:
            scalars.want("all", _count_contacts)
            scalars.want("ann", lambda: _count_contacts().where(Contact.first_name == "Ann"))
            assert scalars.value("all") == 2
            assert scalars.value("ann") == 1
            assert scalars.value("all") == 2
        assert len(statements) == 1, statements


def test_values_ride_along_with_a_pages_statement(app, world):
    _contacts_of(app, world.a, ["Ann", "Bea"])
    with app.test_request_context(base_url=f"http://{world.a.slug}.portico.test"), tenant_context(world.a.id):
        with counted_queries(app) as statements:
            scalars.want("all", _count_contacts)
            rows = db.session.execute(scalars.riding(sa.select(Contact.first_name).order_by(Contact.first_name))).all()
            scalars.settle(rows[0])
            assert [row[0] for row in rows] == ["Ann", "Bea"]
            assert scalars.value("all") == 2
        assert len(statements) == 1, statements

        # A statement that finds no rows brings nothing: the values are fetched when read.
        scalars.want("bea", lambda: _count_contacts().where(Contact.first_name == "Bea"))
        rows = db.session.execute(scalars.riding(sa.select(Contact.id).where(Contact.first_name == "Nobody"))).all()
        scalars.settle(rows[0] if rows else None)
        assert rows == [] and scalars.value("bea") == 1

        scalars.forget("all")
        make_contact("Cy", "Scalar")
        assert scalars.value("all") == 3


def test_outside_a_request_a_value_is_fetched_on_its_own(app, world):
    _contacts_of(app, world.a, ["Ann"])
    with app.app_context(), tenant_context(world.a.id):
        assert scalars.value("all", _count_contacts) == 1
        assert scalars.value("all", _count_contacts) == 1


def _pending_registrant_and_a_pick(app, world, staff_client):
    def make():
        contact = make_contact("Robin", "Registrant")
        make_portal_account(contact)
        return contact.id
    picked = in_tenant(app, world.a, make)
    _contacts_of(app, world.a, ["Ann", "Bea"])
    owner = staff_client("owner")
    post_form(owner, "/staff/contacts/selection", {"change": "page", "page_ids": [picked], "ids": [picked]})
    return owner


def test_the_contact_list_shows_its_count_selection_and_badge_from_one_statement(app, world, staff_client):
    owner = _pending_registrant_and_a_pick(app, world, staff_client)
    owner.get("/staff/contacts")  # warm
    with counted_queries(app) as statements:
        page = owner.get("/staff/contacts").get_data(as_text=True)
    # The tenant, the session, the list with its values, and which of its rows are picked.
    assert len(statements) == 4, statements
    assert re.search(r"3 contacts\s*\.", page)
    assert '<span id="selection-count">1</span> selected' in page
    assert re.search(r'Approvals <span class="badge nav-count"><span aria-hidden="true">1</span>', page)


def test_an_empty_list_still_shows_every_figure(app, world, staff_client):
    owner = _pending_registrant_and_a_pick(app, world, staff_client)
    owner.get("/staff/contacts?q=nobody-is-called-this")
    with counted_queries(app) as statements:
        page = owner.get("/staff/contacts?q=nobody-is-called-this").get_data(as_text=True)
    assert len(statements) == 4, statements  # the tenant, the session, the empty list, then its figures
    assert "No contact matches these filters" in page
    assert re.search(r"0 contacts\s*match", page)
    assert '<span id="selection-count">1</span> selected' in page
    assert re.search(r'Approvals <span class="badge nav-count"><span aria-hidden="true">1</span>', page)


def test_staff_who_may_not_approve_never_count_registrants(app, world, staff_client):
    _pending_registrant_and_a_pick(app, world, staff_client)
    staff = staff_client("staff")
    with counted_queries(app) as statements:
        page = staff.get("/staff/contacts").get_data(as_text=True)
    assert "Approvals" not in page
    assert not any("portal_account" in s for s in statements)


def test_a_value_fetched_now_brings_the_wanted_ones_along(app, world):
    _contacts_of(app, world.a, ["Ann", "Bea"])
    with app.test_request_context(base_url=f"http://{world.a.slug}.portico.test"), tenant_context(world.a.id):
        with counted_queries(app) as statements:
            scalars.want("all", _count_contacts)
            assert scalars.fetch(_count_contacts().where(Contact.first_name == "Bea")) == 1
            assert scalars.value("all") == 2
        assert len(statements) == 1, statements
