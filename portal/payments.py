"""The portal's payments, over billing's services: /portal/billing (plans, status, next
renewal, invoices, Stripe's Billing Portal), paying (Stripe Checkout), and the return page that
says "confirming your payment" and asks Stripe until it is confirmed.

Someone the tenant's payment rule keeps out of the portal cannot sign in, so the sign-in
refusal page offers to pay with a short-lived signed token for that account (made only after
its right password): POST /portal/billing/checkout takes it, or the signed-in account."""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for

from billing import account_view
from billing.checkout import confirm_return, start_checkout
from billing.models import AccessPlan
from billing.plans import describe_price, plans_on_offer, tenant_has_plans
from billing.stripe_api import PaymentsUnavailable
from core.errors import ServiceError
from core.identity import load_token, make_token
from core.impersonation import refused_while_impersonating
from core.web import service_call
from portal import bp
from portal.accounts import sign_in_blockers
from portal.auth import current_account, portal_login_required
from portal.home import home_panel
from portal.models import PortalAccount
from portal.navigation import nav_item
from portal.profile import profile_panel

PAY = "portal-pay"
PAY_TOKEN_MAX_AGE = 3600

nav_item("Payments", "portal.billing", order=80)


NOT_OFFERED = "That plan is not one you can pay for here. Choose one of the plans below."


@bp.app_template_global("portal_payment_token")
def payment_token(account: PortalAccount) -> str:
    return make_token(account, PAY)


@bp.app_template_global("portal_plans_to_pay")
def plans_to_pay(account: PortalAccount, held: frozenset[int] = frozenset()) -> list[tuple[AccessPlan, str]]:
    """The plans this login may pay for, with their prices in words: those the form they
    registered through (else the tenant) asks for, or any active plan when nothing is asked
    (billing.plans.plans_on_offer)."""
    return [(plan, describe_price(plan)) for plan in plans_on_offer(account.form_id, held)]


def _paying_account() -> PortalAccount | None:
    """The signed-in account, or the one named by a pay token from the refusal page, when the
    payment rule is all that keeps it out."""
    account = current_account()
    if account is not None:
        return account
    token = request.form.get("token") or ""
    account = load_token(PortalAccount, token, PAY, PAY_TOKEN_MAX_AGE) if len(token) < 500 else None
    if account is None or [key for key, _ in sign_in_blockers(account) if key != "payment"]:
        return None
    return account


@bp.get("/portal/billing")
@portal_login_required
def billing():
    account = current_account()
    contact = account.contact
    holdings = account_view.holdings(contact)
    try:
        invoices, invoices_error = account_view.invoices(contact), None
    except ServiceError as exc:
        invoices, invoices_error = [], exc.message
    held = {h.entitlement.plan_id for h in holdings if h.is_open}
    return render_template("portal/billing.html", holdings=holdings, invoices=invoices,
                           invoices_error=invoices_error,
                           offers=plans_to_pay(account, frozenset(held)))


@bp.post("/portal/billing/checkout")
@refused_while_impersonating  # an admin seeing the portal as someone never pays for them
def billing_checkout():
    account = _paying_account()
    if account is None:
        return render_template("portal/link_invalid.html", what="payment link", retry=url_for("portal.login")), 400
    offered = plans_to_pay(account)
    plan_id = request.form.get("plan_id", type=int)
    if plan_id is None and len(offered) == 1:
        plan_id = offered[0][0].id
    plan = next((p for p, _ in offered if p.id == plan_id), None)
    if plan is None:
        # No plan chosen among several, or one this login may not buy (an archived plan, another
        # form's, a tampered number): say so beside the plans it may buy.
        message = NOT_OFFERED if plan_id is not None else "Choose the plan you want to pay for."
        if current_account() is not None:
            flash(message, "error")
            return redirect(url_for("portal.billing"))
        return render_template("portal/choose_plan.html", account=account, message=message,
                               token=request.form.get("token")), 400
    success = url_for("portal.billing_return", _external=True) + "?session_id={CHECKOUT_SESSION_ID}"
    cancel = url_for("portal.billing" if current_account() else "portal.login", _external=True)
    with service_call(show_error=False) as outcome:
        url = start_checkout(account.contact, plan, success_url=success, cancel_url=cancel)
    if outcome:
        return render_template("portal/to_stripe.html", url=url, heading="To secure payment")
    if isinstance(outcome.error, PaymentsUnavailable):
        return render_template("portal/payments_unavailable.html"), 503
    flash(outcome.error.message, "error")
    return redirect(url_for("portal.billing" if current_account() else "portal.login"))


@bp.get("/portal/billing/return")
def billing_return():
    """Stripe sends the buyer back here. Nothing opens because they came back: the page asks
    Stripe (through /status) until Stripe's own record of the payment says it is paid."""
    session_id = (request.args.get("session_id") or "")[:255]
    with service_call(show_error=False) as outcome:
        confirmed = confirm_return(session_id)
    return render_template("portal/payment_return.html", session_id=session_id, confirmed=bool(outcome and confirmed))


@bp.get("/portal/billing/return/status")
def billing_return_status():
    with service_call(show_error=False) as outcome:
        confirmed = confirm_return((request.args.get("session_id") or "")[:255])
    if not outcome:
        return jsonify(confirmed=False, unavailable=True)
    return jsonify(confirmed=confirmed)


@bp.post("/portal/billing/manage")
@portal_login_required
@refused_while_impersonating  # Stripe's Billing Portal changes payment methods
def billing_manage():
    account = current_account()
    with service_call(show_error=False) as outcome:
        url = account_view.billing_portal_url(account.contact, url_for("portal.billing", _external=True))
    if outcome:
        return render_template("portal/to_stripe.html", url=url, heading="To your billing settings")
    if isinstance(outcome.error, PaymentsUnavailable):
        return render_template("portal/payments_unavailable.html"), 503
    flash(outcome.error.message, "error")
    return redirect(url_for("portal.billing"))


# --- payments on the home and the profile (portal.home, portal.profile) ---------------------------
# The plans held, in a few lines, with the way to the payment page; nothing, and no query, for a
# tenant that takes no payments.

PANEL = "payments"


def _payments_panel(account) -> dict | None:
    if not tenant_has_plans():
        return None
    holdings = account_view.holdings(account.contact)
    if not holdings:
        return None
    return {"holdings": holdings}


@home_panel(PANEL, order=90)
def payments_on_home(account) -> dict | None:
    return _payments_panel(account)


@profile_panel(PANEL, order=50, template="portal/panels/payments.html")  # the home's, as it is
def payments_on_profile(account) -> dict | None:
    return _payments_panel(account)
