"""The tests' Stripe stand-in itself (tests/stripe_server.py), through the official library:
the endpoints it adds answer in Stripe's shapes, and a paid checkout makes real objects and a
signed event that stripe.Webhook.construct_event accepts."""
from __future__ import annotations

import stripe

SECRET = "whsec_inbox_secret"


def client(server) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_stand_in", base_addresses={"api": server.api_base})


def test_prices_and_a_paid_subscription_checkout_send_a_signed_event(stripe_api):
    stripe_api.register_inbox(SECRET)
    c = client(stripe_api)
    product = c.v1.products.create(params={"name": "Membership"})
    price = c.v1.prices.create(params={"product": product.id, "unit_amount": 4900, "currency": "eur",
                                       "recurring": {"interval": "month"}})
    assert price.object == "price" and price.type == "recurring" and price.recurring.interval == "month"
    assert c.v1.prices.retrieve(price.id).unit_amount == 4900
    assert [p.id for p in c.v1.prices.list(params={"product": product.id}).data] == [price.id]

    session = c.v1.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": "http://acme.localhost/done?session_id={CHECKOUT_SESSION_ID}",
        "customer_email": "pat@example.com", "client_reference_id": "contact-7",
        "metadata": {"contact_id": "7"}, "subscription_data": {"metadata": {"contact_id": "7"}}})
    assert session.object == "checkout.session" and session.status == "open" and session.url

    assert stripe_api.pay(session.id) == f"http://acme.localhost/done?session_id={session.id}"
    paid = c.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status, paid.client_reference_id) == ("complete", "paid", "contact-7")
    subscription = c.v1.subscriptions.retrieve(paid.subscription)
    assert subscription.status == "active" and subscription.metadata["contact_id"] == "7"
    assert subscription.customer == paid.customer

    delivery = stripe_api.inbox.wait_for("checkout.session.completed")[0]
    event = stripe.Webhook.construct_event(delivery.body, delivery.signature, SECRET)
    assert event.data.object.id == session.id
    assert stripe_api.inbox.wait_for("invoice.paid")


def test_one_time_payment_refund_portal_and_webhook_endpoints(stripe_api):
    c = client(stripe_api)
    endpoint = c.v1.webhook_endpoints.create(params={"url": stripe_api.inbox_url, "enabled_events": ["*"]})
    assert endpoint.secret.startswith("whsec_") and endpoint.status == "enabled"
    assert "secret" not in c.v1.webhook_endpoints.retrieve(endpoint.id).to_dict()
    product = c.v1.products.create(params={"name": "Workshop"})
    price = c.v1.prices.create(params={"product": product.id, "unit_amount": 15000, "currency": "eur"})
    assert price.type == "one_time"
    session = c.v1.checkout.sessions.create(params={
        "mode": "payment", "line_items": [{"price": price.id, "quantity": 1}], "success_url": "http://x/ok"})
    stripe_api.pay(session.id)
    paid = c.v1.checkout.sessions.retrieve(session.id)
    intent = c.v1.payment_intents.retrieve(paid.payment_intent)
    assert intent.status == "succeeded" and intent.amount == 15000
    c.v1.refunds.create(params={"payment_intent": intent.id})
    delivery = stripe_api.inbox.wait_for("charge.refunded")[0]
    event = stripe.Webhook.construct_event(delivery.body, delivery.signature, endpoint.secret)
    assert event.data.object.refunded is True

    portal = c.v1.billing_portal.sessions.create(params={"customer": paid.customer, "return_url": "http://x/back"})
    assert portal.object == "billing_portal.session" and portal.url.startswith(stripe_api.hosted_base)
    expired = c.v1.checkout.sessions.create(params={
        "mode": "payment", "line_items": [{"price": price.id}], "success_url": "http://x/ok"})
    assert c.v1.checkout.sessions.expire(expired.id).status == "expired"
