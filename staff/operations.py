"""Background tasks (core.operations): the list, a task's progress page and its JSON, cancelling."""
from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, url_for

from core.identity import current_principal
from core.operations import Operation, cancel_operation, may_see, operations_for
from core.permissions import can, require, staff_login_required
from core.tenancy import get_or_404
from core.web import service_call
from staff import bp


def _visible_or_404(operation_id: int) -> Operation:
    """Another tenant's task, or another member's for Staff, does not exist (404)."""
    operation = get_or_404(Operation, operation_id)
    if not may_see(current_principal(), operation):
        abort(404)
    return operation


@bp.get("/operations")
@staff_login_required
def operations():
    require("contacts.view")
    staff = current_principal()
    return render_template("staff/operations/list.html", operations=operations_for(staff),
                           sees_all=can(staff, "operations.view_all"))


@bp.get("/operations/<int:operation_id>")
@staff_login_required
def operation(operation_id):
    record = _visible_or_404(operation_id)
    require("contacts.view")
    return render_template("staff/operations/detail.html", operation=record)


@bp.get("/operations/<int:operation_id>/progress")
@staff_login_required
def operation_progress(operation_id):
    record = _visible_or_404(operation_id)
    require("contacts.view")
    response = jsonify(record.progress())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/operations/<int:operation_id>/cancel")
@staff_login_required
def cancel_operation_page(operation_id):
    record = _visible_or_404(operation_id)
    require("contacts.view")
    with service_call() as outcome:
        cancel_operation(record, actor=current_principal())
    if outcome:
        flash("Cancelled. What was done before stays done; nothing more will change.", "success")
    return redirect(url_for("staff.operation", operation_id=operation_id))
