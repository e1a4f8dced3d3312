"""How many signed Stripe webhooks does the app take in, how fast does one worker apply them, and
does the order they arrive in change what they leave?

Production's parts: PostgreSQL with row-level security (a throwaway schema owned by an
ordinary role, bench/_common), gunicorn with 4 workers, the job queue in Redis
(BENCH_REDIS_URL or TEST_REDIS_URL; without either, the embedded SQLite queue, and the output
says so), and as Stripe the tests' stand-in (tests/stripe_server.py: localstripe, extended) in
a process of its own. The world is made as a user makes it: a tenant whose keys are saved
(and checked with Stripe), a monthly plan granting a Circle and a one-time plan (their Prices
made in Stripe), and N contacts who each start a checkout (billing.checkout.start_checkout)
and pay it on the stand-in's hosted page; then some subscriptions are cancelled and some
payments refunded in Stripe.

The events are the ones Stripe sends for that (checkout.session.completed, customer.
subscription.created/.updated/.deleted, invoice.paid, invoice.payment_succeeded,
charge.refunded, and a tenth of types the app ignores: customer.created,
payment_intent.succeeded), each signed with the tenant's webhook secret by the stripe
library's own scheme (WebhookSignature.generate_signature_header). Three runs:

  bare       a bare Flask endpoint, written below, under gunicorn (4 workers): verifies the
             signature with stripe.Webhook.construct_event and inserts the event id with one
             plain SQL statement (psycopg, ON CONFLICT DO NOTHING). The baseline.
  in order   the app, every distinct event once, in order, by one sender; then one worker
             (core.jobs.run_pending_jobs in this process, on the same queue) applies them.
  shuffled   the app's billing state emptied again, then the same events plus 10 %
             duplicates, shuffled, by 50 concurrent senders: "webhook intake events/s answered
             2xx"; then one worker applies them: "webhook apply events/s" (applied events over
             the drain's seconds). Beside it, the bare floor of applying: the objects re-read
             from the stand-in by one plain client, as fast as it goes.

The state the shuffled run leaves (entitlements, payments and refunds, Stripe customers,
Circle members, stored events) is compared row by row with the in-order run's: "shuffled = in-order" counts the
differences.

    python bench/webhooks.py [--quick] [--events N] [--senders 50] [--profile] [--database-url URL]
                             [--redis-url URL]

Targets (issue 14): intake >= 300 events/s answered 2xx; apply >= 100 events/s; 0 differences.
`--quick` (make bench): 2,000 deliveries (200 contacts); the full size is 10,000 (1,000). The
machine's load (/proc/loadavg) is printed before and after each run: the machine is shared.
The last line is one JSON object; its "targets" are what bench/all.py tabulates.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _common import PASSWORD, databases, make_app, target
from pages import _free_port, _stop, _wait_for, load

import sqlalchemy as sa  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
INTAKE_TARGET, APPLY_TARGET = 300, 100
SLUG = "hooks"
SECRET_KEY, WEBHOOK_SECRET = "sk_test_bench_hooks_0001", "whsec_bench_hooks_signing_0001"
APP_SECRET = "bench-webhooks"
DUPLICATES = 0.10
IGNORED = ("customer.created", "payment_intent.succeeded")

# --- the bare endpoint: verify, insert the id, answer ------------------------------------------------

BARE_SQL = "INSERT INTO bench_bare_event (event_id, type) VALUES (%s, %s) ON CONFLICT DO NOTHING"


def bare_app():
    """gunicorn 'webhooks:bare_app()': BARE_DATABASE_URL (psycopg form), BARE_WEBHOOK_SECRET."""
    import psycopg
    import stripe
    from flask import Flask, jsonify, request

    app = Flask("bare")
    url, secret = os.environ["BARE_DATABASE_URL"], os.environ["BARE_WEBHOOK_SECRET"]
    state = {}

    @app.post("/hook")
    def hook():
        try:
            event = stripe.Webhook.construct_event(request.get_data(), request.headers.get("Stripe-Signature", ""),
                                                   secret)
        except (ValueError, stripe.SignatureVerificationError):
            return jsonify(error="invalid webhook"), 400
        connection = state.get("connection")
        if connection is None or connection.closed:
            connection = state["connection"] = psycopg.connect(url, autocommit=True)
        inserted = connection.execute(BARE_SQL, (event.id, event.type)).rowcount
        return jsonify(received=True, duplicate=not inserted)

    return app


# --- processes ---------------------------------------------------------------------------------------

STAND_IN = """
import sys, tempfile, time
sys.path.insert(0, {root!r})
from localstripe import resources
from tests.stripe_server import StripeServer
server = StripeServer(tempfile.mktemp(prefix="bench-localstripe-", suffix=".pickle")).start()
resources.Store.dump_to_disk = lambda store: None  # its state file is of no use here, and costs
print(server.api_base, server.hosted_base, flush=True)
while True:
    time.sleep(3600)
