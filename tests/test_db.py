"""The database handle's own behaviour, on both databases."""
from __future__ import annotations

from core.db import db


def test_a_savepoint_first_in_a_transaction_is_undone_by_its_rollback(app_ctx):
    """Python's sqlite3 opens a transaction only before a write: a SAVEPOINT sent first would
    open SQLite's own, and releasing it would commit (core.db begins the transaction first)."""
    with db.engine.connect() as connection:
        connection.exec_driver_sql("CREATE TEMPORARY TABLE savepoint_probe (x INTEGER)")
        connection.commit()
        connection.exec_driver_sql("SELECT 1")  # a read: still no transaction as sqlite3 sees it
        with connection.begin_nested():
            connection.exec_driver_sql("INSERT INTO savepoint_probe VALUES (1)")
        connection.exec_driver_sql("INSERT INTO savepoint_probe VALUES (2)")
        connection.rollback()
        assert connection.exec_driver_sql("SELECT count(*) FROM savepoint_probe").scalar() == 0


def test_postgresql_plans_each_statement_for_its_own_values(app_ctx):
    """A generic plan, chosen after a prepared statement has run ten times on a connection,
    cannot see the tenant row-level security filters on and scanned a million-contact table
    (1.8 s for a 25 ms page). The app never prepares its statements, so each is planned for
    its values, however often it runs; the session's own plan cache (foreign-key checks) is
    left to PostgreSQL."""
    import pytest

    if db.engine.dialect.name != "postgresql":
        pytest.skip("plan caching is PostgreSQL's (set TEST_DATABASE_URL)")
    with db.engine.connect() as connection:
        for _ in range(20):
            connection.exec_driver_sql("SELECT count(*) FROM tenant WHERE id > %(n)s", {"n": 0}).scalar()
        assert connection.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar() == 0
        assert connection.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"


def test_an_adopted_row_is_the_sessions_object_and_behaves_as_one_loaded_by_a_query(app_ctx):
    """core.db.adopt turns a row read by a Core statement (the request's tenant and session
    lookups) into the session's object: the one already held if any, else a new persistent
    one that reads without SQL, loads a deferred column on use, and saves its changes."""
    import sqlalchemy as sa
    from sqlalchemy import event

    from core.db import adopt
    from core.tenancy import Tenant

    tenant = Tenant(slug="adopted", name="Adopted Ltd", logo=b"\x89PNG", logo_mimetype="image/png")
    db.session.add(tenant)
    db.session.commit()
    tenant_id = tenant.id
    assert adopt(Tenant, {"id": tenant_id, "slug": "ignored", "name": "ignored"}) is tenant  # already held
    db.session.expunge_all()

    columns = [c for c in Tenant.__table__.c if c.key != "logo"]
    row = db.session.connection().execute(sa.select(*columns).where(Tenant.id == tenant_id)).first()
    statements = []

    def note(connection, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        adopted = adopt(Tenant, row._mapping)
        assert (adopted.slug, adopted.name, adopted.logo_mimetype) == ("adopted", "Adopted Ltd", "image/png")
        assert statements == []  # read from the row, not from the database
        assert sa.inspect(adopted).persistent and db.session.get(Tenant, tenant_id) is adopted
        assert adopted.logo == b"\x89PNG"  # the deferred column loads when asked for
        adopted.name = "Renamed Ltd"
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    db.session.expunge_all()
    assert db.session.scalar(sa.select(Tenant.name).where(Tenant.id == tenant_id)) == "Renamed Ltd"


def test_the_lookups_of_every_request_return_their_row_and_are_still_seen(app_ctx):
    """core.db.first_row (the request's tenant and session lookups) returns the row's values,
    past SQLAlchemy's execution on PostgreSQL; listeners counting statements still see each
    run, and nothing is left prepared on the server (psycopg would deallocate it in a round
    trip of its own at the end of every read-only request)."""
    import sqlalchemy as sa
    from sqlalchemy import event

    from core.db import first_row
    from core.tenancy import Tenant

    db.session.add(Tenant(slug="looked-up", name="Looked Up Ltd"))
    db.session.commit()
    lookup = sa.select(Tenant.name, Tenant.status).where(Tenant.slug == sa.bindparam("slug"))
    seen = []

    def note(connection, cursor, statement, *args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        assert first_row(lookup, {"slug": "looked-up"}) == ("Looked Up Ltd", "active")
        assert first_row(lookup, {"slug": "nobody"}) is None
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert len([s for s in seen if "FROM tenant" in s]) == 2
    if db.engine.dialect.name == "postgresql":
        assert db.session.connection().exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar() == 0
