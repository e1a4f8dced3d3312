"""The form builder in the staff area (/staff/forms): the forms list, creating and editing
forms, their fields, settings and on-submit actions, sharing them, a live preview, and the
submissions they received. Thin views over forms.definitions and forms.submission_list."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import (Blueprint, Response, abort, flash, g, make_response, redirect, render_template, request,
                   url_for)
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, RadioField, SelectChoice, SelectField, StringField, TextAreaField

from billing import settings as billing_settings
from billing.plans import describe_price, plans as access_plans
from billing.settings import FormPayment
from core.audit import record
from core.forms import MultiCheckboxField
from core.db import db
from core.errors import ServiceError
from core.identity import current_principal
from core.permissions import can, permitted_or_404, require, staff_login_required
from core.spreadsheet import download
from core.tenancy import get_or_404, require_tenant_host
from core.web import service_call
from crm import pipeline
from crm.circles import active_circles
from crm.models import ContactRole
from crm.setup import settings as crm_settings
from forms import definitions as service
from forms import public, rendering, submission_list
from forms.models import FieldKind, Form, FormField, FormSubmission, OwnerMode, PortalLogin, SubmissionState
from forms.processing import answer_rows

bp = Blueprint("forms_builder", __name__, url_prefix="/staff/forms")


bp.before_request(require_tenant_host)


# --- WTForms ------------------------------------------------------------------------------------------
# The services check every value (with plain-words messages), so these forms refuse nothing first.

class NewForm(FlaskForm):
    title = StringField("Title", render_kw={"maxlength": service.TITLE_MAX, "autocomplete": "off"},
                        description="What the form is for, e.g. “Open day registration”. People see it as the "
                                    "form's heading.")
    slug = StringField("Web address", render_kw={"maxlength": service.SLUG_MAX, "autocomplete": "off",
                                                 "placeholder": "made from the title"},
                       description="The last part of the form's address, /f/…: lower-case letters, digits and "
                                   "dashes. Leave empty to make it from the title.")


class SettingsForm(FlaskForm):
    title = NewForm.title
    slug = StringField("Web address", render_kw={"maxlength": service.SLUG_MAX, "autocomplete": "off"},
                       description="The last part of the form's address, /f/…. Changing it breaks links "
                                   "already shared.")
    intro = TextAreaField("Introduction", render_kw={"rows": 3, "maxlength": service.TEXT_MAX},
                          description="Optional: a few words above the fields.")
    submit_label = StringField("Send button", render_kw={"maxlength": service.SUBMIT_MAX})
    thank_you_message = TextAreaField("Thank-you message", render_kw={"rows": 3, "maxlength": service.TEXT_MAX},
                                      description="Shown after someone sends the form.")
    redirect_url = StringField("Or send them to this address", render_kw={"placeholder": "https://", "type": "url"},
                               description="Optional: a page of your own website to show instead of the "
                                           "thank-you message.")
    primary_colour = StringField("Colour", render_kw={"placeholder": "#1f6feb", "maxlength": 7,
                                                      "autocomplete": "off"},
                                 description="Optional: a colour like #1f6feb for this form's button and accents. "
                                             "Leave empty to use your branding's colour.")
    logo = FileField("Logo", description="Optional: PNG, JPEG, GIF or WebP, 512 KB at most, shown instead of your "
                                         "branding's logo.")
    remove_logo = BooleanField("Remove this form's logo (use your branding's)")
    min_fill_seconds = StringField("Minimum time to fill (seconds)", render_kw={"inputmode": "numeric"},
                                   description="Sending sooner than this after the form opened is refused as a "
                                               "robot's. 3 suits most forms; 0 turns it off.")


KIND_CHOICES = [SelectChoice(k, v) for k, v in FieldKind.LABELS.items()]


class FieldForm(FlaskForm):
    kind = SelectField("Type of field", choices=KIND_CHOICES, validate_choice=False,
                       description="Cannot be changed once the field is added.")
    label = StringField("Label", render_kw={"maxlength": service.LABEL_MAX, "autocomplete": "off"},
                        description="The question, e.g. “Your e-mail”. For a section heading: the heading.")
    help_text = TextAreaField("Help text", render_kw={"rows": 2, "maxlength": service.HELP_MAX},
                              description="Optional: shown under the field.")
    placeholder = StringField("Placeholder", render_kw={"maxlength": service.PLACEHOLDER_MAX},
                              description="Optional, for text, e-mail, phone and number fields: an example shown "
                                          "inside the empty box.")
    required = BooleanField("Required: the form cannot be sent without it")
    choices = TextAreaField("Choices", render_kw={"rows": 4},
                            description="For single and multiple choice fields: one choice per line.")
    display = RadioField("Show the choices as", choices=[SelectChoice(k, v) for k, v in service.DISPLAYS.items()],
                         default="dropdown", validate_choice=False,
                         description="For single choice fields.")
    url_parameter = StringField("Web address parameter", render_kw={"placeholder": "utm_source",
                                                                    "autocomplete": "off"},
                                description="For hidden fields: the parameter of the form's address that fills it, "
                                            "e.g. utm_source for …/f/open-day?utm_source=newsletter.")
    terms_url = StringField("Address of the terms", render_kw={"placeholder": "https://", "type": "url"},
                            description="For consent checkboxes: the page the checkbox agrees to.")
    target = SelectField("Where the answer goes", validate_choice=False,
                         description="Fill a field of the contact or their company, a custom field, or keep the "
                                     "answer on the submission only. A new custom field takes the label and "
                                     "choices above.")

    def set_targets(self, current: str = ""):
        groups: dict[str, list] = {}
        choices = service.target_choices(include_new=can(current_principal(), "crm.configure"))
        for choice in choices:
            groups.setdefault(choice.group, []).append(SelectChoice(choice.value, choice.label))
        if current and current not in {c.value for c in choices}:  # an archived custom field it still fills
            groups.setdefault("Where it goes now", []).insert(0, SelectChoice(current, service.target_label(current)))
        self.target.choices = groups

    def data_for_service(self) -> dict:
        return {name: self[name].data for name in ("kind", "label", "help_text", "placeholder", "required",
                                                   "choices", "display", "url_parameter", "terms_url", "target")}


class ActionsForm(FlaskForm):
    role = RadioField("Role to give", choices=[SelectChoice(r, ContactRole.LABELS[r]) for r in ContactRole.ALL],
                      validate_choice=False,
                      description="A form never demotes: a Client who fills a Lead form stays a Client.")
    status_id = SelectField("Status", validate_choice=False)
    circle_ids = MultiCheckboxField("Add to these Circles", coerce=str, validate_choice=False)
    tags = StringField("Tags", render_kw={"autocomplete": "off", "placeholder": "e.g. open day, newsletter"},
                       description="Separate tags with commas. New tags are made on the first submission.")
    owner_mode = RadioField("Who becomes the owner", choices=[SelectChoice(k, v) for k, v in OwnerMode.LABELS.items()],
                            validate_choice=False,
                            description="Who owns a contact the form creates (an existing owner is kept).")
    owner_id = SelectField("Fixed owner", validate_choice=False)
    round_robin_staff_ids = MultiCheckboxField("Take turns among", coerce=str, validate_choice=False)
    notify_staff_ids = MultiCheckboxField("E-mail these staff members about each submission", coerce=str,
                                          validate_choice=False)
    send_confirmation = BooleanField("Send the registrant a confirmation e-mail")
    confirmation_subject = StringField("Subject of the confirmation", render_kw={"maxlength": service.SUBJECT_MAX})
    confirmation_body = TextAreaField("Text of the confirmation", render_kw={"rows": 5},
                                      description="Plain text. Their answers are listed below it.")
    portal_login = RadioField("Portal login", choices=[SelectChoice(k, v) for k, v in PortalLogin.LABELS.items()],
                              validate_choice=False,
                              description="Either way they confirm their e-mail address before signing in.")
    portal_requires_approval = BooleanField("Only after a staff member approves them (from the approval queue)")
    make_primary_contact = BooleanField("Make the registrant their company's primary contact when it has none")
    portal_payment = RadioField("Portal access", choices=[SelectChoice(k, v) for k, v in FormPayment.LABELS.items()],
                                default=FormPayment.DEFAULT, validate_choice=False)
    portal_plan_id = SelectField("The plan they pay for", validate_choice=False,
                                 description="They are asked to pay once they may sign in; the portal opens when "
                                             "Stripe confirms the payment.")
    portal_plan_ids = MultiCheckboxField("The plans they choose among", coerce=str, validate_choice=False,
                                         description="Choose two or more; they pay for the one they pick.")

    # Inputs that matter only for one answer of another (the builder script hides them otherwise).
    SHOWN_IF = {"owner_id": "owner_mode=fixed", "round_robin_staff_ids": "owner_mode=round_robin",
                "confirmation_subject": "send_confirmation=y", "confirmation_body": "send_confirmation=y",
                "portal_requires_approval": "portal_login!=none", "portal_payment": "portal_login!=none",
                "portal_plan_id": "portal_login!=none&portal_payment=plan",
                "portal_plan_ids": "portal_login!=none&portal_payment=choice"}
    GROUPS = (
        ("The contact", ("role", "status_id", "circle_ids", "tags")),
        ("Owner", ("owner_mode", "owner_id", "round_robin_staff_ids")),
        ("E-mails", ("notify_staff_ids", "send_confirmation", "confirmation_subject", "confirmation_body")),
        ("Portal and company", ("portal_login", "portal_requires_approval", "portal_payment", "portal_plan_id",
                                "portal_plan_ids", "make_primary_contact")),
    )
    PAYMENT_NAMES = ("portal_payment", "portal_plan_id", "portal_plan_ids")

    def set_choices(self):
        staff = [SelectChoice(str(s.id), s.display_name) for s in service.active_staff()]
        self.status_id.choices = [SelectChoice("", "Leave the status as it is")] + [
            SelectChoice(str(s.id), s.name) for s in pipeline.statuses(include_archived=False)]
        self.circle_ids.choices = [SelectChoice(str(c.id), c.name) for c in active_circles()]
        self.owner_id.choices = [SelectChoice("", "Choose a staff member")] + staff
        self.round_robin_staff_ids.choices = staff
        self.notify_staff_ids.choices = staff
        offered = [SelectChoice(str(p.id), f"{p.name} ({describe_price(p)})")
                   for p in access_plans(include_archived=False)]
        self.portal_plan_id.choices = [SelectChoice("", "Choose a plan")] + offered
        self.portal_plan_ids.choices = offered

    def set_payment_rule(self, may_change: bool, tenant_rule: str, has_plans: bool):
        """The portal payment inputs: described with the tenant's own rule, and read-only for
        staff who may not define access plans (the service refuses them a change too)."""
        help_text = f"Who pays to use the portal among those who register here. The tenant's rule: {tenant_rule}."
        if not has_plans:
            help_text += " To make them pay, first create an access plan under Payments."
        if not may_change:
            help_text += " Only staff who manage access plans change this."
            for name in self.PAYMENT_NAMES:
                self[name].render_kw = {**(self[name].render_kw or {}), "disabled": True}
        self.portal_payment.description = help_text


# --- helpers ------------------------------------------------------------------------------------------

def form_or_404(form_id: int, *, permission: str = "forms.manage") -> Form:
    """A form of this tenant the member may work on (submissions: "forms.submissions.view")."""
    return permitted_or_404(Form, form_id, permission)


def _field_or_404(form: Form, form_field_id: int) -> FormField:
    field = get_or_404(FormField, form_field_id)
    if field.form_id != form.id:
        abort(404)
    return field


def public_url(form: Form) -> str:
    """The form's address on this host (a custom domain staff use serves the form too)."""
    return url_for("forms_public.page", slug=form.slug, _external=True)


