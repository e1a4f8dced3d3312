"""The contact list's selection, bulk actions and export."""
from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlencode

from flask import flash, g, jsonify, redirect, render_template, request, session, url_for

from core.audit import record
from core.identity import current_principal
from core.permissions import require, staff_login_required
from core.web import safe_next_url, service_call
from crm import selection as selections
from crm.bulk import ACTIONS, run_bulk_action
from crm.contact_list import ContactFilters, filtered_query
from core.spreadsheet import download
from crm.export import rows as export_rows, xlsx_too_large
from staff import bp

_ALL_MATCHING = "contact_selection_all_matching"


def current_selection() -> selections.Selection:
    """The member's selection: "all matching" a filter (kept in the session for this tenant),
    or the rows they picked."""
    saved = session.get(_ALL_MATCHING)
    staff = current_principal()
    if saved and saved.get("tenant") == g.tenant.id and saved.get("staff") == staff.id:
        return selections.Selection(staff, ContactFilters.from_dict(saved["filters"]))
    return selections.Selection(staff)


def selection_summary() -> dict:
    chosen = current_selection()
    return {"count": chosen.count(), "all_matching": chosen.is_all_matching}


def _back() -> str:
    return safe_next_url(request.form.get("next"), url_for("staff.contacts"))


@bp.post("/contacts/selection")
@staff_login_required
def contact_selection():
    """Change the selection: pick/unpick rows of a page, choose all matching, or clear."""
    require("contacts.view")
    staff = current_principal()
    change = request.form.get("change", "page")
    wants_json = request.accept_mimetypes.best == "application/json"
    with service_call(show_error=False) as outcome:
        if change == "clear":
            session.pop(_ALL_MATCHING, None)
            selections.clear(staff)
        elif change == "all_matching":
            selections.clear(staff)
            session[_ALL_MATCHING] = {"tenant": g.tenant.id, "staff": staff.id,
                                      "filters": ContactFilters.from_args(request.form).to_dict()}
        else:
            if session.pop(_ALL_MATCHING, None):
                selections.clear(staff)  # picking rows starts a fresh, explicit selection
            page_ids = [int(i) for i in request.form.getlist("page_ids") if i.isdigit()]
            checked = {int(i) for i in request.form.getlist("ids") if i.isdigit()} & set(page_ids)
            selections.pick(staff, sorted(checked))
            selections.unpick(staff, sorted(set(page_ids) - checked))
    if wants_json:
        if outcome.error:
            return jsonify(error={"message": outcome.error.message}), 400
        return jsonify(selection_summary())
    if outcome.error:
        flash(outcome.error.message, "error")
    return redirect(_back())


@bp.post("/contacts/bulk")
@staff_login_required
def contact_bulk():
    require("contacts.view")
    action = request.form.get("action", "")
    chosen = current_selection()
    with service_call(show_error=False) as outcome:
        result = run_bulk_action(chosen, action, request.form.to_dict(), actor=current_principal())
        if action == "delete":
            selections.clear(current_principal())
            session.pop(_ALL_MATCHING, None)
    if outcome.error and outcome.error.field == "confirm":  # an action that wants a second look
        return render_template("staff/contacts/confirm_bulk.html", message=outcome.error.message, form=request.form,
                               action_label=ACTIONS.get(action, action))
    if outcome.error:
        flash(outcome.error.message, "error")
        return redirect(_back())
    if result.operation is not None:
        flash(f"{result.operation.total:,} contacts: the change runs in the background. This page shows how far "
              "it got; you can leave it and come back from “Background tasks” in your account menu.", "success")
        return redirect(url_for("staff.operation", operation_id=result.operation.id))
    flash(result.message, "success")
    return redirect(_back())


@bp.get("/contacts/export")
@staff_login_required
def contact_export():
    require("contacts.export")
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        fmt = "csv"
    if request.args.get("scope") == "selection":
        chosen = current_selection()
        query, count, scope = chosen.query(), chosen.count(), "selection"
    else:
        filters = ContactFilters.from_args(request.args)
        query, scope = filtered_query(filters, current_principal()), "list"
        count = selections.Selection(current_principal(), filters).count()
    too_large = xlsx_too_large(query) if fmt == "xlsx" else None
    if too_large:
        flash(too_large, "error")
        return redirect(url_for("staff.contacts", **{k: v for k, v in request.args.to_dict(flat=False).items()
                                                     if k not in ("format", "scope")}))
    with service_call():
        record("contact.exported", details={"format": fmt, "scope": scope, "contacts": count,
                                            "filters": request.args.to_dict(flat=False)})
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    return download(export_rows(query), fmt, f"contacts-{g.tenant.slug}-{stamp}", sheet_title="Contacts")


def list_query_string(filters: ContactFilters, **extra) -> str:
    return urlencode(filters.to_args() + [(k, v) for k, v in extra.items() if v not in (None, "")])
