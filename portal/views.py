"""The portal's public pages for registrants: confirm the e-mail address, choose a password,
ask for a new link. They act only through the signed link in the URL, never through a
session, and each ends on the portal's sign-in page with what happened and what comes next."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm

from core.extensions import limiter
from core.forms import EmailAddressForm, NewPasswordForm
from core.tenancy import current_tenant
from core.web import service_call
from portal import bp
from portal.accounts import (Approval, account_for_set_password_token, account_for_verify_token, may_sign_in,
                             request_new_link, set_password, verify_email)

NEW_LINK_SENT = ("If that address has a portal login waiting for a step, we have e-mailed it a new link. "
                 "Check your inbox (and spam folder) in a few minutes.")


def _limit():
    return current_app.config["RATELIMIT_LOGIN"]


def _next_step(account) -> str:
    """What the registrant can do now, in a sentence for the sign-in page."""
    name = current_tenant().brand_name
    if may_sign_in(account):
        return "Sign in below."
    if account.approval == Approval.PENDING:
        return f"{name} reviews new registrations; we will e-mail you as soon as yours is approved."
    return f"You can sign in once {name} opens the portal to you."


def _link_invalid(what: str):
    """Expired, used or forged: one answer for all, with a way to ask for a new link."""
    return render_template("portal/link_invalid.html", what=what, form=EmailAddressForm()), 400


@bp.route("/portal/verify/<token>", methods=["GET", "POST"], endpoint="verify_email")
@limiter.limit(_limit, methods=["POST"])
def verify_email_page(token):
    """GET shows a button, POST confirms: mail scanners and link previews fetch links, and a
    single-use link they open first would greet the person with "already used"."""
    account = account_for_verify_token(token)
    if account is None:
        return _link_invalid("link to confirm your e-mail address")
    form = FlaskForm()
    if form.validate_on_submit():
        with service_call() as outcome:
            verify_email(account)
        if outcome:
            flash(f"Your e-mail address is confirmed. {_next_step(account)}", "success")
            return redirect(url_for("portal.login"))
    return render_template("portal/verify.html", form=form, account=account)


@bp.route("/portal/set-password/<token>", methods=["GET", "POST"], endpoint="set_password")
@limiter.limit(_limit, methods=["POST"])
def set_password_page(token):
    account = account_for_set_password_token(token)
    if account is None:
        return _link_invalid("link to choose your password")
    form = NewPasswordForm()
    form.password.label.text = "Password"
    form.confirm.label.text = "Repeat the password"
    form.password.description = (f"At least {current_app.config['PASSWORD_MIN_LENGTH']} characters. "
                                 "A few unrelated words make a strong password that is easy to remember.")
    if form.validate_on_submit():
        with service_call(form) as outcome:
            set_password(account, form.password.data)
        if outcome:
            flash(f"Your password is saved, and your e-mail address is confirmed. {_next_step(account)}", "success")
            return redirect(url_for("portal.login"))
    return render_template("portal/set_password.html", form=form, account=account)


@bp.route("/portal/new-link", methods=["GET", "POST"], endpoint="request_link")
@limiter.limit(_limit, methods=["POST"])
def request_link_page():
    form = EmailAddressForm()
    if form.validate_on_submit():
        with service_call() as outcome:
            request_new_link(form.email.data, request.remote_addr)
        if outcome:
            flash(NEW_LINK_SENT, "info")
        return redirect(url_for("portal.login"))
    return render_template("portal/request_link.html", form=form)
