"""Single values a page shows beside its main content (the navigation's count of people waiting
for approval, the size of a selection, the number of matching rows), fetched together: in the
page's main statement when it has one, else all in one statement of their own.

A statement costs a request far more than one more column does: the ORM's work, the tenant
filter, a round trip, and PostgreSQL parsing and planning it under row-level security. So a
value is announced (`want`) and only read when needed (`value`); whichever comes first of the
page's main statement (`riding`, then `settle` with its first row) or the first `value` fetches
every value announced so far.

    scalars.want("crm.selection", lambda: selection.count_query())
    rows = db.session.execute(scalars.riding(list_query)).all()
    scalars.settle(rows[0] if rows else None)      # columns past the list's own
    ...
    scalars.value("crm.selection")

Each value is a `SELECT <one scalar>`; it rides as an uncorrelated scalar subquery, which both
databases evaluate once per statement. Each stays an ORM statement of its own models, so the
tenant filter reaches it as it would reach it alone (core.tenancy refuses what it cannot
filter), and on PostgreSQL row-level security binds it in the same transaction.

Outside a request every value is fetched on its own, at once.
"""
from __future__ import annotations

from typing import Callable

import sqlalchemy as sa
from flask import g, has_request_context

from core.db import db

_STATE = "portico_scalars"
# Announcers run once per request, the first time anything here is asked: each may `want`
# the values it knows this request will show (the staff navigation's badge, say).
_ANNOUNCERS: list[Callable[[], None]] = []


def _label(name: str) -> str:
    return "portico_scalar_" + "".join(c if c.isalnum() else "_" for c in name)


def announcer(fn: Callable[[], None]) -> Callable[[], None]:
    """Register `fn()`, run once per request before its values are first fetched."""
    _ANNOUNCERS.append(fn)
    return fn


class _State:
    __slots__ = ("wanted", "known", "announced")

    def __init__(self) -> None:
        self.wanted: dict[str, Callable[[], sa.Select]] = {}
        self.known: dict[str, object] = {}
        self.announced = False


def _state() -> _State:
    state = g.get(_STATE)
    if state is None:
        state = _State()
        setattr(g, _STATE, state)
    if not state.announced:
        state.announced = True
        for announce in _ANNOUNCERS:
            announce()
    return state


def want(name: str, query: Callable[[], sa.Select]) -> None:
    """Announce a value this request will show: `query()` builds its one-scalar SELECT."""
    if not has_request_context():
        return
    state = _state()
    if name not in state.known:
        state.wanted.setdefault(name, query)


def _pending(state: _State) -> list[tuple[str, Callable[[], sa.Select]]]:
    return [(name, query) for name, query in state.wanted.items() if name not in state.known]


def riding(query: sa.Select) -> sa.Select:
    """`query` with every value still to fetch as one more column each, after its own."""
    if not has_request_context():
        return query
    pending = _pending(_state())
    if not pending:
        return query
    return query.add_columns(*[make().scalar_subquery().label(_label(name)) for name, make in pending])


def settle(row) -> None:
    """Note the values a `riding` statement brought (`row`: any row of its result; None when it
    had none, and the values are fetched when read)."""
    if row is None or not has_request_context():
        return
    state = _state()
    mapping = row._mapping
    for name, _ in _pending(state):
        key = _label(name)
        if key in mapping:
            state.known[name] = mapping[key]


def value(name: str, query: Callable[[], sa.Select] | None = None):
    """The value `name` (announced by `want`, or built by `query` if not): fetched now with
    every other value still to fetch, in one statement, unless a statement brought it already."""
    if not has_request_context():
        if query is None:
            raise KeyError(name)
        return db.session.scalar(query())
    state = _state()
    if name in state.known:
        return state.known[name]
    if query is not None:
        state.wanted.setdefault(name, query)
    if name not in state.wanted:
        raise KeyError(f"no value {name!r} was announced")
    _fetch(state)
    return state.known[name]


def fetch(query: sa.Select):
    """The scalar `query` selects, now, in one statement with every value still to fetch."""
    if not has_request_context():
        return db.session.scalar(query)
    return _fetch(_state(), query)


def _fetch(state: _State, query: sa.Select | None = None):
    pending = _pending(state)
    columns = [make().scalar_subquery().label(_label(n)) for n, make in pending]
    if query is not None:
        columns.append(query.scalar_subquery().label("portico_fetched"))
    row = db.session.execute(sa.select(*columns)).one()
    for (n, _), fetched in zip(pending, row):
        state.known[n] = fetched
    return row[-1] if query is not None else None


def forget(name: str | None = None) -> None:
    """The value (every value) changed in this request: fetch it again when next read."""
    state = g.get(_STATE) if has_request_context() else None
    if state is not None:
        if name is None:
            state.known.clear()
        else:
            state.known.pop(name, None)