"""


def start_stripe(stack: ExitStack) -> tuple[str, str]:
    """The tests' Stripe in a process of its own: (API address, hosted pages' address)."""
    proc = subprocess.Popen([sys.executable, "-c", STAND_IN.format(root=str(ROOT))], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    stack.callback(_stop, proc)
    line = proc.stdout.readline().split()
    if len(line) != 2:
        raise SystemExit("the Stripe stand-in did not start")
    return line[0], line[1]


def gunicorn(app: str, port: int, env: dict, log, cwd: Path, stack: ExitStack, workers: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind",
                             f"127.0.0.1:{port}", "--backlog", "2048", "--log-level", "warning", app],
                            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    stack.callback(_stop, proc)
    return proc


# --- the world ---------------------------------------------------------------------------------------

def make_world(app, hosted_base: str, contacts: int, seed: int) -> dict:
    """The tenant, its keys and plans, and `contacts` contacts who each paid a checkout on the
    stand-in (75 % the monthly plan, 25 % the one-time one); then a fifth of the subscriptions
    cancelled and a third of the payments refunded, in Stripe. Returns what the events need."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from billing.checkout import start_checkout
    from billing.plans import create_plan, stripe_for_tenant
    from billing.settings import save_keys
    from core.db import db
    from core.tenancy import tenant_context
    from core.tenants import create_tenant
    from crm.contacts import default_status_id
    from crm.models import Circle, Contact

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    rng = random.Random(seed)
    with app.app_context():
        tenant, _ = create_tenant(SLUG, "Bench Hooks", f"owner@{SLUG}.example", PASSWORD, "Bench Owner")
        tenant_id = tenant.id
        db.session.commit()
        with tenant_context(tenant_id):
            save_keys(SECRET_KEY, WEBHOOK_SECRET, actor=None)
            circle = Circle(name="Members")
            db.session.add(circle)
            db.session.flush()
            monthly = create_plan(name="Membership", kind="recurring", amount=4900, currency="eur", interval="month",
                                  circle_ids=[circle.id], actor=None)
            once = create_plan(name="Workshop", kind="one_time", amount=9900, currency="eur", actor=None)
            status_id = default_status_id()
            db.session.commit()
            objects = []
            for n in range(contacts):
                contact = Contact(first_name=f"Payer{n}", last_name="Bench", email=f"payer.{n}@hooks.example",
                                  role="prospect", status_id=status_id)
                db.session.add(contact)
                db.session.flush()
                plan = monthly if n % 4 else once
                url = start_checkout(contact, plan, success_url="http://hooks.localhost/portal/billing/done"
                                     "?session={CHECKOUT_SESSION_ID}", cancel_url="http://hooks.localhost/portal")
                db.session.commit()
                session_id = url.rsplit("/", 1)[-1]
                try:
                    opener.open(f"{hosted_base}/c/pay/{session_id}", data=b"card=4242424242424242", timeout=30)
                    raise SystemExit(f"checkout {session_id} was not paid")
                except urllib.error.HTTPError as exc:
                    if exc.code != 303:
                        raise
                objects.append(session_id)
            stripe = stripe_for_tenant()
            world = {"tenant_id": tenant_id, "objects": []}
            for session_id in objects:
                session = stripe.v1.checkout.sessions.retrieve(session_id).to_dict()
                item = {"session": session_id, "customer": _id(session["customer"])}
                if session.get("subscription"):
                    sub = stripe.v1.subscriptions.retrieve(session["subscription"]).to_dict()
                    item.update(subscription=sub["id"], invoice=_id(sub.get("latest_invoice")))
                    if rng.random() < 0.2:
                        stripe.v1.subscriptions.cancel(sub["id"])
                        item["cancelled"] = True
                else:
                    intent = stripe.v1.payment_intents.retrieve(session["payment_intent"]).to_dict()
                    charge = intent.get("latest_charge")
                    if charge is None:
                        charges = (intent.get("charges") or {}).get("data") or []
                        charge = charges[0] if charges else None
                    item.update(payment_intent=intent["id"], charge=_id(charge))
                    if rng.random() < 1 / 3:
                        stripe.v1.refunds.create(params={"payment_intent": intent["id"]})
                        item["refunded"] = True
                world["objects"].append(item)
        db.session.remove()
    return world


