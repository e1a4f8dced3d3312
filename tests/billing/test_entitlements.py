"""The access rule, one-time payments and refunds, and the reconciliation command."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.db import db
from tests.billing.conftest import KEYS, access, checkout, post_event, state
from tests.billing.test_webhooks import deliver_all
from tests.support import tenant_session

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("source, status, past_due_since, disputed, expected", [
    ("subscription", "active", None, False, (True, None)),
    ("subscription", "trialing", None, False, (True, None)),
    ("subscription", "past_due", NOW, False, (True, NOW + timedelta(days=3))),
    ("subscription", "unpaid", None, False, (False, None)),
    ("subscription", "canceled", None, False, (False, None)),
    ("subscription", "incomplete", None, False, (False, None)),
    ("subscription", "incomplete_expired", None, False, (False, None)),
    ("subscription", "active", None, True, (False, None)),
    ("payment", "paid", None, False, (True, None)),
    ("payment", "refunded", None, False, (False, None)),
    ("payment", "paid", None, True, (False, None)),
    ("payment", "unpaid", None, False, (False, None)),
    ("complimentary", "active", None, False, (True, None)),
])
def test_the_one_access_rule(source, status, past_due_since, disputed, expected):
    from billing.entitlements import decide

    verdict = decide(source=source, status=status, past_due_since=past_due_since, disputed=disputed, grace_days=3)
    assert (verdict.is_open, verdict.closes_at) == expected


def test_the_portal_gate_reads_one_row_and_never_calls_stripe(app, pay, client_for, deliver):
    from billing.entitlements import portal_access_open
    from billing.models import AccessPlan
    from billing.settings import set_access_rules

    with tenant_session(app, pay.tenant):
        assert portal_access_open(pay.contact_id)  # nothing required yet
        set_access_rules(db.session.get(AccessPlan, pay.plan_id), 3, actor=None)
    with tenant_session(app, pay.tenant):
        assert not portal_access_open(pay.contact_id)
    deliver_all(client_for(pay.tenant.slug), _paid(app, pay), deliver)
    statements = []
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # a call to Stripe would fail the check
    with app.app_context():
        engine = db.engine

        def count(*args):
            statements.append(args[2])

        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            with tenant_session(app, pay.tenant):
                statements.clear()
                assert portal_access_open(pay.contact_id)
                gate = [s for s in statements if "entitlement" in s or "billing_settings" in s]
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
            app.config["STRIPE_API_BASE"] = pay.server.api_base
    assert len(gate) <= 2  # the rule (outside a request: not cached) and the one indexed row


def _paid(app, pay, plan_id=None):
    session_id = checkout(app, pay, plan_id)
    pay.server.pay(session_id)
    pay.server.inbox.wait_for("checkout.session.completed")
    return pay.server.inbox.settle()


def test_a_one_time_payment_opens_and_its_refund_closes(app, pay, client_for, deliver):
    import stripe

    from billing.plans import create_plan

    with tenant_session(app, pay.tenant):
        plan_id = create_plan(name="Lifetime", kind="one_time", amount=15000, currency="eur", actor=None).id
    client = client_for(pay.tenant.slug)
    deliveries = _paid(app, pay, plan_id)
    deliver_all(client, deliveries, deliver)
    [row] = state(app, pay.tenant)["entitlements"]
    assert (row[1], row[2], row[3], row[6]) == (plan_id, "payment", "paid", True)
    completed = next(d.event for d in deliveries if d.type == "checkout.session.completed")["data"]["object"]
    pay.server.inbox.clear()
    s = stripe.StripeClient(KEYS["a"][0], base_addresses={"api": pay.server.api_base})
    s.v1.refunds.create(params={"payment_intent": completed["payment_intent"]})
    pay.server.inbox.wait_for("charge.refunded")
    deliver_all(client, pay.server.inbox.settle(), deliver)
    [row] = state(app, pay.tenant)["entitlements"]
    assert (row[3], row[6]) == ("refunded", False)


def test_a_trial_opens_without_payment(app, pay, client_for, deliver):
    from billing.plans import create_plan

    with tenant_session(app, pay.tenant):
        plan_id = create_plan(name="Try it", kind="recurring", amount=900, currency="eur", interval="week",
                              interval_count=2, trial_days=14, actor=None).id
    deliver_all(client_for(pay.tenant.slug), _paid(app, pay, plan_id), deliver)
    [row] = state(app, pay.tenant)["entitlements"]
    assert (row[1], row[3], row[6]) == (plan_id, "trialing", True)


def test_the_same_customer_is_reused_for_a_second_checkout(app, pay, client_for, deliver):
    deliver_all(client_for(pay.tenant.slug), _paid(app, pay), deliver)
    first = state(app, pay.tenant)["customers"]
    pay.server.inbox.clear()
    deliver_all(client_for(pay.tenant.slug), _paid(app, pay), deliver)
    after = state(app, pay.tenant)
    assert after["customers"] == first and len(after["entitlements"]) == 2


def test_billing_sync_repairs_what_missed_events_left_and_reports_it(app, pay):
    import stripe

    _paid(app, pay)  # paid, but no event reached us (an outage)
    assert not access(app, pay)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["billing", "sync", "--tenant", pay.tenant.slug])
    assert result.exit_code == 0, result.output
    assert "new → active (access open)" in result.output and "acme: 1 change." in result.output
    assert access(app, pay)
    again = runner.invoke(args=["billing", "sync", "--tenant", pay.tenant.slug])
    assert "acme: 0 changes." in again.output

    [row] = state(app, pay.tenant)["entitlements"]
    s = stripe.StripeClient(KEYS["a"][0], base_addresses={"api": pay.server.api_base})
    s.v1.subscriptions.cancel(row[4])
    result = runner.invoke(args=["billing", "sync"])
    assert result.exit_code == 0, result.output
    assert "active → canceled (access closed)" in result.output
    assert not access(app, pay)
    assert state(app, pay.tenant)["circle_members"] == []


def test_events_arriving_while_stripe_is_down_are_applied_once_it_is_back(app, pay, client_for, deliver):
    from billing.models import StripeEvent

    deliveries = _paid(app, pay)
    client = client_for(pay.tenant.slug)
    for delivery in deliveries:
        assert post_event(client, delivery).status_code == 200  # answered, stored
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # Stripe unreachable for the worker
    try:
        deliver()  # each job fails (and is retried later): nothing applied, nothing half-written
    finally:
        app.config["STRIPE_API_BASE"] = pay.server.api_base
    with tenant_session(app, pay.tenant):
        assert "pending" in set(db.session.scalars(sa.select(StripeEvent.state)))
    assert not access(app, pay) and state(app, pay.tenant)["entitlements"] == []
    from core.db import utcnow
    from billing import events

    with app.app_context():
        events.requeue_stalled(now=utcnow() + timedelta(minutes=5))
    deliver()
    assert access(app, pay)
