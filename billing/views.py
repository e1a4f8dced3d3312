"""Payments on the web: Stripe's webhook endpoint (its own blueprint, the one exempt from
CSRF: Stripe signs instead), and the staff pages for payment settings and access plans."""
from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from wtforms import SelectChoice

from billing import account_view, events, ledger, plans as plan_service, settings as billing_settings, staff_actions
from billing.forms import AccessRulesForm, ActionForm, CancelForm, ComplimentaryForm, KeysForm, PlanForm, RefundForm, minor_units
from billing.keys import tenant_keys
from billing.models import AccessPlan, Entitlement, EntitlementSource, Payment, PlanKind
from billing.stripe_api import PaymentsUnavailable
from core.db import db
from core.extensions import csrf
from core.identity import current_principal
from core.permissions import can, require, staff_login_required
from core.tenancy import get_or_404, require_tenant_host
from core.web import service_call
from crm.access import get_visible_contact_or_404
from crm.circles import active_circles

logger = logging.getLogger(__name__)

webhook_bp = Blueprint("billing_webhook", __name__, url_prefix="/billing")
webhook_bp.before_request(require_tenant_host)
csrf.exempt(webhook_bp)

bp = Blueprint("billing", __name__, url_prefix="/staff")
bp.before_request(require_tenant_host)


def _refused(reason: str):
    # Plain words, no trace: whoever sent it learns only that it was refused.
    logger.info("stripe webhook refused: %s", reason)
    return jsonify(error="invalid webhook"), 400


