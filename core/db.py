"""The SQLAlchemy handle, the declarative base and the column helpers shared by every model."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.pool import Pool
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

# Stable constraint names, so Alembic can find and change them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

# A pooled connection is pinged before use only when it sat idle long enough for the server,
# a proxy or a firewall to have dropped it: SQLAlchemy's pool_pre_ping costs every request a
# round trip of its own. A connection that breaks within that window fails its request, and
# the pool replaces it (SQLAlchemy invalidates a connection on a disconnect error).
PING_AFTER_IDLE_S = 30.0
_IDLE_SINCE = "portico_idle_since"


@event.listens_for(Pool, "checkin")
def _note_idle(dbapi_connection, record) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection, record, proxy) -> None:
    since = record.info.get(_IDLE_SINCE)
    if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()
    except Exception as exc:  # whatever the driver raises for a dead connection
        raise sa.exc.DisconnectionError(str(exc)) from exc


_COMPILED_SQL: dict = {}


def first_row(statement, params: dict) -> tuple | None:
    """The values of a Core `statement`'s first row, in the order of its columns, or None: for
    the lookups of every request (its tenant, its session), which find one row by a unique key.
    On PostgreSQL it goes to psycopg directly, past SQLAlchemy's execution machinery (its
    compiled form is kept per statement). Not prepared on the server: psycopg forgets its
    prepared statements at every ROLLBACK (the end of every read-only request), deallocating
    them in one more round trip, and preparing takes a round trip of its own. Its columns must
    be of types psycopg returns as the models hold them (plain ones, and UTCDateTime:
    psycopg's datetimes are aware)."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        row = connection.execute(statement, params).first()
        return None if row is None else row._tuple()
    compiled_sql = _COMPILED_SQL.get(statement)
    if compiled_sql is None:
        compiled = statement.compile(dialect=connection.dialect)
        compiled_sql = _COMPILED_SQL[statement] = (str(compiled), compiled.params)  # with its literals' values
    sql, constants = compiled_sql
    params = {**constants, **params}
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        if connection._has_events or connection.engine._has_events:  # who counts or logs statements sees it
            connection.dispatch.before_cursor_execute(connection, cursor, sql, params, None, False)
        cursor.execute(sql, params)
        return cursor.fetchone()
    finally:
        cursor.close()


def adopt(model, values):
    """The persistent `model` object of a row read by a Core statement, without the ORM's
    loading machinery: the one the session holds already, or a new one filled in from `values`
    (columns not among them load on first use, as deferred ones do)."""
    session = db.session()
    mapper = sa.inspect(model)
    ident = tuple(values[c.key] for c in mapper.primary_key)
    present = session.identity_map.get(mapper.identity_key_from_primary_key(ident))
    if present is not None:
        return present
    obj = mapper.class_manager.new_instance()
    for column_key, prop in _COLUMN_PROPS.get(model) or _column_props(model):
        if column_key in values:
            sa.orm.attributes.set_committed_value(obj, prop, values[column_key])
    sa.orm.make_transient_to_detached(obj)
    session.add(obj)
    return obj


_COLUMN_PROPS: dict = {}


def _column_props(model):
    props = _COLUMN_PROPS[model] = [(p.columns[0].key, p.key) for p in sa.inspect(model).column_attrs]
    return props


def adoptable_columns(model) -> list:
    """The columns to select for an adopted `model` object: all but the deferred ones, which
    load on first use."""
    return [prop.columns[0] for prop in sa.inspect(model).column_attrs if not prop.deferred]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite stores no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use core.db.utcnow()")
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class TenantScoped:
    """Mixin for every tenant-owned table.

    Gives the table `tenant_id NOT NULL` and a unique `(tenant_id, id)` so that other tenant
    tables can point at it with a composite foreign key that carries the tenant: the
    database itself then refuses a reference into another tenant. Reads of these models are
    filtered to the current tenant and inserts stamped with it (core.tenancy).
    Subclasses add their own constraints through `__tenant_table_args__`.
    """

    __tenant_table_args__: tuple = ()
    # A table whose rows nothing refers to (an index kept by a service, say) may opt out of
    # the surrogate key and lead its primary key with tenant_id instead.
    __tenant_keyed_by_id__: bool = True
    # A table whose every row also points at another tenant row through a composite key
    # (tenant_fk, cascading) may skip its own key to tenant: the composite one already ties
    # the row to an existing tenant, and a second key is one more check per inserted row.
    __tenant_fk__: bool = True

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        # No index of its own: the unique (tenant_id, id) below leads with tenant_id.
        if not cls.__tenant_fk__:
            return mapped_column(sa.Integer, nullable=False)
        return mapped_column(sa.ForeignKey("tenant.id", ondelete="CASCADE"), nullable=False)

    @declared_attr.directive
    def __table_args__(cls):
        keyed = (sa.UniqueConstraint("tenant_id", "id"),) if cls.__tenant_keyed_by_id__ else ()
        return (*keyed, *cls.__tenant_table_args__)


def tenant_fk(column: str, target: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    """A composite foreign key `(tenant_id, column)` → `target(tenant_id, id)`."""
    return sa.ForeignKeyConstraint(
        ["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"], ondelete=ondelete
    )


def platform_wide(reason: str) -> dict:
    """`__table_args__` entry for a table that is deliberately not tenant-scoped."""
    return {"info": {"platform_wide": reason}}


def tenant_tables(metadata: sa.MetaData = Base.metadata) -> list[sa.Table]:
    """Every tenant-owned table: each is filtered by the ORM and carries an RLS policy."""
    return [t for t in metadata.sorted_tables if "tenant_id" in t.c and "platform_wide" not in t.info]


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite enforces foreign keys only when asked, per connection; WAL lets the web server
    and the job worker read while the other writes."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


@sa.event.listens_for(sa.engine.Engine, "connect")
def _postgresql_unprepared_statements(dbapi_connection, connection_record):
    """Plan every statement for the values it is run with: never prepare it on the server.
    psycopg prepares a statement the server has seen five times, and after five more
    PostgreSQL may switch a prepared statement to one generic plan for all values; under
    row-level security (the tenant comes from a setting the planner cannot see) that plan
    scanned a whole table: the contact list of a tenant of a million contacts went from 25 ms
    to 1.8 s on a connection that had served it a dozen times (bench/crm_list.py --repeat 40).
    Forcing custom plans for the whole session instead (plan_cache_mode) re-planned the
    foreign-key check of every row written as well, which made bulk inserts four times slower."""
    import psycopg

    if isinstance(dbapi_connection, psycopg.Connection):
        dbapi_connection.prepare_threshold = None


@sa.event.listens_for(sa.engine.Engine, "savepoint")
def _sqlite_savepoint_inside_a_transaction(connection, name):
    """Python's sqlite3 starts a transaction only before the first INSERT/UPDATE/DELETE. A
    SAVEPOINT sent before that starts one of SQLite's own, and releasing it COMMITS: the
    outer transaction's rollback then undoes nothing (a request that adds a contact to a
    circle, then fails, would keep the addition). Begin the real transaction first, so
    savepoints nest in it as they do on PostgreSQL."""
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN")


def make_sqlite_folder(database_uri: str) -> None:
    """An SQLite database file's folder (instance/ by default) may not exist yet on a fresh
    checkout; SQLite would then fail with "unable to open database file"."""
    url = sa.engine.make_url(database_uri)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)



def include_for(dialect_name: str):
    """Alembic's `include_object` for a database of this kind: an index declared for other
    databases only (`Index(...).ddl_if(dialect="postgresql")`) is not expected on it."""
    def include_object(obj, name, type_, reflected, compare_to) -> bool:
        condition = getattr(obj, "_ddl_if", None) if type_ == "index" and not reflected else None
        if condition is None or condition.dialect is None:
            return True
        dialects = (condition.dialect,) if isinstance(condition.dialect, str) else tuple(condition.dialect)
        return dialect_name in dialects
    return include_object
