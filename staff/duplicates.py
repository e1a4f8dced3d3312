"""Possible duplicates and merging contacts: the list of groups (staff.duplicates) and the
side-by-side merge page (staff.merge). Both are for those whose role may merge (contacts.merge)."""
from __future__ import annotations

from dataclasses import dataclass

from flask import flash, redirect, render_template, request, url_for

from core.identity import current_principal
from core.permissions import require, staff_login_required
from core.web import MAX_ID, int_arg, service_call
from crm.access import get_visible_contact_or_404
from crm.contacts import SOCIAL_KEYS
from crm.custom_fields import definitions
from crm.duplicates import duplicate_groups
from crm.merge import (CUSTOM_PREFIX, FIELDS_BY_NAME, MAX_CONTACTS, choice_names, default_choices, default_survivor,
                       field_value, find_candidates, merge_contacts, related_counts)
from crm.models import Contact
from crm.normalize import display_phone
from staff import bp

GROUPS_PER_PAGE = 25


@bp.get("/duplicates")
@staff_login_required
def duplicates():
    contact_id = int_arg("contact")
    contact = get_visible_contact_or_404(contact_id) if contact_id else None
    require("contacts.merge")
    if contact is not None and contact.merged_into_id:
        return redirect(url_for("staff.duplicates", contact=contact.merged_into_id))
    after = request.args.get("after") or None
    groups = duplicate_groups(current_principal(), limit=GROUPS_PER_PAGE + 1, after=after, contact=contact)
    next_cursor = groups[GROUPS_PER_PAGE - 1].cursor if len(groups) > GROUPS_PER_PAGE else None
    return render_template("staff/duplicates/list.html", groups=groups[:GROUPS_PER_PAGE], contact=contact,
                           next_cursor=next_cursor, first_page=after is None, max_merge=MAX_CONTACTS)


# --- the merge page -------------------------------------------------------------------------------

@dataclass
class Row:
    name: str  # the choice key ("email", "custom:size") or, for read-only rows, a plain key
    label: str
    cells: list[tuple[Contact, str]]  # each contact with its value, as shown
    chosen: int | None = None  # the contact whose value is chosen (radio rows)
    same: bool = False  # every contact has the same value: nothing to choose

    @property
    def input_name(self) -> str:
        return f"choice-{self.name}"


def _ids(values) -> list[int]:
    """Contact ids from ?ids=1&ids=2 (or "1,2"), in order, each once."""
    ids: list[int] = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if part.isdigit() and 0 < int(part) <= MAX_ID and int(part) not in ids:
                ids.append(int(part))
    return ids


def _shown(contact: Contact, name: str, custom: dict) -> str:
    """A merge field's value in words, as the contact page shows it."""
    value = field_value(contact, name)
    if name.startswith(CUSTOM_PREFIX):
        definition = custom.get(name[len(CUSTOM_PREFIX):])
        if value in (None, "", [], {}):
            return ""
        if isinstance(value, bool) or (definition is not None and definition.field_type == "boolean"):
            return "Yes" if value else "No"
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        if definition is not None and definition.field_type == "phone":
            return display_phone(str(value))
        return str(value)
    if name == "phone":
        return display_phone(value)
    if name == "address":
        return ", ".join(str(v) for v in (contact.street, contact.postal_code, contact.city, contact.region,
                                          contact.country) if v)
    if name == "company_id":
        return contact.company.name if contact.company is not None else ""
    if name == "social":
        return "\n".join(f"{SOCIAL_KEYS.get(k, k)}: {v}" for k, v in (contact.social or {}).items() if v)
    if name == "role":
        return contact.role_label
    if name == "status_id":
        return contact.status.name if contact.status is not None else ""
    if name == "owner_id":
        return contact.owner.display_name if contact.owner is not None else "Nobody"
    if name in ("is_active", "is_test"):
        return "Yes" if value else "No"
    return "" if value is None else str(value)


def _rows(contacts: list[Contact], survivor: Contact, chosen: dict[str, int]) -> list[Row]:
    custom = {d.key: d for d in definitions("contact")}
    others = [c for c in contacts if c.id != survivor.id]
    defaults = default_choices(survivor, others)
    rows = []
    for name in choice_names(contacts):
        if name in FIELDS_BY_NAME:
            label = FIELDS_BY_NAME[name].label
        else:
            definition = custom.get(name[len(CUSTOM_PREFIX):])
            label = definition.label if definition is not None else name[len(CUSTOM_PREFIX):]
        cells = [(c, _shown(c, name, custom)) for c in contacts]
        same = len({repr(field_value(c, name)) for c in contacts}) == 1
        pick = chosen.get(name)
        if pick not in {c.id for c in contacts}:
            pick = defaults[name]
        rows.append(Row(name, label, cells, pick, same))
    return rows