def _tabs(form: Form, current: str):
    return {"form": form, "tab": current, "public_url": public_url(form)}


# --- the forms list, creating, duplicating, archiving -----------------------------------------------

@bp.get("/")
@staff_login_required
def forms():
    principal = current_principal()
    if not (can(principal, "forms.manage") or can(principal, "forms.submissions.view")):
        abort(403)
    archived = request.args.get("show") == "archived"
    return render_template("forms/builder/list.html", forms=service.forms_list(archived=archived),
                           archived=archived, counts=submission_list.counts_by_form(),
                           field_counts=service.field_counts(),
                           other_count=service.active_forms_count(archived=not archived), public_url=public_url)


@bp.route("/new", methods=["GET", "POST"])
@staff_login_required
def new_form():
    require("forms.manage")
    form = NewForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            created = service.create_form(form.title.data, form.slug.data, actor=current_principal())
        if outcome:
            flash(f"“{created.title}” is created. Add its fields.", "success")
            return redirect(url_for("forms_builder.edit", form_id=created.id))
    return render_template("forms/builder/new.html", form=form), 400 if form.errors or form.form_errors else 200


@bp.post("/<int:form_id>/duplicate")
@staff_login_required
def duplicate(form_id):
    original = form_or_404(form_id)
    with service_call() as outcome:
        copy = service.duplicate_form(original, actor=current_principal())
    if not outcome:
        return redirect(url_for("forms_builder.forms"))
    flash(f"“{copy.title}” is a copy of “{original.title}”, at /f/{copy.slug}.", "success")
    return redirect(url_for("forms_builder.edit", form_id=copy.id))