def _id(value):
    return value.get("id") if isinstance(value, dict) else value


def retrieve(stripe, kind: str, object_id: str) -> dict:
    service = {"checkout.session": stripe.v1.checkout.sessions, "subscription": stripe.v1.subscriptions,
               "invoice": stripe.v1.invoices, "charge": stripe.v1.charges, "customer": stripe.v1.customers,
               "payment_intent": stripe.v1.payment_intents}[kind]
    return service.retrieve(object_id).to_dict()


def plan_events(world: dict, count: int) -> list[tuple[str, str, str]]:
    """(type, object kind, object id) for `count` distinct events, in the order Stripe sends them:
    each object's events together, the objects one after another. Nine a contact on average."""
    per_object = []
    for item in world["objects"]:
        events = [("customer.created", "customer", item["customer"]),
                  ("checkout.session.completed", "checkout.session", item["session"])]
        if "subscription" in item:
            sub = item["subscription"]
            events += [("customer.subscription.created", "subscription", sub),
                       ("invoice.payment_succeeded", "invoice", item["invoice"]),
                       ("invoice.paid", "invoice", item["invoice"]),
                       ("customer.subscription.updated", "subscription", sub)]
            if item.get("cancelled"):
                events += [("customer.subscription.updated", "subscription", sub),
                           ("customer.subscription.deleted", "subscription", sub)]
        else:
            events += [("payment_intent.succeeded", "payment_intent", item["payment_intent"])]
            if item.get("refunded") and item.get("charge"):
                events += [("charge.refunded", "charge", item["charge"])]
        per_object.append(events)
    # Pad with more updates of the subscriptions (Stripe sends many) up to the count.
    subs = [events for events, item in zip(per_object, world["objects"]) if "subscription" in item]
    total, i = sum(map(len, per_object)), 0
    while total < count:
        events = subs[i % len(subs)]
        events.insert(-1 if events[-1][0] == "customer.subscription.deleted" else len(events),
                      ("customer.subscription.updated", "subscription", events[2][2]))
        total, i = total + 1, i + 1
    return [event for events in per_object for event in events][:count]


def event_bodies(app, world: dict, planned: list[tuple[str, str, str]]) -> list[tuple[str, bytes]]:
    """(event id, body) for each planned event: Stripe's event envelope around the object as
    the stand-in has it now (the app re-reads it anyway)."""
    from billing.plans import stripe_for_tenant
    from core.tenancy import tenant_context

    objects: dict = {}
    created = int(time.time()) - 3600
    bodies = []
    with app.app_context(), tenant_context(world["tenant_id"]):
        stripe = stripe_for_tenant()
        for n, (kind, obj_kind, object_id) in enumerate(planned):
            if (obj_kind, object_id) not in objects:
                objects[obj_kind, object_id] = retrieve(stripe, obj_kind, object_id)
            event_id = f"evt_bench_{n:06d}"
            body = json.dumps({"id": event_id, "object": "event", "api_version": "2024-06-20", "created": created + n,
                               "livemode": False, "pending_webhooks": 1, "type": kind,
                               "request": {"id": None, "idempotency_key": None},
                               "data": {"object": objects[obj_kind, object_id]}}, separators=(",", ":"))
            bodies.append((event_id, body.encode()))
    return bodies