@webhook_bp.post("/webhook")
def webhook():
    """Stripe's events for this tenant: verified, stored, answered; applied by a job."""
    limit = current_app.config["BILLING_WEBHOOK_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        return _refused("too large")
    payload = request.stream.read(limit + 1)
    if len(payload) > limit:
        return _refused("too large")
    try:
        row = events.receive(payload, request.headers.get("Stripe-Signature"))
    except events.BadWebhook as exc:
        db.session.rollback()
        return _refused(str(exc))
    db.session.commit()
    return jsonify(received=True, duplicate=row is None)


# --- staff: payment settings ------------------------------------------------------------------------

def _may_see_settings() -> bool:
    principal = current_principal()
    return can(principal, "billing.keys") or can(principal, "billing.plans")


@bp.route("/settings/payments", methods=["GET", "POST"])
@staff_login_required
def payment_settings():
    if not _may_see_settings():
        abort(403)
    settings = billing_settings.current_settings()
    keys_form = KeysForm(prefix="keys")
    rules_form = AccessRulesForm(prefix="rules", data={
        "required_plan_id": settings.required_plan_id if settings and settings.required_plan_id else 0,
        "grace_days": settings.grace_days if settings else 3})
    rules_form.required_plan_id.choices = [SelectChoice(0, "Nothing: the portal is free")] + [
        SelectChoice(p.id, p.name) for p in plan_service.plans(include_archived=False)]
    actor = current_principal()
    if request.method == "POST" and request.form.get("form") == "keys":
        require("billing.keys")
        if keys_form.validate():
            with service_call(keys_form) as outcome:
                billing_settings.save_keys(keys_form.secret_key.data, keys_form.webhook_secret.data, actor)
            if outcome:
                flash("Stripe keys saved and checked with Stripe.", "success")
                return redirect(url_for("billing.payment_settings"))
    elif request.method == "POST" and request.form.get("form") == "rules":
        require("billing.plans")
        if rules_form.validate():
            plan = get_or_404(AccessPlan, rules_form.required_plan_id.data) if rules_form.required_plan_id.data else None
            with service_call(rules_form) as outcome:
                billing_settings.set_access_rules(plan, rules_form.grace_days.data, actor)
            if outcome:
                flash("Portal payment rule saved.", "success")
                return redirect(url_for("billing.payment_settings"))
    elif request.method == "POST":
        abort(400)
    return render_template("billing/settings.html", settings=settings, keys_form=keys_form, rules_form=rules_form,
                           platform_keys=not (settings and settings.secret_key_encrypted)
                           and tenant_keys(settings).usable,
                           webhook_url=url_for("billing_webhook.webhook", _external=True))


# --- staff: access plans -----------------------------------------------------------------------------

@bp.get("/plans")
@staff_login_required
def plans():
    require("billing.plans")
    return render_template("billing/plans.html", plans=plan_service.plans(), describe=plan_service.describe_price,
                           required_plan_id=billing_settings.cached_rules()[0])


def _plan_form(plan: AccessPlan | None = None) -> PlanForm:
    data = None
    if plan is not None and request.method == "GET":
        data = {"name": plan.name, "description": plan.description, "kind": plan.kind,
                "amount": plan.amount / 100, "currency": plan.currency, "interval": plan.interval or "month",
                "interval_count": plan.interval_count, "trial_days": plan.trial_days,
                "initial_fee": plan.initial_fee / 100 if plan.initial_fee else None,
                "circle_ids": plan_service.plan_circle_ids(plan), "active": plan.active}
    form = PlanForm(data=data)
    form.circle_ids.choices = [SelectChoice(c.id, c.name) for c in active_circles()]
    return form


def _plan_values(form: PlanForm) -> dict:
    kind = form.kind.data
    return {"name": form.name.data, "description": form.description.data, "kind": kind,
            "amount": minor_units(form.amount.data), "currency": form.currency.data,
            "interval": form.interval.data if kind != PlanKind.ONE_TIME else None,
            "interval_count": form.interval_count.data or 1, "trial_days": form.trial_days.data or 0,
            "initial_fee": minor_units(form.initial_fee.data) if kind == PlanKind.BOTH else None,
            "circle_ids": form.circle_ids.data or []}


@bp.route("/plans/new", methods=["GET", "POST"])
@staff_login_required
def new_plan():
    require("billing.plans")
    form = _plan_form()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            plan = plan_service.create_plan(**_plan_values(form), actor=current_principal())
        if outcome:
            flash(f"Plan “{plan.name}” created, with its price in Stripe.", "success")
            return redirect(url_for("billing.plans"))
    return render_template("billing/plan_form.html", form=form, plan=None)


@bp.route("/plans/<int:plan_id>/edit", methods=["GET", "POST"])
@staff_login_required
def edit_plan(plan_id: int):
    plan = get_or_404(AccessPlan, plan_id)
    require("billing.plans")
    form = _plan_form(plan)
    if form.validate_on_submit():
        with service_call(form) as outcome:
            changed = plan_service.update_plan(plan, **_plan_values(form), active=form.active.data,
                                               actor=current_principal())
        if outcome:
            flash(f"Plan “{plan.name}” saved." if changed else "Nothing to change.", "success")
            return redirect(url_for("billing.plans"))
    return render_template("billing/plan_form.html", form=form, plan=plan)


PAYMENT_FILTERS = [(None, "All"), ("open", "Access open"), ("closed", "Access closed"),
                   ("failed", "Failed payments"), ("refunded", "Refunded or disputed")]


@bp.get("/payments")
@staff_login_required
def payments():
    require("payments.view")
    status = request.args.get("status")
    if status not in {key for key, _ in PAYMENT_FILTERS}:
        status = None
    viewer = current_principal()
    return render_template("billing/payments.html", rows=account_view.payments_overview(viewer, status),
                           payments=account_view.recent_payments(viewer, status), status=status,
                           filters=PAYMENT_FILTERS)


# --- staff: actions on a contact's payments ----------------------------------------------------------

def _back_to(contact):
    return redirect(url_for("staff.contact", contact_id=contact.id, _anchor="payments-heading"))


def _action_page(form, outcome, contact, **context):
    """The confirmation page again, with what refused the action beside its field; 503 when
    Stripe could not be reached."""
    status = 503 if outcome is not None and isinstance(outcome.error, PaymentsUnavailable) else 200
    return render_template("billing/contact_action.html", form=form, contact=contact, **context), status


@bp.route("/contacts/<int:contact_id>/complimentary", methods=["GET", "POST"])
@staff_login_required
def grant_complimentary(contact_id: int):
    contact = get_visible_contact_or_404(contact_id)
    require("billing.manage")
    form = ComplimentaryForm()
    form.plan_id.choices = [SelectChoice(p.id, p.name) for p in plan_service.plans(include_archived=False)]
    outcome = None
    if form.validate_on_submit():
        plan = get_or_404(AccessPlan, form.plan_id.data)
        with service_call(form) as outcome:
            staff_actions.grant_complimentary(contact, plan, form.ends_on.data, actor=current_principal())
        if outcome:
            flash(f"{contact.full_name} has complimentary access to {plan.name}.", "success")
            return _back_to(contact)
    return _action_page(form, outcome, contact, title="Grant complimentary access",
                        lead=f"{contact.full_name} gets access to the plan's portal and Circles without paying, "
                             "until the date you choose or until you revoke it.",
                        submit="Grant access")


def _entitlement_and_contact(entitlement_id: int):
    entitlement = get_or_404(Entitlement, entitlement_id)
    contact = get_visible_contact_or_404(entitlement.contact_id)
    require("billing.manage")
    return entitlement, contact


@bp.route("/entitlements/<int:entitlement_id>/revoke", methods=["GET", "POST"])
@staff_login_required
def revoke_complimentary(entitlement_id: int):
    entitlement, contact = _entitlement_and_contact(entitlement_id)
    if entitlement.source != EntitlementSource.COMPLIMENTARY:
        abort(404)
    form = ActionForm()
    outcome = None
    if form.validate_on_submit():
        with service_call(form) as outcome:
            staff_actions.revoke_complimentary(entitlement, actor=current_principal())
        if outcome:
            flash(f"Complimentary access{ledger.plan_words(entitlement)} revoked for {contact.full_name}.", "success")
            return _back_to(contact)
    return _action_page(form, outcome, contact, title="Revoke complimentary access?",
                        lead=f"{contact.full_name} loses the complimentary access{ledger.plan_words(entitlement)} "
                             "at once, and the plan's Circles with it (unless they pay for it).",
                        submit="Revoke access")


@bp.route("/entitlements/<int:entitlement_id>/cancel", methods=["GET", "POST"])
@staff_login_required
def cancel_subscription(entitlement_id: int):
    entitlement, contact = _entitlement_and_contact(entitlement_id)
    if entitlement.source != EntitlementSource.SUBSCRIPTION:
        abort(404)
    form = CancelForm()
    outcome = None
    if form.validate_on_submit():
        now = form.when.data == "now"
        with service_call(form) as outcome:
            staff_actions.cancel_subscription(entitlement, now=now, attempt=form.attempt.data,
                                              actor=current_principal())
        if outcome:
            flash(f"The subscription{ledger.plan_words(entitlement)} of {contact.full_name} is cancelled"
                  + (" now." if now else "; it ends at the end of its period."), "success")
            return _back_to(contact)
    period_end = entitlement.current_period_end
    return _action_page(form, outcome, contact, title="Cancel the subscription?",
                        lead=f"The subscription{ledger.plan_words(entitlement)} of {contact.full_name} is cancelled "
                             "in Stripe: no further payments are taken."
                             + (f" Its current period ends {period_end:%Y-%m-%d}." if period_end else ""),
                        submit="Cancel the subscription", cancel_label="Keep it")


@bp.route("/payments/<int:payment_id>/refund", methods=["GET", "POST"])
@staff_login_required
def refund_payment(payment_id: int):
    payment = get_or_404(Payment, payment_id)
    contact = get_visible_contact_or_404(payment.contact_id)
    require("billing.manage")
    form = RefundForm(data={"amount": payment.refundable / 100} if request.method == "GET" else None)
    outcome = None
    if form.validate_on_submit():
        with service_call(form) as outcome:
            refund = staff_actions.refund_payment(payment, minor_units(form.amount.data), attempt=form.attempt.data,
                                                  actor=current_principal())
        if outcome:
            flash(f"Refunded {ledger.money(refund.amount, refund.currency)} to {contact.full_name}.", "success")
            return _back_to(contact)
    paid = ledger.money(payment.amount, payment.currency)
    left = ledger.money(payment.refundable, payment.currency)
    return _action_page(form, outcome, contact, title="Refund a payment",
                        lead=f"The {paid} payment of {payment.charged_at:%Y-%m-%d} by {contact.full_name}: "
                             f"{left} can still be refunded. Stripe sends the money back to the card it came from; "
                             "a one-time payment refunded in full closes the access it paid for.",
                        submit="Refund")


def init_app(app) -> None:
    app.register_blueprint(webhook_bp)
    app.register_blueprint(bp)
