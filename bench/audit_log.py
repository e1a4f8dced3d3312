"""How fast is the staff audit log at size, compared with its bare SQL?

Fills one tenant with N audit events (and 99 small tenants beside it), then times the staff
audit page (first, middle and deep page, through the real app: routing, session, tenant
filter, row-level security, template) against the same SQL run bare on the same database
role. Prints a table and, last, one JSON line of figures.

    python bench/audit_log.py [--size N] [--repeat R] [--database-url URL]

The database defaults to BENCH_DATABASE_URL or TEST_DATABASE_URL (PostgreSQL; the run uses
a throwaway schema owned by an ordinary role, so RLS applies as in production), else a
temporary SQLite file.
"""
from __future__ import annotations

import argparse
import io
import json
import time
from contextlib import ExitStack

from _common import (PASSWORD, SMALL_TENANTS, add_database_arguments, databases, make_app,
                     paired_median_ms, sign_in, target)

import sqlalchemy as sa  # noqa: E402

PAGE = 50


def _seed_events(connection, tenant_id: int, count: int, first_id_hint: str) -> None:
    """Bulk-load audit events: COPY on PostgreSQL, executemany on SQLite."""
    rows = (("staff.login" if i % 3 else "staff.role_changed", f"user{i % 50}@bench.example")
            for i in range(count))
    if connection.dialect.name == "postgresql":
        buffer = io.StringIO()
        for action, label in rows:
            buffer.write(f"{tenant_id}\t2026-01-01 00:00:00+00\t{action}\tstaff\t\\N\t{label}\tstaff\t\\N\t{label}"
                         f"\tstaff_user\t\\N\t{label}\t{{}}\t127.0.0.1\n")
        buffer.seek(0)
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy("COPY audit_event (tenant_id, created_at, action, actor_type, actor_id, actor_label,"
                             " real_actor_type, real_actor_id, real_actor_label, target_type, target_id,"
                             " target_label, details, ip_address) FROM STDIN") as copy:
                copy.write(buffer.getvalue())
    else:
        connection.execute(sa.text(
            "INSERT INTO audit_event (tenant_id, created_at, action, actor_type, actor_label, real_actor_type,"
            " real_actor_label, target_type, target_label, details, ip_address) VALUES (:t, '2026-01-01 00:00:00',"
            " :a, 'staff', :l, 'staff', :l, 'staff_user', :l, '{}', '127.0.0.1')"),
            [{"t": tenant_id, "a": a, "l": label} for a, label in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=None, help="audit events in the big tenant (1,000,000; --quick 100,000)")
    parser.add_argument("--quick", action="store_true", help="100,000 events (make bench)")
    add_database_arguments(parser)
    args = parser.parse_args()
    args.size = args.size or (100_000 if args.quick else 1_000_000)

    with ExitStack() as stack:
        url, seed_url = databases(args.database_url, stack)
        figures = run(url, seed_url, args.size, args.repeat, stack, explain=args.explain)
    print(json.dumps(figures))


def run(url: str, seed_url: str, size: int, repeat: int, stack: ExitStack, explain: bool = False) -> dict:
    from flask_migrate import upgrade

    from core.db import db
    from core.tenancy import cross_tenant
    from core.tenants import create_tenant
    app = make_app(url, stack)
    seed_start = time.perf_counter()
    with app.app_context():
        upgrade()
        big, _ = create_tenant("bench", "Bench Co", "owner@bench.example", PASSWORD, "Bench Owner")
        small = [create_tenant(f"small{i:02d}", f"Small {i}", f"o@small{i}.example", PASSWORD)[0]
                 for i in range(SMALL_TENANTS)]
        db.session.commit()
        big_id, small_ids = big.id, [t.id for t in small]
        seed_engine = sa.create_engine(seed_url)
        with seed_engine.begin() as connection:
            _seed_events(connection, big_id, size, "big")
            for tenant_id in small_ids:
                _seed_events(connection, tenant_id, max(size // 1000, 10), "small")
        with seed_engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("ANALYZE audit_event")
        seed_engine.dispose()
        with cross_tenant("bench: find page boundaries", audit=False):
            ids = db.session.execute(sa.text(
                "SELECT min(id), max(id) FROM audit_event WHERE tenant_id = :t"), {"t": big_id},
                execution_options={"portico_tenant_checked_sql": True}).one()
            db.session.commit()
    seed_s = time.perf_counter() - seed_start
    low, high = ids
    cursors = {"first_page": None, "middle_page": (low + high) // 2, "deep_page": low + PAGE + 1}

    client, base = sign_in(app, "bench", "owner@bench.example")

    # The page's own query (staff/views.py audit_log), without the app around it.
    columns = ("id, tenant_id, created_at, action, actor_type, actor_id, actor_label, real_actor_type, real_actor_id,"
               " real_actor_label, target_type, target_id, target_label, details, ip_address")
    bare_first = sa.text(f"SELECT {columns} FROM audit_event WHERE tenant_id = :t ORDER BY id DESC LIMIT :n")
    bare_after = sa.text(f"SELECT {columns} FROM audit_event WHERE tenant_id = :t AND id < :before"
                         " ORDER BY id DESC LIMIT :n")
    figures = {"events": size, "tenants": SMALL_TENANTS + 1, "seed_s": round(seed_s, 1)}
    rows = []
    with app.app_context():
        engine = db.engine
    with engine.connect() as connection:
        for name, before in cursors.items():
            path = "/staff/audit" + (f"?before={before}" if before else "")
            page = client.get(path, base_url=base)
            assert page.status_code == 200 and "staff.login" in page.get_data(as_text=True), path

            def bare():
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        connection.exec_driver_sql("SELECT set_config('app.tenant_id', %(t)s, true)",
                                                   {"t": str(big_id)})
                    connection.execute(bare_after if before else bare_first,
                                       {"t": big_id, "before": before, "n": PAGE + 1}).all()

            page_ms, bare_ms = paired_median_ms(lambda: client.get(path, base_url=base), bare, repeat)
            if explain and connection.dialect.name == "postgresql":
                with connection.begin():
                    connection.exec_driver_sql("SELECT set_config('app.tenant_id', %(t)s, true)", {"t": str(big_id)})
                    plan = connection.execute(sa.text("EXPLAIN ANALYZE " + (bare_after if before else bare_first).text),
                                              {"t": big_id, "before": before, "n": PAGE + 1}).scalars().all()
                print(f"--- {name}\n" + "\n".join(plan))
            figures[f"{name}_ms"] = round(page_ms, 2)
            figures[f"{name}_bare_ms"] = round(bare_ms, 3)
            figures[f"{name}_ratio"] = round(page_ms / bare_ms, 1)
            rows.append((name, page_ms, bare_ms))
    print(f"{'page':<12} {'app ms':>8} {'bare SQL ms':>12}   ({size:,} events, {engine.dialect.name})")
    for name, page_ms, bare_ms in rows:
        print(f"{name:<12} {page_ms:>8.2f} {bare_ms:>12.3f}")
    # The page's fixed cost (session, tenant, template) dwarfs one indexed query: its ratio to
    # the bare query is reported, and its time held to the product's page budget.
    figures["targets"] = [target(f"audit {name.replace('_', ' ')}, {size:,} events", round(page_ms, 1), at_most=100,
                                 unit="ms") for name, page_ms, _ in rows]
    return figures


if __name__ == "__main__":
    main()
