"""A Circle's content on its staff page: write, edit, publish or unpublish, order and delete
its pages, links and files, and open a file. Thin views over crm.circle_content; authoring
needs "crm.configure", reading what a Circle holds "contacts.view"."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, StringField, TextAreaField

from core.identity import current_principal
from core.permissions import require, staff_login_required
from core.storage import StoredFileMissing
from core.tenancy import get_or_404
from core.web import send_stored_file, service_call
from crm import circle_content as content
from crm.models import Circle, CircleItem
from staff import bp

UPLOAD_ENDPOINTS = {"staff.circle_item_new", "staff.circle_item_edit"}


@bp.url_value_preprocessor
def _allow_file_uploads(endpoint, values):
    """A Circle's file may be larger than other requests (up to the platform's cap; the
    tenant's own limit is checked while reading). Before the CSRF check reads the form."""
    if endpoint in UPLOAD_ENDPOINTS and request.method == "POST":
        request.max_content_length = current_app.config["CIRCLE_FILE_MAX_BYTES"] + 64 * 1024


class _ItemForm(FlaskForm):
    title = StringField("Title", render_kw={"maxlength": content.TITLE_MAX, "autocomplete": "off"})


class PageForm(_ItemForm):
    body = TextAreaField("Text", render_kw={"rows": 14},
                         description="Blank lines start new paragraphs. You may also write HTML: headings, bold, "
                                     "italics, lists, quotes and links are kept; anything else is removed.")


class LinkForm(_ItemForm):
    url = StringField("Web address", render_kw={"type": "url", "inputmode": "url", "autocomplete": "off",
                                                "placeholder": "https://"})


class FileForm(_ItemForm):
    file = FileField("File")


FORMS = {CircleItem.PAGE: PageForm, CircleItem.LINK: LinkForm, CircleItem.FILE: FileForm}


def _with_publish(form_class):
    return type(f"New{form_class.__name__}", (form_class,),
                {"publish": BooleanField("Publish now: members see it in the portal straight away")})


def _circle_url(circle: Circle) -> str:
    return url_for("staff.circle", circle_id=circle.id, _anchor="content")


def _item_or_404(circle: Circle, item_id: int) -> CircleItem:
    item = content.item_of(circle, item_id)
    if item is None:
        abort(404)
    return item


def _file_help(form) -> None:
    if hasattr(form, "file"):
        kinds = ", ".join(content.FILE_KINDS[k].label for k in content.allowed_kinds()) or "none (see CRM settings)"
        form.file.description = f"Up to {content.settings().circle_file_max_mb} MB. Allowed: {kinds}."


@bp.route("/circles/<int:circle_id>/items/new", methods=["GET", "POST"], endpoint="circle_item_new")
@staff_login_required
def new_item(circle_id):
    circle = get_or_404(Circle, circle_id)
    require("crm.configure")
    kind = request.args.get("kind")
    if kind not in FORMS:
        kind = CircleItem.PAGE
    form = _with_publish(FORMS[kind])()
    _file_help(form)
    if form.validate_on_submit():
        actor, publish = current_principal(), form.publish.data
        with service_call(form) as outcome:
            if kind == CircleItem.PAGE:
                item = content.create_page(circle, form.title.data, form.body.data, actor, publish=publish)
            elif kind == CircleItem.LINK:
                item = content.create_link(circle, form.title.data, form.url.data, actor, publish=publish)
            else:
                upload = request.files.get("file")
                item = content.create_file(circle, form.title.data, upload.stream if upload else None,
                                           upload.filename if upload else None, actor, publish=publish)
        if outcome:
            state = "published" if item.published else "saved as a draft (members do not see it yet)"
            flash(f"{item.kind_label} “{item.title}” {state}.", "success")
            return redirect(_circle_url(circle))
    status = 422 if request.method == "POST" else 200
    return render_template("staff/circles/item_form.html", circle=circle, form=form, kind=kind, item=None), status


