"""Per-process caches of what a tenant configures (its roles' permissions, CRM settings, the
contact list's filter choices, built kickoff forms), keyed by a version number on its row.

Every write to a table whose model sets `__tenant_config__ = True` bumps
`tenant.config_version` in the same transaction: ORM flushes and bulk statements alike are
caught here, so no service can forget to. A request reads the version with its tenant row at
its start (core.tenancy); a cached value is used only if it was computed at that version, and a
value is computed after the version was read, so it is never older than the version it is
filed under (read committed). Every worker process sees a change on its next request after
the change commits.

A request that changed configuration itself reads afresh for the rest of it and files nothing:
what it saw is not committed, and could still be rolled back. Outside requests (jobs, the CLI)
nothing is cached, unless a short job says it may (`read_at`, with the tenant row it read as
its transaction began): a long job's tenant row would hold an old version.

What is cached must be plain data (tuples, frozen dataclasses, classes built from them), never
ORM objects: those belong to one session.
"""
from __future__ import annotations

from typing import Callable, TypeVar

import sqlalchemy as sa
from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from core.tenancy import Tenant, current_tenant_id, tenant_resolved

T = TypeVar("T")
_STORE = "portico_tenant_cache"
_MAX_ENTRIES = 20_000
_VERSION = "tenant_config_version"  # g: (tenant id, version) read at the request's start
_CHANGED = "tenant_config_changed"  # g: this request changed some tenant's configuration
_BUMPED = "portico_config_bumped"  # session.info: tenants bumped in the transaction in progress


def init_app(app) -> None:
    tenant_resolved.connect(_remember_version, weak=False)


def _remember_version(sender, tenant=None) -> None:
    """As the request's tenant is resolved (core.tenancy announces it): the version its caches
    are read at."""
    if tenant is not None:
        # With the row's creation time: a tenant id used again (SQLite reuses the highest
        # freed one) starts a new history, not the old tenant's version 0.
        g.setdefault(_VERSION, (tenant.id, (tenant.config_version, tenant.created_at)))


def read_at(tenant: Tenant) -> None:
    """Let a short job (one app context, e.g. processing one form submission) use the caches
    at the version of `tenant`'s row, read at the start of its transaction, as a request does.
    Only for jobs that finish in moments: what changes meanwhile waits for the next one."""
    g.setdefault(_VERSION, (tenant.id, (tenant.config_version, tenant.created_at)))


def cached(name: str, load: Callable[[], T]) -> T:
    """`load()` for the current tenant, computed once per process and configuration version."""
    known = g.get(_VERSION) if has_app_context() else None
    tenant_id = current_tenant_id()
    if known is None or known[0] != tenant_id or g.get(_CHANGED):
        return load()
    store = current_app.extensions.setdefault(_STORE, {})
    entry = store.get((name, tenant_id))
    if entry is not None and entry[0] == known[1]:
        return entry[1]
    value = load()
    if g.get(_CHANGED):  # loading wrote configuration (a tenant's settings created on first use)
        return value
    if len(store) >= _MAX_ENTRIES:
        store.clear()
    store[(name, tenant_id)] = (known[1], value)
    return value


# --- bumping the version ------------------------------------------------------------------------

_TABLES: dict = {}


def _config_tables() -> dict:
    """{table name: model} of the models whose rows are configuration."""
    from core.db import db

    if not _TABLES:
        _TABLES.update({m.local_table.name: m.class_ for m in db.Model.registry.mappers
                        if getattr(m.class_, "__tenant_config__", False)})
    return _TABLES


def _bump(session: Session, tenant_ids: set) -> None:
    bumped = session.info.setdefault(_BUMPED, set())
    todo = {t for t in tenant_ids if t is not None} - bumped
    if tenant_ids and (has_request_context() or (has_app_context() and _VERSION in g)):
        g.setdefault(_CHANGED, True)
    if not todo:
        return
    bumped |= todo
    session.connection().execute(sa.update(Tenant.__table__).where(Tenant.__table__.c.id.in_(sorted(todo)))
                                 .values(config_version=Tenant.__table__.c.config_version + 1))


def bump(tenant_id: int) -> None:
    """Say that a tenant's configuration changed by a path the ORM does not see (raw SQL)."""
    from core.db import db

    _bump(db.session(), {tenant_id})


def _changes_configuration(session: Session, obj) -> bool:
    if obj in session.new or obj in session.deleted:
        return True
    # Columns a model keeps for bookkeeping (a rota's next member, a last login) are no
    # configuration: a change to only those bumps nothing.
    ignored = getattr(type(obj), "__tenant_config_ignores__", frozenset())
    state = sa.inspect(obj)
    return any(attr.history.has_changes() for attr in state.attrs if attr.key not in ignored)


@event.listens_for(Session, "before_flush")
def _bump_on_flush(session, flush_context, instances) -> None:
    tenant_ids = set()
    for obj in (*session.new, *session.deleted, *session.dirty):
        if getattr(type(obj), "__tenant_config__", False) and _changes_configuration(session, obj):
            tenant_ids.add(obj.tenant_id if obj.tenant_id is not None else _current())
    if tenant_ids:
        _bump(session, tenant_ids)


@event.listens_for(Session, "do_orm_execute")
def _bump_on_bulk_write(state) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    model = _config_tables().get(getattr(table, "name", None))
    if model is None:
        return
    if state.is_update:
        ignored = getattr(model, "__tenant_config_ignores__", frozenset())
        columns = {getattr(k, "key", k) for k in (state.statement._values or {})}
        if columns and columns <= ignored:
            return
    _bump(state.session, {_current()})


def _current():
    return current_tenant_id()


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_bumps(session, *args) -> None:
    # After a rollback (a savepoint's too) the bump may be undone: the next change bumps again.
    session.info.pop(_BUMPED, None)


def clear() -> None:
    """Drop this process's cached values (tests)."""
    if has_app_context():
        current_app.extensions.pop(_STORE, None)
