"""How fast is the contact list at a million contacts, compared with its bare SQL?

Seeds one tenant with N contacts (and 99 small tenants beside it), then times the staff
contact list through the real app (routing, session, tenant filter, row-level security,
visibility rule, count, template) for the first, a middle and a deep page of a filtered,
sorted list, for a search and for the possible-duplicates page (1% of the contacts are old,
inactive records sharing an e-mail), each against the same SQL, as the app sends it, run bare
on the same database role: every statement the page sends, captured from the driver and
replayed in one transaction. Prints a table and, last, one JSON line of figures.

    python bench/crm_list.py [--size N] [--repeat R] [--database-url URL] [--explain] [--keep NAME] [--profile]

The database defaults to BENCH_DATABASE_URL or TEST_DATABASE_URL (PostgreSQL, in a throwaway
schema owned by an ordinary role, so RLS applies as in production), else a temporary SQLite.
Targets (issue 3): every page under 100 ms and within 3x of bare SQL.
"""
from __future__ import annotations

import argparse
import io
import json
import random
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from _common import (PASSWORD, SMALL_TENANTS, add_database_arguments, databases, make_app,
                     paired_median_ms, print_profile, sign_in, target)

import sqlalchemy as sa  # noqa: E402

FIRST = ["Ada", "Grace", "Alan", "Katherine", "Dorothy", "Mary", "Linus", "Barbara", "Edsger", "Donald", "Frances",
         "John", "Margaret", "Tim", "Radia", "Ken", "Sophie", "Hedy", "Annie", "Claude", "Ágata", "Jürgen", "Ngozi",
         "Wei", "Priya", "Mateo", "Yuki", "Olu", "Fatima", "Lars"]
LAST = ["Lovelace", "Hopper", "Turing", "Johnson", "Vaughan", "Jackson", "Torvalds", "Liskov", "Dijkstra", "Knuth",
        "Allen", "Backus", "Hamilton", "Berners-Lee", "Perlman", "Thompson", "Wilson", "Lamarr", "Easley", "Shannon",
        "Núñez", "Schmidt", "Okafor", "Zhang", "Sharma", "García", "Tanaka", "Adeyemi", "Haddad", "Nilsson"]
DUPLICATE_SHARE = 0.01
ROLES = ["lead"] * 60 + ["prospect"] * 25 + ["client"] * 15


