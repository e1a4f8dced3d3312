"""A bulk job leaves PostgreSQL's planner statistics fresh: nothing else may (autovacuum can be
off, and runs behind a bulk load when on), and plans made for an empty table are slow for a
full one. Start-up says when autovacuum is off."""
from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from core.db import db
from core.jobs import run_pending_jobs
from core.statistics import analyze_grown
from core.tenancy import tenant_context
from crm.imports import engine
from crm.models import Contact
from tests.factories import make_contact, make_import
from tests.support import staff_member


@pytest.fixture
def postgres(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("planner statistics are PostgreSQL's (set TEST_DATABASE_URL)")


def _statistics(table: str) -> tuple[float, int]:
    """What the planner believes of the table: (rows, pages)."""
    return tuple(db.session.connection().execute(sa.text(
        "SELECT reltuples, relpages FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}).one())


def test_a_table_is_analysed_once_it_has_doubled_and_not_before(app, world, postgres):
    with app.app_context(), tenant_context(world.a.id):
        for i in range(300):
            make_contact(f"Grown{i}", "Table", email=f"grown{i}@example.com")
        db.session.flush()
        assert analyze_grown(["contact"]) == ["contact"]
        rows, pages = _statistics("contact")
        assert rows >= 300 and pages > 0  # this transaction's own rows are counted
        assert analyze_grown(["contact"]) == []  # no growth since
        db.session.rollback()


def test_an_import_into_a_new_tenant_leaves_statistics_that_know_its_rows(app, world, postgres):
    people = [[line, [f"Person {line}", f"person{line}@example.com", f"+1415555{line:04d}"]]
              for line in range(2, 3002)]
    with app.app_context(), tenant_context(world.a.id):
        upload = make_import(header=["Name", "Email", "Phone"], rows=people)
        operation = engine.start_import(upload, {}, actor=staff_member(world.a, "owner"))
        db.session.commit()
        assert operation.id
    with app.app_context():
        run_pending_jobs()
    with app.app_context(), tenant_context(world.a.id):
        count = db.session.scalar(sa.select(sa.func.count(Contact.id)))
        assert count >= 3000
        for table in ("contact", "contact_search_token", "contact_address", "timeline_entry"):
            rows, _ = _statistics(table)
            assert rows >= 0.5 * db.session.connection().execute(sa.text(f"SELECT count(*) FROM {table}")).scalar(), table


def test_start_up_warns_when_autovacuum_is_off(app, postgres, caplog):
    """It is off on the development machines this was measured on; on in a default install."""
    from wsgi import _warn_about_the_database

    with app.app_context():
        off = db.session.connection().execute(sa.text("SHOW autovacuum")).scalar() != "on"
    with caplog.at_level(logging.WARNING):
        _warn_about_the_database(app)
    assert ("autovacuum off" in caplog.text) is off
