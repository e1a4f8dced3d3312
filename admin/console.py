"""The operator console (Flask-Admin): tenants, their domains, staff users, the audit log.
Every write goes through the same services the CLI and the staff area use."""
from __future__ import annotations


from flask import abort, flash, g, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.theme import Bootstrap4Theme
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Optional

import sqlalchemy as sa

from core.audit import AuditEvent, record
from core.db import db
from core.accounts import set_staff_active_by_operator
from core.errors import ServiceError
from core.identity import PlatformAdmin, StaffUser, current_principal
from core.tenancy import Tenant, TenantDomain
from core.tenants import add_domain, create_tenant, set_tenant_status, update_tenant_profile
from core.web import csp_nonce, service_call


class OperatorOnly:
    """Visible only to a signed-in super admin on the platform host."""

    def is_accessible(self):
        return g.get("tenant") is None and isinstance(current_principal(), PlatformAdmin)

    def inaccessible_callback(self, name, **kwargs):
        if g.get("tenant") is not None:
            abort(404)
        return redirect(url_for("platform.login", next=request.full_path.rstrip("?")))


class ConsoleHome(OperatorOnly, AdminIndexView):
    @expose("/")
    def index(self):
        counts = {
            "tenants": db.session.scalar(sa.select(sa.func.count()).select_from(Tenant)),
            "suspended": db.session.scalar(
                sa.select(sa.func.count()).select_from(Tenant).where(Tenant.status == Tenant.SUSPENDED)),
            "staff": db.session.scalar(sa.select(sa.func.count()).select_from(StaffUser)),
        }
        recent = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(10)).all()
        return self.render("admin/console_home.html", counts=counts, recent=recent)


class ConsoleModelView(OperatorOnly, ModelView):
    page_size = 50
    can_view_details = True


class TenantView(ConsoleModelView):
    can_delete = False
    column_list = ("slug", "name", "status", "domains", "created_at")
    column_searchable_list = ("slug", "name")
    column_filters = ("status",)
    column_default_sort = ("created_at", True)
    column_details_exclude_list = ("logo",)
    form_columns = ("name", "display_name", "primary_color")
    column_labels = {"slug": "Address", "primary_color": "Primary colour"}

    def get_create_form(self):
        class CreateTenantForm(self.form_base_class):
            slug = StringField("Address (sub-domain)", validators=[DataRequired()],
                               description="Lowercase letters, digits and hyphens, e.g. acme")
            name = StringField("Business name", validators=[DataRequired()])
            owner_email = EmailField("Owner's e-mail", validators=[DataRequired()])
            owner_name = StringField("Owner's name", validators=[Optional()])
            owner_password = PasswordField(
                "Owner's password", validators=[Optional()],
                description="Leave empty to e-mail the owner an invitation to choose one.")

        return CreateTenantForm

    def create_model(self, form):
        try:
            tenant, owner = create_tenant(form.slug.data, form.name.data, form.owner_email.data,
                                          form.owner_password.data or None, form.owner_name.data or "",
                                          actor=current_principal())
            db.session.commit()
        except (ServiceError, ValueError) as exc:
            db.session.rollback()
            flash(getattr(exc, "message", str(exc)), "error")
            return False
        flash(f"Created {tenant.slug} with owner {owner.email}.", "success")
        return tenant

    def update_model(self, form, model):
        """Through the same checks as the tenant's own settings page, audited with what changed."""
        with service_call() as outcome:
            update_tenant_profile(model, name=form.name.data, display_name=form.display_name.data,
                                  primary_color=form.primary_color.data, actor=current_principal())
        return bool(outcome)

    @action("suspend", "Suspend", "Suspend the selected tenants? Their staff are signed out and cannot sign in.")
    def action_suspend(self, ids):
        self._set_status(ids, Tenant.SUSPENDED)

    @action("reactivate", "Reactivate", "Reactivate the selected tenants?")
    def action_reactivate(self, ids):
        self._set_status(ids, Tenant.ACTIVE)

    def _set_status(self, ids, status):
        tenants = db.session.scalars(sa.select(Tenant).where(Tenant.id.in_([int(i) for i in ids]))).all()
        for tenant in tenants:
            set_tenant_status(tenant, status, actor=current_principal())
        db.session.commit()
        flash(f"{len(tenants)} tenant(s) {'suspended' if status == Tenant.SUSPENDED else 'reactivated'}.", "success")


