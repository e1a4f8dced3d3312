"""CRM settings (/staff/settings/crm), for Owners and Admins: the status pipeline, custom fields,
which contacts Staff see, the region local phone numbers are read in, and for kickoff forms the
sites that may embed them and the company-name matching threshold. Thin views over
crm.pipeline, crm.custom_fields and crm.settings_service."""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectChoice, SelectField, StringField, TextAreaField

from core.db import db
from core.identity import StaffRole, StaffUser, current_principal
from core.permissions import require, staff_login_required
from core.tenancy import get_or_404
from core.web import service_call
from core.forms import MultiCheckboxField
from crm import circle_content
from crm import custom_fields as fields_service
from crm import pipeline
from crm import settings_service
from crm.models import CustomField, PipelineStatus
from crm.setup import settings
from staff import bp

ANCHORS = {"pipeline": "pipeline", "fields": "custom-fields", "visibility": "visibility", "phone": "phone-numbers",
           "forms": "kickoff-forms", "circle_files": "circle-files"}


# --- forms -------------------------------------------------------------------------------------------

class StatusForm(FlaskForm):
    # The services check the name (with plain-words messages), so the form does not refuse first.
    name = StringField("Name", render_kw={"maxlength": pipeline.NAME_MAX, "autocomplete": "off"})


class ArchiveStatusForm(FlaskForm):
    move_to = SelectField("What happens to its contacts", coerce=str, validate_choice=False)


class MoveContactsForm(FlaskForm):
    move_to = SelectField("Move them to", coerce=str, validate_choice=False)


class FieldForm(FlaskForm):
    label = StringField("Name", render_kw={"maxlength": fields_service.LABEL_MAX, "autocomplete": "off"},
                        description="What forms and record pages call it, e.g. “Budget” or “Shoe size”.")
    help_text = StringField("Help text", render_kw={"maxlength": fields_service.HELP_MAX},
                            description="Optional: shown under the field on the form.")
    choices = TextAreaField("Choices", render_kw={"rows": 5},
                            description="One per line. Only for single and multiple choice fields.")
    required = BooleanField("Required: a record cannot be saved without it")
    editable_by_contact = BooleanField(
        "Editable by the contact", description="Contact fields only: the contact can change it on their portal "
                                               "profile. Staff always can.")


class NewFieldForm(FieldForm):
    entity = SelectField("For", choices=[SelectChoice(e, fields_service.ENTITY_LABELS[e])
                                         for e in CustomField.ENTITIES], default="contact")
    field_type = SelectField("Type", choices=[SelectChoice(k, v) for k, v in CustomField.TYPES.items()],
                             default="text")
    FIELD_ORDER = ("entity", "label", "field_type", "choices", "required", "editable_by_contact", "help_text")


class RenameChoiceForm(FlaskForm):
    old = SelectField("Choice", coerce=str, validate_choice=False)
    new = StringField("New name", render_kw={"maxlength": fields_service.CHOICE_MAX, "autocomplete": "off"})


class VisibilityForm(FlaskForm):
    staff_visibility = RadioField("Staff see", choices=[SelectChoice(k, v)
                                                        for k, v in settings_service.VISIBILITY.items()],
                                  validate_choice=False)


class RegionForm(FlaskForm):
    default_region = SelectField("Country", coerce=str, validate_choice=False)


class KickoffFormsSettingsForm(FlaskForm):
    # The service checks both (with plain-words messages), so the form does not refuse first.
    form_embed_origins = TextAreaField(
        "Sites allowed to embed your forms", render_kw={"rows": 4, "spellcheck": "false"},
        description="One address per line, like https://www.example.com. Your forms' embed code works "
                    "only on these sites.")
    company_match_threshold = StringField(
        "Company name matching (50-100)", render_kw={"inputmode": "numeric", "maxlength": 3},
        description="How alike a company name typed on a form must be to an existing company's to be "
                    "taken as that company. 100: only the same name; lower matches more spellings.")