@bp.post("/<int:form_id>/archive")
@staff_login_required
def archive(form_id):
    form = form_or_404(form_id)
    with service_call() as outcome:
        changed = service.archive_form(form, actor=current_principal())
    if outcome and changed:
        flash(f"“{form.title}” is archived: its address no longer shows the form. Its submissions are kept.",
              "success")
    return redirect(url_for("forms_builder.forms"))


@bp.post("/<int:form_id>/restore")
@staff_login_required
def restore(form_id):
    form = form_or_404(form_id)
    with service_call() as outcome:
        changed = service.restore_form(form, actor=current_principal())
    if outcome and changed:
        flash(f"“{form.title}” is back at /f/{form.slug}.", "success")
    return redirect(url_for("forms_builder.forms", show="archived"))


# --- fields -------------------------------------------------------------------------------------------

def _field_form(field: FormField | None = None, *, formdata=True) -> FieldForm:
    if field is not None and (request.method == "GET" or not formdata):
        data = service.field_dict(field)
        data["choices"] = "\n".join(field.choices or [])
        form = FieldForm(formdata=None, data=data)
    else:
        form = FieldForm() if formdata else FieldForm(formdata=None)
    form.set_targets(field.target if field is not None else "")
    return form


def _render_fields(form: Form, add: FieldForm | None = None, status: int = 200):
    custom = service.custom_fields_by_id()
    return render_template("forms/builder/fields.html", add=add or _field_form(formdata=False),
                           targets={f.id: service.target_label(f.target, custom) for f in form.fields},
                           kinds=FieldKind, **_tabs(form, "fields")), status


