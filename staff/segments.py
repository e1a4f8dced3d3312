"""Saved segments of the contact list."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from core.identity import current_principal
from core.permissions import require, staff_login_required
from core.tenancy import get_or_404
from core.web import service_call
from crm.contact_list import ContactFilters
from crm.models import Segment
from crm.segments import delete_segment, filters_of, may_see, save_segment, segments_for
from staff import bp


@bp.get("/segments")
@staff_login_required
def segments():
    require("contacts.view")
    return render_template("staff/segments/list.html", segments=segments_for(current_principal()))


@bp.post("/segments")
@staff_login_required
def save_segment_page():
    require("contacts.view")
    filters = ContactFilters.from_args(request.form)
    with service_call() as outcome:
        segment = save_segment(request.form.get("name", ""), filters, actor=current_principal(),
                               shared=request.form.get("shared") != "no")
    if not outcome:  # back to the list as it was filtered
        return redirect(url_for("staff.contacts") + "?" + "&".join(f"{k}={v}" for k, v in filters.to_args()))
    flash(f"Saved the segment “{segment.name}”. It updates itself as contacts change.", "success")
    return redirect(url_for("staff.segment", segment_id=segment.id))


@bp.get("/segments/<int:segment_id>")
@staff_login_required
def segment(segment_id):
    record = get_or_404(Segment, segment_id)
    if not may_see(current_principal(), record):
        abort(404)
    require("contacts.view")
    from urllib.parse import urlencode

    args = filters_of(record).to_args() + [("segment", str(record.id))]
    return redirect(url_for("staff.contacts") + "?" + urlencode(args))


@bp.post("/segments/<int:segment_id>/delete")
@staff_login_required
def delete_segment_page(segment_id):
    record = get_or_404(Segment, segment_id)
    if not may_see(current_principal(), record):
        abort(404)
    require("contacts.view")
    with service_call() as outcome:
        delete_segment(record, actor=current_principal())
    if outcome:
        flash("Segment deleted.", "success")
    return redirect(url_for("staff.segments"))
