"""Staff and a contact's payments: the Payments panel and timeline on the contact page (from local
state, no Stripe), and the staff actions (complimentary access, cancelling, refunding) as a
member of staff sees them, against the tests' Stripe with real signed events."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.db import db
from tests.billing.conftest import access, checkout, post_event
from tests.support import csrf_token, in_tenant, tenant_session

DEAD_STRIPE = "http://127.0.0.1:9"
ACTIONS = ("billing.complimentary_granted", "billing.complimentary_revoked", "billing.subscription_cancelled",
           "billing.payment_refunded")


def _text(response) -> str:
    return response.get_data(as_text=True)


def deliver_all(client, deliver, server):
    for delivery in server.inbox.settle():
        assert post_event(client, delivery).status_code == 200
    deliver()


def paid(app, pay, client_for, deliver, plan_id=None):
    """The contact checks out the plan and pays; Stripe's signed events are applied."""
    session_id = checkout(app, pay, plan_id)
    pay.server.pay(session_id)
    pay.server.inbox.wait_for("checkout.session.completed")
    deliver_all(client_for(pay.tenant.slug), deliver, pay.server)


@pytest.fixture
def one_time(app, pay) -> int:
    from billing.plans import create_plan

    with tenant_session(app, pay.tenant):
        return create_plan(name="Lifetime", kind="one_time", amount=15000, currency="eur", actor=None).id


def contact_page(client, pay) -> str:
    response = client.get(f"/staff/contacts/{pay.contact_id}")
    assert response.status_code == 200
    return _text(response)


def panel(page: str) -> str:
    match = re.search(r'<article class="payments-panel".*?</article>', page, re.S)
    assert match, "no Payments panel"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0)))


def timeline(page: str) -> str:
    match = re.search(r'<aside class="contact-timeline".*?</aside>', page, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0)))


def entry(page: str, summary: str) -> str:
    """The timeline entry that says `summary`, with when and by whom."""
    for item in re.findall(r"<li class=\"timeline-[^\"]*\">(.*?)</li>", page, re.S):
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item)).strip()
        if text.startswith(summary):
            return text
    raise AssertionError(f"no timeline entry {summary!r} in {timeline(page)}")


def audit_actions(app, pay) -> list[tuple[str, str]]:
    from core.audit import AuditEvent

    with tenant_session(app, pay.tenant):
        return [tuple(r) for r in db.session.execute(sa.select(AuditEvent.action, AuditEvent.actor_label).where(
            AuditEvent.action.in_(ACTIONS)).order_by(AuditEvent.id))]


def only(app, pay, model):
    with tenant_session(app, pay.tenant):
        rows = list(db.session.scalars(sa.select(model)))
        for row in rows:
            db.session.expunge(row)
    return rows


def confirm(client, path: str, **fields):
    """Open the confirmation page, then press its button with the fields given."""
    page = client.get(path)
    assert page.status_code == 200, _text(page)
    attempt = re.search(r'name="attempt" type="hidden" value="([^"]+)"', _text(page)).group(1)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', _text(page)).group(1)
    return client.post(path, data={"csrf_token": token, "attempt": attempt, **fields})


# --- what staff see ---------------------------------------------------------------------------------

def test_the_contact_page_shows_plans_payments_and_their_timeline_without_calling_stripe(
        app, pay, client_for, deliver, staff_client):
    paid(app, pay, client_for, deliver)
    admin = staff_client("admin")
    app.config["STRIPE_API_BASE"] = DEAD_STRIPE  # the page must not need Stripe
    try:
        page = contact_page(admin, pay)
    finally:
        app.config["STRIPE_API_BASE"] = pay.server.api_base
    shown = panel(page)
    assert "Membership" in shown and "Subscription" in shown and "Active" in shown and "Open" in shown
    assert "next renewal" in shown
    assert "49.00 EUR" in shown and "Paid" in shown
    assert "Cancel…" in shown and "Refund…" in shown and "Grant complimentary access…" in shown
    activity = timeline(page)
    assert "Subscription to Membership: Active (access open)" in activity
    assert activity.count("Payment received: 49.00 EUR for Membership") == 1
    # Stripe's events again (it delivers at least once): nothing new on the timeline.
    for delivery in pay.server.inbox.deliveries:
        post_event(client_for(pay.tenant.slug), delivery)
    deliver()
    assert timeline(contact_page(admin, pay)).count("Payment received") == 1


