"""How fast does a contact import run, compared with a bare COPY of the same rows?

Writes a CSV of N rows (a realistic mix: names with accents, e-mails, phones written every
which way, 300 companies, cities, job titles; 3% rows repeating an earlier person of the file
with another spelling, 2% rows of people already in the CRM, 1% bad rows), then imports it
through the app's own path as a worker runs it: sniff and freeze the rows (crm.imports.engine.
new_import), start, and work through every batch (run_inline) as the tenant, with row-level
security on. The baseline is PostgreSQL's COPY of the same contacts into the same table by the
administrator (the app's role may not COPY under RLS). Peak memory is the process's peak
resident size. Each import runs in a fresh process, into a new database schema.

On PostgreSQL it also imports 20,000 rows into a new database twice: once as a new tenant's
first import meets it (no statistics yet; only the import's own ANALYZE, core.statistics, can
help), once after ANALYZE, as on a long-lived database. The benchmark runs no ANALYZE on the
app's behalf in the first case.

    python bench/import.py [--rows N | --quick] [--database-url URL]

The database defaults to BENCH_DATABASE_URL or TEST_DATABASE_URL (PostgreSQL), else a
temporary SQLite (no COPY baseline, no statistics pair then). Targets (issue 12): at least
1,900 rows/s on one worker at 100,000 rows, nothing lost or duplicated, the first import into
a new database within 1.3x of one with fresh statistics, memory flat as the file grows. The
last line is one JSON object.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _common import PASSWORD, ROOT, databases, make_app, target

import sqlalchemy as sa  # noqa: E402

FIRST = ["Ada", "Grace", "Alan", "Katherine", "Dorothy", "Mary", "Linus", "Barbara", "Edsger", "Donald", "Frances",
         "John", "Margaret", "Tim", "Radia", "Ken", "Sophie", "Hedy", "Annie", "Claude", "Ágata", "Jürgen", "Ngozi",
         "Wei", "Priya", "Mateo", "Yuki", "Olu", "Fatima", "Lars"]
LAST = ["Lovelace", "Hopper", "Turing", "Johnson", "Vaughan", "Jackson", "Torvalds", "Liskov", "Dijkstra", "Knuth",
        "Allen", "Backus", "Hamilton", "Berners-Lee", "Perlman", "Thompson", "Wilson", "Lamarr", "Easley", "Shannon",
        "Núñez", "Schmidt", "Okafor", "Zhang", "Sharma", "García", "Tanaka", "Adeyemi", "Haddad", "Nilsson"]
CITIES = ["London", "Paris", "Berlin", "New York", "San Francisco", "São Paulo", "Zürich", "Lagos", "Tokyo", "Oslo"]
TITLES = ["CEO", "CTO", "Engineer", "Sales Manager", "Designer", "Accountant", "Founder", "", "", ""]
HEADER = ["First Name", "Last Name", "E-mail Address", "Mobile Phone", "Company", "Job Title", "City", "Notes"]
IN_FILE_DUPLICATES, EXISTING, BAD = 0.03, 0.02, 0.01
FULL_SIZE, QUICK_SIZE, MEMORY_SMALL, STATISTICS_SIZE = 100_000, 20_000, 10_000, 20_000
COMPANIES_SIZE, COMPANIES_MANY = 10_000, 100_000


def _phone(i: int, style: int) -> str:
    digits = f"{200 + (i // 10_000) % 800}{i % 10_000:04d}"  # a real exchange (2xx-9xx): a valid number
    return [f"+1 415 {digits[:3]} {digits[3:]}", f"(415) {digits[:3]}-{digits[3:]}", f"+1415{digits}",
            f"415.{digits[:3]}.{digits[3:]}"][style % 4]


def write_file(path: Path, size: int, seed: int = 7) -> dict:
    """The CSV, and what a perfect import of it must end with (for lost/duplicated)."""
    rng = random.Random(seed)
    companies = [f"{rng.choice(LAST)} {rng.choice(['Labs', 'GmbH', 'Ltd', 'Inc.', 'Partners', 'Group'])} {n}"
                 for n in range(300)]
    people: list[tuple[str, str, str]] = []
    existing = []
    expected = set()
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(size):
            roll = rng.random()
            if roll < BAD:
                bad += 1
                writer.writerow([rng.choice(FIRST), rng.choice(LAST), f"broken{i}@", "", "", "", "", ""])
                continue
            if roll < BAD + IN_FILE_DUPLICATES and people:
                first, last, email = rng.choice(people)
                writer.writerow([first, last, email.upper(), "", "", rng.choice(TITLES), "", ""])
                continue
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{first}.{last}.{i}@example.com".lower().encode("ascii", "ignore").decode()
            if roll < BAD + IN_FILE_DUPLICATES + EXISTING:
                existing.append((first, last, email))
            people.append((first, last, email))
            expected.add(email)
            writer.writerow([first, last, email, _phone(i, i) if rng.random() < 0.7 else "",
                             rng.choice(companies) if rng.random() < 0.8 else "", rng.choice(TITLES),
                             rng.choice(CITIES), "Met at the fair" if rng.random() < 0.1 else ""])
    return {"expected": expected, "existing": existing, "bad": bad}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(url: str, seed_url: str, size: int, stack: ExitStack, *, fresh_statistics: bool = True, workers: int = 0,
        companies: int = 0) -> dict:
    from flask_migrate import upgrade

    from core.db import db
    from core.tenancy import tenant_context
    from core.tenants import create_tenant
    from crm.imports import engine
    from crm.models import Contact
    from crm.search import index_contacts

    app = make_app(url, stack, **({"REDIS_URL": QUEUE_URL} if workers else {}))
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    path = folder / f"contacts-{size}.csv"
    truth = write_file(path, size)
    with app.app_context():
        upgrade()
        tenant, _ = create_tenant("bench", "Bench Co", "owner@bench.example", PASSWORD, "Bench Owner")
        tenant_id = tenant.id
        db.session.commit()
        with tenant_context(tenant_id):  # the people already in the CRM, with an empty city to fill
            people = [Contact(first_name=first, last_name=last, email=email) for first, last, email in truth["existing"]]
            db.session.add_all(people)
            db.session.flush()
            index_contacts(people)
            db.session.commit()
        if companies:
            _copy_companies(seed_url, tenant_id, companies)
        if fresh_statistics and seed_url.startswith("postgresql"):
            # The planner's statistics as a long-lived database has them (the other case, a new
            # database, has none: what a new tenant's first import meets, unless the import
            # refreshes them itself; core.statistics).
            seed_engine = sa.create_engine(seed_url)
            with seed_engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
            seed_engine.dispose()
            db.session.remove()
            db.engine.dispose()
        before_mb = _peak_mb()
        cpu = {}
        if workers:
            from core import jobs
            jobs.huey.flush()
            pool = [_worker(url) for _ in range(workers)]
        started = time.perf_counter()
        with tenant_context(tenant_id):
            with path.open("rb") as source:
                upload = engine.new_import(source, path.name, actor=None)
            frozen = time.perf_counter()
            operation = engine.start_import(upload, {"on_duplicate": "fill"}, actor=None, queue=bool(workers))
            operation_id, upload_id = operation.id, upload.id
            db.session.commit()
            if workers:
                cpu = _wait_for(operation_id, pool, seed_url)
            else:
                engine.run_inline(operation_id)
            elapsed = time.perf_counter() - started
            if workers:  # from the first batch taken to the last committed: the workers' start-up is not the import's
                operation = db.session.get(engine.Operation, operation_id)
                elapsed = (operation.finished_at - operation.started_at).total_seconds() + (frozen - started)
            peak_mb = _peak_mb()
            upload = engine.sync_status(db.session.get(engine.ContactImport, upload_id))
            counts = engine.live_counts(upload)
            emails = [e for (e,) in db.session.execute(sa.select(Contact.email).where(
                Contact.merged_into_id.is_(None), Contact.is_active.is_(True)))]
            db.session.commit()
    found = set(emails)
    figures = {
        "rows": size, "seconds": round(elapsed, 2), "freeze_seconds": round(frozen - started, 2),
        "rows_per_s": round(size / elapsed), "peak_mb": round(peak_mb, 1), "baseline_mb": round(before_mb, 1),
        "created": counts["created"], "updated": counts["updated"], "merged": counts["merged"],
        "skipped": counts["skipped"], "failed": counts["failed"],
        "lost": len(truth["expected"] - found), "duplicated": len(emails) - len(found),
        "expected_failed": truth["bad"],
    }
    if seed_url.startswith("postgresql") and not workers and not companies:
        figures["copy_rows_per_s"] = _copy_rate(seed_url, tenant_id, path)
    return figures | cpu


QUEUE_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def _worker(url: str) -> subprocess.Popen:
    """`flask --app wsgi worker` as operators run it: one process, one job at a time."""
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": QUEUE_URL, "SECRET_KEY": "bench", "JOBS_WORKERS": "1",
           "PLATFORM_DOMAIN": "localhost", "LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for(operation_id: int, pool: list, seed_url: str) -> dict:
    """Until the workers have finished the import; then the CPU they and their database
    backends spent (the split says what more workers on more cores would do)."""
    from core.db import db
    from core.operations import Operation

    engine_ = sa.create_engine(seed_url)
    backends: dict[int, float] = {}
    try:
        while True:
            status = db.session.scalar(sa.select(Operation.status).where(Operation.id == operation_id))
            db.session.commit()
            with engine_.connect() as connection:
                for (pid,) in connection.execute(sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE usename = current_user OR usename LIKE 'portico%'")):
                    try:
                        backends[pid] = _cpu_seconds(pid)
                    except (FileNotFoundError, ProcessLookupError):
                        pass
            if status in Operation.FINISHED:
                break
            time.sleep(0.05)
        worker_cpu = sum(_cpu_seconds(worker.pid) for worker in pool)
    finally:
        for worker in pool:
            worker.terminate()
            worker.wait()
        engine_.dispose()
    return {"worker_cpu_s": round(worker_cpu, 1), "database_cpu_s": round(sum(backends.values()), 1)}


def _copy_companies(seed_url: str, tenant_id: int, count: int) -> None:
    """`count` companies already in the tenant (none of them the file's), by COPY."""
    rows = "".join(f"{tenant_id}\tHolding {i} Trading\tholding {i} trading\tlead\t{{}}\t2024-01-01T00:00:00+00:00"
                   f"\t2024-01-01T00:00:00+00:00\n" for i in range(count))
    engine_ = sa.create_engine(seed_url)
    with engine_.begin() as connection:
        with connection.connection.driver_connection.cursor() as cursor:
            with cursor.copy("COPY company (tenant_id, name, name_key, role, custom_fields, created_at, updated_at)"
                             " FROM STDIN") as copy:
                copy.write(rows)
    engine_.dispose()


def _copy_rate(seed_url: str, tenant_id: int, path: Path) -> int:
    """COPY the file's contacts (the same columns the import writes) into contact, bare."""
    rows = []
    with path.open(encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        next(reader)
        for i, (first, last, email, phone, company, title, city, notes) in enumerate(reader):
            rows.append("\t".join([str(tenant_id), first, last, f"copy.{i}.{email}".lower(), "[]",
                                   phone and "+1415" + "".join(c for c in phone if c.isdigit())[-7:] or "\\N", "[]",
                                   "f", "{}", "lead", "t", "f", "{}", title or "\\N", city or "\\N",
                                   notes or "\\N", "2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00+00:00",
                                   "2024-01-01T00:00:00+00:00"]))
    data = "\n".join(rows) + "\n"
    columns = ("tenant_id, first_name, last_name, email, extra_emails, phone, extra_phones, is_primary_contact, "
               "social, role, is_active, is_test, custom_fields, job_title, city, notes, created_at, updated_at, "
               "last_activity_at")
    engine = sa.create_engine(seed_url)
    with engine.begin() as connection:
        started = time.perf_counter()
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY contact ({columns}) FROM STDIN") as copy:
                copy.write(data)
        elapsed = time.perf_counter() - started
    engine.dispose()
    return round(len(rows) / elapsed)


def _child(size: int, database_url: str | None, *args: str) -> dict:
    """One import of `size` rows into a new database schema, in a fresh process (a new worker
    meets the database as it is): its figures. For peak memory too, which Linux counts from the
    parent's size when the child started."""
    env = {**os.environ}
    if database_url:
        env["BENCH_DATABASE_URL"] = database_url
    out = subprocess.run([sys.executable, __file__, "--size", str(size), "--child", *args], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"the import of {size:,} rows failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", "--rows", type=int, default=None, dest="size",
                        help="rows of the headline import (100,000; --quick 20,000)")
    parser.add_argument("--quick", action="store_true", help="the headline import at 20,000 rows (make bench)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL")
                        or os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-statistics", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--companies", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = args.size or (QUICK_SIZE if args.quick else FULL_SIZE)
    if args.child:
        with ExitStack() as stack:
            url, seed_url = databases(args.database_url, stack)
            print(json.dumps(run(url, seed_url, size, stack, fresh_statistics=not args.no_statistics,
                                 workers=args.workers, companies=args.companies)))
        return

    small = _child(MEMORY_SMALL, args.database_url)
    figures = _child(size, args.database_url)
    postgres = bool(args.database_url and args.database_url.startswith("postgres"))
    first = _child(STATISTICS_SIZE, args.database_url, "--no-statistics") if postgres else None
    settled = (figures if size == STATISTICS_SIZE else _child(STATISTICS_SIZE, args.database_url)) if postgres else None

    copy_rate = figures.get("copy_rows_per_s")
    print(f"Imported {figures['rows']:,} rows in {figures['seconds']} s ({figures['freeze_seconds']} s reading and "
          f"freezing the file): {figures['rows_per_s']:,} rows/s")
    print(f"  created {figures['created']:,}, updated {figures['updated']:,}, merged {figures['merged']:,}, "
          f"skipped {figures['skipped']:,}, failed {figures['failed']:,} (bad rows written: "
          f"{figures['expected_failed']:,}); lost {figures['lost']}, duplicated {figures['duplicated']}")
    if copy_rate:
        print(f"  bare COPY of the same contacts: {copy_rate:,} rows/s; the import is "
              f"{copy_rate / figures['rows_per_s']:.1f}x slower")
    growth = {MEMORY_SMALL: round(small["peak_mb"] - small["baseline_mb"], 1),
              size: round(figures["peak_mb"] - figures["baseline_mb"], 1)}
    print(f"  peak memory: {small['peak_mb']} MB at {MEMORY_SMALL:,} rows, {figures['peak_mb']} MB at {size:,} rows; "
          f"the import's own growth over the process before it: {growth[MEMORY_SMALL]} MB and {growth[size]} MB")
    targets = [
        target(f"rows/s, {size:,} rows, one worker", figures["rows_per_s"], at_least=1900, unit="rows/s"),
        target("rows lost", figures["lost"], at_most=0),
        target("rows duplicated", figures["duplicated"], at_most=0),
        target(f"memory growth, {size:,} vs {MEMORY_SMALL:,} rows", round(growth[size] / max(growth[MEMORY_SMALL], 1), 2),
               at_most=1.5, unit="x"),
    ]
    out = {"rows": size, "rows_per_s": figures["rows_per_s"], "copy_rows_per_s": copy_rate,
           "copy_ratio": round(copy_rate / figures["rows_per_s"], 2) if copy_rate else None,
           f"peak_mb_{MEMORY_SMALL}": small["peak_mb"], f"peak_mb_{size}": figures["peak_mb"],
           "created": figures["created"], "updated": figures["updated"], "failed": figures["failed"],
           "lost": figures["lost"], "duplicated": figures["duplicated"]}
    if first and settled:
        ratio = round(first["seconds"] / settled["seconds"], 2)
        print(f"  {STATISTICS_SIZE:,} rows into a new database (no statistics): {first['seconds']} s, "
              f"{first['rows_per_s']:,} rows/s; into one with fresh statistics: {settled['seconds']} s, "
              f"{settled['rows_per_s']:,} rows/s ({ratio}x)")
        out |= {"new_database_rows_per_s": first["rows_per_s"], "fresh_statistics_rows_per_s": settled["rows_per_s"],
                "new_database_ratio": ratio}
        targets.append(target(f"first import of {STATISTICS_SIZE:,} into a new database, vs fresh statistics",
                              ratio, at_most=1.3, unit="x"))
    if postgres:
        one = _child(size, args.database_url, "--workers", "1")
        two = _child(size, args.database_url, "--workers", "2")
        speedup = round(two["rows_per_s"] / one["rows_per_s"], 2)
        share = one["database_cpu_s"] / max(one["database_cpu_s"] + one["worker_cpu_s"], 0.1)
        print(f"  worker processes on the queue: one {one['rows_per_s']:,} rows/s, two {two['rows_per_s']:,} rows/s "
              f"({speedup}x); CPU per row with one: workers {one['worker_cpu_s'] / size * 1e6:.0f} µs, database "
              f"{one['database_cpu_s'] / size * 1e6:.0f} µs ({share:.0%} of it in the database); lost "
              f"{one['lost']}, duplicated {one['duplicated']} with one, lost {two['lost']}, duplicated "
              f"{two['duplicated']} with two")
        if (one["created"], one["updated"], one["merged"]) != (two["created"], two["updated"], two["merged"]):
            print(f"  the counts differ: one worker {one['created']:,} created, {one['updated']:,} updated, "
                  f"{one['merged']:,} merged; two {two['created']:,}, {two['updated']:,}, {two['merged']:,}")
        few, many = (_child(COMPANIES_SIZE, args.database_url, "--companies", str(n)) for n in (100, COMPANIES_MANY))
        slower = round(few["rows_per_s"] / many["rows_per_s"], 2)
        print(f"  {COMPANIES_SIZE:,} rows with 100 companies already in the tenant: {few['rows_per_s']:,} rows/s; "
              f"with {COMPANIES_MANY:,}: {many['rows_per_s']:,} rows/s ({slower}x)")
        out |= {"one_worker_rows_per_s": one["rows_per_s"], "two_workers_rows_per_s": two["rows_per_s"],
                "two_workers_speedup": speedup, "one_worker_lost": one["lost"], "one_worker_duplicated": one["duplicated"],
                "two_workers_lost": two["lost"], "two_workers_duplicated": two["duplicated"], "worker_cpu_us_per_row": round(one["worker_cpu_s"] / size * 1e6),
                "database_cpu_us_per_row": round(one["database_cpu_s"] / size * 1e6),
                "database_cpu_share": round(share, 2), "rows_per_s_100_companies": few["rows_per_s"],
                f"rows_per_s_{COMPANIES_MANY}_companies": many["rows_per_s"], "many_companies_ratio": slower}
        targets += [
            target(f"two worker processes vs one, {size:,} rows", speedup, at_least=1.6, unit="x"),
            target("rows lost or duplicated with one worker process", one["lost"] + one["duplicated"], at_most=0),
            target("rows lost or duplicated with two workers", two["lost"] + two["duplicated"], at_most=0),
            target("counts with two workers unlike one's (created, updated, merged)",
                   sum(one[k] != two[k] for k in ("created", "updated", "merged")), at_most=0),
            target(f"{COMPANIES_MANY:,} companies in the tenant vs 100", slower, at_most=1.2, unit="x"),
        ]
    out["targets"] = targets
    print(json.dumps(out))


if __name__ == "__main__":
    main()