def _combined_rows(contacts: list[Contact]) -> list[Row]:
    """What is kept from every contact, with nothing to choose."""
    counts = related_counts(contacts)
    words = {"notes": ("note", "notes"), "tasks": ("task", "tasks"), "activities": ("activity", "activities"),
             "events": ("event", "events"), "circles": ("circle", "circles"), "tags": ("tag", "tags")}

    def brings(contact):
        parts = [f"{n} {words[k][0] if n == 1 else words[k][1]}" for k, n in counts[contact.id].items() if n]
        return ", ".join(parts) or "Nothing"

    return [
        Row("extra_emails", "Other e-mails", [(c, "\n".join(c.extra_emails or [])) for c in contacts]),
        Row("extra_phones", "Other phones", [(c, "\n".join(display_phone(p) for p in c.extra_phones or []))
                                             for c in contacts]),
        Row("notes", "Notes", [(c, c.notes or "") for c in contacts]),
        Row("records", "Brings along", [(c, brings(c)) for c in contacts]),
    ]


def _load(ids: list[int]) -> tuple[list[Contact], list[Contact], list[str]]:
    """(contacts as asked, contacts to show, notices). A contact merged away since is shown
    as its survivor."""
    asked = [get_visible_contact_or_404(i) for i in ids]
    shown: list[Contact] = []
    notices = []
    for contact in asked:
        if contact.merged_into_id:
            survivor = get_visible_contact_or_404(contact.merged_into_id)
            notices.append(f"{contact.full_name} was already merged into {survivor.full_name}.")
            contact = survivor
        if contact.id not in {c.id for c in shown}:
            shown.append(contact)
    return asked, shown, notices


@bp.route("/contacts/merge", methods=["GET", "POST"])
@staff_login_required
def merge():
    source = request.form if request.method == "POST" else request.args
    ids = _ids(source.getlist("ids"))
    notices = []
    if len(ids) > MAX_CONTACTS:
        notices.append(f"Merge at most {MAX_CONTACTS} contacts at a time; the first {MAX_CONTACTS} are here.")
        ids = ids[:MAX_CONTACTS]
    asked, contacts, merged_notices = _load(ids)
    require("contacts.merge")
    notices += merged_notices
    staff = current_principal()

    by_id = {c.id: c for c in contacts}
    wanted = source.get("survivor", type=int)
    survivor = by_id.get(wanted) if wanted in by_id else (default_survivor(contacts) if contacts else None)
    error = None
    chosen: dict[str, int] = {}

    if request.method == "POST":
        chosen = {name: source.get(f"choice-{name}", type=int) for name in choice_names(contacts)
                  if source.get(f"choice-{name}", type=int) is not None}
        if survivor is None or len(asked) < 2:
            error = "Choose at least two contacts to merge."
        else:
            kept = next((c for c in asked if c.id == survivor.id), survivor)
            names = ", ".join(c.full_name for c in asked if c.id != kept.id)
            with service_call(show_error=False) as outcome:  # the merge page shows the error itself
                merge_contacts(kept, [c for c in asked if c.id != kept.id], chosen, actor=staff)
            if outcome:
                flash(f"Merged {names} into {kept.full_name}.", "success")
                return redirect(url_for("staff.contact", contact_id=kept.id))
            error = outcome.error.message

    query = (request.args.get("q") or "").strip()[:200]
    candidates = find_candidates(query, staff, exclude=[c.id for c in contacts]) if query else []
    suggestions: list[Contact] = []
    if len(contacts) == 1:
        seen = {contacts[0].id}
        for group in duplicate_groups(staff, limit=10, contact=contacts[0]):
            for contact in group.contacts:
                if contact.id not in seen:
                    seen.add(contact.id)
                    suggestions.append(contact)
    rows = _rows(contacts, survivor, chosen) if len(contacts) > 1 else []
    return render_template(
        "staff/duplicates/merge.html", contacts=contacts, survivor=survivor, rows=rows,
        combined=_combined_rows(contacts) if len(contacts) > 1 else [], error=error, notices=notices,
        query=query, candidates=candidates, suggestions=suggestions, max_merge=MAX_CONTACTS,
        ids=[c.id for c in contacts])