class TenantDomainView(ConsoleModelView):
    column_list = ("hostname", "tenant")
    column_searchable_list = ("hostname",)
    form_columns = ("tenant", "hostname")
    can_edit = False

    def create_model(self, form):
        with service_call() as outcome:
            domain = add_domain(form.tenant.data, form.hostname.data, actor=current_principal())
        return domain if outcome else False

    def on_model_delete(self, model):
        record("tenant.domain_removed", model.tenant, actor=current_principal(), tenant_id=model.tenant_id,
               details={"hostname": model.hostname})


class StaffUserView(ConsoleModelView):
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ("tenant", "email", "name", "role", "active", "last_login_at", "created_at")
    column_searchable_list = ("email", "name")
    column_filters = ("role", "active", "tenant.slug")
    column_details_exclude_list = ("password_hash",)
    column_exclude_list = ("password_hash",)

    @action("deactivate", "Deactivate", "Deactivate the selected staff users? They are signed out at once.")
    def action_deactivate(self, ids):
        self._set_active(ids, False)

    @action("reactivate", "Reactivate", "Reactivate the selected staff users?")
    def action_reactivate(self, ids):
        self._set_active(ids, True)

    def _set_active(self, ids, active: bool):
        users = db.session.scalars(sa.select(StaffUser).where(StaffUser.id.in_([int(i) for i in ids]))).all()
        done = 0
        for user in users:
            try:
                set_staff_active_by_operator(user, active, current_principal())
                done += 1
            except ServiceError as exc:
                flash(exc.message, "error")
        db.session.commit()
        flash(f"{done} staff user(s) {'reactivated' if active else 'deactivated'}.", "success")


def _tenant_name(view, context, model, name):
    """The tenant by its name (one query per page, cached on the request), never its id."""
    if model.tenant_id is None:
        return "Platform"
    names = g.get("_console_tenant_names")
    if names is None:
        names = g._console_tenant_names = dict(db.session.execute(sa.select(Tenant.id, Tenant.name)).all())
    return names.get(model.tenant_id, "A deleted tenant")


def _target_words(view, context, model, name):
    return model.target_words


class AuditEventView(ConsoleModelView):
    can_create = False
    can_edit = False
    can_delete = False
    column_default_sort = ("id", True)
    column_list = ("created_at", "tenant_id", "action", "actor_label", "real_actor_label", "target_label")
    column_details_list = ("created_at", "tenant_id", "action", "actor_label", "real_actor_label",
                           "target_label", "details", "ip_address")
    column_filters = ("action", "actor_label")
    column_searchable_list = ("action", "actor_label", "target_label")
    column_labels = {"tenant_id": "Tenant", "actor_label": "Actor", "real_actor_label": "Really done by",
                     "target_label": "On", "created_at": "When", "ip_address": "IP address"}
    column_formatters = {"tenant_id": _tenant_name, "target_label": _target_words}
    column_formatters_detail = column_formatters


def init_console(app) -> Admin:
    console = Admin(
        app, name="Portico operator console", url="/admin",
        index_view=ConsoleHome(name="Overview", url="/admin"),
        theme=Bootstrap4Theme(swatch="default", fluid=True),
        csp_nonce_generator=csp_nonce,
    )
    console.add_view(TenantView(Tenant, db, name="Tenants"))
    console.add_view(TenantDomainView(TenantDomain, db, name="Custom domains", endpoint="tenantdomain"))
    console.add_view(StaffUserView(StaffUser, db, name="Staff users", endpoint="staffuser"))
    console.add_view(AuditEventView(AuditEvent, db, name="Audit log", endpoint="auditevent"))
    return console
