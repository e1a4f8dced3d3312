"""Roles and permissions (/staff/settings/roles): which permission each role has, as a matrix of
checkboxes, for those who may change roles. A thin view over core.roles, which holds the rules."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField

from core.identity import StaffRole, current_principal
from core.permissions import EDITABLE_ROLES, PERMISSIONS, require, role_permissions, staff_login_required
from core.roles import (ONLY_OWNERS_CHANGE_ADMINS, OWNERS_ALWAYS, ROLE_PEOPLE, describe, editable_roles, lock_reason,
                        update_role_permissions)
from core.web import service_call
from staff import bp


def field_name(role: str, permission: str) -> str:
    return f"{role}-{permission.replace('.', '-')}"


def _matrix_form(roles: tuple[str, ...], sets: dict[str, frozenset[str]]) -> FlaskForm:
    """One checkbox per permission of each role the actor may change, ticked as the tenant has
    it. (The fixed boxes are fields too: the page sends their value, so a form that tries to
    change one is refused in plain words rather than quietly ignored.)"""

    class RoleMatrixForm(FlaskForm):
        pass

    for role in roles:
        for permission, label in PERMISSIONS.items():
            setattr(RoleMatrixForm, field_name(role, permission),
                    BooleanField(f"{ROLE_PEOPLE[role]}: {label}", default=permission in sets[role]))
    return RoleMatrixForm()


@dataclass
class Cell:
    role: str
    has: bool
    field: object = None  # the checkbox, when the actor may change this box
    fixed: bool = False  # changeable by nobody (lock_reason): shown greyed out, its value sent as it is
    note_id: str | None = None  # the words that say why it is fixed


@dataclass
class Row:
    permission: str
    label: str
    cells: list[Cell] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # note id -> why, once per row


def _rows(form, editable: tuple[str, ...], sets: dict[str, frozenset[str]]) -> list[Row]:
    rows = []
    for permission, label in PERMISSIONS.items():
        row = Row(permission, label)
        for role in (StaffRole.OWNER, *EDITABLE_ROLES):
            cell = Cell(role, permission in sets[role])
            if role == StaffRole.OWNER:
                cell.note_id = "owners-always"
            else:
                if role in editable:
                    cell.field = form[field_name(role, permission)]
                reason = lock_reason(role, permission)
                if reason:
                    cell.fixed = True
                    cell.note_id = next((note_id for note_id, text in row.notes.items() if text == reason),
                                        f"why-{field_name(role, permission)}")
                    row.notes[cell.note_id] = reason
                elif role not in editable:
                    cell.note_id = "only-owners"
            row.cells.append(cell)
        rows.append(row)
    return rows


def _page(form, editable, sets):
    return render_template(
        "staff/roles.html", form=form, rows=_rows(form, editable, sets), roles=(StaffRole.OWNER, *EDITABLE_ROLES),
        editable=editable, role_labels=StaffRole.LABELS, role_people=ROLE_PEOPLE, owners_always=OWNERS_ALWAYS,
        only_owners=ONLY_OWNERS_CHANGE_ADMINS,
    )


@bp.route("/settings/roles", methods=["GET", "POST"])
@staff_login_required
def roles():
    require("roles.manage")
    actor = current_principal()
    sets = role_permissions(actor.tenant_id)
    editable = editable_roles(actor)
    form = _matrix_form(editable, sets)
    if form.validate_on_submit():
        wanted = {role: {p for p in PERMISSIONS if form[field_name(role, p)].data} for role in editable}
        with service_call(form) as outcome:
            changes = update_role_permissions(actor, wanted)
        if outcome:
            flash(describe(changes) if changes else "Nothing to change.", "success")
            return redirect(url_for("staff.roles"))
    return _page(form, editable, sets)