def sign(bodies: list[tuple[str, bytes]]) -> list[tuple[bytes, str]]:
    """Stripe's own signature scheme, with the tenant's secret, signed now (the tolerance is 5 min)."""
    import stripe

    now = int(time.time())
    return [(body, stripe.WebhookSignature.generate_signature_header(body.decode(), WEBHOOK_SECRET, now))
            for _, body in bodies]


# --- sending -----------------------------------------------------------------------------------------

def process_cpu(master: subprocess.Popen | None) -> float:
    """CPU seconds gunicorn's workers (the master's children) have spent so far."""
    if master is None:
        return 0.0
    total = 0
    for pid in Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def send(port: int, host: str, path: str, deliveries: list[tuple[bytes, str]], senders: int,
         server: subprocess.Popen | None = None) -> dict:
    """Every delivery POSTed once, by `senders` concurrent connections (aiohttp, kept alive);
    with the server's process, the CPU its workers spent a delivery (what the machine's load
    does not change much)."""
    import aiohttp

    async def run():
        statuses: dict[int, int] = {}
        queue = list(reversed(deliveries))
        url = f"http://127.0.0.1:{port}{path}"
        connector = aiohttp.TCPConnector(limit=senders, force_close=False)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            async def sender():
                while queue:
                    body, signature = queue.pop()
                    headers = {"Host": host, "Content-Type": "application/json", "Stripe-Signature": signature}
                    try:
                        async with session.post(url, data=body, headers=headers) as response:
                            await response.read()
                            statuses[response.status] = statuses.get(response.status, 0) + 1
                    except aiohttp.ClientError:
                        statuses[0] = statuses.get(0, 0) + 1

            started = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(senders)))
            return time.perf_counter() - started, statuses

    load_before, cpu = load(), process_cpu(server)
    seconds, statuses = asyncio.run(run())
    cpu = process_cpu(server) - cpu
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return {"deliveries": len(deliveries), "senders": senders, "seconds": round(seconds, 2),
            "web_cpu_ms_per_delivery": round(cpu * 1000 / len(deliveries), 2) if server else None,
            "per_second": round(ok / seconds, 1), "answered_2xx": ok,
            "other_answers": {str(k): v for k, v in statuses.items() if not 200 <= k < 300},
            "load_before": load_before, "load_after": load()}


# --- applying, and what it leaves --------------------------------------------------------------------

def drain(app, *, profile: bool) -> dict:
    """One worker, in this process, on the queue the web workers filled: until it is empty."""
    from core.jobs import pending_count, run_pending_jobs

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    load_before = load()
    with app.app_context():
        queued = pending_count()
        if profiler:
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        ran = run_pending_jobs()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler:
            profiler.disable()
    if profiler:
        import pstats

        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
    return {"queued": queued, "jobs": ran, "seconds": round(seconds, 2), "per_second": round(ran / seconds, 1),
            "worker_cpu_ms_per_event": round(cpu * 1000 / max(ran, 1), 2), "load_before": load_before,
            "load_after": load()}


def bare_rereads(app, world: dict, planned: list[tuple[str, str, str]]) -> dict:
    """The floor of applying: each handled event's object re-read from the stand-in by one plain
    client, nothing else."""
    from billing.events import HANDLED
    from billing.plans import stripe_for_tenant
    from core.tenancy import tenant_context

    handled = [(kind, object_id) for event_type, kind, object_id in planned if event_type in HANDLED]
    with app.app_context(), tenant_context(world["tenant_id"]):
        stripe = stripe_for_tenant()
        started = time.perf_counter()
        for kind, object_id in handled:
            retrieve(stripe, kind, object_id)
        seconds = time.perf_counter() - started
    return {"reads": len(handled), "seconds": round(seconds, 2), "per_second": round(len(handled) / seconds, 1)}


