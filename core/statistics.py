"""The planner's statistics for tables a bulk job grows.

PostgreSQL plans a statement from the statistics `ANALYZE` last gathered. Autovacuum refreshes
them about once a minute in production (and is off on some machines altogether), far behind a
bulk load: an import into a new tenant would keep planning its foreign-key checks and lookups
for the empty tables it started with (115 s for 20,000 rows, against 9 s with fresh
statistics). So a job that grows tables asks `analyze_grown` after each of its transactions'
work: a table whose size on disk has reached GROWTH times what its statistics last saw is
analysed then, in the same transaction (ANALYZE counts the rows this transaction inserted).
Doubling keeps it to a handful of ANALYZE runs per table over a whole import, each of a
sample (at most 30,000 rows), and `ANALYZE` invalidates the session's cached plans, the
foreign-key checks' included. SKIP_LOCKED: a table another worker is analysing is left to it.
"""
from __future__ import annotations

import logging
from typing import Iterable

import sqlalchemy as sa

from core.db import db

logger = logging.getLogger(__name__)

GROWTH = 2.0  # analyse once a table has doubled since its statistics were taken

_SIZES = sa.text("""
    SELECT c.relname, c.relpages, pg_relation_size(c.oid) / current_setting('block_size')::int AS pages
    FROM unnest(CAST(:names AS text[])) AS t(name)
    JOIN pg_class c ON c.oid = to_regclass(t.name)
""")


def analyze_grown(tables: Iterable[str]) -> list[str]:
    """ANALYZE the tables (of the current schema) that have grown GROWTH-fold since their
    last statistics; return their names. Nothing to do on SQLite, whose planner needs none."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return []
    grown = [name for name, seen, pages in connection.execute(_SIZES, {"names": list(tables)})
             if pages > 0 and pages >= GROWTH * max(seen, 0.5)]
    for name in grown:
        # The names come from our own table list (never from input); quoted all the same.
        connection.execute(sa.text(f'ANALYZE (SKIP_LOCKED) "{name}"'))
    if grown:
        logger.info("Refreshed the planner's statistics of %s", ", ".join(grown))
    return grown


def autovacuum_is_off(connection) -> bool:
    """Nothing refreshes statistics behind the app's back: worth a warning at start-up."""
    return connection.execute(sa.text("SHOW autovacuum")).scalar() != "on"
