"""Stripe's webhooks against the tests' Stripe: genuinely signed deliveries, repeated,
shuffled, forged, late; access follows Stripe's current state, never the order of events."""
from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from datetime import timedelta

import sqlalchemy as sa

from core.db import db
from tests.billing.conftest import KEYS, access, checkout, post_event, state
from tests.support import tenant_session


def deliver_all(client, deliveries, deliver):
    for delivery in deliveries:
        response = post_event(client, delivery)
        assert response.status_code == 200, response.get_data(as_text=True)
    deliver()


def paid_subscription(app, pay):
    """Check out and pay; returns the deliveries Stripe sent for it."""
    session_id = checkout(app, pay)
    redirect = pay.server.pay(session_id)
    assert redirect.endswith(f"session={session_id}")
    pay.server.inbox.wait_for("checkout.session.completed")
    return pay.server.inbox.settle()


def test_a_paid_checkout_opens_access_only_once_its_signed_event_is_applied(app, pay, client_for, deliver):
    deliveries = paid_subscription(app, pay)
    assert {"checkout.session.completed", "customer.subscription.created", "invoice.paid"} <= {
        d.type for d in deliveries}
    # The buyer is back on the success page: nothing is open from that alone.
    assert not access(app, pay)
    client = client_for(pay.tenant.slug)
    deliver_all(client, deliveries, deliver)
    assert access(app, pay)
    after = state(app, pay.tenant)
    [(contact_id, plan_id, source, status, sub_id, _, is_open, closes_at, _, _)] = after["entitlements"]
    assert (contact_id, plan_id, source, status, is_open, closes_at) == (
        pay.contact_id, pay.plan_id, "subscription", "active", True, None)
    assert after["circle_members"] == [(pay.circle_id, pay.contact_id)]  # the plan's Circle follows
    assert [c for c, _ in after["customers"]] == [pay.contact_id]


def test_the_same_event_three_times_is_applied_once(app, pay, client_for, deliver):
    from billing.models import StripeEvent

    deliveries = paid_subscription(app, pay)
    client = client_for(pay.tenant.slug)
    completed = next(d for d in deliveries if d.type == "checkout.session.completed")
    answers = [post_event(client, completed).get_json() for _ in range(3)]
    assert answers == [{"received": True, "duplicate": False}] + [{"received": True, "duplicate": True}] * 2
    deliver()
    once = state(app, pay.tenant)
    assert once["events"] == 1 and len(once["entitlements"]) == 1
    with tenant_session(app, pay.tenant):
        assert db.session.scalar(sa.select(StripeEvent.state)) == "applied"
    # Later repeats, after it was applied, change nothing either.
    for _ in range(2):
        assert post_event(client, completed).get_json()["duplicate"] is True
    deliver()
    assert state(app, pay.tenant) == once


def _wipe_local_payments(app, tenant):
    from billing.models import BillingCustomer, Entitlement, StripeEvent
    from crm.models import CircleMember

    with tenant_session(app, tenant):
        for model in (Entitlement, BillingCustomer, StripeEvent, CircleMember):
            db.session.execute(sa.delete(model))