def snapshot(seed_url: str, tenant_id: int) -> dict:
    """What the events left in the tenant, row by row (through the administrator: every row)."""
    engine = sa.create_engine(seed_url)
    with engine.connect() as connection:
        params = {"t": tenant_id}
        state = {
            "entitlements": connection.execute(sa.text(
                "SELECT c.email, p.name, e.source, e.status, e.stripe_customer_id, e.stripe_subscription_id,"
                " e.stripe_payment_intent_id, e.stripe_checkout_session_id, e.past_due_since, e.current_period_end,"
                " e.cancel_at_period_end, e.disputed, e.is_open, e.closes_at FROM entitlement e"
                " JOIN contact c ON c.tenant_id = e.tenant_id AND c.id = e.contact_id"
                " LEFT JOIN access_plan p ON p.tenant_id = e.tenant_id AND p.id = e.plan_id"
                " WHERE e.tenant_id = :t"), params).all(),
            "customers": connection.execute(sa.text(
                "SELECT c.email, b.stripe_customer_id FROM billing_customer b"
                " JOIN contact c ON c.tenant_id = b.tenant_id AND c.id = b.contact_id WHERE b.tenant_id = :t"),
                params).all(),
            "circle_members": connection.execute(sa.text(
                "SELECT ci.name, c.email FROM circle_member m JOIN circle ci ON ci.tenant_id = m.tenant_id"
                " AND ci.id = m.circle_id JOIN contact c ON c.tenant_id = m.tenant_id AND c.id = m.contact_id"
                " WHERE m.tenant_id = :t AND m.removed_at IS NULL"), params).all(),
            "payments": connection.execute(sa.text(
                "SELECT c.email, p.stripe_charge_id, p.stripe_payment_intent_id, p.stripe_invoice_id, p.amount,"
                " p.currency, p.amount_refunded, p.status, p.failure_message, p.disputed, p.charged_at,"
                " e.stripe_subscription_id, e.stripe_payment_intent_id FROM billing_payment p"
                " JOIN contact c ON c.tenant_id = p.tenant_id AND c.id = p.contact_id"
                " LEFT JOIN entitlement e ON e.tenant_id = p.tenant_id AND e.id = p.entitlement_id"
                " WHERE p.tenant_id = :t"), params).all(),
            "refunds": connection.execute(sa.text(
                "SELECT p.stripe_charge_id, r.stripe_refund_id, r.amount, r.currency, r.status, r.refunded_at"
                " FROM billing_refund r JOIN billing_payment p ON p.tenant_id = r.tenant_id AND p.id = r.payment_id"
                " WHERE r.tenant_id = :t"), params).all(),
            "events": connection.execute(sa.text(
                "SELECT event_id, type, object_id, state FROM stripe_event WHERE tenant_id = :t"), params).all(),
        }
    engine.dispose()
    return {name: sorted(map(tuple, rows), key=repr) for name, rows in state.items()}


def differences(a: dict, b: dict) -> dict[str, int]:
    return {name: len(set(a[name]) ^ set(b[name])) for name in a}


def forget_billing_state(seed_url: str, tenant_id: int) -> None:
    """Back to before any event: no entitlements, no stored events, nobody in the plan's Circle
    (the Stripe customers the checkouts made stay: they came before the events)."""
    engine = sa.create_engine(seed_url)
    with engine.begin() as connection:
        for table in ("billing_refund", "billing_payment", "entitlement", "stripe_event", "circle_member"):
            connection.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id = :t"), {"t": tenant_id})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM billing_refund, billing_payment, entitlement, stripe_event, circle_member")
    engine.dispose()


