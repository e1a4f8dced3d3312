"""/portal/profile: the signed-in contact's own page: their details (portal.details), panels
other areas add (profile_panel, as the home's), change the password, see and end the
devices signed in."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from core import impersonation
from core.extensions import limiter
from core.forms import ChangePasswordForm
from core.identity import open_sessions
from core.web import service_call
from portal import bp
from portal.auth import change_password, current_account, end_other_sessions, end_session_of, portal_login_required
from portal.details import FORM_NAME as DETAILS, details_form, save_details
from portal.home import HomePanel, home_panel, panels_for

# The profile's panels, drawn between the contact's details and their password: each a
# provider(account) -> dict | None with its template (templates/portal/profile/panels/<name>.html).
PROFILE_PANELS: dict[str, HomePanel] = {}


def profile_panel(name: str, order: int = 100, template: str | None = None):
    return home_panel(name, order, template or f"portal/profile/panels/{name}.html", registry=PROFILE_PANELS)


def _password_limit():
    return current_app.config["RATELIMIT_LOGIN"]


@bp.route("/portal/profile", methods=["GET", "POST"])
@limiter.limit(_password_limit, methods=["POST"])  # the current password is asked: no guessing it here
@portal_login_required
def profile():
    account = current_account()
    sent = request.form.get("form") if request.method == "POST" else None
    details = details_form(account, submitted=sent == DETAILS)
    if sent == DETAILS and details.validate():
        with service_call(details) as outcome:
            changed = save_details(details, account)
        if outcome:
            flash("Your details are saved." if changed else "Nothing to save: your details were already so.", "success")
            # To #main, not #details: the flash saying so is above the form. (Without a fragment the
            # browser would keep the form's #details across the redirect.)
            return redirect(url_for("portal.profile", _anchor="main"))
    password = ChangePasswordForm(prefix="password")
    if sent == "password":
        impersonation.refuse_while_impersonating()  # the 422 page says so; the form is not shown
    if sent == "password" and password.validate():
        with service_call(password) as outcome:
            change_password(account, password.current_password.data, password.password.data)
        if outcome:
            flash("Your password is changed. Your other devices have been signed out.", "success")
            return redirect(url_for("portal.profile"))
    return render_template("portal/profile.html", account=account, details=details, password=password,
                           panels=panels_for(account, PROFILE_PANELS), sessions=open_sessions(account),
                           impersonations=impersonation.history_of(account))


@bp.post("/portal/profile/sessions/end")
@portal_login_required
def end_session():
    account = current_account()
    session_id = request.form.get("session_id", type=int)
    with service_call() as outcome:
        if session_id is None:
            ended = end_other_sessions(account)
        else:
            ended = end_session_of(account, session_id)
    if outcome:
        flash("Signed out there." if ended else "That device was already signed out.", "success")
    return redirect(url_for("portal.profile"))