def test_a_realistic_sequence_shuffled_with_repeats_ends_as_in_order(app, pay, client_for, deliver):
    """Checkout, a failed renewal (past due), the retry paid, then the customer cancels."""
    deliveries = paid_subscription(app, pay)
    server = pay.server
    sub_id = json.loads(next(d for d in deliveries if d.type == "checkout.session.completed").body)[
        "data"]["object"]["subscription"]
    customer = json.loads(next(d for d in deliveries if d.type == "checkout.session.completed").body)[
        "data"]["object"]["customer"]
    server.set_card(customer, "4000000000000341")
    invoice_id = server.renew(sub_id)
    server.inbox.wait_for("invoice.payment_failed")
    server.set_card(customer, "4242424242424242")
    stripe = _stripe(server)
    stripe.v1.invoices.pay(invoice_id)
    server.inbox.wait_for("invoice.paid", count=2)
    stripe.v1.subscriptions.cancel(sub_id)
    server.inbox.wait_for("customer.subscription.deleted")
    everything = server.inbox.settle()
    types = [d.type for d in everything]
    assert {"invoice.payment_failed", "customer.subscription.updated", "customer.subscription.deleted"} <= set(types)

    client = client_for(pay.tenant.slug)
    deliver_all(client, everything, deliver)
    in_order = state(app, pay.tenant)
    assert [e[3] for e in in_order["entitlements"]] == ["canceled"]
    assert not access(app, pay) and in_order["circle_members"] == []

    _wipe_local_payments(app, pay.tenant)
    shuffled = everything + random.Random(14).sample(everything, max(1, len(everything) // 10))
    random.Random(7).shuffle(shuffled)
    for delivery in shuffled:
        assert post_event(client, delivery).status_code == 200
        if random.Random(delivery.body).random() < 0.3:
            deliver()  # some applied between deliveries, as a worker would
    deliver()
    assert state(app, pay.tenant) == in_order


def _stripe(server):
    import stripe

    return stripe.StripeClient(KEYS["a"][0], base_addresses={"api": server.api_base})


def test_past_due_stays_open_for_the_grace_period_then_closes_and_invoice_paid_reopens(app, pay, client_for,
                                                                                       deliver):
    from billing.entitlements import close_lapsed
    from billing.models import Entitlement

    client = client_for(pay.tenant.slug)
    deliveries = paid_subscription(app, pay)
    deliver_all(client, deliveries, deliver)
    completed = next(d.event for d in deliveries if d.type == "checkout.session.completed")["data"]["object"]
    server = pay.server
    server.inbox.clear()
    server.set_card(completed["customer"], "4000000000000341")
    invoice_id = server.renew(completed["subscription"])
    server.inbox.wait_for("invoice.payment_failed")
    deliver_all(client, server.inbox.settle(), deliver)

    with tenant_session(app, pay.tenant):
        entitlement = db.session.scalar(sa.select(Entitlement))
        assert entitlement.status == "past_due"
        failed_at = entitlement.past_due_since
        assert entitlement.closes_at == failed_at + timedelta(days=3)  # the tenant's grace (default 3 days)
    assert access(app, pay, now=failed_at + timedelta(days=2, hours=23))
    assert not access(app, pay, now=failed_at + timedelta(days=3, minutes=1))
    with tenant_session(app, pay.tenant):
        closed = close_lapsed(now=failed_at + timedelta(days=3, minutes=1))
        assert len(closed) == 1
    assert state(app, pay.tenant)["circle_members"] == []  # out of the plan's Circle once closed

    server.inbox.clear()
    server.set_card(completed["customer"], "4242424242424242")
    _stripe(server).v1.invoices.pay(invoice_id)
    server.inbox.wait_for("invoice.paid")
    deliver_all(client, server.inbox.settle(), deliver)
    later = failed_at + timedelta(days=30)
    assert access(app, pay, now=later)
    with tenant_session(app, pay.tenant):
        entitlement = db.session.scalar(sa.select(Entitlement))
        assert (entitlement.status, entitlement.past_due_since, entitlement.closes_at) == ("active", None, None)
    assert state(app, pay.tenant)["circle_members"] == [(pay.circle_id, pay.contact_id)]


def test_a_longer_grace_period_moves_the_closing_time(app, pay, client_for, deliver):
    from billing.models import AccessPlan, Entitlement
    from billing.settings import set_access_rules

    client = client_for(pay.tenant.slug)
    deliveries = paid_subscription(app, pay)
    deliver_all(client, deliveries, deliver)
    completed = next(d.event for d in deliveries if d.type == "checkout.session.completed")["data"]["object"]
    pay.server.inbox.clear()
    pay.server.set_card(completed["customer"], "4000000000000341")
    pay.server.renew(completed["subscription"])
    pay.server.inbox.wait_for("invoice.payment_failed")
    deliver_all(client, pay.server.inbox.settle(), deliver)
    with tenant_session(app, pay.tenant):
        set_access_rules(db.session.get(AccessPlan, pay.plan_id), 10, actor=None)
    with tenant_session(app, pay.tenant):
        entitlement = db.session.scalar(sa.select(Entitlement))
        assert entitlement.closes_at == entitlement.past_due_since + timedelta(days=10)


# --- refused deliveries --------------------------------------------------------------------------

def _sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def test_forged_late_foreign_malformed_oversize_and_unsigned_deliveries_get_400_and_change_nothing(
        app, pay, client_for, deliver):
    deliveries = paid_subscription(app, pay)
    completed = next(d for d in deliveries if d.type == "checkout.session.completed")
    client = client_for(pay.tenant.slug)
    before = state(app, pay.tenant)
    body = completed.body
    tampered = body.replace(b'"complete"', b'"COMPLETE"', 1)
    cases = {
        "bad signature": dict(signature=completed.signature.replace("v1=", "v1=00", 1)),
        "tampered body": dict(body=tampered),
        "old timestamp": dict(signature=_sign(body, pay.webhook_secret, int(time.time()) - 3600)),
        "another tenant's secret": dict(signature=_sign(body, KEYS["b"][1])),
        "unsigned": dict(signature=""),
        "malformed": dict(body=b"{not json", signature=_sign(b"{not json", pay.webhook_secret)),
        "oversize": dict(body=b" " * (app.config["BILLING_WEBHOOK_MAX_BYTES"] + 1) + body),
        "no event id": dict(body=b'{"object": "event"}', signature=_sign(b'{"object": "event"}',
                                                                         pay.webhook_secret)),
    }
    for name, kwargs in cases.items():
        response = post_event(client, completed, **kwargs)
        assert response.status_code == 400, name
        text = response.get_data(as_text=True)
        assert "Traceback" not in text and "File \"" not in text, name
        assert response.get_json() == {"error": "invalid webhook"}, name
    # A's genuine delivery sent to B's host: B's secret does not verify it.
    other = client_for(pay.other.slug)
    assert post_event(other, completed).status_code == 400
    deliver()
    assert state(app, pay.tenant) == before
    assert state(app, pay.other)["events"] == 0
    # The genuine one still works afterwards.
    assert post_event(client, completed).status_code == 200


def test_webhooks_need_a_tenant_host_and_stored_secret(app, world, client_for, stripe_app):
    from tests.billing.conftest import configure  # noqa: F401

    # No tenant has keys, and there are no platform defaults: refused.
    response = client_for(world.a.slug).post("/billing/webhook", data=b"{}",
                                             headers={"Stripe-Signature": _sign(b"{}", "whsec_anything")})
    assert response.status_code == 400
    assert client_for(None).post("/billing/webhook", data=b"{}").status_code == 404


def test_a_worker_killed_midway_leaves_the_event_to_be_applied_again_once(app, pay, client_for, deliver):
    from billing import events
    from billing.models import StripeEvent

    deliveries = paid_subscription(app, pay)
    completed = next(d for d in deliveries if d.type == "checkout.session.completed")
    client = client_for(pay.tenant.slug)
    original = events.apply

    def dies(row):
        original(row)
        raise SystemExit("worker killed")  # after the work, before the commit

    events.apply = dies
    try:
        assert post_event(client, completed).status_code == 200
        try:
            deliver()
        except SystemExit:
            pass
    finally:
        events.apply = original
    from core.jobs import huey

    huey.flush()  # the job is lost with its worker
    assert state(app, pay.tenant)["entitlements"] == []
    with tenant_session(app, pay.tenant):
        assert db.session.scalar(sa.select(StripeEvent.state)) == "pending"
    from core.db import utcnow

    with app.app_context():
        assert events.requeue_stalled(now=utcnow() + timedelta(minutes=5))
    deliver()
    after = state(app, pay.tenant)
    assert [e[3] for e in after["entitlements"]] == ["active"]
    with app.app_context():
        assert events.requeue_stalled(now=utcnow() + timedelta(minutes=5)) == []


def test_a_worker_process_killed_while_applying_leaves_the_event_to_be_applied_again_once(
        app, pay, client_for, deliver, queue_env, database_url):
    """A real `flask --app wsgi worker` killed with SIGKILL while it applies an event (waiting
    on Stripe, its transaction open): nothing of it is left half-written, the event stays
    pending, the sweep queues it again, and it is applied once."""
    import os
    import signal

    from billing import events
    from billing.models import StripeEvent
    from core.db import utcnow
    from core.jobs import huey
    from tests.support import start_worker

    deliveries = paid_subscription(app, pay)
    completed = next(d for d in deliveries if d.type == "checkout.session.completed")
    client = client_for(pay.tenant.slug)
    before = state(app, pay.tenant)
    env = {**os.environ, **queue_env, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
           "STRIPE_API_BASE": pay.server.api_base, "JOBS_WORKERS": "1", "LOG_LEVEL": "INFO"}
    with pay.server.holding("/v1/checkout/sessions/") as hold:
        assert post_event(client, completed).status_code == 200
        worker = start_worker(env)
        try:
            assert hold.arrived.wait(60), "the worker never asked Stripe for the session"
            worker.send_signal(signal.SIGKILL)  # no clean-up of any kind: as if the machine died
        finally:
            output = worker.communicate(timeout=20)[0]
    assert worker.returncode == -signal.SIGKILL, output
    time.sleep(0.5)  # the database notices the dead connection and rolls its transaction back

    with app.app_context():
        queued = [task.name for task in huey.pending()]  # the worker's periodic sweeps may wait there
        assert "billing.events.apply_event" not in queued, "the job died with its worker"
    after_kill = state(app, pay.tenant)
    assert after_kill == {**before, "events": 1}, "nothing of the killed apply is left"
    with tenant_session(app, pay.tenant):
        row = db.session.scalar(sa.select(StripeEvent))
        assert (row.state, row.attempts, row.applied_at) == ("pending", 0, None)
        row_id = row.id

    with app.app_context():
        assert events.requeue_stalled(now=utcnow() + timedelta(minutes=5)) == [row_id]
    deliver()
    after = state(app, pay.tenant)
    assert [e[3] for e in after["entitlements"]] == ["active"]
    with tenant_session(app, pay.tenant):
        row = db.session.get(StripeEvent, row_id)
        assert (row.state, row.attempts) == ("applied", 1)
    # Nothing is queued again, and the same delivery once more changes nothing.
    with app.app_context():
        assert events.requeue_stalled(now=utcnow() + timedelta(minutes=5)) == []
    assert post_event(client, completed).get_json() == {"received": True, "duplicate": True}
    deliver()
    assert state(app, pay.tenant) == after


def test_one_re_read_applies_every_pending_event_of_the_same_subscription(app, pay, client_for, deliver):
    """A burst of events about one subscription: the first job to run re-reads it from Stripe
    and that applies the others stored before it too; their own jobs find them applied."""
    from billing.models import StripeEvent

    deliveries = paid_subscription(app, pay)
    created = next(d for d in deliveries if d.type == "customer.subscription.created")
    client = client_for(pay.tenant.slug)
    for n in range(3):  # Stripe's updates of the same subscription, each its own event
        event = {**created.event, "id": f"evt_update_{n}", "type": "customer.subscription.updated"}
        body = json.dumps(event).encode()
        assert post_event(client, created, body=body, signature=_sign(body, pay.webhook_secret)).status_code == 200
    deliver()
    after = state(app, pay.tenant)
    assert [e[3] for e in after["entitlements"]] == ["active"]
    with tenant_session(app, pay.tenant):
        rows = db.session.execute(sa.select(StripeEvent.state, StripeEvent.attempts)).all()
    assert sorted(rows) == [("applied", 0), ("applied", 0), ("applied", 1)]
