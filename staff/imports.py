"""Importing contacts: upload, choose the sheet, map the columns, preview and set the options,
then the import runs as a background task (staff/operations.py shows its progress); its page
gives the result, the failed rows as CSV and undo. The work is crm.imports.engine's."""
from __future__ import annotations

from flask import (current_app, flash, redirect, render_template, request, url_for)
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import Optional

import sqlalchemy as sa

from core.db import db
from core.forms import MultiCheckboxField
from core.identity import StaffUser, current_principal
from core.permissions import require, staff_login_required
from core.tenancy import get_or_404
from core.web import service_call
from crm import circles as circle_service
from crm.imports import engine
from crm.imports.mapping import load_custom_fields, targets
from crm.imports.models import ContactImport, ImportMapping
from crm.imports.reading import MAX_BYTES
from crm.models import ContactRole, PipelineStatus
from staff import bp
from core.spreadsheet import download


def _max_bytes() -> int:
    return current_app.config.get("IMPORT_MAX_BYTES", MAX_BYTES)


@bp.url_value_preprocessor
def _allow_large_imports(endpoint, values):
    """An import may be larger than other requests. This runs before the CSRF check reads the
    form, so the larger limit applies to that read."""
    if endpoint == "staff.import_upload" and request.method == "POST":
        request.max_content_length = _max_bytes() + 64 * 1024


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    if request.endpoint == "staff.import_upload":
        form = UploadForm(formdata=None)
        form.file.errors = [f"The file is larger than {_max_bytes() // (1024 * 1024)} MB, the most an import takes. "
                            "Split it into parts, or save it as CSV, which is smaller."]
        return _list_page(form), 413
    from core.errors import TITLES

    title, message = TITLES[413]
    return render_template("errors/error.html", code=413, title=title, message=message), 413


class UploadForm(FlaskForm):
    file = FileField("Spreadsheet", description="CSV (any delimiter or encoding), Excel .xlsx or .xls, "
                                                "with a header row.")


class SheetForm(FlaskForm):
    sheet = SelectField("Sheet", validate_choice=False)


class OptionsForm(FlaskForm):
    on_duplicate = SelectField("When a row's e-mail (or, without one, phone) matches a contact",
                               choices=[SelectChoice(k, v) for k, v in ContactImport.ON_DUPLICATE.items()], default=ContactImport.SKIP)
    role = SelectField("Role of new contacts", choices=[SelectChoice(r, ContactRole.LABELS[r]) for r in ContactRole.ALL])
    status_id = SelectField("Status of new contacts", validate_choice=False)
    owner_id = SelectField("Owner of new contacts", validate_choice=False)
    circle_ids = MultiCheckboxField("Add every imported contact to these circles", validate_choice=False)
    tags = StringField("Tag every imported contact", description="Separate tags with commas.",
                       validators=[Optional()])


def _load(import_id: int) -> ContactImport:
    upload = get_or_404(ContactImport, import_id)
    require("contacts.import")
    return engine.sync_status(upload)


