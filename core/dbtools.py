"""Throwaway PostgreSQL schemas for tests and benchmarks, owned by a role that is neither
superuser nor BYPASSRLS, so that row-level security binds them exactly as in production."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

# Under row-level security, PostgreSQL uses an index only for conditions whose functions are
# LEAKPROOF (they cannot reveal rows the policy hides); pg_trgm's `%` is not declared so, and a
# trigram match would read every name of the tenant. Only a superuser may declare it.
TRIGRAMS_UNDER_RLS = "ALTER FUNCTION public.similarity_op(text, text) LEAKPROOF"

APP_ROLE = "portico_test_app"
APP_PASSWORD = "portico-test-app"


def psycopg_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def isolated_schema(admin_url: str, prefix: str = "portico_t", *, kept: str | None = None) -> Iterator[str]:
    """Yield a URL that connects as the ordinary role into a new schema of its own; the
    schema is dropped afterwards (and leftovers of dead processes before). With `kept`, the
    schema of that name is used as it is and kept (a benchmark's seeded data, reused)."""
    admin_url = psycopg_url(admin_url)
    schema = f"{prefix}_{kept}" if kept else f"{prefix}_{os.getpid()}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}):
            conn.execute(sa.text(
                f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE "
                f"PASSWORD '{APP_PASSWORD}'"))
        pattern = prefix.replace("_", "\\_") + "\\_%"
        for (stale,) in conn.execute(sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                                     {"p": pattern}):
            suffix = stale.rsplit("_", 1)[1]
            if (stale == schema and not kept) or (suffix.isdigit() and not _pid_alive(int(suffix))):
                conn.execute(sa.text(f"DROP SCHEMA {stale} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {'IF NOT EXISTS ' if kept else ''}{schema} AUTHORIZATION {APP_ROLE}"))
        # Extensions are the database's, made by its administrator, in public (the migrations
        # create them only where they may: README, "PostgreSQL").
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        conn.execute(sa.text(TRIGRAMS_UNDER_RLS))
    parts = urlsplit(admin_url)
    netloc = f"{APP_ROLE}:{APP_PASSWORD}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    query = (parts.query + "&" if parts.query else "") + f"options=-csearch_path%3D{schema}%2Cpublic"
    try:
        yield urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    finally:
        if not kept:
            with engine.connect() as conn:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()