def _copy_contacts(connection, tenant_id: int, count: int, statuses: list[int], owners: list[int],
                   seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=timezone.utc)
    columns = ("tenant_id, first_name, last_name, email, extra_emails, phone, extra_phones, is_primary_contact, "
               "social, role, status_id, is_active, is_test, owner_id, custom_fields, created_at, updated_at, "
               "last_activity_at")
    batch = 50_000
    for offset in range(0, count, batch):
        buffer = io.StringIO()
        for i in range(offset, min(offset + batch, count)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{first.lower()}.{last.lower()}.{i}@example.com".encode("ascii", "ignore").decode()
            active = rng.random() < 0.95
            if rng.random() < DUPLICATE_SHARE:  # an old, inactive record of someone: the duplicates page's work
                email, active = f"dup{rng.randrange(count // 200 + 1)}@example.com", False
            phone = f"+1415{i % 10_000_000:07d}"
            created = start + timedelta(minutes=rng.randrange(0, 3 * 365 * 24 * 60))
            updated = created + timedelta(minutes=rng.randrange(0, 60 * 24 * 90))
            activity = "\\N" if rng.random() < 0.3 else (updated + timedelta(days=rng.randrange(0, 30))).isoformat()
            buffer.write("\t".join([
                str(tenant_id), first, last, email, "[]", phone, "[]", "f", "{}", rng.choice(ROLES),
                str(rng.choice(statuses)), "t" if active else "f", "f", str(rng.choice(owners)), "{}",
                created.isoformat(), updated.isoformat(), activity]) + "\n")
        _copy(connection, f"COPY contact ({columns}) FROM STDIN", buffer.getvalue())
    _copy_search_tokens(connection, tenant_id)
    buffer = io.StringIO()
    for contact_id, address in _address_rows(connection, tenant_id):
        buffer.write(f"{tenant_id}\t{contact_id}\t{address}\n")
    _copy(connection, "COPY contact_address (tenant_id, contact_id, address) FROM STDIN", buffer.getvalue())


def _copy(connection, sql: str, data: str) -> None:
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:
        with cursor.copy(sql) as copy:
            copy.write(data)


def _search_token_rows(connection, tenant_id: int):
    """The words the app indexes for each contact (crm.search.contact_tokens, as its services do)."""
    from crm.search import contact_tokens

    rows = connection.execute(sa.text(
        "SELECT id, first_name, last_name, email, phone FROM contact WHERE tenant_id = :t ORDER BY id"),
        {"t": tenant_id})
    for contact_id, first, last, email, phone in rows:
        for token in contact_tokens(names=(first, last), emails=(email,), phones=(phone,)):
            yield contact_id, token


def _address_rows(connection, tenant_id: int):
    """The e-mails and phones each contact answers to (contact_address), as the services store
    them (crm.identity.contact_addresses): what the duplicates page groups."""
    from crm.identity import contact_addresses

    rows = connection.execute(sa.text("SELECT id, email, phone FROM contact WHERE tenant_id = :t ORDER BY id"),
                              {"t": tenant_id})
    for contact_id, email, phone in rows:
        for address in sorted(contact_addresses((email,), (phone,))):
            yield contact_id, address


def _copy_search_tokens(connection, tenant_id: int, batch: int = 500_000) -> None:
    buffer, n = io.StringIO(), 0
    for contact_id, token in _search_token_rows(connection, tenant_id):
        buffer.write(f"{tenant_id}\t{contact_id}\t{token}\n")
        n += 1
        if n % batch == 0:
            _copy(connection, "COPY contact_search_token (tenant_id, contact_id, token) FROM STDIN", buffer.getvalue())
            buffer = io.StringIO()
    _copy(connection, "COPY contact_search_token (tenant_id, contact_id, token) FROM STDIN", buffer.getvalue())


def _insert_contacts_sqlite(connection, tenant_id, count, statuses, owners, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}.{i}@example.com".encode("ascii", "ignore").decode()
        rows.append({"t": tenant_id, "f": first, "l": last, "e": email, "r": rng.choice(ROLES),
                     "s": rng.choice(statuses), "o": rng.choice(owners),
                     "c": (datetime(2023, 1, 1) + timedelta(minutes=rng.randrange(0, 1_500_000))).isoformat(" ")})
    connection.execute(sa.text(
        "INSERT INTO contact (tenant_id, first_name, last_name, email, extra_emails, extra_phones, is_primary_contact,"
        " social, role, status_id, is_active, is_test, owner_id, custom_fields, created_at, updated_at)"
        " VALUES (:t, :f, :l, :e, '[]', '[]', 0, '{}', :r, :s, 1, 0, :o, '{}', :c, :c)"), rows)
    connection.execute(sa.text("INSERT INTO contact_search_token (tenant_id, contact_id, token) VALUES (:t, :c, :w)"),
                       [{"t": tenant_id, "c": c, "w": w} for c, w in list(_search_token_rows(connection, tenant_id))])
    connection.execute(sa.text("INSERT INTO contact_address (tenant_id, contact_id, address) VALUES (:t, :c, :a)"),
                       [{"t": tenant_id, "c": c, "a": a} for c, a in list(_address_rows(connection, tenant_id))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=None, help="contacts in the big tenant (1,000,000; --quick 50,000)")
    parser.add_argument("--quick", action="store_true", help="50,000 contacts (make bench)")
    add_database_arguments(parser)
    args = parser.parse_args()
    args.size = args.size or (50_000 if args.quick else 1_000_000)

    with ExitStack() as stack:
        url, seed_url = databases(args.database_url, stack, keep=args.keep)
        figures = run(url, seed_url, args, stack)
    print(json.dumps(figures))


def _seeded(size: int) -> tuple[int, int] | None:
    """(tenant id, owner id) of a kept schema's earlier seeding of this size, if there is one."""
    from core.db import db
    from core.identity import StaffUser
    from core.tenancy import Tenant, cross_tenant, tenant_context
    from crm.models import Contact

    with cross_tenant("benchmark", audit=False):
        tenant_id = db.session.scalar(sa.select(Tenant.id).where(Tenant.slug == "bench"))
    if tenant_id is None:
        return None
    with tenant_context(tenant_id):
        if db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) != size:
            raise SystemExit("the kept schema holds another size: use another --keep name")
        return tenant_id, db.session.scalar(sa.select(StaffUser.id).where(StaffUser.email == "owner@bench.example"))


def _seed(seed_url: str, size: int) -> tuple[int, int]:
    from core.db import db
    from core.identity import StaffUser
    from core.tenancy import tenant_context
    from core.tenants import create_tenant
    from crm.models import PipelineStatus

    big, owner = create_tenant("bench", "Bench Co", "owner@bench.example", PASSWORD, "Bench Owner")
    big_id, owner_id = big.id, owner.id  # read now: after commit the owner's row is out of sight
    smalls = [create_tenant(f"small{i:02d}", f"Small {i}", f"o@small{i}.example", PASSWORD)[0]
              for i in range(SMALL_TENANTS)]
    db.session.commit()
    plan = []
    for tenant, count in [(big, size)] + [(t, max(size // 1000, 10)) for t in smalls]:
        with tenant_context(tenant.id):
            statuses = list(db.session.scalars(sa.select(PipelineStatus.id)))
            owners = list(db.session.scalars(sa.select(StaffUser.id)))
        plan.append((tenant.id, count, statuses, owners))
    seed_engine = sa.create_engine(seed_url)
    with seed_engine.begin() as connection:
        for n, (tenant_id, count, statuses, owners) in enumerate(plan):
            if connection.dialect.name == "postgresql":
                _copy_contacts(connection, tenant_id, count, statuses, owners, seed=n)
            else:
                _insert_contacts_sqlite(connection, tenant_id, count, statuses, owners, seed=n)
    if seed_engine.dialect.name == "postgresql":
        # As autovacuum leaves a table in production: statistics, and the visibility map that
        # lets index-only scans skip the heap (a fresh COPY has none).
        with seed_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    seed_engine.dispose()
    return big_id, owner_id


def run(url: str, seed_url: str, args, stack: ExitStack) -> dict:
    from flask_migrate import upgrade

    from core.db import db
    from core.tenancy import tenant_context
    from crm import contact_list
    app = make_app(url, stack)
    seed_start = time.perf_counter()
    with app.app_context():
        upgrade()
        seeded = _seeded(args.size) if args.keep else None
        if seeded:
            big_id, owner_id = seeded
        else:
            big_id, owner_id = _seed(seed_url, args.size)
    seed_s = time.perf_counter() - seed_start

    client, base = sign_in(app, "bench", "owner@bench.example")

    # The list under test: Clients, sorted by name; a middle and a deep page found by their cursors.
    filters = contact_list.ContactFilters(role=["client"])
    cases = {}
    with app.app_context(), tenant_context(big_id):
        from core.identity import StaffUser
        staff = db.session.get(StaffUser, owner_id)
        matching = contact_list.count(filters, staff, cap=None)  # exact: where the middle and the end are
        columns = [*contact_list.SORTS["name"].columns(), contact_list.Contact.id]
        for name, offset in (("first_page", None), ("middle_page", matching // 2), ("deep_page", matching - 60)):
            cursor = None
            if offset:
                row = db.session.execute(contact_list.filtered_query(filters, staff).with_only_columns(*columns)
                                         .order_by(*columns).offset(offset).limit(1)).one()
                cursor = contact_list.encode_cursor(list(row))
            cases[name] = {"role": "client", "sort": "name", "dir": "asc", **({"after": cursor} if cursor else {})}
        cases["search"] = {"q": "lovelace 4242"}
        cases["duplicates"] = {}

    figures = {"contacts": args.size, "tenants": SMALL_TENANTS + 1, "matching_clients": matching,
               "seed_s": round(seed_s, 1)}
    table = []
    with app.app_context():
        engine = db.engine
    with engine.connect() as connection:
        for name, params in cases.items():
            path = "/staff/duplicates" if name == "duplicates" else "/staff/contacts?" + urlencode(params)
            page = client.get(path, base_url=base)
            assert page.status_code == 200 and ("duplicates" if name == "duplicates" else "contact") in \
                page.get_data(as_text=True), path
            if args.profile:
                print_profile(name, lambda: client.get(path, base_url=base), args.repeat)
            # Every statement the page sends (its session and tenant look-ups, the list, the
            # count, the filter choices…), exactly as sent, captured from the driver: the bare
            # run replays them in one transaction, with none of the app's Python around them.
            sent = []

            def capture(conn, cursor, statement, parameters, context, executemany, sent=sent):
                sent.append((statement, parameters))

            sa.event.listen(engine, "before_cursor_execute", capture)
            try:
                client.get(path, base_url=base)
            finally:
                sa.event.remove(engine, "before_cursor_execute", capture)
            compiled = {name: sent}

            def bare(sqls=sent):
                with connection.begin():
                    for sql, parameters in sqls:
                        result = connection.exec_driver_sql(sql, parameters)
                        if result.returns_rows:
                            result.all()

            page_ms, bare_ms = paired_median_ms(lambda: client.get(path, base_url=base), bare, args.repeat)
            if args.explain and connection.dialect.name == "postgresql":
                with connection.begin():
                    connection.exec_driver_sql("SELECT set_config('app.tenant_id', %(t)s, true)", {"t": str(big_id)})
                    for sql, parameters in compiled[name]:
                        if "contact" not in sql or not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                            continue
                        plan = [r[0] for r in connection.exec_driver_sql("EXPLAIN ANALYZE " + sql, parameters)]
                        print(f"--- {name}\n" + "\n".join(plan))
            figures[f"{name}_ms"] = round(page_ms, 1)
            figures[f"{name}_bare_ms"] = round(bare_ms, 1)
            figures[f"{name}_ratio"] = round(page_ms / bare_ms, 2)
            table.append((name, page_ms, bare_ms))
    print(f"{'page':<12} {'app ms':>8} {'bare SQL ms':>12}   ({args.size:,} contacts, {engine.dialect.name})")
    for name, page_ms, bare_ms in table:
        print(f"{name:<12} {page_ms:>8.1f} {bare_ms:>12.1f}")
    figures["targets"] = [t for name, page_ms, bare_ms in table for t in (
        target(f"{name.replace('_', ' ')}, {args.size:,} contacts", round(page_ms, 1), at_most=100, unit="ms"),
        target(f"{name.replace('_', ' ')} vs its bare SQL", round(page_ms / bare_ms, 2), at_most=3, unit="x"))]
    return figures


if __name__ == "__main__":
    main()