def _list_page(form: UploadForm):
    return render_template("staff/imports/list.html", form=form, imports=engine.imports_list(),
                           max_mb=_max_bytes() // (1024 * 1024))


@bp.get("/imports")
@staff_login_required
def imports():
    require("contacts.import")
    return _list_page(UploadForm())


@bp.post("/imports")
@staff_login_required
def import_upload():
    require("contacts.import")
    form = UploadForm()
    if form.validate_on_submit():
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            form.file.errors.append("Choose a file to import.")
        else:
            with service_call(form) as outcome:
                record = engine.new_import(upload.stream, upload.filename, actor=current_principal(),
                                           max_bytes=_max_bytes())
            if outcome:
                return redirect(_next_step(record))
    return _list_page(form), 400


def _next_step(record: ContactImport) -> str:
    if record.needs_sheet:
        return url_for("staff.import_sheet", import_id=record.id)
    return url_for("staff.import_mapping", import_id=record.id)


@bp.route("/imports/<int:import_id>/sheet", methods=["GET", "POST"])
@staff_login_required
def import_sheet(import_id):
    record = _load(import_id)
    if not record.needs_sheet:
        return redirect(url_for("staff.import_detail", import_id=record.id))
    form = SheetForm()
    form.sheet.choices = [SelectChoice(name, name) for name in record.sheets]
    if form.validate_on_submit():
        with service_call(form) as outcome:
            engine.choose_sheet(record, form.sheet.data)
        if outcome:
            return redirect(url_for("staff.import_mapping", import_id=import_id))
        record = _load(import_id)
    return render_template("staff/imports/sheet.html", record=record, form=form), 400 if form.errors else 200


def _column_samples(record: ContactImport) -> list[list[str]]:
    rows = engine.preview(record, limit=3)
    return [[row.cells[i] if i < len(row.cells) else "" for row in rows] for i in range(len(record.header))]


@bp.route("/imports/<int:import_id>/mapping", methods=["GET", "POST"])
@staff_login_required
def import_mapping(import_id):
    record = _load(import_id)
    if record.status != ContactImport.UPLOADED or record.needs_sheet:
        return redirect(url_for("staff.import_detail", import_id=record.id))
    form = FlaskForm()
    mapping, error, status = list(record.mapping), None, 200
    if request.method == "POST" and form.validate_on_submit():
        saved_id = request.form.get("saved_mapping", type=int)
        if request.form.get("apply") and saved_id:
            saved = get_or_404(ImportMapping, saved_id)
            mapping = engine.apply_saved_mapping(record, saved)
        else:
            mapping = [request.form.get(f"column-{i}", "") for i in range(len(record.header))]
            with service_call(show_error=False) as outcome:
                engine.set_mapping(record, mapping)
                name = (request.form.get("mapping_name") or "").strip()
                if name:
                    engine.save_mapping(name, record.header, mapping, actor=current_principal())
            if outcome:
                return redirect(url_for("staff.import_preview", import_id=import_id))
            record = _load(import_id)
            error, status = outcome.error.message, 400
    elif request.method == "POST":
        status = 400
    return render_template("staff/imports/mapping.html", record=record, form=form, mapping=mapping, error=error,
                           targets=targets(load_custom_fields()), samples=_column_samples(record),
                           saved=engine.saved_mappings()), status


def _options_form(record: ContactImport) -> OptionsForm:
    form = OptionsForm()
    form.status_id.choices = [SelectChoice("", "The default status")] + [
        SelectChoice(str(s.id), s.name) for s in db.session.scalars(
            sa.select(PipelineStatus).where(PipelineStatus.archived_at.is_(None)).order_by(PipelineStatus.position))]
    form.owner_id.choices = [SelectChoice("", "You")] + [
        SelectChoice(str(u.id), u.display_name) for u in db.session.scalars(
            sa.select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.name))]
    form.circle_ids.choices = [SelectChoice(str(c.id), c.name) for c in circle_service.active_circles()]
    return form


@bp.route("/imports/<int:import_id>/preview", methods=["GET", "POST"])
@staff_login_required
def import_preview(import_id):
    record = _load(import_id)
    if record.status != ContactImport.UPLOADED or record.needs_sheet:
        return redirect(url_for("staff.import_detail", import_id=record.id))
    form, status = _options_form(record), 200
    if form.validate_on_submit():
        options = {"on_duplicate": form.on_duplicate.data, "role": form.role.data, "status_id": form.status_id.data,
                   "owner_id": form.owner_id.data, "circle_ids": form.circle_ids.data or [],
                   "tags": [t for t in (form.tags.data or "").split(",") if t.strip()]}
        with service_call(form) as outcome:
            operation = engine.start_import(record, options, actor=current_principal())
            operation_id = operation.id
        if outcome:
            return redirect(url_for("staff.operation", operation_id=operation_id))
        record = _load(import_id)
        status = 400
    elif request.method == "POST":
        status = 400
    labels = {t.value: t.label for t in targets(load_custom_fields())}
    return render_template("staff/imports/preview.html", record=record, form=form, rows=engine.preview(record),
                           labels=labels), status


@bp.get("/imports/<int:import_id>")
@staff_login_required
def import_detail(import_id):
    with service_call():
        record = _load(import_id)
    if record.status == ContactImport.UPLOADED:
        return redirect(_next_step(record))
    return render_template("staff/imports/detail.html", record=record, counts=engine.live_counts(record))


@bp.get("/imports/<int:import_id>/failed.csv")
@staff_login_required
def import_failed_rows(import_id):
    record = _load(import_id)
    stem = record.filename.rsplit(".", 1)[0] or "import"
    return download(engine.failed_rows(record), "csv", f"{stem[:80]}-failed-rows")


@bp.post("/imports/<int:import_id>/undo")
@staff_login_required
def import_undo(import_id):
    record = _load(import_id)
    with service_call() as outcome:
        operation_id = engine.undo_import(record, actor=current_principal()).id
    if not outcome:
        return redirect(url_for("staff.import_detail", import_id=import_id))
    flash("Undoing the import: its new contacts are being removed and the fields it changed restored.", "success")
    return redirect(url_for("staff.operation", operation_id=operation_id))


@bp.post("/imports/<int:import_id>/discard")
@staff_login_required
def import_discard(import_id):
    record = _load(import_id)
    with service_call() as outcome:
        engine.discard_import(record)
    if not outcome:
        return redirect(url_for("staff.import_detail", import_id=import_id))
    flash("The upload was discarded.", "success")
    return redirect(url_for("staff.imports"))
