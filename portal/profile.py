"""/portal/profile: the signed-in contact's own page: change the password, see and end the
devices signed in. (The contact's editable details are added beside these.)"""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from core.forms import ChangePasswordForm
from core.identity import open_sessions
from core.web import service_call
from portal import bp
from portal.auth import change_password, current_account, end_other_sessions, end_session_of, portal_login_required


@bp.route("/portal/profile", methods=["GET", "POST"])
@portal_login_required
def profile():
    account = current_account()
    password = ChangePasswordForm(prefix="password")
    if request.method == "POST" and request.form.get("form") == "password" and password.validate():
        with service_call(password) as outcome:
            change_password(account, password.current_password.data, password.password.data)
        if outcome:
            flash("Your password is changed. Your other devices have been signed out.", "success")
            return redirect(url_for("portal.profile"))
    return render_template("portal/profile.html", account=account, password=password,
                           sessions=open_sessions(account))


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