@bp.get("/<int:form_id>")
@staff_login_required
def edit(form_id):
    form = form_or_404(form_id)
    return _render_fields(form)


@bp.post("/<int:form_id>/fields")
@staff_login_required
def add_field(form_id):
    form = form_or_404(form_id)
    add = _field_form()
    if add.validate_on_submit():
        with service_call(add) as outcome:
            field = service.add_field(form, add.data_for_service(), actor=current_principal())
        if outcome:
            flash(f"“{field.label}” is added.", "success")
            return redirect(url_for("forms_builder.edit", form_id=form.id, _anchor=f"field-{field.id}"))
    return _render_fields(form, add, 400)


@bp.route("/<int:form_id>/fields/<int:form_field_id>", methods=["GET", "POST"])
@staff_login_required
def edit_field(form_id, form_field_id):
    form = form_or_404(form_id)
    field = _field_or_404(form, form_field_id)
    edit_form = _field_form(field)
    edit_form.kind.data = field.kind  # fixed once added
    if edit_form.validate_on_submit():
        with service_call(edit_form) as outcome:
            changed = service.update_field(field, edit_form.data_for_service(), actor=current_principal())
        if outcome:
            flash(f"“{field.label}” is saved." if changed else "Nothing to change.", "success")
            return redirect(url_for("forms_builder.edit", form_id=form.id, _anchor=f"field-{field.id}"))
    status = 400 if request.method == "POST" else 200
    return render_template("forms/builder/field.html", field=field, edit=edit_form, kinds=FieldKind,
                           **_tabs(form, "fields")), status


@bp.post("/<int:form_id>/fields/<int:form_field_id>/delete")
@staff_login_required
def delete_field(form_id, form_field_id):
    form = form_or_404(form_id)
    field = _field_or_404(form, form_field_id)
    label = field.label
    with service_call() as outcome:
        service.delete_field(field, actor=current_principal())
    if outcome:
        flash(f"“{label}” is removed from the form. Answers already sent keep it.", "success")
    return redirect(url_for("forms_builder.edit", form_id=form.id, _anchor="fields"))


