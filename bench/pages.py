"""What does one page cost beyond Flask itself, and how much memory does a worker hold?

Starts the app as production runs it: gunicorn (2 workers) on PostgreSQL (an isolated schema
owned by an ordinary role, so row-level security applies, via bench/_common) with the demo
tenant (`flask --app wsgi demo`), and beside it a bare Flask + psycopg page, written below, that
renders 50 contacts of the same tenant from one indexed SQL query, served by gunicorn (2
workers) too. Then `wrk -t2 -c20` in alternating rounds, bare page first in each round, against:

  /staff/contacts   signed in as the owner (the session cookie of a real login POST)
  /f/get-started    the demo's public kickoff form
  /staff/login      anonymous

With `--big N` the same pages are measured again for a tenant of N contacts seeded by COPY
(as bench/crm_list.py does) with fresh statistics. Every page is checked to answer 200 with its
content before it is timed, and a round with non-2xx answers says so.

    python bench/pages.py [--quick] [--rounds R] [--seconds S] [--big N] [--database-url URL]

Targets (issue 12, part 5): the staff contact list and the public form page each >= 50 % of
the bare page's requests/s in the same run; a gunicorn worker <= 120 MB RSS after warm-up.
The bare page is the issue's: it renders with render_template_string, which compiles its
template on every request. The same page from a template compiled once ("bare_compiled", the
demo tenant only) is measured too, and every page's share of it printed beside, without a
target: it is the truer floor, about twice as fast.
The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _common import PASSWORD, databases, target

import sqlalchemy as sa  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
RATIO_TARGET, RSS_TARGET_MB = 0.50, 120
BIG_SLUG = "bench"

# --- the bare page: Flask + psycopg, one indexed query, one template ----------------------------

BARE_TEMPLATE = """<!doctype html><html><head><meta charset="utf-8"><title>Contacts</title></head><body>
<h1>Contacts</h1><table><thead><tr><th>Name</th><th>E-mail</th><th>Phone</th><th>Role</th><th>Added</th></tr></thead>
<tbody>{% for c in contacts %}<tr><td><a href="/staff/contacts/{{ c[0] }}">{{ c[1] }} {{ c[2] }}</a></td>
<td>{{ c[3] or "" }}</td><td>{{ c[4] or "" }}</td><td>{{ c[5] }}</td><td>{{ c[6].strftime("%d %b %Y") }}</td></tr>
{% endfor %}</tbody></table></body></html>"""
BARE_SQL = ("SELECT id, first_name, last_name, email, phone, role, created_at FROM contact"
            " WHERE tenant_id = %s ORDER BY created_at DESC, id DESC LIMIT 50")  # ix_contact_tenant_id_created_at_id


def bare_app():
    """gunicorn 'pages:bare_app()': BARE_DATABASE_URL (psycopg form), BARE_TENANT_ID."""
    import psycopg
    from flask import Flask, render_template, render_template_string
    from jinja2 import DictLoader

    app = Flask("bare")
    url, tenant_id = os.environ["BARE_DATABASE_URL"], int(os.environ["BARE_TENANT_ID"])
    # The baseline renders with render_template_string, which compiles the template on
    # every request (~1.7 ms of its ~2.9 ms); BARE_COMPILED=1 serves the same page from a
    # template compiled once, as Flask serves the app's own: about twice as fast, shown beside.
    compiled = os.environ.get("BARE_COMPILED") == "1"
    app.jinja_loader = DictLoader({"contacts.html": BARE_TEMPLATE})
    state = {}

    @app.get("/bare")
    def page():
        connection = state.get("connection")
        if connection is None or connection.closed:
            connection = state["connection"] = psycopg.connect(url, autocommit=True)
        contacts = connection.execute(BARE_SQL, (tenant_id,)).fetchall()
        if compiled:
            return render_template("contacts.html", contacts=contacts)
        return render_template_string(BARE_TEMPLATE, contacts=contacts)

    return app


# --- servers ----------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, path: str, host: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            requests.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host}, timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer in time")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _gunicorn(app: str, port: int, env: dict, log, cwd: Path, stack: ExitStack) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
                             "--backlog", "2048", "--log-level", "warning", app],
                            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    stack.callback(_stop, proc)
    return proc


def worker_rss_mb(master: subprocess.Popen) -> list[float]:
    """VmRSS of each gunicorn worker (the master's children)."""
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    sizes = []
    for pid in children:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        sizes.append(int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024)
    return sizes


# --- data --------------------------------------------------------------------------------------------

def _flask(env: dict, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def _tenant_id(seed_url: str, slug: str) -> int:
    engine = sa.create_engine(seed_url)
    with engine.connect() as connection:
        tenant_id = connection.execute(sa.text("SELECT id FROM tenant WHERE slug = :s"), {"s": slug}).scalar_one()
    engine.dispose()
    return tenant_id


def seed_big(url: str, seed_url: str, size: int, stack: ExitStack) -> None:
    """A tenant of `size` contacts by COPY (bench/crm_list.py's rows), a kickoff form like the demo's,
    then VACUUM ANALYZE: fresh statistics, as autovacuum would leave them."""
    sys.path.insert(0, str(BENCH))
    from crm_list import _copy_contacts
    from _common import make_app

    from core.db import db
    from core.identity import StaffUser
    from core.tenancy import tenant_context
    from core.tenants import create_tenant
    from crm.models import PipelineStatus
    from forms.demo import seed_kickoff_form

    app = make_app(url, stack)
    with app.app_context():
        tenant, _ = create_tenant(BIG_SLUG, "Bench Co", "owner@bench.example", PASSWORD, "Bench Owner")
        tenant_id = tenant.id
        db.session.commit()
        with tenant_context(tenant_id):
            statuses = list(db.session.scalars(sa.select(PipelineStatus.id)))
            owners = list(db.session.scalars(sa.select(StaffUser.id)))
            seed_kickoff_form(tenant)
            db.session.commit()
        db.session.remove()
        db.engine.dispose()
    engine = sa.create_engine(seed_url)
    with engine.begin() as connection:
        _copy_contacts(connection, tenant_id, size, statuses, owners, seed=1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def sign_in(port: int, host: str, email: str, password: str) -> str:
    """A real login POST; returns the Cookie header it leaves."""
    import requests

    session = requests.Session()
    session.headers["Host"] = host
    page = session.get(f"http://127.0.0.1:{port}/staff/login", timeout=30).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    response = session.post(f"http://127.0.0.1:{port}/staff/login", allow_redirects=False, timeout=30,
                            data={"email": email, "password": password, "csrf_token": token})
    if response.status_code != 302:
        raise SystemExit(f"could not sign in as {email}: {response.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def check(port: int, host: str, path: str, cookie: str | None, expect: str) -> None:
    import requests

    headers = {"Host": host, **({"Cookie": cookie} if cookie else {})}
    response = requests.get(f"http://127.0.0.1:{port}{path}", headers=headers, allow_redirects=False, timeout=30)
    if response.status_code != 200 or expect not in response.text:
        raise SystemExit(f"{host}{path} answered {response.status_code} without {expect!r}")


# --- wrk -----------------------------------------------------------------------------------------------

def wrk(port: int, host: str, path: str, cookie: str | None, seconds: int) -> dict:
    command = ["wrk", "-t2", "-c20", f"-d{seconds}s", "--latency", "-H", f"Host: {host}"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(command + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                         check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    p50_ms = float(p50.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p50.group(2)] if p50 else None
    return {"rps": rps, "non_2xx": int(bad.group(1)) if bad else 0, "socket_errors": errors.group(1) if errors else "",
            "p50_ms": p50_ms}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two rounds of 3 s, demo tenant only (make bench)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--big", type=int, default=0, metavar="N",
                        help="also measure a tenant of N contacts (51000 in issue 12)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL")
                        or os.environ.get("TEST_DATABASE_URL"))
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.big = 2, 3, 0
    if not (args.database_url or "").startswith("postgres"):
        raise SystemExit("pages needs PostgreSQL: set BENCH_DATABASE_URL or TEST_DATABASE_URL")
    if not shutil.which("wrk"):
        raise SystemExit("pages needs wrk (apt-get install -y wrk)")

    from core.demo import DEMO_PASSWORD, DEMO_SLUG
    from forms.demo import DEMO_FORM_SLUG

    load_before = load()
    with ExitStack() as stack:
        url, seed_url = databases(args.database_url, stack)
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="pages-bench-"))
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-pages", "PLATFORM_DOMAIN": "localhost",
               "JOBS_SQLITE_PATH": f"{folder}/jobs.sqlite", "REDIS_URL": "", "LOG_LEVEL": "WARNING",
               "PYTHONPATH": str(ROOT), "PORTICO_ALLOW_RLS_BYPASS": "1"}
        _flask(env, "db", "upgrade")
        _flask(env, "demo")
        if args.big:
            seed_big(url, seed_url, args.big, stack)
        else:
            # As autovacuum would leave the demo's tables: statistics (the bare page gets the same).
            engine = sa.create_engine(seed_url)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("ANALYZE")
            engine.dispose()

        log = open(f"{folder}/servers.log", "w")
        app_port, bare_port = _free_port(), _free_port()
        app = _gunicorn("wsgi:app", app_port, env, log, ROOT, stack)
        tenants = {"demo": (DEMO_SLUG, "owner@demo.example", DEMO_PASSWORD)}
        if args.big:
            tenants["big"] = (BIG_SLUG, "owner@bench.example", PASSWORD)
        bare = {}
        for label, (slug, _, _) in tenants.items():
            port = _free_port() if label != "demo" else bare_port
            bare_env = {**env, "BARE_DATABASE_URL": seed_url.replace("postgresql+psycopg://", "postgresql://"),
                        "BARE_TENANT_ID": str(_tenant_id(seed_url, slug))}
            bare[label] = (port, _gunicorn("pages:bare_app()", port, bare_env, log, BENCH, stack))
            if label == "demo":
                compiled_port = _free_port()
                bare_compiled = (compiled_port, _gunicorn("pages:bare_app()", compiled_port,
                                                          {**bare_env, "BARE_COMPILED": "1"}, log, BENCH, stack))
        _wait_for(app_port, "/staff/login", f"{DEMO_SLUG}.localhost", app)
        for port, proc in [*bare.values(), bare_compiled]:
            _wait_for(port, "/bare", "localhost", proc)

        cases = {}
        for label, (slug, email, password) in tenants.items():
            host = f"{slug}.localhost"
            cookie = sign_in(app_port, host, email, password)
            check(bare[label][0], "localhost", "/bare", None, "</table>")
            check(app_port, host, "/staff/contacts", cookie, "Contacts")
            check(app_port, host, f"/f/{DEMO_FORM_SLUG}", None, "kf_token")
            check(app_port, host, "/staff/login", None, "csrf-token")
            pages = {"bare": (bare[label][0], "localhost", "/bare", None),
                     "contacts": (app_port, host, "/staff/contacts", cookie),
                     "public_form": (app_port, host, f"/f/{DEMO_FORM_SLUG}", None)}
            if label == "demo":
                pages["login"] = (app_port, host, "/staff/login", None)
                pages["bare_compiled"] = (bare_compiled[0], "localhost", "/bare", None)
            cases[label] = pages

        # Warm-up: every page a few hundred times, so each worker has built what it caches.
        for pages in cases.values():
            for port, host, path, cookie in pages.values():
                wrk(port, host, path, cookie, 2)
        rss = worker_rss_mb(app)
        bare_rss = worker_rss_mb(bare["demo"][1])

        runs: dict = {label: {name: [] for name in pages} for label, pages in cases.items()}
        for round_no in range(args.rounds):
            for label, pages in cases.items():
                for name, (port, host, path, cookie) in pages.items():
                    result = wrk(port, host, path, cookie, args.seconds)
                    if result["non_2xx"] or result["socket_errors"]:
                        print(f"  round {round_no + 1} {label} {name}: {result['non_2xx']} non-2xx, "
                              f"socket errors {result['socket_errors'] or 'none'}")
                    runs[label][name].append(result)
        rss_after = worker_rss_mb(app)

    figures: dict = {"rounds": args.rounds, "seconds": args.seconds, "load_before": load_before,
                     "load_after": load(), "worker_rss_mb": round(max(rss + rss_after), 1),
                     "worker_rss_after_warmup_mb": [round(x, 1) for x in rss],
                     "worker_rss_at_end_mb": [round(x, 1) for x in rss_after],
                     "bare_worker_rss_mb": round(max(bare_rss), 1)}
    print(f"wrk -t2 -c20 -d{args.seconds}s, {args.rounds} alternating rounds; gunicorn 2 workers each; "
          f"load {load_before} before, {figures['load_after']} after")
    print(f"{'tenant':<6} {'page':<14} {'req/s per round':<28} {'median':>8} {'of bare':>8} {'p50 ms':>7}")
    targets = []
    for label, names in runs.items():
        bare_rps = [r["rps"] for r in names["bare"]]
        for name, results in names.items():
            rps = [r["rps"] for r in results]
            ratios = [a / b for a, b in zip(rps, bare_rps)]
            ratio = statistics.median(ratios)
            key = f"{label}_{name}"
            figures[f"{key}_rps"] = round(statistics.median(rps), 1)
            figures[f"{key}_p50_ms"] = round(statistics.median([r["p50_ms"] for r in results]), 2)
            if name != "bare":
                figures[f"{key}_of_bare"] = round(ratio, 3)
            if "bare_compiled" in names and name not in ("bare", "bare_compiled"):
                compiled_rps = [r["rps"] for r in names["bare_compiled"]]
                figures[f"{key}_of_bare_compiled"] = round(
                    statistics.median([a / b for a, b in zip(rps, compiled_rps)]), 3)
            if name in ("contacts", "public_form"):
                targets.append((f"{key} of bare", ratio, RATIO_TARGET, ratio >= RATIO_TARGET))
            versus_compiled = figures.get(f"{key}_of_bare_compiled")
            print(f"{label:<6} {name:<14} {' / '.join(f'{x:,.0f}' for x in rps):<28} {statistics.median(rps):>8,.0f}"
                  f" {ratio:>7.0%} {figures[f'{key}_p50_ms']:>7}"
                  + (f"  ({versus_compiled:.0%} of the compiled-once bare page)" if versus_compiled else ""))
    targets.append(("worker RSS MB", figures["worker_rss_mb"], RSS_TARGET_MB, figures["worker_rss_mb"] <= RSS_TARGET_MB))
    print(f"gunicorn worker RSS after warm-up: {', '.join(f'{x:.0f}' for x in rss)} MB; at the end "
          f"{', '.join(f'{x:.0f}' for x in rss_after)} MB (bare page's worker {figures['bare_worker_rss_mb']:.0f} MB)")
    for name, value, bound, holds in targets:
        shown = f"{value:.0%}" if bound < 1 else f"{value:.0f}"
        wanted = f">= {bound:.0%}" if bound < 1 else f"<= {bound}"
        print(f"  {name:<24} {shown:>6}  target {wanted:<8} {'holds' if holds else 'MISSES'}")
    figures["targets"] = [target(n, round(v * 100, 1), at_least=t * 100, unit="% of bare") if t < 1
                          else target(n, round(v, 1), at_most=t, unit="MB") for n, v, t, _ in targets]
    figures["holds"] = all(h for *_, h in targets)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
