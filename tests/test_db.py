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
