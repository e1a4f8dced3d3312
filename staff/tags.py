"""Tag pages: the tag cloud, one tag (rename, merge, delete), and tagging from a contact's or
a company's page. Thin views over crm.tags."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired

from core.identity import current_principal
from core.permissions import require, staff_login_required
from core.tenancy import get_or_404
from core.web import service_call
from crm import tags as service
from crm.access import get_visible_contact_or_404
from crm.models import Company, Tag
from staff import bp, contact_page_url


class RenameTagForm(FlaskForm):
    name = StringField("New name", validators=[DataRequired("Enter a name for the tag.")],
                       render_kw={"maxlength": service.NAME_MAX, "autocomplete": "off"},
                       description="Renaming it to the name of another tag merges the two.")


class DeleteTagForm(FlaskForm):
    confirm = BooleanField("Yes, delete this tag and take it off every contact and company",
                           validators=[DataRequired("Tick the box to confirm.")])


def contacts_with_tag_url(tag_id: int) -> str:
    """The contact list filtered by the tag."""
    if "staff.contacts" in current_app.view_functions:
        return url_for("staff.contacts", tag=tag_id)
    return f"/staff/contacts?tag={tag_id}"


@bp.get("/tags")
@staff_login_required
def tags():
    require("contacts.view")
    cloud = service.cloud_sizes(service.tag_cloud(current_principal()))
    return render_template("staff/tags/cloud.html", cloud=cloud, contacts_url=contacts_with_tag_url)


def _render_tag(tag: Tag, rename: RenameTagForm, delete: DeleteTagForm, status: int = 200):
    contacts, companies = service.tag_usage(tag, current_principal())
    return render_template("staff/tags/detail.html", tag=tag, rename=rename, delete=delete, contacts=contacts,
                           companies=companies, contacts_url=contacts_with_tag_url(tag.id)), status


@bp.route("/tags/<int:tag_id>", methods=["GET", "POST"])
@staff_login_required
def tag(tag_id):
    tag = get_or_404(Tag, tag_id)
    require("contacts.view")
    rename = RenameTagForm(obj=tag, prefix="rename")
    delete = DeleteTagForm(prefix="delete")
    if rename.is_submitted():
        require("crm.configure")
        if rename.validate():
            old = tag.name
            with service_call(rename) as outcome:
                kept = service.rename_tag(tag, rename.name.data, current_principal())
            if outcome:
                if kept.id != tag_id:
                    flash(f"“{old}” is merged into “{kept.name}”.", "success")
                elif kept.name != old:
                    flash(f"Tag renamed to “{kept.name}”.", "success")
                else:
                    flash("Nothing to change.", "info")
                return redirect(url_for("staff.tag", tag_id=kept.id))
    return _render_tag(tag, rename, delete)


@bp.post("/tags/<int:tag_id>/delete")
@staff_login_required
def delete_tag(tag_id):
    tag = get_or_404(Tag, tag_id)
    require("crm.configure")
    delete = DeleteTagForm(prefix="delete")
    if not delete.validate_on_submit():
        return _render_tag(tag, RenameTagForm(obj=tag, prefix="rename", formdata=None), delete, 400)
    name = tag.name
    with service_call() as outcome:
        service.delete_tag(tag, current_principal())
    if not outcome:
        return redirect(url_for("staff.tag", tag_id=tag.id))
    flash(f"Tag “{name}” deleted.", "success")
    return redirect(url_for("staff.tags"))


# --- from a contact's or a company's page -------------------------------------------------------------

def _tag_from_record_page(record, tag_record, back: str):
    """The tag field of a record's page: `tag_record(record, name, actor)` from the service;
    a bad name (empty, too long) is flashed and nothing changes."""
    with service_call() as outcome:
        tag = tag_record(record, request.form.get("name"), current_principal())
    if outcome:
        flash(f"Tagged “{tag.name}”.", "success")
    return redirect(back)


def _untag_from_record_page(record, tag: Tag, untag_record, back: str):
    with service_call() as outcome:
        removed = untag_record(record, tag, current_principal())
    if outcome and removed:
        flash(f"Tag “{tag.name}” removed.", "success")
    return redirect(back)


@bp.post("/contacts/<int:contact_id>/tags")
@staff_login_required
def contact_add_tag(contact_id):
    contact = get_visible_contact_or_404(contact_id)
    require("contacts.edit", contact)
    return _tag_from_record_page(contact, service.tag_contact, contact_page_url(contact.id))


@bp.post("/contacts/<int:contact_id>/tags/<int:tag_id>/remove")
@staff_login_required
def contact_remove_tag(contact_id, tag_id):
    contact = get_visible_contact_or_404(contact_id)
    tag = get_or_404(Tag, tag_id)
    require("contacts.edit", contact)
    return _untag_from_record_page(contact, tag, service.untag_contact, contact_page_url(contact.id))


@bp.post("/companies/<int:company_id>/tags")
@staff_login_required
def company_add_tag(company_id):
    company = get_or_404(Company, company_id)
    require("contacts.edit", company)
    return _tag_from_record_page(company, service.tag_company, url_for("staff.company", company_id=company.id))


@bp.post("/companies/<int:company_id>/tags/<int:tag_id>/remove")
@staff_login_required
def company_remove_tag(company_id, tag_id):
    company = get_or_404(Company, company_id)
    tag = get_or_404(Tag, tag_id)
    require("contacts.edit", company)
    return _untag_from_record_page(company, tag, service.untag_company,
                                   url_for("staff.company", company_id=company.id))