def test_a_failed_renewal_shows_as_a_failed_payment(app, pay, client_for, deliver, staff_client):
    from billing.models import Entitlement

    paid(app, pay, client_for, deliver)
    [entitlement] = only(app, pay, Entitlement)
    pay.server.set_card(entitlement.stripe_customer_id, "4000000000000341")
    pay.server.renew(entitlement.stripe_subscription_id)
    pay.server.inbox.wait_for("invoice.payment_failed")
    deliver_all(client_for(pay.tenant.slug), deliver, pay.server)
    page = contact_page(staff_client("admin"), pay)
    shown = panel(page)
    assert "Failed payments" in shown and "Failed: Your card was declined." in shown
    assert "Payment failed: Stripe is retrying" in shown
    assert "Payment failed: 49.00 EUR for Membership: Your card was declined." in timeline(page)
    listed = _text(staff_client("admin").get("/staff/payments?status=failed"))
    assert "Payments and refunds" in listed and "Failed: Your card was declined." in listed


def test_staff_without_the_permission_see_no_panel_and_are_refused_the_actions(
        app, pay, one_time, client_for, deliver, staff_client):
    from billing.models import Entitlement, Payment

    paid(app, pay, client_for, deliver, one_time)
    [entitlement] = only(app, pay, Entitlement)
    [payment] = only(app, pay, Payment)
    staff = staff_client("staff")
    page = contact_page(staff, pay)
    assert "payments-panel" not in page and "Refund…" not in page
    token = csrf_token(staff, f"/staff/contacts/{pay.contact_id}")
    for path in (f"/staff/contacts/{pay.contact_id}/complimentary", f"/staff/entitlements/{entitlement.id}/revoke",
                 f"/staff/entitlements/{entitlement.id}/cancel", f"/staff/payments/{payment.id}/refund"):
        assert staff.get(path).status_code in (403, 404)
        assert staff.post(path, data={"csrf_token": token, "attempt": "a" * 16, "amount": "1",
                                      "when": "now", "plan_id": str(pay.plan_id)}).status_code in (403, 404)
    # the ones about the right kind of object are a 403 (the wrong kind is a 404)
    assert staff.get(f"/staff/payments/{payment.id}/refund").status_code == 403
    assert staff.get(f"/staff/contacts/{pay.contact_id}/complimentary").status_code == 403
    assert only(app, pay, Payment)[0].amount_refunded == 0 and audit_actions(app, pay) == []


def test_every_action_wants_the_forms_csrf_token(app, pay, one_time, client_for, deliver, staff_client):
    from billing.models import Payment, Refund

    paid(app, pay, client_for, deliver, one_time)
    [payment] = only(app, pay, Payment)
    admin = staff_client("admin")
    response = admin.post(f"/staff/payments/{payment.id}/refund", data={"attempt": "a" * 16, "amount": "10"})
    assert response.status_code == 400 and "This form has expired or was sent from elsewhere" in _text(response)
    response = admin.post(f"/staff/contacts/{pay.contact_id}/complimentary",
                          data={"plan_id": str(pay.plan_id), "attempt": "a" * 16})
    assert response.status_code == 400
    assert only(app, pay, Refund) == [] and audit_actions(app, pay) == []


# --- refunds ------------------------------------------------------------------------------------------

