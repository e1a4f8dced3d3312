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
    """A generic plan, chosen after a statement has run ten times on a connection, cannot see
    the tenant row-level security filters on and scanned a million-contact table (1.8 s for a
    25 ms page). Every connection of the app plans each statement for its values."""
    import pytest

    if db.engine.dialect.name != "postgresql":
        pytest.skip("plan caching is PostgreSQL's (set TEST_DATABASE_URL)")
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