def summary(state: dict) -> dict:
    by_status: dict[str, int] = {}
    for row in state["entitlements"]:
        by_status[row[3]] = by_status.get(row[3], 0) + 1
    events: dict[str, int] = {}
    for row in state["events"]:
        events[row[3]] = events.get(row[3], 0) + 1
    return {"entitlements": by_status, "open": sum(1 for row in state["entitlements"] if row[12]),
            "payments": len(state["payments"]), "refunds": len(state["refunds"]),
            "circle_members": len(state["circle_members"]), "events": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 deliveries (make bench)")
    parser.add_argument("--events", type=int, help="deliveries in the shuffled run (10 %% of them repeats)")
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers, app and bare alike")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--profile", action="store_true", help="cProfile the shuffled run's drain")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL")
                        or os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL") or os.environ.get("TEST_REDIS_URL"))
    args = parser.parse_args()
    deliveries_count = args.events or (2_000 if args.quick else 10_000)
    distinct = round(deliveries_count * (1 - DUPLICATES))
    contacts = max(10, distinct // 9)
    if not (args.database_url or "").startswith("postgres"):
        raise SystemExit("webhooks needs PostgreSQL: set BENCH_DATABASE_URL or TEST_DATABASE_URL")
    rng = random.Random(args.seed)
    figures: dict = {"benchmark": "webhooks", "quick": args.quick, "deliveries": deliveries_count,
                     "distinct_events": distinct, "contacts": contacts, "load_at_start": load()}

    with ExitStack() as stack:
        url, seed_url = databases(args.database_url, stack)
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="webhooks-bench-"))
        api_base, hosted_base = start_stripe(stack)
        jobs_path = f"{folder}/jobs.sqlite"
        queue = args.redis_url or ""
        figures["queue"] = "redis" if queue else "sqlite (embedded; set BENCH_REDIS_URL for production's Redis)"
        app = make_app(url, stack, SECRET_KEY=APP_SECRET, STRIPE_API_BASE=api_base, REDIS_URL=queue or None,
                       JOBS_SQLITE_PATH=jobs_path)
        from flask_migrate import upgrade

        from core.jobs import huey, pending_count

        with app.app_context():
            upgrade()
            if pending_count():
                raise SystemExit(f"the job queue at {queue or jobs_path} is not empty: use a Redis database of "
                                 "its own (BENCH_REDIS_URL)")
        started = time.perf_counter()
        world = make_world(app, hosted_base, contacts, args.seed)
        planned = plan_events(world, distinct)
        bodies = event_bodies(app, world, planned)
        repeats = [rng.choice(bodies) for _ in range(deliveries_count - distinct)]
        shuffled = bodies + repeats
        rng.shuffle(shuffled)
        figures["world_seconds"] = round(time.perf_counter() - started, 1)
        figures["event_types"] = {}
        for kind, _, _ in planned:
            figures["event_types"][kind] = figures["event_types"].get(kind, 0) + 1
        print(f"{contacts} contacts paid on the stand-in, {distinct} distinct events planned "
              f"({figures['world_seconds']} s); queue: {figures['queue']}", flush=True)

        engine = sa.create_engine(seed_url)
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE bench_bare_event (event_id varchar(255) PRIMARY KEY,"
                                       " type varchar(100) NOT NULL, received_at timestamptz DEFAULT now())")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")  # as autovacuum would leave the tables the world filled
        engine.dispose()

        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": APP_SECRET, "PLATFORM_DOMAIN": "localhost",
               "JOBS_SQLITE_PATH": jobs_path, "REDIS_URL": queue, "STRIPE_API_BASE": api_base, "LOG_LEVEL": "WARNING",
               "PYTHONPATH": str(ROOT), "PORTICO_ALLOW_RLS_BYPASS": "1"}
        log = open(f"{folder}/servers.log", "w")
        app_port, bare_port = _free_port(), _free_port()
        server = gunicorn("wsgi:app", app_port, env, log, ROOT, stack, args.workers)
        bare_env = {**env, "BARE_DATABASE_URL": seed_url.replace("postgresql+psycopg://", "postgresql://"),
                    "BARE_WEBHOOK_SECRET": WEBHOOK_SECRET}
        bare = gunicorn("webhooks:bare_app()", bare_port, bare_env, log, BENCH, stack, args.workers)
        host = f"{SLUG}.localhost"
        _wait_for(app_port, "/billing/webhook", host, server)
        _wait_for(bare_port, "/hook", "localhost", bare)

        # Warm-up: each web worker has imported stripe and opened its connections.
        warm = sign([(f"evt_warm_{n}", json.dumps({"id": f"evt_warm_{n}", "object": "event", "type": "ping",
                                                    "data": {"object": {"id": "x"}}}).encode()) for n in range(200)])
        for port, path in ((app_port, "/billing/webhook"), (bare_port, "/hook")):
            warmed = send(port, host, path, warm, args.senders)
            if warmed["answered_2xx"] != len(warm):
                raise SystemExit(f"warm-up on {path} answered {warmed['other_answers']}; see {folder}/servers.log")
        forget_billing_state(seed_url, world["tenant_id"])

        # 1. The bare endpoint, the same deliveries.
        figures["bare"] = send(bare_port, "localhost", "/hook", sign(shuffled), args.senders, bare)
        print(f"bare:     {figures['bare']['per_second']:7.1f} events/s answered 2xx by {args.senders} senders "
              f"({figures['bare']['web_cpu_ms_per_delivery']} ms of the web workers' CPU each) [load {figures['bare']['load_before']} -> {figures['bare']['load_after']}]", flush=True)

        # 2. In order, each once, one sender; then applied.
        figures["in_order_intake"] = send(app_port, host, "/billing/webhook", sign(bodies), 1, server)
        figures["in_order_apply"] = drain(app, profile=False)
        in_order = snapshot(seed_url, world["tenant_id"])
        print(f"in order: {figures['in_order_intake']['per_second']:7.1f} events/s taken in by one sender, "
              f"{figures['in_order_apply']['per_second']:7.1f} applied/s; {summary(in_order)}", flush=True)

        # 3. Shuffled with repeats, 50 senders; then applied.
        forget_billing_state(seed_url, world["tenant_id"])
        figures["intake"] = send(app_port, host, "/billing/webhook", sign(shuffled), args.senders, server)
        figures["apply"] = drain(app, profile=args.profile)
        figures["bare_rereads"] = bare_rereads(app, world, planned)
        after = snapshot(seed_url, world["tenant_id"])
        diff = differences(in_order, after)
        figures["differences"] = diff
        figures["state"] = summary(after)
        pending_left = sum(1 for row in after["events"] if row[3] == "pending")
        intake, apply_ = figures["intake"], figures["apply"]
        print(f"shuffled: {intake['per_second']:7.1f} events/s answered 2xx by {args.senders} senders "
              f"({intake['answered_2xx']} of {intake['deliveries']}, other answers {intake['other_answers'] or 'none'}, "
              f"{intake['per_second'] / max(figures['bare']['per_second'], 0.1):.0%} of bare; "
              f"{intake['web_cpu_ms_per_delivery']} ms of the web workers' CPU each) "
              f"[load {intake['load_before']} -> {intake['load_after']}]")
        print(f"          {apply_['per_second']:7.1f} events/s applied by one worker ({apply_['jobs']} jobs in "
              f"{apply_['seconds']} s, {apply_['worker_cpu_ms_per_event']} ms of its CPU each; the bare re-reads "
              f"alone {figures['bare_rereads']['per_second']}/s) [load {apply_['load_before']} -> "
              f"{apply_['load_after']}]")
        print(f"          differences from in order: {diff}; {pending_left} events left pending; {summary(after)}",
              flush=True)
        huey.flush()

    figures["load_at_end"] = load()
    total_diff = sum(diff.values()) + pending_left
    figures["targets"] = [
        target("webhook intake events/s answered 2xx", intake["per_second"], at_least=INTAKE_TARGET, unit="events/s"),
        target("webhook apply events/s", apply_["per_second"], at_least=APPLY_TARGET, unit="events/s"),
        target("shuffled = in-order", total_diff, at_most=0, unit="differences"),
    ]
    for t in figures["targets"]:
        t["load"] = f"{figures['load_at_start']} -> {figures['load_at_end']}"
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