class CircleFilesForm(FlaskForm):
    # The service checks both (with plain-words messages), so the form does not refuse first.
    circle_file_max_mb = StringField("Largest file (MB)", render_kw={"inputmode": "numeric", "maxlength": 4},
                                     description="Staff cannot upload a larger file to a Circle.")
    circle_file_kinds = MultiCheckboxField(
        "Kinds of file allowed", validate_choice=False,
        choices=[SelectChoice(k, kind.label) for k, kind in circle_content.FILE_KINDS.items()],
        description="Told by the file's content, not its name: a file whose name says another kind is refused.")


# --- helpers -----------------------------------------------------------------------------------------

def _back(section: str):
    return redirect(url_for("staff.crm_settings", _anchor=ANCHORS[section]))


def _status_choices(exclude: PipelineStatus) -> list[tuple[str, str]]:
    return [(str(s.id), s.name) for s in pipeline.statuses(include_archived=False) if s.id != exclude.id]


def _rename_forms(statuses, failed: StatusForm | None = None, failed_id: int | None = None) -> dict:
    forms = {}
    for status in statuses:
        if failed is not None and status.id == failed_id:
            forms[status.id] = failed
        else:
            forms[status.id] = StatusForm(prefix=f"rename-{status.id}", formdata=None, data={"name": status.name})
    return forms


def _page(status: int = 200, *, new_status: StatusForm | None = None, rename: StatusForm | None = None,
          rename_id: int | None = None, visibility: VisibilityForm | None = None,
          region: RegionForm | None = None, kickoff: KickoffFormsSettingsForm | None = None,
          circle_files: CircleFilesForm | None = None):
    """The settings page; a form that failed is passed in so it shows its errors and keeps what
    was typed."""
    current = settings()
    statuses = pipeline.statuses()
    active = [s for s in statuses if s.archived_at is None]
    archived = [s for s in statuses if s.archived_at is not None]
    if visibility is None:
        visibility = VisibilityForm(formdata=None, data={"staff_visibility": current.staff_visibility})
    if region is None:
        region = RegionForm(formdata=None, data={"default_region": current.default_region})
    region.default_region.choices = settings_service.regions()
    if kickoff is None:
        kickoff = KickoffFormsSettingsForm(formdata=None, data={
            "form_embed_origins": "\n".join(current.form_embed_origins or []),
            "company_match_threshold": str(current.company_match_threshold)})
    if circle_files is None:
        circle_files = CircleFilesForm(formdata=None, data={
            "circle_file_max_mb": str(current.circle_file_max_mb), "circle_file_kinds": current.circle_file_kinds})
    move_forms = {}
    for s in archived:
        form = MoveContactsForm(prefix=f"move-{s.id}", formdata=None)
        form.move_to.choices = _status_choices(s)
        move_forms[s.id] = form
    staff_count = db.session.scalar(sa.select(sa.func.count()).select_from(StaffUser).where(
        StaffUser.active.is_(True), StaffUser.role == StaffRole.STAFF))
    shown_region = region.default_region.data if settings_service.is_region(region.default_region.data) \
        else current.default_region
    return render_template(
        "staff/crm_settings/index.html",
        active=active, archived=archived, counts=pipeline.contact_counts(),
        new_status=new_status or StatusForm(formdata=None), rename_forms=_rename_forms(statuses, rename, rename_id),
        rename_open=rename_id, move_forms=move_forms,
        fields={entity: fields_service.definitions(entity, include_archived=True) for entity in CustomField.ENTITIES},
        entity_labels=fields_service.ENTITY_LABELS, types=CustomField.TYPES,
        visibility=visibility, region=region, kickoff=kickoff, circle_files=circle_files, current=current,
        staff_count=staff_count,
        region_name=settings_service.region_name(current.default_region),
        example=settings_service.local_example(shown_region),
    ), status


# --- the page ----------------------------------------------------------------------------------------

@bp.get("/settings/crm")
@staff_login_required
def crm_settings():
    require("crm.configure")
    return _page()


# --- pipeline ----------------------------------------------------------------------------------------

@bp.post("/settings/crm/statuses", endpoint="crm_settings_add_status")
@staff_login_required
def add_status():
    require("crm.configure")
    form = StatusForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            status = pipeline.add_status(form.name.data, current_principal())
        if outcome:
            flash(f"Status “{status.name}” added at the end of the pipeline.", "success")
            return _back("pipeline")
    return _page(new_status=form)


