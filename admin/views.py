"""Super-admin sign-in on the platform host."""
from flask import current_app, flash, redirect, render_template, request, url_for

from admin import bp
from admin.forms import OperatorLoginForm
from core.audit import ANONYMOUS, record
from core.extensions import limiter, login_email_key
from core.identity import PlatformAdmin, authenticate_platform_admin, current_principal, sign_in, sign_out
from core.web import safe_next_url, service_call


@bp.route("/admin/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN_PER_EMAIL"], methods=["POST"], key_func=login_email_key)
def login():
    if isinstance(current_principal(), PlatformAdmin):
        return redirect(url_for("admin.index"))
    form = OperatorLoginForm()
    if form.validate_on_submit():
        admin = authenticate_platform_admin(form.email.data, form.password.data)
        if admin is None:
            with service_call():
                record("platform.login_failed", actor=ANONYMOUS,
                       details={"email": (form.email.data or "").strip()[:320]})
            form.form_errors.append("That e-mail and password do not match an operator account.")
        else:
            record("platform.login", actor=admin)
            sign_in(admin)
            return redirect(safe_next_url(request.args.get("next"), url_for("admin.index")))
    return render_template("platform/login.html", form=form)


@bp.post("/admin/logout")
def logout():
    admin = current_principal()
    with service_call() as outcome:
        if isinstance(admin, PlatformAdmin):
            record("platform.logout", actor=admin)
        sign_out()
    if outcome:
        flash("You are signed out.", "info")
    return redirect(url_for("platform.login"))