def test_refunding_part_then_the_rest_of_a_one_time_payment_closes_its_access(
        app, pay, one_time, client_for, deliver, staff_client):
    from billing.entitlements import has_access
    from billing.models import Payment, Refund

    paid(app, pay, client_for, deliver, one_time)
    assert access(app, pay) is False  # Membership is not what was bought
    with tenant_session(app, pay.tenant):
        assert has_access(pay.contact_id, one_time)
    admin = staff_client("admin")
    [payment_id] = [p.id for p in only(app, pay, Payment)]
    form = admin.get(f"/staff/payments/{payment_id}/refund")
    assert 'value="150.00"' in _text(form) and "150.00 EUR can still be refunded" in _text(form)

    response = confirm(admin, f"/staff/payments/{payment_id}/refund", amount="50.00")
    assert response.status_code == 302 and response.location.endswith(f"/staff/contacts/{pay.contact_id}#payments-heading")
    page = _text(admin.get(response.location))
    assert "Refunded 50.00 EUR to Pat Payer." in page
    assert "Paid, 50.00 EUR refunded" in panel(page) and "Refunds" in panel(page)
    listed = _text(admin.get("/staff/payments?status=refunded"))
    assert "Pat Payer" in listed and "Paid, 50.00 EUR refunded" in listed
    assert "Pat Payer" not in _text(admin.get("/staff/payments?status=failed"))
    assert "Adam Admin" in entry(page, "Refunded 50.00 EUR of the 150.00 EUR payment for Lifetime")
    with tenant_session(app, pay.tenant):
        assert has_access(pay.contact_id, one_time)  # a partial refund keeps the access

    response = confirm(admin, f"/staff/payments/{payment_id}/refund", amount="100.00")
    page = _text(admin.get(response.location))
    assert "Refunded" in panel(page) and "Closed" in panel(page) and "Refund…" not in panel(page)
    assert "Refunded 100.00 EUR of the 150.00 EUR payment for Lifetime (now refunded in full)" in timeline(page)
    with tenant_session(app, pay.tenant):
        assert not has_access(pay.contact_id, one_time)
    assert audit_actions(app, pay) == [("billing.payment_refunded", "adam@acme.example")] * 2
    # Stripe's charge.refunded events arrive after: no second record of the same refunds.
    deliver_all(client_for(pay.tenant.slug), deliver, pay.server)
    assert len(only(app, pay, Refund)) == 2
    assert timeline(contact_page(admin, pay)).count("Refunded ") == 2


def test_a_refund_sent_twice_is_made_once(app, pay, one_time, client_for, deliver, staff_client):
    from billing.models import Payment, Refund

    paid(app, pay, client_for, deliver, one_time)
    [payment] = only(app, pay, Payment)
    admin = staff_client("admin")
    page = _text(admin.get(f"/staff/payments/{payment.id}/refund"))
    attempt = re.search(r'name="attempt" type="hidden" value="([^"]+)"', page).group(1)
    token = csrf_token(admin, f"/staff/payments/{payment.id}/refund")
    for _ in range(2):
        admin.post(f"/staff/payments/{payment.id}/refund", data={"csrf_token": token, "attempt": attempt,
                                                                 "amount": "20.00"})
    assert [r.amount for r in only(app, pay, Refund)] == [2000]
    assert only(app, pay, Payment)[0].amount_refunded == 2000


def test_a_refund_beyond_what_is_left_and_one_stripe_refuses_say_why_and_change_nothing(
        app, pay, one_time, client_for, deliver, staff_client):
    from billing.models import Payment, Refund

    paid(app, pay, client_for, deliver, one_time)
    [payment] = only(app, pay, Payment)
    admin = staff_client("admin")
    response = confirm(admin, f"/staff/payments/{payment.id}/refund", amount="150.01")
    assert response.status_code == 200
    assert "At most 150.00 EUR of this payment is left to refund." in _text(response)
    # Refunded in Stripe's dashboard meanwhile, and not heard of here yet: Stripe says no.
    _stripe(pay).v1.refunds.create(params={"charge": payment.stripe_charge_id})
    pay.server.inbox.settle()
    response = confirm(admin, f"/staff/payments/{payment.id}/refund", amount="10.00")
    assert response.status_code == 200
    assert f"Stripe refused: Charge {payment.stripe_charge_id} has already been refunded." in _text(response)
    assert only(app, pay, Refund) == [] and audit_actions(app, pay) == []


