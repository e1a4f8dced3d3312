"""Staff visibility holds on every page that can name a contact. With the tenant set to "Staff
see their own contacts and their Circles'", a restricted Staff member opens every such page:
a contact hidden from them is never named (nor linked), wherever it sits — a company's primary
contact and timeline, an event's list, a task, a note, a circle, the duplicates, a form
submission, the lists and searches (the contact list's and the merge page's; there is no
autocomplete endpoint nor any notification page to check) — while a contact they may see still is."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.db import db
from crm.companies import set_primary_contact
from crm.models import Circle, Company, Contact, Event
from tests.factories import (add_attendee, add_to_circle, make_circle, make_company, make_contact, make_event,
                             make_note, make_tag, make_task, restrict_staff_visibility, tag_record)
from tests.forms.factories import make_form, make_submission
from tests.support import in_tenant, post_form, staff_member

HIDDEN, VISIBLE = "Zelda Hiddenname", "Victor Visiblename"


@pytest.fixture
def matrix(app, world):
    """Everything a hidden and a visible contact can appear on; the ids the pages need."""
    def build():
        restrict_staff_visibility()
        owner, staff = staff_member(world.a, "owner"), staff_member(world.a, "staff")
        company = make_company("Acme Matrix")
        hidden = make_contact("Zelda", "Hiddenname", email="zelda@example.com", phone="+14155550150",
                              company_id=company.id, owner_id=owner.id)
        visible = make_contact("Victor", "Visiblename", email="victor@example.com", company_id=company.id,
                               owner_id=staff.id)
        make_contact("Zelda", "Hiddenname", email="zelda.h@example.com", phone="+14155550150", owner_id=owner.id)
        set_primary_contact(company, hidden, actor=owner)  # the company timeline: "… is now the primary contact"
        circle = make_circle("Matrix Circle")
        add_to_circle(circle, contact=hidden)
        add_to_circle(circle, contact=visible)
        event = make_event("Matrix Summit")
        add_attendee(event, hidden)
        add_attendee(event, visible)
        make_task("Call Zelda Hiddenname back", contact_id=hidden.id, assignee_id=staff.id)
        visible_task = make_task("Call Victor back", contact_id=visible.id, assignee_id=staff.id)
        tag = make_tag("matrix-tag")
        tag_record(tag, contact=hidden)
        tag_record(tag, contact=visible)
        make_note(hidden, body="Zelda Hiddenname prefers mornings")
        form = make_form("Matrix form")
        make_submission(form, {"first_name": "Zelda", "last_name": "Hiddenname", "email": "zelda@example.com"},
                        contact_id=hidden.id, state="processed")
        return {"company": company.id, "circle": circle.id, "event": event.id, "hidden": hidden.id,
                "visible": visible.id, "form": form.id,
                "visible_task": visible_task.id, "tag": tag.id}
    return in_tenant(app, world.a, build)


PAGES = {
    "company page": ("/staff/companies/{company}", True),
    "company list": ("/staff/companies", False),
    "company search": ("/staff/companies?q=acme", False),
    "circle page": ("/staff/circles/{circle}", True),
    "event page": ("/staff/events/{event}", True),
    "events": ("/staff/events", False),
    "tasks": ("/staff/tasks", True),
    "tasks, all": ("/staff/tasks?status=open&due=any&assignee=any", True),
    "contact list": ("/staff/contacts", True),
    "contact search": ("/staff/contacts?q=hiddenname", False),
    "duplicates": ("/staff/duplicates", False),
    "merge page, its search and suggestions": ("/staff/contacts/merge?ids={visible}&q=zelda", True),
    "dashboard": ("/staff/", False),
    "visible contact's page": ("/staff/contacts/{visible}", True),
    "submissions": ("/staff/forms/submissions", False),
    "form's submissions": ("/staff/forms/{form}/submissions", False),
    "company edit": ("/staff/companies/{company}/edit", False),
    "new task": ("/staff/tasks/new", False),
    "visible contact's task": ("/staff/tasks/{visible_task}", True),
    "tag page": ("/staff/tags/{tag}", False),
    "tags": ("/staff/tags", False),
    "segments": ("/staff/segments", False),
    "merge, hidden one asked for": ("/staff/contacts/merge?ids={visible}&ids={hidden}", False),
    "operations": ("/staff/operations", False),
}


@pytest.mark.parametrize("name", PAGES)
def test_a_restricted_staff_member_never_reads_a_hidden_contacts_name(name, matrix, staff_client, app, world):
    path, names_the_visible_one = PAGES[name]
    client = staff_client("staff")
    needs = {"submissions": "forms.submissions.view", "form's submissions": "forms.submissions.view",
             "duplicates": "contacts.merge", "merge page, its search and suggestions": "contacts.merge"}.get(name)
    if needs:  # pages for those given more than a Staff member has by default
        in_tenant(app, world.a, lambda: _grant_staff(needs, world))
    if name == "company edit":  # its primary-contact choice: editable by the company's owner
        in_tenant(app, world.a, lambda: _make_staff_own_company(matrix, world))
    response = client.get(path.format(**matrix))
    page = response.get_data(as_text=True)
    # A merge naming a contact the viewer may not see does not exist for them.
    expected = 404 if name.startswith("merge, hidden") else 200
    assert response.status_code == expected, (path, response.status_code)
    assert "Hiddenname" not in page and f"/staff/contacts/{matrix['hidden']}" not in page
    if names_the_visible_one:
        assert VISIBLE in page


def test_the_company_page_says_a_hidden_primary_contact_exists_without_naming_it(matrix, staff_client):
    page = staff_client("staff").get(f"/staff/companies/{matrix['company']}").get_data(as_text=True)
    assert "A contact you cannot see" in page
    owner_page = staff_client("owner").get(f"/staff/companies/{matrix['company']}").get_data(as_text=True)
    assert f"{HIDDEN} is now the primary contact" in owner_page and HIDDEN in owner_page


def test_a_hidden_contact_cannot_be_made_the_primary_contact(matrix, staff_client, app, world):
    in_tenant(app, world.a, lambda: _make_staff_own_company(matrix, world))
    client = staff_client("staff")
    done = post_form(client, f"/staff/companies/{matrix['company']}/primary", {"contact_id": matrix["hidden"]},
                     follow_redirects=True).get_data(as_text=True)
    assert "Choose one of the company&#39;s contacts." in done and "Hiddenname" not in done
    post_form(client, f"/staff/companies/{matrix['company']}/primary", {"contact_id": matrix["visible"]})
    assert in_tenant(app, world.a, lambda: db.session.get(Contact, matrix["visible"])).is_primary_contact


def test_the_merge_page_answers_a_hidden_contact_as_if_it_did_not_exist(matrix, staff_client, app, world):
    in_tenant(app, world.a, lambda: _grant_staff("contacts.merge", world))
    response = staff_client("staff").get(f"/staff/contacts/merge?ids={matrix['visible']}&ids={matrix['hidden']}")
    assert response.status_code == 404 and "Hiddenname" not in response.get_data(as_text=True)
    owner_page = staff_client("owner").get(f"/staff/contacts/merge?ids={matrix['visible']}&q=zelda")
    assert HIDDEN in owner_page.get_data(as_text=True)  # the search the matrix walks does find it, for the owner


def _grant_staff(permission: str, world) -> None:
    from core.roles import update_role_permissions
    from core.permissions import role_permissions

    owner = staff_member(world.a, "owner")
    update_role_permissions(owner, {"staff": set(role_permissions(world.a.id)["staff"]) | {permission}})


def _make_staff_own_company(matrix, world) -> None:
    db.session.get(Company, matrix["company"]).owner_id = world.a.members["staff"].id


def test_the_matrix_sees_what_it_should(matrix, app, world):
    """The hidden contact really is hidden from the Staff member, and there (for everyone else)."""
    def check():
        assert db.session.get(Contact, matrix["hidden"]).is_primary_contact
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Circle)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == 1
    in_tenant(app, world.a, check)