@bp.post("/settings/crm/statuses/<int:status_id>/rename", endpoint="crm_settings_rename_status")
@staff_login_required
def rename_status(status_id):
    status = get_or_404(PipelineStatus, status_id)
    require("crm.configure")
    form = StatusForm(prefix=f"rename-{status.id}")
    if form.validate_on_submit():
        before = status.name
        with service_call(form) as outcome:
            changed = pipeline.rename_status(status, form.name.data, current_principal())
        if outcome:
            flash(f"“{before}” is now called “{status.name}”; its contacts show the new name." if changed
                  else "Nothing to change.", "success")
            return _back("pipeline")
    return _page(rename=form, rename_id=status.id)


@bp.post("/settings/crm/statuses/<int:status_id>/move", endpoint="crm_settings_move_status")
@staff_login_required
def move_status(status_id):
    status = get_or_404(PipelineStatus, status_id)
    require("crm.configure")
    direction = request.form.get("direction", "")
    with service_call() as outcome:
        moved = pipeline.move_status(status, direction, current_principal())
    if outcome:
        if moved:
            flash(f"Moved “{status.name}” {direction}.", "success")
        else:
            flash(f"“{status.name}” is already {'first' if direction == pipeline.UP else 'last'}.", "info")
    return _back("pipeline")


@bp.post("/settings/crm/statuses/<int:status_id>/default", endpoint="crm_settings_default_status")
@staff_login_required
def default_status(status_id):
    status = get_or_404(PipelineStatus, status_id)
    require("crm.configure")
    with service_call() as outcome:
        changed = pipeline.set_default_status(status, current_principal())
    if outcome:
        flash(f"New contacts now get “{status.name}”." if changed else f"“{status.name}” already is the default.",
              "success")
    return _back("pipeline")


@bp.route("/settings/crm/statuses/<int:status_id>/archive", methods=["GET", "POST"],
          endpoint="crm_settings_archive_status")
@staff_login_required
def archive_status(status_id):
    status = get_or_404(PipelineStatus, status_id)
    require("crm.configure")
    if status.archived_at is not None:
        flash(f"“{status.name}” is archived already.", "info")
        return _back("pipeline")
    form = ArchiveStatusForm()
    form.move_to.choices = [("", "They keep it (shown as archived)")] + [
        (value, f"Move to “{label}”") for value, label in _status_choices(status)]
    count = pipeline.contacts_with(status)
    problem = pipeline.archive_problem(status)
    if problem is None and form.validate_on_submit():
        move_to = None
        if form.move_to.data:
            move_to = pipeline.active_status_or_none(form.move_to.data)
            if move_to is None:
                form.move_to.errors = ["Choose a status from the list."]
        if not form.move_to.errors:
            with service_call(form) as outcome:
                moved = pipeline.archive_status(status, current_principal(), move_to=move_to)
            if outcome:
                if moved:
                    flash(f"“{status.name}” is archived; {moved:,} contact{'' if moved == 1 else 's'} moved to "
                          f"“{move_to.name}”.", "success")
                elif count:
                    flash(f"“{status.name}” is archived. Its contacts keep it until someone changes their status.",
                          "success")
                else:
                    flash(f"“{status.name}” is archived.", "success")
                return _back("pipeline")
    return render_template("staff/crm_settings/archive_status.html", status=status, form=form, count=count,
                           problem=problem)


@bp.post("/settings/crm/statuses/<int:status_id>/restore", endpoint="crm_settings_restore_status")
@staff_login_required
def restore_status(status_id):
    status = get_or_404(PipelineStatus, status_id)
    require("crm.configure")
    with service_call(show_error=False) as outcome:
        restored = pipeline.restore_status(status, current_principal())
    if outcome.error:
        flash(f"“{status.name}” cannot be restored: {outcome.error.message} Rename that one first.", "error")
    else:
        flash(f"“{status.name}” is back, at the end of the pipeline." if restored
              else f"“{status.name}” is not archived.", "success")
    return _back("pipeline")


