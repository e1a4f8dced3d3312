"""What does the portal home cost for a contact in many Circles, against a bare Flask page?

Starts the app as production runs it (gunicorn, 2 workers, PostgreSQL in an isolated schema
owned by an ordinary role, so row-level security applies) with the demo tenant, in which a
client with a portal login is a member of 20 Circles holding 10 published pages each (200
items), and beside it bench/pages.py's bare page (Flask + psycopg, 50 contacts from one indexed
query, gunicorn 2 workers). Then `wrk -t2 -c20` in alternating rounds, bare page first:

  /portal/          signed in as that client (the cookie of a real portal sign-in POST)
  /portal/          signed in as a client in no Circle: the same page without the panel, for scale

The page is checked to answer 200 with its latest-content panel before it is timed.

    python bench/portal_home.py [--quick] [--rounds R] [--seconds S] [--database-url URL]

Target (issue 13): the portal home >= 50 % of the bare page's requests/s in the same run.
The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import tempfile
from contextlib import ExitStack

from _common import PASSWORD, databases, make_app, target
from pages import (BENCH, ROOT, _flask, _free_port, _gunicorn, _tenant_id, _wait_for, check, load, wrk)

import sqlalchemy as sa  # noqa: E402

RATIO_TARGET = 0.50
CIRCLES, ITEMS_PER_CIRCLE = 20, 10
EMAIL = "member@portal-bench.example"
LONER = "loner@portal-bench.example"  # a client in no circle: the same home without the panel


def seed_member(url: str, seed_url: str, slug: str, stack: ExitStack) -> None:
    """The demo tenant's client in CIRCLES circles of ITEMS_PER_CIRCLE published pages, then
    ANALYZE (as autovacuum would leave the tables)."""
    from core.db import db, utcnow
    from core.identity import hash_password
    from core.tenancy import Tenant, tenant_context
    from crm.models import Circle, CircleItem, CircleMember, Contact, PipelineStatus
    from portal.models import PortalAccount

    app = make_app(url, stack)
    with app.app_context():
        tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        with tenant_context(tenant):
            status = db.session.scalar(sa.select(PipelineStatus.id).where(PipelineStatus.is_default.is_(True)))
            for email in (LONER, EMAIL):
                contact = Contact(first_name="Mia", last_name="Member", email=email, role="client", status_id=status)
                db.session.add(contact)
                db.session.flush()
                db.session.add(PortalAccount(contact_id=contact.id, email=email, approval="approved",
                                             email_verified_at=utcnow(), password_hash=hash_password(PASSWORD)))
            for n in range(CIRCLES):
                circle = Circle(name=f"Bench circle {n:02d}", description="Members' news and files.")
                db.session.add(circle)
                db.session.flush()
                db.session.add(CircleMember(circle_id=circle.id, contact_id=contact.id))
                for i in range(ITEMS_PER_CIRCLE):
                    db.session.add(CircleItem(circle_id=circle.id, kind="page", title=f"Update {n:02d}-{i}",
                                              body=f"<p>News number {i} of circle {n}.</p>", position=i,
                                              published_at=utcnow()))
            db.session.commit()
        db.session.remove()
        db.engine.dispose()
    engine = sa.create_engine(seed_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()


def portal_sign_in(port: int, host: str, email: str, password: str) -> str:
    """A real portal sign-in POST; returns the Cookie header it leaves."""
    import requests

    session = requests.Session()
    session.headers["Host"] = host
    page = session.get(f"http://127.0.0.1:{port}/portal/login", timeout=30).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    response = session.post(f"http://127.0.0.1:{port}/portal/login", allow_redirects=False, timeout=30,
                            data={"email": email, "password": password, "csrf_token": token})
    if response.status_code != 302:
        raise SystemExit(f"could not sign in to the portal as {email}: {response.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two rounds of 3 s (make bench)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL")
                        or os.environ.get("TEST_DATABASE_URL"))
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 2, 3
    if not (args.database_url or "").startswith("postgres"):
        raise SystemExit("portal_home needs PostgreSQL: set BENCH_DATABASE_URL or TEST_DATABASE_URL")
    if not shutil.which("wrk"):
        raise SystemExit("portal_home needs wrk (apt-get install -y wrk)")

    from core.demo import DEMO_SLUG

    load_before = load()
    with ExitStack() as stack:
        url, seed_url = databases(args.database_url, stack)
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="portal-bench-"))
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-portal", "PLATFORM_DOMAIN": "localhost",
               "JOBS_SQLITE_PATH": f"{folder}/jobs.sqlite", "REDIS_URL": "", "LOG_LEVEL": "WARNING",
               "PYTHONPATH": str(ROOT), "PORTICO_ALLOW_RLS_BYPASS": "1", "RATELIMIT_LOGIN": "1000 per minute",
               "FILE_STORAGE_PATH": f"{folder}/files"}
        _flask(env, "db", "upgrade")
        _flask(env, "demo")
        seed_member(url, seed_url, DEMO_SLUG, stack)

        log = open(f"{folder}/servers.log", "w")
        app_port, bare_port = _free_port(), _free_port()
        app = _gunicorn("wsgi:app", app_port, env, log, ROOT, stack)
        bare_env = {**env, "BARE_DATABASE_URL": seed_url.replace("postgresql+psycopg://", "postgresql://"),
                    "BARE_TENANT_ID": str(_tenant_id(seed_url, DEMO_SLUG))}
        bare = _gunicorn("pages:bare_app()", bare_port, bare_env, log, BENCH, stack)
        host = f"{DEMO_SLUG}.localhost"
        _wait_for(app_port, "/portal/login", host, app)
        _wait_for(bare_port, "/bare", "localhost", bare)

        cookie = portal_sign_in(app_port, host, EMAIL, PASSWORD)
        loner = portal_sign_in(app_port, host, LONER, PASSWORD)
        check(bare_port, "localhost", "/bare", None, "</table>")
        check(app_port, host, "/portal/", cookie, "Latest from your circles")
        check(app_port, host, "/portal/", loner, "Nothing here yet")
        pages = {"bare": (bare_port, "localhost", "/bare", None), "portal_home": (app_port, host, "/portal/", cookie),
                 "portal_home_no_circles": (app_port, host, "/portal/", loner)}
        for port, page_host, path, page_cookie in pages.values():  # warm-up
            wrk(port, page_host, path, page_cookie, 2)

        runs: dict = {name: [] for name in pages}
        for round_no in range(args.rounds):
            for name, (port, page_host, path, page_cookie) in pages.items():
                result = wrk(port, page_host, path, page_cookie, args.seconds)
                if result["non_2xx"] or result["socket_errors"]:
                    print(f"  round {round_no + 1} {name}: {result['non_2xx']} non-2xx, "
                          f"socket errors {result['socket_errors'] or 'none'}")
                runs[name].append(result)

    bare_rps = [r["rps"] for r in runs["bare"]]
    home_rps = [r["rps"] for r in runs["portal_home"]]
    ratio = statistics.median(a / b for a, b in zip(home_rps, bare_rps))
    loner_rps = [r["rps"] for r in runs["portal_home_no_circles"]]
    loner_ratio = statistics.median(a / b for a, b in zip(loner_rps, bare_rps))
    figures = {"rounds": args.rounds, "seconds": args.seconds, "circles": CIRCLES,
               "published_items": CIRCLES * ITEMS_PER_CIRCLE, "load_before": load_before, "load_after": load(),
               "bare_rps": round(statistics.median(bare_rps), 1),
               "portal_home_rps": round(statistics.median(home_rps), 1),
               "portal_home_p50_ms": round(statistics.median(r["p50_ms"] for r in runs["portal_home"]), 2),
               "portal_home_of_bare": round(ratio, 3),
               "portal_home_no_circles_rps": round(statistics.median(loner_rps), 1),
               "portal_home_no_circles_of_bare": round(loner_ratio, 3)}
    print(f"wrk -t2 -c20 -d{args.seconds}s, {args.rounds} alternating rounds; gunicorn 2 workers each; "
          f"load {load_before} before, {figures['load_after']} after")
    print(f"bare page   {' / '.join(f'{x:,.0f}' for x in bare_rps)} req/s")
    print(f"portal home {' / '.join(f'{x:,.0f}' for x in home_rps)} req/s "
          f"({CIRCLES} circles, {CIRCLES * ITEMS_PER_CIRCLE} published items): {ratio:.0%} of bare, "
          f"target >= {RATIO_TARGET:.0%} {'holds' if ratio >= RATIO_TARGET else 'MISSES'}")
    print(f"portal home of a contact in no circle {' / '.join(f'{x:,.0f}' for x in loner_rps)} req/s: "
          f"{loner_ratio:.0%} of bare (what the page costs without the circles panel)")
    figures["targets"] = [target("portal home of bare", round(ratio * 100, 1), at_least=RATIO_TARGET * 100,
                                 unit="% of bare")]
    figures["holds"] = ratio >= RATIO_TARGET
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