def test_with_stripe_down_a_refund_and_a_cancellation_say_so_and_change_nothing(
        app, pay, one_time, client_for, deliver, staff_client):
    from billing.models import Entitlement, Payment, Refund

    paid(app, pay, client_for, deliver)
    paid(app, pay, client_for, deliver, one_time)
    payment = next(p for p in only(app, pay, Payment) if p.amount == 15000)
    subscription = next(e for e in only(app, pay, Entitlement) if e.source == "subscription")
    admin = staff_client("admin")
    pages = [admin.get(f"/staff/payments/{payment.id}/refund"), admin.get(f"/staff/entitlements/{subscription.id}/cancel")]
    app.config["STRIPE_API_BASE"] = DEAD_STRIPE
    try:
        refused = [confirm(admin, f"/staff/payments/{payment.id}/refund", amount="10.00"),
                   confirm(admin, f"/staff/entitlements/{subscription.id}/cancel", when="now")]
    finally:
        app.config["STRIPE_API_BASE"] = pay.server.api_base
    assert all(p.status_code == 200 for p in pages)
    for response in refused:
        assert response.status_code == 503
        assert "Payments are unavailable right now. Nothing was changed" in _text(response)
    assert only(app, pay, Refund) == [] and audit_actions(app, pay) == []
    assert next(e for e in only(app, pay, Entitlement) if e.source == "subscription").status == "active"
    assert access(app, pay)


# --- cancelling ---------------------------------------------------------------------------------------

def test_cancelling_at_the_end_of_the_period_then_now(app, pay, client_for, deliver, staff_client):
    from billing.models import Entitlement

    paid(app, pay, client_for, deliver)
    [entitlement] = only(app, pay, Entitlement)
    admin = staff_client("admin")
    page = _text(admin.get(f"/staff/entitlements/{entitlement.id}/cancel"))
    assert "At the end of the current period" in page and "Now: access closes at once" in page
    response = confirm(admin, f"/staff/entitlements/{entitlement.id}/cancel", when="period_end")
    page = _text(admin.get(response.location))
    assert "it ends at the end of its period" in page
    assert "(ends at period end)" in panel(page) and access(app, pay)
    assert "Adam Admin" in entry(page, "Subscription to Membership: ends at the end of its period (")
    again = confirm(admin, f"/staff/entitlements/{entitlement.id}/cancel", when="period_end")
    assert "This subscription already ends at the end of its period." in _text(again)

    response = confirm(admin, f"/staff/entitlements/{entitlement.id}/cancel", when="now")
    page = _text(admin.get(response.location))
    assert "Cancelled" in panel(page) and "Closed" in panel(page) and "Cancel…" not in panel(page)
    assert "Adam Admin" in entry(page, "Subscription to Membership: Active → Cancelled (access closed)")
    assert not access(app, pay)
    assert [a for a, _ in audit_actions(app, pay)] == ["billing.subscription_cancelled"] * 2
    # Stripe's own events about it change nothing more.
    deliver_all(client_for(pay.tenant.slug), deliver, pay.server)
    assert timeline(contact_page(admin, pay)).count("Active → Cancelled") == 1


# --- complimentary access ----------------------------------------------------------------------------