@bp.post("/settings/crm/statuses/<int:status_id>/move-contacts", endpoint="crm_settings_move_contacts")
@staff_login_required
def move_status_contacts(status_id):
    status = get_or_404(PipelineStatus, status_id)
    require("crm.configure")
    form = MoveContactsForm(prefix=f"move-{status.id}")
    target = pipeline.active_status_or_none(form.move_to.data)
    if not form.validate_on_submit():
        flash("This form has expired. Reload the page and send it again.", "error")
        return _back("pipeline")
    with service_call() as outcome:
        moved = pipeline.move_contacts(status, target, current_principal())
    if outcome:
        flash(f"{moved:,} contact{'' if moved == 1 else 's'} moved from “{status.name}” to “{target.name}”."
              if moved else f"No contact has “{status.name}”.", "success")
    return _back("pipeline")


# --- custom fields -----------------------------------------------------------------------------------

def _field_form_data(form) -> dict:
    return {"label": form.label.data, "help_text": form.help_text.data, "required": form.required.data,
            "choices": form.choices.data, "editable_by_contact": form.editable_by_contact.data}


def _field_values(field: CustomField) -> dict:
    return {"label": field.label, "help_text": field.help_text, "required": field.required,
            "choices": "\n".join(field.choices or []), "editable_by_contact": field.editable_by_contact}


@bp.route("/settings/crm/fields/new", methods=["GET", "POST"], endpoint="crm_settings_new_field")
@staff_login_required
def new_field():
    require("crm.configure")
    entity = request.args.get("entity")
    form = NewFieldForm(data={"entity": entity} if entity in CustomField.ENTITIES else None)
    if form.validate_on_submit():
        with service_call(form) as outcome:
            field = fields_service.create_field(form.entity.data, actor=current_principal(),
                                                field_type=form.field_type.data, **_field_form_data(form))
        if outcome:
            where = "contact" if field.entity == "contact" else "company"
            flash(f"Field “{field.label}” added: it is on the {where} form and in the filters now.", "success")
            return _back("fields")
    return render_template("staff/crm_settings/field_form.html", form=form, field=None)


def _rename_choice_form(field: CustomField, form: RenameChoiceForm | None = None) -> RenameChoiceForm:
    form = form or RenameChoiceForm(formdata=None)
    form.old.choices = [(c, c) for c in field.choices]
    return form


def _field_page(field: CustomField, form: FieldForm, rename: RenameChoiceForm | None = None, status: int = 200):
    usage = fields_service.choice_usage(field) if field.field_type in fields_service.CHOICE_TYPES else {}
    return render_template("staff/crm_settings/field_form.html", form=form, field=field, usage=usage,
                           types=CustomField.TYPES, rename=_rename_choice_form(field, rename),
                           records_word=fields_service.records_word), status


@bp.route("/settings/crm/fields/<int:field_id>", methods=["GET", "POST"], endpoint="crm_settings_field")
@staff_login_required
def edit_field(field_id):
    field = get_or_404(CustomField, field_id)
    require("crm.configure")
    if request.method == "GET":
        form = FieldForm(formdata=None, data=_field_values(field))
    else:
        form = FieldForm()
    if form.validate_on_submit():
        data = _field_form_data(form)
        if field.field_type not in fields_service.CHOICE_TYPES:
            data["choices"] = None
        if field.entity != "contact":
            data["editable_by_contact"] = None
        with service_call(form) as outcome:
            changed = fields_service.update_field(field, actor=current_principal(), **data)
        if outcome:
            flash(f"Field “{field.label}” saved." if changed else "Nothing to change.", "success")
            return _back("fields")
    return _field_page(field, form)


@bp.post("/settings/crm/fields/<int:field_id>/rename-choice", endpoint="crm_settings_rename_choice")
@staff_login_required
def rename_field_choice(field_id):
    field = get_or_404(CustomField, field_id)
    require("crm.configure")
    if field.field_type not in fields_service.CHOICE_TYPES:
        flash(f"“{field.label}” has no choices to rename.", "error")
        return redirect(url_for("staff.crm_settings_field", field_id=field.id))
    rename = _rename_choice_form(field, RenameChoiceForm())
    if rename.validate_on_submit():
        old = rename.old.data
        with service_call(rename) as outcome:
            changed = fields_service.rename_choice(field, old, rename.new.data, current_principal())
        if outcome:
            new = rename.new.data.strip()
            if old == new:
                flash("Nothing to change.", "success")
            else:
                flash(f"“{old}” is now “{new}”, also on {fields_service.records_word(field.entity, changed)} "
                      "that had it.", "success")
            return redirect(url_for("staff.crm_settings_field", field_id=field.id))
    form = FieldForm(formdata=None, data=_field_values(field))
    return _field_page(field, form, rename)


