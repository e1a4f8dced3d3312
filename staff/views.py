from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, url_for

from core import impersonation
from core.accounts import (accept_invitation, change_own_password, complete_invitation,
                           invite_staff, request_password_reset, reset_password, send_invitation,
                           update_profile, update_staff_member, user_for_reset_token)
from core.audit import ANONYMOUS, AuditEvent, action_label, known_actions, record
from core.db import db, utcnow
from core.extensions import limiter, login_email_key
from core.identity import StaffUser, authenticate_staff, current_principal, sign_in, sign_out
from core.permissions import require, staff_login_required
from core.tenancy import current_tenant, get_or_404
from core.tenants import update_branding
from core.web import int_arg, safe_next_url, service_call
from staff import bp
from staff.forms import (AcceptInvitationForm, BrandingForm, ChangePasswordForm, ForgotPasswordForm,
                         InviteForm, LoginForm, MemberForm, NewPasswordForm, ProfileForm)

SIGN_IN_FAILED = "That e-mail and password do not match an account here."
AUDIT_PAGE_SIZE = 50


def _login_limit():
    return current_app.config["RATELIMIT_LOGIN"]


def _login_email_limit():
    return current_app.config["RATELIMIT_LOGIN_PER_EMAIL"]


# --- signing in and out ----------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_email_limit, methods=["POST"], key_func=login_email_key)
def login():
    if isinstance(current_principal(), StaffUser):
        return redirect(url_for("staff.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        user, password_ok = authenticate_staff(form.email.data, form.password.data)
        if password_ok and not user.active:
            form.form_errors.append(
                f"This account has been deactivated. Ask an administrator of {current_tenant().brand_name} to restore it."
            )
        elif password_ok:
            user.last_login_at = utcnow()
            record("staff.login", user, actor=user)
            sign_in(user, remember=form.remember.data)
            return redirect(safe_next_url(request.args.get("next"), url_for("staff.dashboard")))
        else:
            # Recorded for known and unknown addresses alike (same work, same timing), as an
            # anonymous visitor's act: it is not the account owner's.
            with service_call():
                record("staff.login_failed", user, actor=ANONYMOUS,
                       details={"email": (form.email.data or "").strip()[:320]})
            form.form_errors.append(SIGN_IN_FAILED)
    return render_template("staff/login.html", form=form)


@bp.post("/logout")
def logout():
    principal = current_principal()
    with service_call() as outcome:
        if isinstance(principal, StaffUser):
            record("staff.logout", principal)
        sign_out()
    if outcome:
        flash("You are signed out.", "info")
    return redirect(url_for("staff.login"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        with service_call() as outcome:
            request_password_reset(form.email.data, request.remote_addr)
        if outcome:
            flash("If an account exists for that address, we have e-mailed it a link to choose a new "
                  "password. The link works once, for one hour.", "info")
        return redirect(url_for("staff.login"))
    return render_template("staff/forgot_password.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"], endpoint="reset_password")
def reset_password_page(token):
    user = user_for_reset_token(token)
    if user is None:
        return render_template("staff/token_invalid.html", what="password reset link"), 400
    form = NewPasswordForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            reset_password(user, form.password.data)
        if outcome:
            flash("Your password is changed. Sign in with it now.", "success")
            return redirect(url_for("staff.login"))
    return render_template("staff/reset_password.html", form=form, user=user)


@bp.route("/invitation/<token>", methods=["GET", "POST"], endpoint="accept_invitation")
def accept_invitation_page(token):
    user = accept_invitation(token)
    if user is None:
        return render_template("staff/token_invalid.html", what="invitation"), 400
    form = AcceptInvitationForm(name=user.name)
    if form.validate_on_submit():
        with service_call(form) as outcome:
            complete_invitation(user, form.name.data, form.password.data)
            sign_in(user)  # commits: the accepted invitation and the new session together
        if outcome:
            flash(f"Welcome to {current_tenant().brand_name}, {user.name}.", "success")
            return redirect(url_for("staff.dashboard"))
    return render_template("staff/accept_invitation.html", form=form, user=user)


# --- dashboard ----------------------------------------------------------------------------------

@bp.get("/")
@staff_login_required
def dashboard():
    require("dashboard.view")
    team_size = db.session.scalar(
        sa.select(sa.func.count()).select_from(StaffUser).where(StaffUser.active.is_(True)))
    return render_template("staff/dashboard.html", team_size=team_size)


# --- team ----------------------------------------------------------------------------------------

@bp.get("/team")
@staff_login_required
def team():
    require("staff.manage")
    members = db.session.scalars(
        sa.select(StaffUser).order_by(StaffUser.active.desc(), sa.func.lower(StaffUser.name))).all()
    me = current_principal()
    impersonable = set() if impersonation.current() else {
        m.id for m in members if impersonation.impersonation_problem(me, m) is None}
    return render_template("staff/team.html", members=members, impersonable=impersonable)


@bp.route("/team/invite", methods=["GET", "POST"])
@staff_login_required
def invite():
    require("staff.manage")
    form = InviteForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            member = invite_staff(current_principal(), form.email.data, form.name.data, form.role.data)
        if outcome:
            flash(f"Invitation sent to {member.email}.", "success")
            return redirect(url_for("staff.team"))
    return render_template("staff/invite.html", form=form)


@bp.route("/team/<int:member_id>", methods=["GET", "POST"])
@staff_login_required
def member(member_id):
    member = get_or_404(StaffUser, member_id)
    require("staff.manage")
    form = MemberForm(obj=member)
    if form.validate_on_submit():
        with service_call(form) as outcome:
            changes = update_staff_member(current_principal(), member, role=form.role.data,
                                          active=form.active.data)
        if outcome:
            flash(f"Saved {member.display_name}." if changes else "Nothing to change.", "success")
            return redirect(url_for("staff.team"))
    return render_template("staff/member.html", form=form, member=member)


@bp.post("/team/<int:member_id>/resend-invitation")
@staff_login_required
def resend_invitation(member_id):
    member = get_or_404(StaffUser, member_id)
    require("staff.manage")
    with service_call() as outcome:
        send_invitation(member, current_principal())
        record("staff.invitation_resent", member)
    if outcome:
        flash(f"Invitation sent again to {member.email}.", "success")
    return redirect(url_for("staff.member", member_id=member.id))


# --- audit log -----------------------------------------------------------------------------------

@bp.get("/audit")
@staff_login_required
def audit_log():
    require("audit.view")
    query = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(AUDIT_PAGE_SIZE + 1)
    before = int_arg("before")
    if before:
        query = query.where(AuditEvent.id < before)
    action = request.args.get("action", "").strip()
    if action:
        query = query.where(AuditEvent.action == action)
    events = db.session.scalars(query).all()
    more = len(events) > AUDIT_PAGE_SIZE
    events = events[:AUDIT_PAGE_SIZE]
    # The registry, not a DISTINCT over the log: that would read every event of the tenant.
    return render_template("staff/audit.html", events=events, actions=known_actions(), action=action,
                           action_label=action_label, next_before=events[-1].id if more else None,
                           first_page=not before)


# --- settings and account ---------------------------------------------------------------------

@bp.route("/settings/branding", methods=["GET", "POST"])
@staff_login_required
def branding():
    require("settings.manage")
    tenant = current_tenant()
    # Not obj=tenant: the form's logo field would take the stored image bytes as its value.
    form = BrandingForm(data={"display_name": tenant.display_name, "primary_color": tenant.primary_color})
    if form.validate_on_submit():
        upload = form.logo.data
        with service_call(form) as outcome:
            update_branding(tenant, display_name=form.display_name.data, primary_color=form.primary_color.data,
                            logo=upload.read() if upload else None, remove_logo=form.remove_logo.data)
        if outcome:
            flash("Branding saved.", "success")
            return redirect(url_for("staff.branding"))
    return render_template("staff/branding.html", form=form)


@bp.route("/account", methods=["GET", "POST"])
@staff_login_required
def account():
    user = current_principal()
    profile = ProfileForm(obj=user, prefix="profile")
    password = ChangePasswordForm(prefix="password")
    if request.method == "POST" and request.form.get("form") == "profile" and profile.validate():
        with service_call(profile) as outcome:
            update_profile(user, profile.name.data)
        if outcome:
            flash("Your name is saved.", "success")
            return redirect(url_for("staff.account"))
    if request.method == "POST" and request.form.get("form") == "password":
        impersonation.refuse_while_impersonating()  # the 422 page says so; the form is not shown
    if request.method == "POST" and request.form.get("form") == "password" and password.validate():
        with service_call(password) as outcome:
            change_own_password(user, password.current_password.data, password.password.data)
        if outcome:
            flash("Your password is changed. Other devices have been signed out.", "success")
            return redirect(url_for("staff.account"))
    return render_template("staff/account.html", profile=profile, password=password,
                           impersonations=impersonation.history_of(user))
