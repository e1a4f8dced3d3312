"""Sending a contact to Stripe Checkout for a plan. The Stripe Customer is made once per
contact and reused; every create carries an idempotency key; the session names the tenant,
contact and plan (client_reference_id and metadata), which is how its completion finds them.
Access opens only from Stripe's verified state (billing.events, billing.sync), never from the
return to the success page."""
from __future__ import annotations

import secrets

import sqlalchemy as sa

from billing.models import AccessPlan, BillingCustomer, PlanKind
from billing.plans import stripe_for_tenant
from billing.stripe_api import calling_stripe, idempotency
from billing.sync import CONTACT_KEY, PLAN_KEY, TENANT_KEY, sync_checkout_session
from core.db import db
from core.errors import ServiceError
from core.tenancy import current_tenant_id
from crm.models import Contact


def customer_for(stripe, contact: Contact) -> str:
    """The contact's Stripe Customer id, made (once: its idempotency key is the contact's) the
    first time."""
    known = db.session.scalar(sa.select(BillingCustomer.stripe_customer_id)
                              .where(BillingCustomer.contact_id == contact.id))
    if known:
        return known
    metadata = {TENANT_KEY: str(current_tenant_id()), CONTACT_KEY: str(contact.id)}
    with calling_stripe():
        customer = stripe.v1.customers.create(
            params={"email": contact.email, "name": contact.full_name, "metadata": metadata},
            options=idempotency(current_tenant_id(), "contact", contact.id, "customer"))
    db.session.add(BillingCustomer(contact_id=contact.id, stripe_customer_id=customer.id))
    db.session.flush()
    return customer.id


def start_checkout(contact: Contact, plan: AccessPlan, *, success_url: str, cancel_url: str) -> str:
    """A Checkout Session for the plan; returns its URL on Stripe."""
    if not plan.active or not plan.stripe_price_id:
        raise ServiceError("This plan is not offered any more.")
    stripe = stripe_for_tenant()
    customer = customer_for(stripe, contact)
    metadata = {TENANT_KEY: str(current_tenant_id()), CONTACT_KEY: str(contact.id), PLAN_KEY: str(plan.id)}
    items = [{"price": plan.stripe_price_id, "quantity": 1}]
    params = {"customer": customer, "client_reference_id": str(contact.id), "metadata": metadata,
              "success_url": success_url, "cancel_url": cancel_url}
    if plan.recurring:
        if plan.kind == PlanKind.BOTH and plan.stripe_fee_price_id:
            items.append({"price": plan.stripe_fee_price_id, "quantity": 1})
        subscription_data = {"metadata": metadata}
        if plan.trial_days:
            subscription_data["trial_period_days"] = plan.trial_days
        params.update(mode="subscription", subscription_data=subscription_data)
    else:
        params.update(mode="payment", payment_intent_data={"metadata": metadata})
    params["line_items"] = items
    # One key per attempt: pressing "Pay" again after coming back is a new checkout, a retry of
    # this very request (the library's, on a dropped connection) is not.
    with calling_stripe():
        session = stripe.v1.checkout.sessions.create(
            params=params, options=idempotency(current_tenant_id(), "checkout", contact.id, secrets.token_hex(8)))
    return session.url


def confirm_return(session_id: str) -> bool:
    """The success page's poll: Stripe's Checkout Session retrieved directly (verified state,
    not the redirect), applied as its webhook would be. True once access is open from it."""
    from billing.entitlements import open_now

    if not session_id.startswith("cs_") or len(session_id) > 255:
        return False
    entitlement = sync_checkout_session(stripe_for_tenant(), session_id)
    return entitlement is not None and open_now(entitlement)
