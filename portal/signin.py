"""The portal's sign-in pages: /portal/login, /portal/logout, /portal/forgot, /portal/reset/<token>.
(/portal without its slash is Werkzeug's redirect to /portal/, the home.)"""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from core.audit import ANONYMOUS, record
from core.extensions import limiter, login_email_key
from core.forms import EmailAddressForm, LoginForm, NewPasswordForm
from core.web import service_call
from portal import bp
from portal.accounts import may_sign_in
from portal.auth import (account_for_reset_token, authenticate, current_account, portal_next_url, refusal_reasons,
                         request_password_reset, reset_password, sign_in_account, sign_out_account)

SIGN_IN_FAILED = "That e-mail address and password do not match a portal login here."
RESET_SENT = ("If that address has a portal login here, we have e-mailed it a link to choose a new password. "
              "Check your inbox (and spam folder) in a few minutes.")


def _login_limit():
    return current_app.config["RATELIMIT_LOGIN"]


def _login_email_limit():
    return current_app.config["RATELIMIT_LOGIN_PER_EMAIL"]


@bp.route("/portal/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_email_limit, methods=["POST"], key_func=login_email_key)
def login():
    next_url = portal_next_url(request.args.get("next"))
    if current_account() is not None:
        return redirect(next_url)
    form = LoginForm()
    if form.validate_on_submit():
        account, password_ok = authenticate(form.email.data, form.password.data)
        if password_ok and not may_sign_in(account):
            # Only the account's owner gets this far: telling them why is no leak.
            with service_call():
                record("portal.login_refused", account, actor=account,
                       details={"why": [key for key, _ in refusal_reasons(account)]})
            return render_template("portal/refused.html", account=account, reasons=refusal_reasons(account)), 403
        if password_ok:
            with service_call() as outcome:
                sign_in_account(account, remember=form.remember.data)
            if outcome:
                return redirect(next_url)
        else:
            # Recorded for known and unknown addresses alike (same work, same answer).
            with service_call():
                record("portal.login_failed", account, actor=ANONYMOUS,
                       details={"email": (form.email.data or "").strip()[:320]})
            form.form_errors.append(SIGN_IN_FAILED)
    return render_template("portal/login.html", form=form)


@bp.post("/portal/logout")
def logout():
    with service_call() as outcome:
        sign_out_account()
    if outcome:
        flash("You are signed out.", "info")
    return redirect(url_for("portal.login"))


@bp.route("/portal/forgot", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def forgot():
    form = EmailAddressForm()
    if form.validate_on_submit():
        with service_call() as outcome:
            request_password_reset(form.email.data, request.remote_addr)
        if outcome:
            flash(RESET_SENT, "info")
        return redirect(url_for("portal.login"))
    return render_template("portal/forgot.html", form=form)


@bp.route("/portal/reset/<token>", methods=["GET", "POST"], endpoint="reset_password")
@limiter.limit(_login_limit, methods=["POST"])
def reset_password_page(token):
    account = account_for_reset_token(token)
    if account is None:
        return render_template("portal/link_invalid.html", what="link to choose a new password",
                               form=EmailAddressForm(), retry=url_for("portal.forgot")), 400
    form = NewPasswordForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            reset_password(account, form.password.data)
        if outcome:
            flash("Your new password is saved. Sign in with it now.", "success")
            return redirect(url_for("portal.login"))
    return render_template("portal/reset.html", form=form, account=account)
