"""Impersonation from the staff area (core.impersonation has the rule and the state): the
"Impersonate" buttons of the contact, company and team pages, the banner's "Stop
impersonating" and switcher, and the tenant's impersonation settings."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for

from core import impersonation
from core.db import db
from core.errors import ServiceError
from flask_wtf import FlaskForm
from core.identity import StaffUser, normalize_email, real_principal
from core.permissions import require, staff_login_required
from core.tenancy import current_tenant, get_or_404
from core.web import safe_next_url, service_call
from crm.access import get_visible_contact_or_404
from crm.companies import primary_contact_of
from crm.models import Company
from portal.accounts import account_for
from portal.models import PortalAccount
from staff import bp
from wtforms import BooleanField, IntegerField
from wtforms.validators import InputRequired, NumberRange


def _admin() -> StaffUser:
    admin = real_principal()
    if not isinstance(admin, StaffUser):
        abort(403)
    return admin


def _start(target, *, back: str, seen_in: str):
    """Start as the real admin; the portal or the staff area is then shown as the target."""
    admin = _admin()
    require_admin(admin)
    with service_call() as outcome:
        if target is None:
            raise ServiceError("There is no portal login to see the portal as.")
        impersonation.start(admin, target, request.form.get("reason", ""),
                            return_url=safe_next_url(request.form.get("next"), back), tenant=current_tenant())
    if not outcome:
        return redirect(back)
    flash(f"You are now seeing {'the portal' if seen_in == 'portal' else 'the staff area'} as "
          f"{impersonation.current_label(target)}.", "info")
    return redirect(url_for("portal.home") if seen_in == "portal" else url_for("staff.dashboard"))


def require_admin(admin: StaffUser) -> None:
    from core.permissions import can
    if not can(admin, impersonation.PERMISSION):
        abort(403)


@bp.post("/contacts/<int:contact_id>/impersonate")
@staff_login_required
def impersonate_contact(contact_id):
    contact = get_visible_contact_or_404(contact_id)
    return _start(account_for(contact), back=url_for("staff.contact", contact_id=contact.id), seen_in="portal")


@bp.post("/companies/<int:company_id>/impersonate")
@staff_login_required
def impersonate_company(company_id):
    company = get_or_404(Company, company_id)
    primary = primary_contact_of(company)
    back = url_for("staff.company", company_id=company.id)
    if primary is None:
        require_admin(_admin())
        flash(f"{company.name} has no primary contact to see the portal as.", "error")
        return redirect(back)
    return _start(account_for(primary), back=back, seen_in="portal")


@bp.post("/team/<int:member_id>/impersonate")
@staff_login_required
def impersonate_member(member_id):
    member = get_or_404(StaffUser, member_id)
    return _start(member, back=url_for("staff.team"), seen_in="staff")


@bp.post("/impersonation/stop")
def stop_impersonating():
    admin = real_principal()
    if not isinstance(admin, StaffUser):
        return redirect(url_for("staff.login"))
    with service_call() as outcome:
        row = impersonation.stop(admin)
    if outcome and row is not None:
        flash(f"You stopped impersonating {row.target_label}. You are yourself again.", "success")
        return redirect(safe_next_url(row.return_url, url_for("staff.dashboard")))
    return redirect(url_for("staff.dashboard"))


@bp.post("/impersonation/switch")
def switch_impersonation():
    """The banner's switcher: another person by e-mail (a portal login or a team member)."""
    admin = real_principal()
    if not isinstance(admin, StaffUser) or impersonation.current() is None:
        return redirect(url_for("staff.dashboard"))
    back = safe_next_url(request.form.get("next"), url_for("staff.dashboard"))
    try:
        email = normalize_email(request.form.get("email", ""))
    except ValueError:
        flash("Type the e-mail address of the person to see the product as.", "error")
        return redirect(back)
    target = db.session.scalar(sa.select(PortalAccount).where(
        PortalAccount.email == email, PortalAccount.replaced_by_id.is_(None))) or \
        db.session.scalar(sa.select(StaffUser).where(StaffUser.email == email))
    with service_call() as outcome:
        if target is None:
            raise ServiceError(f"Nobody here signs in as {email}.")
        impersonation.switch(admin, target)
    if not outcome:
        return redirect(back)
    flash(f"You are now seeing the product as {impersonation.current_label(target)}.", "info")
    return redirect(url_for("staff.dashboard") if isinstance(target, StaffUser) else url_for("portal.home"))


class ImpersonationSettingsForm(FlaskForm):
    minutes = IntegerField("Longest impersonation, in minutes",
                           validators=[InputRequired(), NumberRange(1, impersonation.MAX_MINUTES)])
    notify = BooleanField("E-mail people when someone starts seeing the portal as them")


@bp.route("/settings/impersonation", methods=["GET", "POST"])
@staff_login_required
def impersonation_settings():
    require("settings.manage")
    tenant = current_tenant()
    form = ImpersonationSettingsForm(data={"minutes": tenant.impersonation_minutes,
                                           "notify": tenant.impersonation_notify})
    if form.validate_on_submit():
        with service_call(form) as outcome:
            changed = impersonation.update_settings(tenant, real_principal(), minutes=form.minutes.data,
                                                    notify=form.notify.data)
        if outcome:
            flash("Impersonation settings saved." if changed else "Nothing to change.", "success")
            return redirect(url_for("staff.impersonation_settings"))
    return render_template("staff/impersonation_settings.html", form=form)
