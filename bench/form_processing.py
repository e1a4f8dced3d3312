"""How fast does one job worker process kickoff-form submissions, and does it stay as fast as
the tenant grows?

Seeds tenants by COPY (contacts, their search words and addresses, exactly as the services
write them) to a small and a large size, in two e-mail shapes: "shared" (every address at one
domain, `person.N@bench.example`, whose words match every contact) and "varied" (first.last.N
at one of a thousand domains). Then stores N submissions per tenant through the real service
(forms.submissions.receive_submission: 90% new people, 5% returning by e-mail, 5% a new person
who shares an existing contact's office phone), and drains the queue with one worker in this
process (core.jobs.run_pending_jobs: the processing jobs and the e-mail jobs they queue), timed,
in three rounds in which the small and the large tenant take turns.

    python bench/form_processing.py [--quick] [--sizes 1000 100000] [--submissions N]
                                    [--profile] [--explain] [--database-url URL]

Targets (issue 12): >= 100 submissions/s, and the rate at the large size within 1.5x of the
rate at the small one, for both shapes. Also reported: SQL statements per submission (every
statement the worker sends, counted at the driver), the CPU a submission costs the worker and
its PostgreSQL backends (read from /proc: the server runs on this machine; compare these, not
the rate, across runs on a busy machine), and the machine's load (uptime), since the machine is
shared. `--quick` (make bench): 1,000 and 20,000 contacts, 150 submissions each.
The seeding runs ANALYZE on the tables it loaded by COPY (a tenant grown by imports has fresh
statistics: the import analyses what it grows); the drain runs nothing on the app's behalf.

PostgreSQL (BENCH_DATABASE_URL or TEST_DATABASE_URL), in a throwaway schema owned by an
ordinary role, so row-level security applies; SQLite otherwise (figures not comparable).
The last line is one JSON object; its "targets" are what bench/all.py tabulates.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import time
from contextlib import ExitStack

from _common import PASSWORD, databases, make_app, target

import sqlalchemy as sa  # noqa: E402

RATE_TARGET = 100  # submissions/s by one worker
RATIO_TARGET = 1.5  # large tenant's rate within this factor of the small one's
FIRST = ["Ada", "Grace", "Alan", "Katherine", "Dorothy", "Linus", "Barbara", "Edsger", "Agata", "Jurgen", "Ngozi", "Wei"]
LAST = ["Lovelace", "Hopper", "Turing", "Johnson", "Vaughan", "Torvalds", "Liskov", "Nunez", "Schmidt", "Okafor"]
SHAPES = ("shared", "varied")
ROUNDS = 3


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def email_of(shape: str, i: int) -> str:
    if shape == "shared":
        return f"person.{i}@bench.example"
    return f"{FIRST[i % len(FIRST)].lower()}.{LAST[i % len(LAST)].lower()}.{i}@d{i % 1000}.example"


def phone_of(i: int) -> str:
    return f"+1415{i % 10_000_000:07d}"


# --- seeding ----------------------------------------------------------------------------------------

def _copy(raw, sql: str, data: str) -> None:
    with raw.cursor() as cursor:
        with cursor.copy(sql) as copy:
            copy.write(data)


def seed_contacts(seed_url: str, tenant_id: int, status_id: int, shape: str, count: int) -> None:
    """`count` contacts of the tenant, with their search words and addresses, by COPY."""
    from crm.identity import contact_addresses
    from crm.search import contact_tokens

    engine = sa.create_engine(seed_url)
    with engine.begin() as connection:
        raw = connection.connection.driver_connection
        first_id = connection.execute(sa.text(
            "SELECT nextval(pg_get_serial_sequence('contact', 'id'))")).scalar() + 1
        connection.execute(sa.text("SELECT setval(pg_get_serial_sequence('contact', 'id'), :v)"),
                           {"v": first_id + count})
        contacts, tokens, addresses = io.StringIO(), io.StringIO(), io.StringIO()
        for n in range(count):
            contact_id = first_id + n
            first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
            email, phone = email_of(shape, n), phone_of(n)
            contacts.write(f"{contact_id}\t{tenant_id}\t{first}\t{last}\t{email}\t[]\t{phone}\t[]\tf\t{{}}\tlead\t"
                           f"{status_id}\tt\tf\t{{}}\t2024-01-01T00:00:00+00:00\t2024-01-01T00:00:00+00:00\n")
            for token in contact_tokens(names=(first, last), emails=(email,), phones=(phone,)):
                tokens.write(f"{tenant_id}\t{contact_id}\t{token}\n")
            for address in contact_addresses((email,), (phone,)):
                addresses.write(f"{tenant_id}\t{contact_id}\t{address}\n")
        _copy(raw, "COPY contact (id, tenant_id, first_name, last_name, email, extra_emails, phone, extra_phones, "
              "is_primary_contact, social, role, status_id, is_active, is_test, custom_fields, created_at, updated_at)"
              " FROM STDIN", contacts.getvalue())
        _copy(raw, "COPY contact_search_token (tenant_id, contact_id, token) FROM STDIN", tokens.getvalue())
        _copy(raw, "COPY contact_address (tenant_id, contact_id, address) FROM STDIN", addresses.getvalue())
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in ("contact", "contact_search_token", "contact_address"):
            connection.execute(sa.text(f"ANALYZE {table}"))
    engine.dispose()


def make_tenant(app, slug: str) -> tuple[int, int, int]:
    """(tenant id, form id, default status id): a tenant with the bench form (the usual fields,
    onto the contact and company; confirmation to the registrant, a note to the owner)."""
    from core.db import db
    from core.tenancy import tenant_context
    from core.tenants import create_tenant
    from crm.contacts import default_status_id
    from forms.models import FieldKind, Form, FormField

    with app.app_context():
        tenant, owner = create_tenant(slug, f"Bench {slug}", f"owner@{slug}.example", PASSWORD, "Bench Owner")
        tenant_id, owner_id = tenant.id, owner.id
        db.session.commit()
        with tenant_context(tenant_id):
            form = Form(slug="kickoff", title="Bench kickoff", thank_you_message="Thanks", min_fill_seconds=0,
                        send_confirmation=True, notify_staff_ids=[owner_id])
            db.session.add(form)
            db.session.flush()
            for position, (key, kind, label, required, target_) in enumerate([
                ("first_name", FieldKind.SHORT_TEXT, "First name", True, "contact.first_name"),
                ("last_name", FieldKind.SHORT_TEXT, "Last name", False, "contact.last_name"),
                ("email", FieldKind.EMAIL, "E-mail", True, "contact.email"),
                ("phone", FieldKind.PHONE, "Phone", False, "contact.phone"),
                ("company", FieldKind.SHORT_TEXT, "Company", False, "company.name"),
            ]):
                db.session.add(FormField(form_id=form.id, position=position, key=key, kind=kind, label=label,
                                         required=required, target=target_))
            form_id = form.id
            status_id = default_status_id()
            db.session.commit()
        db.session.remove()
    return tenant_id, form_id, status_id


def enqueue(app, tenant_id: int, form_id: int, shape: str, size: int, count: int, seed: int, start: int = 0) -> None:
    """`count` submissions (numbered from `start`) stored through the service (their
    processing jobs queued)."""
    from core.db import db
    from core.tenancy import tenant_context
    from forms.models import Form
    from forms.submissions import receive_submission

    rng = random.Random(seed)
    with app.app_context(), tenant_context(tenant_id):
        form = db.session.get(Form, form_id)
        for n in range(start, start + count):
            kind = rng.random()
            i = size + n  # a new person
            email, phone = email_of(shape, i), f"+1 (646) 555-{n % 10000:04d}"
            if kind < 0.05 and size:  # returning: an existing contact's e-mail
                email = email_of(shape, rng.randrange(size)).upper()
            elif kind < 0.10 and size:  # a new person at an existing contact's office phone
                phone = phone_of(rng.randrange(size))
            answers = {"first_name": FIRST[n % len(FIRST)], "last_name": LAST[n % len(LAST)], "email": email,
                       "phone": phone, "company": f"Company {n % 40}"}
            receive_submission(form, answers, idempotency_key=f"bench-{tenant_id}-{n}")
        db.session.remove()


def _backend_cpu(pids: set[int]) -> float:
    """CPU seconds the PostgreSQL backends with these process ids have spent (same machine)."""
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def drain(app, *, profile: bool) -> tuple[float, int, int, float, float]:
    """Run every queued job in this process (one worker): (seconds, jobs run, statements sent,
    CPU seconds this process spent, CPU seconds its PostgreSQL backends spent)."""
    from core.db import db
    from core.jobs import run_pending_jobs

    statements = [0]
    backends: set[int] = set()

    def count(*_args):
        statements[0] += 1

    def note_backend(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.add(cursor.fetchone()[0])

    with app.app_context():
        engine = db.engine
        engine.dispose()  # the drain's connections are new ones, whose backends are known
        sa.event.listen(engine, "connect", note_backend)
        with engine.connect() as connection:  # one open before the clock starts
            connection.exec_driver_sql("SELECT 1")
        backend_cpu = _backend_cpu(backends)
        sa.event.listen(engine, "before_cursor_execute", count)
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        try:
            ran = run_pending_jobs()
        finally:
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
            backend_cpu = _backend_cpu(backends) - backend_cpu
            if profiler is not None:
                profiler.disable()
            sa.event.remove(engine, "before_cursor_execute", count)
            sa.event.remove(engine, "connect", note_backend)
        if profiler is not None:
            import pstats

            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(40)
            stats.sort_stats("tottime").print_stats(25)
    return seconds, ran, statements[0], cpu, backend_cpu


def outcome(seed_url: str, tenant_id: int) -> dict:
    engine = sa.create_engine(seed_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT state, count(*) FROM kickoff_form_submission WHERE tenant_id = :t GROUP BY state"),
            {"t": tenant_id}).all()
        errors = connection.execute(sa.text(
            "SELECT error FROM kickoff_form_submission WHERE tenant_id = :t AND state = 'failed' LIMIT 3"),
            {"t": tenant_id}).scalars().all()
    engine.dispose()
    return {"states": dict(rows), "errors": errors}


def round_trip_ms(url: str, repeat: int = 1000) -> float:
    """The bare baseline, measured in the same run: the median time of one round trip
    (SELECT 1) on a psycopg connection of the app's own role. Statements per submission times
    this is what the database's round trips alone cost a submission."""
    import statistics

    import psycopg

    samples = []
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as connection:
        for _ in range(repeat):
            started = time.perf_counter()
            connection.execute("SELECT 1").fetchone()
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def explain(app, tenant_id: int, shape: str) -> None:
    """The plan of the identity lookup, as the worker sends it (PostgreSQL, RLS on)."""
    from core.db import db
    from core.tenancy import tenant_context
    from crm.identity import holders_of

    captured = []

    def grab(_conn, _cursor, statement, parameters, _context, _many):
        if "contact_address" in statement:
            captured.append((statement, parameters))

    with app.app_context(), tenant_context(tenant_id):
        sa.event.listen(db.engine, "before_cursor_execute", grab)
        try:
            holders_of([email_of(shape, 7), phone_of(7)])
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", grab)
        statement, parameters = captured[0]
        connection = db.session.connection()
        plan = connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).scalars().all()
        print(f"--- identity lookup ({shape}):\n" + "\n".join(plan))
        db.session.rollback()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 20,000 contacts, 150 submissions each")
    parser.add_argument("--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"))
    parser.add_argument("--submissions", type=int)
    parser.add_argument("--profile", action="store_true", help="cProfile the large varied tenant's drain")
    parser.add_argument("--explain", action="store_true", help="print the identity lookup's plan (PostgreSQL)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL")
                        or os.environ.get("TEST_DATABASE_URL"))
    args = parser.parse_args()
    small, large = args.sizes or ((1_000, 20_000) if args.quick else (1_000, 100_000))
    count = args.submissions or (150 if args.quick else 300)

    with ExitStack() as stack:
        url, seed_url = databases(args.database_url, stack)
        if not url.startswith("postgresql"):
            raise SystemExit("form_processing needs PostgreSQL (BENCH_DATABASE_URL or TEST_DATABASE_URL)")
        app = make_app(url, stack)
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
        results, targets = [], []
        for shape in SHAPES:
            tenants = {}
            for size in (small, large):
                tenant_id, form_id, status_id = make_tenant(app, f"{shape}-{size}")
                started = time.perf_counter()
                seed_contacts(seed_url, tenant_id, status_id, shape, size)
                tenants[size] = (tenant_id, form_id, round(time.perf_counter() - started, 1))
            # In rounds, the sizes taking turns (and swapping who goes first): on a shared
            # machine whatever else runs slows both alike.
            totals = {size: [0.0, 0, 0, 0.0, 0.0] for size in tenants}
            done_so_far = 0
            for round_ in range(ROUNDS):
                chunk = count // ROUNDS + (1 if round_ < count % ROUNDS else 0)
                for size in ((small, large) if round_ % 2 == 0 else (large, small)):
                    tenant_id, form_id, _ = tenants[size]
                    enqueue(app, tenant_id, form_id, shape, size, chunk, seed=size + round_, start=done_so_far)
                    figures = drain(app, profile=args.profile and shape == "varied" and size == large
                                    and round_ == 0)
                    totals[size] = [a + b for a, b in zip(totals[size], figures)]
                done_so_far += chunk
            rates = {}
            for size, (seconds, ran, statements, cpu, backend_cpu) in totals.items():
                tenant_id, _, seeded = tenants[size]
                done = outcome(seed_url, tenant_id)
                rate = count / seconds
                rates[size] = rate
                trip = round_trip_ms(url)
                row = {"shape": shape, "contacts": size, "submissions": count, "seconds": round(seconds, 2),
                       "per_second": round(rate, 1), "jobs": ran, "statements": statements,
                       "statements_per_submission": round(statements / count, 1),
                       "worker_cpu_ms_per_submission": round(cpu * 1000 / count, 1),
                       "postgres_cpu_ms_per_submission": round(backend_cpu * 1000 / count, 1),
                       "states": done["states"], "errors": done["errors"], "seeded_seconds": seeded, "load": load(),
                       "round_trip_ms": round(trip, 3),
                       "round_trips_share": round(statements * trip / 1000 / seconds, 2)}
                results.append(row)
                print(f"{shape:7} {size:>8,} contacts: {rate:6.1f} submissions/s ({count} in {seconds:.2f} s, "
                      f"{ran} jobs, {statements / count:.1f} statements, {row['worker_cpu_ms_per_submission']} ms "
                      f"of the worker's CPU and {row['postgres_cpu_ms_per_submission']} ms of PostgreSQL's a "
                      f"submission; a bare round trip {trip:.2f} ms) {done['states']} "
                      f"[{row['load']}]", flush=True)
                if args.explain:
                    explain(app, tenant_id, shape)
            ratio = rates[small] / rates[large]
            targets += [
                target(f"form processing, {shape} e-mails, {small:,} contacts", round(rates[small], 1),
                       at_least=RATE_TARGET, unit="submissions/s"),
                target(f"form processing, {shape} e-mails, {large:,} contacts", round(rates[large], 1),
                       at_least=RATE_TARGET, unit="submissions/s"),
                target(f"form processing, {shape} e-mails, {small:,} / {large:,} contacts' rate", round(ratio, 2),
                       at_most=RATIO_TARGET, unit="x"),
            ]
            for t in targets[-3:]:
                t["load"] = load()
        lost = [r for r in results if r["states"].get("processed", 0) != r["submissions"]]
        print(json.dumps({"benchmark": "form_processing", "quick": args.quick, "results": results,
                          "all_processed": not lost, "targets": targets}))


if __name__ == "__main__":
    main()