def test_granting_and_revoking_complimentary_access(app, pay, staff_client):
    from billing.models import Entitlement
    from crm.models import CircleMember

    admin = staff_client("admin")
    path = f"/staff/contacts/{pay.contact_id}/complimentary"
    refused = confirm(admin, path, plan_id=str(pay.plan_id), ends_on=(date.today() - timedelta(days=1)).isoformat())
    assert "Choose an end date from today on, or leave it empty." in _text(refused)
    until = date.today() + timedelta(days=30)
    response = confirm(admin, path, plan_id=str(pay.plan_id), ends_on=until.isoformat())
    assert response.status_code == 302
    page = _text(admin.get(response.location))
    assert "Pat Payer has complimentary access to Membership." in page
    assert "Complimentary" in panel(page) and f"Open through {until:%Y-%m-%d}" in panel(page) and "Revoke…" in panel(page)
    assert "Adam Admin" in entry(page, f"Complimentary access to Membership granted until {until:%Y-%m-%d}")
    assert access(app, pay)
    assert not access(app, pay, now=datetime.now(timezone.utc) + timedelta(days=32))
    members = lambda: [m.contact_id for m in only(app, pay, CircleMember) if m.removed_at is None]  # noqa: E731
    assert members() == [pay.contact_id]  # the plan's Circle follows
    twice = confirm(admin, path, plan_id=str(pay.plan_id))
    assert "already has complimentary access to Membership" in _text(twice)

    [entitlement] = only(app, pay, Entitlement)
    response = confirm(admin, f"/staff/entitlements/{entitlement.id}/revoke")
    page = _text(admin.get(response.location))
    assert "Complimentary access to Membership revoked for Pat Payer." in page
    assert "Revoked" in panel(page) and "Revoke…" not in panel(page)
    assert "Adam Admin" in entry(page, "Complimentary access to Membership revoked")
    assert not access(app, pay) and members() == []
    assert [a for a, _ in audit_actions(app, pay)] == ["billing.complimentary_granted", "billing.complimentary_revoked"]


def test_complimentary_access_ends_after_its_last_day(app, pay, staff_client, deliver):
    from billing.events import queue_lapsed
    from crm.models import CircleMember

    admin = staff_client("admin")
    until = date.today() + timedelta(days=3)
    confirm(admin, f"/staff/contacts/{pay.contact_id}/complimentary", plan_id=str(pay.plan_id),
            ends_on=until.isoformat())
    later = datetime.now(timezone.utc) + timedelta(days=5)
    with app.app_context():
        assert queue_lapsed(now=datetime.now(timezone.utc)) == []
    assert not access(app, pay, now=later)  # the portal's check needs no job
    with app.app_context():
        assert queue_lapsed(now=later) == [pay.tenant.id]
    deliver()  # the job, run now: nothing has lapsed yet
    with tenant_session(app, pay.tenant):
        from billing.entitlements import close_lapsed
        assert len(close_lapsed(now=later)) == 1
    assert [m for m in only(app, pay, CircleMember) if m.removed_at is None] == []
    page = contact_page(admin, pay)
    assert "Complimentary access to Membership ended" in timeline(page) and "Closed" in panel(page)


# --- disputes -----------------------------------------------------------------------------------------

def test_a_disputed_one_time_payment_closes_its_access(app, pay, one_time, client_for, deliver, staff_client):
    from billing.entitlements import has_access
    from billing.models import Entitlement, Payment

    paid(app, pay, client_for, deliver, one_time)
    [payment] = only(app, pay, Payment)
    pay.server.dispute(payment.stripe_charge_id)
    [delivery] = pay.server.inbox.wait_for("charge.dispute.created")
    assert delivery.signature.startswith("t=") and ",v1=" in delivery.signature
    deliver_all(client_for(pay.tenant.slug), deliver, pay.server)
    with tenant_session(app, pay.tenant):
        assert not has_access(pay.contact_id, one_time)
    [entitlement] = only(app, pay, Entitlement)
    assert entitlement.disputed and not entitlement.is_open
    page = contact_page(staff_client("admin"), pay)
    assert "Disputed" in panel(page) and "Refund…" not in panel(page)
    assert "Payment disputed: 150.00 EUR for Lifetime. Access it paid for is closed." in timeline(page)


# --- visibility --------------------------------------------------------------------------------------

