"""List pages run the same number of queries however many rows they show (no N+1)."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from core.accounts import create_staff_user
from core.audit import record
from core.db import db
from core.tenancy import tenant_context


@contextmanager
def counted_queries(app):
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _grow(app, tenant_id, n):
    with app.app_context(), tenant_context(tenant_id):
        for i in range(n):
            user = create_staff_user(f"extra{i}@acme.example", f"Extra {i}", "staff", password=None)
            record("staff.created", user)
        db.session.commit()


@pytest.mark.parametrize("path", ["/staff/team", "/staff/audit"])
def test_list_pages_do_not_query_per_row(world, staff_client, app, path):
    client = staff_client("owner")
    client.get(path)  # warm up: session loads, template compile
    with counted_queries(app) as few:
        assert client.get(path).status_code == 200
    _grow(app, world.a.id, 30)
    with counted_queries(app) as many:
        page = client.get(path).get_data(as_text=True)
    assert "Extra 29" in page or "extra29@acme.example" in page
    assert len(many) == len(few), f"{path}: {len(few)} queries with few rows, {len(many)} with 30 more"