@bp.post("/settings/crm/fields/<int:field_id>/move", endpoint="crm_settings_move_field")
@staff_login_required
def move_field(field_id):
    field = get_or_404(CustomField, field_id)
    require("crm.configure")
    direction = request.form.get("direction", "")
    with service_call() as outcome:
        moved = fields_service.move_field(field, direction, current_principal())
    if outcome:
        if moved:
            flash(f"Moved “{field.label}” {direction}.", "success")
        else:
            flash(f"“{field.label}” is already {'first' if direction == fields_service.UP else 'last'}.", "info")
    return _back("fields")


@bp.post("/settings/crm/fields/<int:field_id>/archive", endpoint="crm_settings_archive_field")
@staff_login_required
def archive_field(field_id):
    field = get_or_404(CustomField, field_id)
    require("crm.configure")
    with service_call() as outcome:
        changed = fields_service.archive_field(field, current_principal())
    if outcome and changed:
        flash(f"Field “{field.label}” archived: it is off the forms and filters. The values already entered "
              "are kept and come back if you restore it.", "success")
    return _back("fields")


@bp.post("/settings/crm/fields/<int:field_id>/restore", endpoint="crm_settings_restore_field")
@staff_login_required
def restore_field(field_id):
    field = get_or_404(CustomField, field_id)
    require("crm.configure")
    with service_call() as outcome:
        changed = fields_service.restore_field(field, current_principal())
    if outcome and changed:
        flash(f"Field “{field.label}” restored, with the values entered before.", "success")
    return _back("fields")


# --- visibility and phone numbers ---------------------------------------------------------------------

@bp.post("/settings/crm/visibility", endpoint="crm_settings_visibility")
@staff_login_required
def crm_visibility():
    require("crm.configure")
    form = VisibilityForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            changed = settings_service.set_staff_visibility(form.staff_visibility.data, current_principal())
        if outcome:
            mode = settings_service.VISIBILITY_SHORT[form.staff_visibility.data]
            flash(f"Staff now see {mode}." if changed else "Nothing to change.", "success")
            return _back("visibility")
    return _page(visibility=form)


@bp.post("/settings/crm/phone-region", endpoint="crm_settings_phone_region")
@staff_login_required
def crm_phone_region():
    require("crm.configure")
    form = RegionForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            changed = settings_service.set_default_region(form.default_region.data, current_principal())
        if outcome:
            code = settings().default_region
            flash(f"Local phone numbers are now read as numbers of {settings_service.region_name(code)}."
                  if changed else "Nothing to change.", "success")
            return _back("phone")
    return _page(region=form)


@bp.post("/settings/crm/kickoff-forms", endpoint="crm_settings_kickoff_forms")
@staff_login_required
def crm_kickoff_forms():
    require("crm.configure")
    form = KickoffFormsSettingsForm()
    if form.validate_on_submit():
        actor = current_principal()
        with service_call(form) as outcome:
            changed = settings_service.set_form_embed_origins(form.form_embed_origins.data or "", actor)
            changed = settings_service.set_company_match_threshold(form.company_match_threshold.data, actor) or changed
        if outcome:
            flash("Kickoff form settings saved." if changed else "Nothing to change.", "success")
            return _back("forms")
    return _page(422, kickoff=form)


@bp.post("/settings/crm/circle-files", endpoint="crm_settings_circle_files")
@staff_login_required
def crm_circle_files():
    require("crm.configure")
    form = CircleFilesForm()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            changed = circle_content.set_file_limits(
                form.circle_file_max_mb.data, form.circle_file_kinds.data or [], current_principal(),
                platform_max_bytes=current_app.config["CIRCLE_FILE_MAX_BYTES"])
        if outcome:
            flash("Circle file limits saved." if changed else "Nothing to change.", "success")
            return _back("circle_files")
    return _page(422, circle_files=form)