def test_a_restricted_member_never_sees_a_hidden_contacts_payments(
        app, pay, one_time, client_for, deliver, staff_client, world):
    from billing.models import Entitlement, Payment
    from core.permissions import RolePermission
    from tests.factories import restrict_staff_visibility

    paid(app, pay, client_for, deliver, one_time)
    [payment] = only(app, pay, Payment)
    [entitlement] = only(app, pay, Entitlement)

    def setup():
        for permission in ("payments.view", "billing.manage"):
            db.session.add(RolePermission(role="staff", permission=permission, granted=True))
        restrict_staff_visibility()
    in_tenant(app, world.a, setup)
    staff = staff_client("staff")
    assert "Pat Payer" not in _text(staff.get("/staff/payments"))
    for path in (f"/staff/contacts/{pay.contact_id}", f"/staff/contacts/{pay.contact_id}/complimentary",
                 f"/staff/payments/{payment.id}/refund", f"/staff/entitlements/{entitlement.id}/cancel"):
        assert staff.get(path).status_code == 404, path
    # Not restricted: the same member sees them, and may act.
    in_tenant(app, world.a, lambda: restrict_staff_visibility(False))
    assert "Pat Payer" in _text(staff.get("/staff/payments"))
    assert staff.get(f"/staff/payments/{payment.id}/refund").status_code == 200


def _stripe(pay):
    import stripe

    from tests.billing.conftest import KEYS

    return stripe.StripeClient(KEYS["a"][0], base_addresses={"api": pay.server.api_base})


def test_the_panel_reads_the_same_number_of_queries_however_many_payments(app, pay, staff_client):
    from billing.models import Entitlement, Payment, Refund
    from tests.test_query_counts import counted_queries

    def add(n):
        def make():
            for i in range(n):
                entitlement = Entitlement(contact_id=pay.contact_id, plan_id=pay.plan_id, source="payment",
                                          status="paid", stripe_payment_intent_id=f"pi_many_{n}_{i}", is_open=True)
                db.session.add(entitlement)
                db.session.flush()
                payment = Payment(contact_id=pay.contact_id, entitlement_id=entitlement.id, amount=1000,
                                  currency="eur", status="succeeded", stripe_charge_id=f"ch_many_{n}_{i}")
                db.session.add(payment)
                db.session.flush()
                db.session.add(Refund(payment_id=payment.id, stripe_refund_id=f"re_many_{n}_{i}", amount=100,
                                      currency="eur", status="succeeded"))
            return []
        in_tenant(app, pay.tenant, make)

    admin = staff_client("admin")
    add(1)
    contact_page(admin, pay)
    with counted_queries(app) as few:
        contact_page(admin, pay)
    add(5)
    contact_page(admin, pay)
    with counted_queries(app) as many:
        page = contact_page(admin, pay)
    assert panel(page).count("Refund…") == 6
    assert len(many) == len(few), f"{len(few)} queries with one payment, {len(many)} with six"


def test_merging_contacts_keeps_what_was_paid_with_the_survivor(app, pay, client_for, deliver, staff_client, world):
    from billing.entitlements import has_access
    from billing.models import BillingCustomer, Entitlement, Payment
    from core.identity import StaffUser
    from crm.merge import merge_contacts
    from crm.models import Contact
    from tests.factories import make_contact

    paid(app, pay, client_for, deliver)
    with tenant_session(app, pay.tenant):
        survivor = make_contact("Patricia", "Payer", email="patricia@payer.example", role="client")
        merge_contacts(survivor, [db.session.get(Contact, pay.contact_id)],
                       actor=db.session.get(StaffUser, world.a.members["admin"].id))
        survivor_id = survivor.id
    with tenant_session(app, pay.tenant):
        assert has_access(survivor_id, pay.plan_id) and not has_access(pay.contact_id, pay.plan_id)
        assert {e.contact_id for e in db.session.scalars(sa.select(Entitlement))} == {survivor_id}
        assert {p.contact_id for p in db.session.scalars(sa.select(Payment))} == {survivor_id}
        assert db.session.scalar(sa.select(BillingCustomer.contact_id)) == survivor_id
    page = _text(staff_client("admin").get(f"/staff/contacts/{survivor_id}"))
    assert "Membership" in panel(page) and "49.00 EUR" in panel(page)