@bp.post("/<int:form_id>/fields/<int:form_field_id>/move")
@staff_login_required
def move_field(form_id, form_field_id):
    form = form_or_404(form_id)
    field = _field_or_404(form, form_field_id)
    direction = request.form.get("direction", "")
    with service_call() as outcome:
        moved = service.move_field(field, direction, actor=current_principal())
    if outcome and moved:
        flash(f"“{field.label}” moved {direction}.", "success")
    # Back on the same button, so a keyboard user can press it again.
    return redirect(url_for("forms_builder.edit", form_id=form.id, _anchor=f"field-{field.id}"))


# --- settings, actions, sharing -------------------------------------------------------------------

@bp.route("/<int:form_id>/settings", methods=["GET", "POST"])
@staff_login_required
def settings(form_id):
    form = form_or_404(form_id)
    # Not obj=form: the logo field would take the stored image bytes as its value.
    names = ("title", "slug", "intro", "submit_label", "thank_you_message", "redirect_url", "primary_colour",
             "min_fill_seconds")
    page = SettingsForm(data={name: getattr(form, name) for name in names})
    if page.validate_on_submit():
        upload = page.logo.data
        with service_call(page) as outcome:
            changed = service.update_settings(
                form, **{name: page[name].data for name in names}, logo=upload.read() if upload else None,
                remove_logo=page.remove_logo.data, actor=current_principal())
        if outcome:
            flash("Settings saved." if changed else "Nothing to change.", "success")
            return redirect(url_for("forms_builder.settings", form_id=form.id))
    status = 400 if request.method == "POST" else 200
    return render_template("forms/builder/settings.html", page=page, **_tabs(form, "settings")), status


@bp.get("/<int:form_id>/logo")
@staff_login_required
def logo(form_id):
    form = form_or_404(form_id)
    if not form.logo_mimetype:
        abort(404)
    response = Response(form.logo, mimetype=form.logo_mimetype)
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response


_ACTION_NAMES = ("role", "status_id", "circle_ids", "tags", "owner_mode", "owner_id", "round_robin_staff_ids",
                 "notify_staff_ids", "send_confirmation", "confirmation_subject", "confirmation_body", "portal_login",
                 "portal_requires_approval", "make_primary_contact")


@bp.route("/<int:form_id>/actions", methods=["GET", "POST"])
@staff_login_required
def actions(form_id):
    form = form_or_404(form_id)
    may_set_payment = can(current_principal(), "billing.plans")
    if request.method == "GET":
        data = {name: getattr(form, name) for name in _ACTION_NAMES}
        data["portal_payment"], plan_ids = billing_settings.form_rule(form.id)
        data["portal_plan_id"] = str(plan_ids[0]) if len(plan_ids) == 1 else ""
        data["portal_plan_ids"] = [str(i) for i in plan_ids] if len(plan_ids) > 1 else []
        data["tags"] = ", ".join(form.tags or [])
        data["status_id"] = str(form.status_id or "")
        data["owner_id"] = str(form.owner_id or "")
        for name in ("circle_ids", "round_robin_staff_ids", "notify_staff_ids"):
            data[name] = [str(i) for i in data[name] or []]
        page = ActionsForm(formdata=None, data=data)
    else:
        page = ActionsForm()
        if not may_set_payment:  # its inputs are read-only: show the rule as it stays
            page.portal_payment.data, plan_ids = billing_settings.form_rule(form.id)
            page.portal_plan_id.data = str(plan_ids[0]) if len(plan_ids) == 1 else ""
            page.portal_plan_ids.data = [str(i) for i in plan_ids] if len(plan_ids) > 1 else []
    page.set_choices()
    page.set_payment_rule(may_set_payment, _tenant_payment_rule(), bool(page.portal_plan_ids.choices))
    if page.validate_on_submit():
        with service_call(page) as outcome:
            changed = service.update_actions(form, **{name: page[name].data for name in _ACTION_NAMES},
                                             actor=current_principal())
            if may_set_payment:  # read-only inputs send nothing: the rule stays
                changed = billing_settings.set_form_rule(
                    form, page.portal_payment.data, page.portal_plan_id.data, page.portal_plan_ids.data,
                    gives_portal_login=page.portal_login.data != PortalLogin.NONE,
                    actor=current_principal()) or changed
        if outcome:
            flash("On-submit actions saved." if changed else "Nothing to change.", "success")
            return redirect(url_for("forms_builder.actions", form_id=form.id))
    status = 400 if request.method == "POST" else 200
    return render_template("forms/builder/actions.html", page=page, **_tabs(form, "actions")), status