@bp.route("/circles/<int:circle_id>/items/<int:item_id>/edit", methods=["GET", "POST"], endpoint="circle_item_edit")
@staff_login_required
def edit_item(circle_id, item_id):
    circle = get_or_404(Circle, circle_id)
    item = _item_or_404(circle, item_id)
    require("crm.configure")
    form = FORMS[item.kind](obj=item)
    if item.kind == CircleItem.FILE:
        form.file.label.text = "Replace the file"
    _file_help(form)
    if form.validate_on_submit():
        upload = request.files.get("file") if item.kind == CircleItem.FILE else None
        with service_call(form) as outcome:
            changed = content.update_item(
                item, circle, current_principal(), title=form.title.data,
                body=getattr(form, "body", None) and form.body.data, url=getattr(form, "url", None) and form.url.data,
                stream=upload.stream if upload else None, filename=upload.filename if upload else None)
        if outcome:
            flash(f"{item.kind_label} “{item.title}” saved." if changed else "Nothing to change.", "success")
            return redirect(_circle_url(circle))
    status = 422 if request.method == "POST" else 200
    return render_template("staff/circles/item_form.html", circle=circle, form=form, kind=item.kind,
                           item=item), status


def _publish(circle_id, item_id, published: bool):
    circle = get_or_404(Circle, circle_id)
    item = _item_or_404(circle, item_id)
    require("crm.configure")
    with service_call() as outcome:
        changed = content.set_published(item, circle, published, current_principal())
    if outcome:
        if published:
            flash(f"“{item.title}” is published: members see it in the portal." if changed
                  else f"“{item.title}” already is published.", "success" if changed else "info")
        else:
            flash(f"“{item.title}” is unpublished: members no longer see it." if changed
                  else f"“{item.title}” is not published.", "success" if changed else "info")
    return redirect(_circle_url(circle))


@bp.post("/circles/<int:circle_id>/items/<int:item_id>/publish", endpoint="circle_item_publish")
@staff_login_required
def publish_item(circle_id, item_id):
    return _publish(circle_id, item_id, True)


@bp.post("/circles/<int:circle_id>/items/<int:item_id>/unpublish", endpoint="circle_item_unpublish")
@staff_login_required
def unpublish_item(circle_id, item_id):
    return _publish(circle_id, item_id, False)


@bp.post("/circles/<int:circle_id>/items/<int:item_id>/move", endpoint="circle_item_move")
@staff_login_required
def move_item(circle_id, item_id):
    circle = get_or_404(Circle, circle_id)
    item = _item_or_404(circle, item_id)
    require("crm.configure")
    direction = request.form.get("direction", "")
    with service_call() as outcome:
        moved = content.move_item(item, circle, direction, current_principal())
    if outcome:
        if moved:
            flash(f"Moved “{item.title}” {direction}.", "success")
        else:
            flash(f"“{item.title}” is already {'first' if direction == content.UP else 'last'}.", "info")
    return redirect(_circle_url(circle))


@bp.post("/circles/<int:circle_id>/items/<int:item_id>/delete", endpoint="circle_item_delete")
@staff_login_required
def delete_item(circle_id, item_id):
    circle = get_or_404(Circle, circle_id)
    item = _item_or_404(circle, item_id)
    require("crm.configure")
    title, kind = item.title, item.kind_label
    with service_call() as outcome:
        content.delete_item(item, circle, current_principal())
    if outcome:
        flash(f"{kind} “{title}” deleted.", "success")
    return redirect(_circle_url(circle))


@bp.get("/circles/<int:circle_id>/items/<int:item_id>/file", endpoint="circle_item_file")
@staff_login_required
def item_file(circle_id, item_id):
    circle = get_or_404(Circle, circle_id)
    item = _item_or_404(circle, item_id)
    require("contacts.view")
    if item.kind != CircleItem.FILE:  # a page or link has no file: its place on the circle's page
        return redirect(_circle_url(circle))
    try:
        stream = content.open_file(item)
    except StoredFileMissing:
        flash(f"The file of “{item.title}” is missing from the file store. Upload it again with Edit.", "error")
        return redirect(_circle_url(circle))
    return send_stored_file(stream, name=item.file_name, content_type=item.content_type, size=item.file_size,
                            inline=content.shown_inline(item))