def _tenant_payment_rule() -> str:
    required = billing_settings.cached_rules()[0]
    plan = next((p for p in access_plans() if p.id == required), None) if required else None
    return f"everyone pays for {plan.name}" if plan else "the portal is free"


@bp.get("/<int:form_id>/share")
@staff_login_required
def share(form_id):
    form = form_or_404(form_id)
    return render_template("forms/builder/share.html", snippet=public.embed_snippet(form), **_tabs(form, "share"))


# --- live preview -------------------------------------------------------------------------------------

@bp.post("/<int:form_id>/preview")
@staff_login_required
def preview(form_id):
    """The form as the public would see it with the builder's unsaved draft (the page's own
    inputs, posted as the staff member types); the builder shows it in a sandboxed frame."""
    form = form_or_404(form_id)
    field_id = request.form.get("preview_field_id", type=int)
    if field_id is not None:
        _field_or_404(form, field_id)
    draft = request.form.to_dict(flat=True)
    definition = service.preview_definition(form, draft, field_id=field_id,
                                            new_field=request.form.get("preview_new_field") == "1")
    specs = rendering.field_specs(definition["fields"])
    wtform = rendering.build_form_class(specs, region=crm_settings().default_region,
                                        portal_login=form.portal_login)(formdata=None)
    tenant = g.tenant
    if form.logo_mimetype:
        logo_url = url_for(".logo", form_id=form.id, v=int(form.updated_at.timestamp()) if form.updated_at else 0)
    else:
        logo_url = url_for("portal.logo", v=tenant.logo_version) if tenant.logo_mimetype else None
    response = make_response(render_template(
        "forms/builder/preview.html", form=definition["form"], wtform=wtform, specs=specs, embed=False,
        brand_colour=definition["form"]["primary_colour"] or tenant.primary_color, logo_url=logo_url))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- submissions --------------------------------------------------------------------------------------

def _submissions_page(form: Form | None):
    require("forms.submissions.view")
    error = None
    try:
        filters = submission_list.Filters.from_args(request.args, form_id=form.id if form else None)
    except ServiceError as exc:
        error, filters = exc, submission_list.Filters(form_id=form.id if form else None)
    result = submission_list.page(filters, current_principal(), after=request.args.get("after"))
    return render_template("forms/builder/submissions.html", result=result, filters=filters, error=error,
                           scoped_form=form, all_forms=service.forms_list() + service.forms_list(archived=True),
                           states=SubmissionState, first_page=not request.args.get("after"),
                           tab="submissions" if form else None, form=form,
                           public_url=public_url(form) if form else None), 400 if error else 200


@bp.get("/submissions")
@staff_login_required
def submissions():
    return _submissions_page(None)


@bp.get("/<int:form_id>/submissions")
@staff_login_required
def form_submissions(form_id):
    return _submissions_page(form_or_404(form_id, permission="forms.submissions.view"))


@bp.get("/submissions/export")
@staff_login_required
def export_submissions():
    require("forms.submissions.view")
    fmt = request.args.get("as", "csv")
    if fmt not in ("csv", "xlsx"):
        abort(404)
    try:
        filters = submission_list.Filters.from_args(request.args)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("forms_builder.submissions"))
    if filters.form_id is not None:
        form_or_404(filters.form_id, permission="forms.submissions.view")
    too_large = submission_list.xlsx_too_large(filters) if fmt == "xlsx" else None
    if too_large:
        flash(too_large, "error")
        return redirect(url_for("forms_builder.submissions", **filters.to_args()))
    # Submissions hold what people typed about themselves: who took a copy is on record.
    with service_call():
        record("form.submissions_exported", details={"format": fmt, **filters.to_args()})
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    return download(submission_list.export_rows(filters, current_principal()), fmt,
                    f"form-submissions-{g.tenant.slug}-{stamp}", sheet_title="Submissions")


@bp.get("/submissions/<int:submission_id>")
@staff_login_required
def submission(submission_id):
    item = get_or_404(FormSubmission, submission_id)
    require("forms.submissions.view")
    form = db.session.get(Form, item.form_id)
    row = submission_list.row_for(item, current_principal())
    if row.hidden:
        abort(404)  # its answers are the data of a contact this viewer may not see
    return render_template("forms/builder/submission.html", submission=item, source_form=form, contact=row.contact,
                           answers=answer_rows(form, item.answers or {}), states=SubmissionState)


def init_app(app) -> None:
    app.register_blueprint(bp)
