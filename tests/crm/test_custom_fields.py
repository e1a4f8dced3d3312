"""Owners and Admins define custom fields for contacts and companies on the CRM settings page:
any of ten types, checked on save, shown on the forms and in the filters, edited, reordered,
archived (values kept) and restored."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from crm.models import Company, Contact, CustomField
from tests.factories import make_company, make_contact, make_custom_field
from tests.support import in_tenant, post_form

PAGE = "/staff/settings/crm"
CONTACT = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "role": "lead",
           "is_active": "y"}




def _field(app, world, label: str) -> CustomField:
    return in_tenant(app, world.a, lambda: db.session.scalars(sa.select(CustomField).where(CustomField.label == label)).one())


def _fields(app, world, entity="contact") -> list[tuple[str, int, bool]]:
    return in_tenant(app, world.a, lambda: [(f.label, f.position, f.archived_at is not None) for f in db.session.scalars(
        sa.select(CustomField).where(CustomField.entity == entity).order_by(CustomField.position))])


def _filters(body: str) -> str:
    """The contact list's filter form."""
    return body[body.index('<details class="filters"'):body.index("</details>", body.index('<details class="filters"'))]


def _add_field(client, **data):
    return post_form(client, f"{PAGE}/fields/new", {"entity": "contact", "field_type": "text", **data},
                     follow_redirects=True)


def _inputs(html: str, name: str) -> list[str]:
    """The opening tags of the form controls called `name`."""
    return re.findall(rf'<(?:input|textarea|select)\b[^>]*\bname="{name}"[^>]*>', html)


@pytest.mark.parametrize("field_type, choices, control", [
    ("text", "", ('<input', 'type="text"')),
    ("long_text", "", ("<textarea",)),
    ("number", "", ('<input', 'inputmode="decimal"')),
    ("date", "", ('<input', 'type="date"')),
    ("boolean", "", ('<input', 'type="checkbox"')),
    ("choice", "Gold\nSilver", ("<select",)),
    ("multi_choice", "Gold\nSilver", ('<input', 'type="checkbox"', 'value="Gold"')),
    ("url", "", ('<input', 'type="url"')),
    ("email", "", ('<input', 'type="email"')),
    ("phone", "", ('<input', 'type="tel"')),
])
def test_a_new_field_of_any_type_is_on_the_contact_form_and_in_the_filters(world, staff_client, app, field_type,
                                                                          choices, control):
    client = staff_client("admin")
    response = _add_field(client, label="Extra", field_type=field_type, choices=choices,
                          help_text="Anything worth knowing")
    body = response.get_data(as_text=True)
    assert "Field “Extra” added: it is on the contact form and in the filters now." in body
    assert "<strong>Extra</strong>" in body and "Anything worth knowing" in body
    form = client.get("/staff/contacts/new").get_data(as_text=True)
    tags = _inputs(form, "cf_extra")
    assert any(all(part in tag for part in control) for tag in tags), tags
    assert "Anything worth knowing" in form
    assert 'name="cf_extra"' in _filters(client.get("/staff/contacts").get_data(as_text=True))
    field = _field(app, world, "Extra")
    assert (field.field_type, field.key, field.entity) == (field_type, "extra", "contact")
    assert field.choices == (["Gold", "Silver"] if choices else [])
    event = in_tenant(app, world.a, lambda: db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "custom_field.created")).one())
    assert event.target_label == "Extra (contact field)" and event.details["type"] == field_type


def test_a_company_field_is_on_the_company_form_only(world, staff_client, app):
    client = staff_client("owner")
    response = _add_field(client, entity="company", label="Industry", field_type="choice", choices="Retail\nHealth")
    assert "it is on the company form" in response.get_data(as_text=True)
    assert 'name="cf_industry"' in client.get("/staff/companies/new").get_data(as_text=True)
    assert 'name="cf_industry"' not in client.get("/staff/contacts/new").get_data(as_text=True)


@pytest.mark.parametrize("data, field, message", [
    ({"label": ""}, "label", "Enter a name for the field."),
    ({"label": "Tier", "field_type": "choice", "choices": "  \n "}, "choices", "List the choices, one per line."),
    ({"label": "Tier", "field_type": "choice", "choices": "Gold\ngold"}, "choices", "“gold” is listed twice."),
    ({"label": "Tags", "field_type": "multi_choice", "choices": "A, B\nC"}, "choices",
     "“A, B”: choices of a multiple-choice field cannot contain commas or semicolons"),
    ({"label": "VIP", "field_type": "boolean", "required": "y"}, "required",
     "A yes/no field cannot be required: leaving it unticked already means no."),
    ({"label": "Budget", "field_type": "spreadsheet"}, "field_type", "Not a valid choice."),
    ({"label": "x" * 121}, "label", "A name for the field can be at most 120 characters."),
    ({"label": "Shoe size"}, "label", "There is already a field called “Shoe size”."),
])
def test_a_bad_field_is_explained_beside_the_input_and_nothing_is_added(world, staff_client, app, data, field, message):
    in_tenant(app, world.a, lambda: make_custom_field("Shoe size", "number"))
    response = post_form(staff_client("admin"), f"{PAGE}/fields/new",
                         {"entity": "contact", "field_type": "text", "help_text": "kept", **data})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and f'id="{field}-error"' in body and message in body
    assert 'value="kept"' in body  # what was typed is kept
    assert len(_fields(app, world)) == 1


def test_the_label_of_an_archived_field_points_to_restoring_it(world, staff_client, app):
    in_tenant(app, world.a, lambda: make_custom_field("Budget", "number", archived_at=sa.func.now()))
    response = _add_field(staff_client("admin"), label="budget")
    assert "There is an archived field called “Budget”: restore it instead, or choose another name." \
        in response.get_data(as_text=True)


def test_a_label_whose_key_is_taken_gets_a_key_of_its_own(world, staff_client, app):
    in_tenant(app, world.a, lambda: make_custom_field("Shoe size", "number"))
    _add_field(staff_client("admin"), label="Shoe-size!")
    assert _field(app, world, "Shoe-size!").key == "shoe_size_2"


def test_values_are_checked_on_save_by_type_and_required(world, staff_client, app):
    client = staff_client("admin")
    _add_field(client, label="Budget", field_type="number", required="y")
    _add_field(client, label="Website", field_type="url")
    response = post_form(client, "/staff/contacts/new", {**CONTACT, "cf_budget": "lots"})
    body = response.get_data(as_text=True)
    assert 'id="cf_budget-error"' in body and "Budget: enter a number." in body
    response = post_form(client, "/staff/contacts/new", {**CONTACT, "cf_budget": ""})
    assert "Budget is required." in response.get_data(as_text=True)
    response = post_form(client, "/staff/contacts/new", {**CONTACT, "cf_budget": "1200", "cf_website": "example"})
    assert "enter a web address starting with http:// or https://" in response.get_data(as_text=True)
    post_form(client, "/staff/contacts/new", {**CONTACT, "cf_budget": "1200", "cf_website": "https://ada.example"})
    stored = in_tenant(app, world.a, lambda: db.session.scalars(sa.select(Contact.custom_fields)).one())
    assert stored == {"budget": 1200, "website": "https://ada.example"}


def test_a_field_filters_the_contact_list(world, staff_client, app):
    client = staff_client("admin")
    _add_field(client, label="Tier", field_type="choice", choices="Gold\nSilver")
    in_tenant(app, world.a, lambda: (make_contact("Goldie", custom_fields={"tier": "Gold"}),
                               make_contact("Silvia", custom_fields={"tier": "Silver"})))
    body = client.get("/staff/contacts?cf_tier=Gold").get_data(as_text=True)
    assert "Goldie" in body and "Silvia" not in body


def test_edit_label_help_and_required(world, staff_client, app):
    in_tenant(app, world.a, lambda: make_custom_field("Budget", "number"))
    field = _field(app, world, "Budget")
    client = staff_client("admin")
    page = client.get(f"{PAGE}/fields/{field.id}").get_data(as_text=True)
    assert "Edit “Budget”" in page and "Number field for contacts" in page and 'value="Budget"' in page
    response = post_form(client, f"{PAGE}/fields/{field.id}",
                         {"label": "Yearly budget", "help_text": "In euros", "required": "y"}, follow_redirects=True)
    assert "Field “Yearly budget” saved." in response.get_data(as_text=True)
    form = client.get("/staff/contacts/new").get_data(as_text=True)
    assert "Yearly budget" in form and "In euros" in form and 'name="cf_budget"' in form  # the key stays
    field = _field(app, world, "Yearly budget")
    assert (field.help_text, field.required, field.key) == ("In euros", True, "budget")
    event = in_tenant(app, world.a, lambda: db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "custom_field.changed")).one())
    assert event.details["label"] == {"from": "Budget", "to": "Yearly budget"}


def test_an_edit_that_fails_keeps_what_was_typed(world, staff_client, app):
    in_tenant(app, world.a, lambda: (make_custom_field("Budget", "number"), make_custom_field("Tier", "text")))
    field = _field(app, world, "Budget")
    response = post_form(staff_client("admin"), f"{PAGE}/fields/{field.id}", {"label": "tier", "help_text": "typed"})
    body = response.get_data(as_text=True)
    assert 'id="label-error"' in body and "There is already a field called “Tier”." in body
    assert 'value="tier"' in body and 'value="typed"' in body
    assert _field(app, world, "Budget").help_text is None


def test_a_choice_in_use_cannot_be_removed_and_the_page_says_by_how_many(world, staff_client, app):
    def seed():
        make_custom_field("Tier", "choice", choices=["Gold", "Silver", "Bronze"])
        make_contact("A", custom_fields={"tier": "Gold"})
        make_contact("B", custom_fields={"tier": "Gold"})
        make_contact("C", custom_fields={"tier": "Silver"})
    in_tenant(app, world.a, seed)
    field = _field(app, world, "Tier")
    client = staff_client("admin")
    page = client.get(f"{PAGE}/fields/{field.id}").get_data(as_text=True)
    assert "Gold (2 contacts), Silver (1 contact)." in page and "Bronze (" not in page
    response = post_form(client, f"{PAGE}/fields/{field.id}", {"label": "Tier", "choices": "Silver"})
    body = response.get_data(as_text=True)
    assert 'id="choices-error"' in body
    assert "Still in use: “Gold” by 2 contacts. Keep it in the list, or rename the choice below" in body
    assert _field(app, world, "Tier").choices == ["Gold", "Silver", "Bronze"]
    # an unused choice goes; new ones join
    response = post_form(client, f"{PAGE}/fields/{field.id}", {"label": "Tier", "choices": "Gold\nSilver\nPlatinum"},
                         follow_redirects=True)
    assert "Field “Tier” saved." in response.get_data(as_text=True)
    assert _field(app, world, "Tier").choices == ["Gold", "Silver", "Platinum"]


def test_a_multiple_choice_in_use_cannot_be_removed_either(world, staff_client, app):
    def seed():
        make_custom_field("Interests", "multi_choice", choices=["Golf", "Sailing", "Chess"])
        make_contact("A", custom_fields={"interests": ["Golf", "Sailing"]})
        make_contact("B", custom_fields={"interests": ["Sailing"]})
        make_contact("C", custom_fields={"interests": []})
    in_tenant(app, world.a, seed)
    field = _field(app, world, "Interests")
    client = staff_client("admin")
    assert "Golf (1 contact), Sailing (2 contacts)." in client.get(f"{PAGE}/fields/{field.id}").get_data(as_text=True)
    response = post_form(client, f"{PAGE}/fields/{field.id}", {"label": "Interests", "choices": "Chess"})
    assert "Still in use: “Golf” by 1 contact; “Sailing” by 2 contacts. Keep them in the list" \
        in response.get_data(as_text=True)


def test_a_field_without_choices_has_none_to_rename(world, staff_client, app):
    in_tenant(app, world.a, lambda: make_custom_field("Budget", "number"))
    field = _field(app, world, "Budget")
    response = post_form(staff_client("admin"), f"{PAGE}/fields/{field.id}/rename-choice", {"old": "x", "new": "y"},
                         follow_redirects=True)
    assert "“Budget” has no choices to rename." in response.get_data(as_text=True)


@pytest.mark.parametrize("field_type, stored, renamed", [
    ("choice", "Gold", "Premium"),
    ("multi_choice", ["Gold", "Silver"], ["Premium", "Silver"]),
])
def test_renaming_a_choice_renames_it_on_every_record(world, staff_client, app, field_type, stored, renamed):
    def seed():
        make_custom_field("Tier", field_type, choices=["Gold", "Silver"])
        return [make_contact("A", custom_fields={"tier": stored}).id, make_contact("B", custom_fields={}).id]
    ids = in_tenant(app, world.a, seed)
    field = _field(app, world, "Tier")
    response = post_form(staff_client("admin"), f"{PAGE}/fields/{field.id}/rename-choice",
                         {"old": "Gold", "new": "Premium"}, follow_redirects=True)
    assert "“Gold” is now “Premium”, also on 1 contact that had it." in response.get_data(as_text=True)
    values = in_tenant(app, world.a, lambda: [db.session.get(Contact, i).custom_fields for i in ids])
    assert values == [{"tier": renamed}, {}]
    assert _field(app, world, "Tier").choices == ["Premium", "Silver"]
    event = in_tenant(app, world.a, lambda: db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "custom_field.choice_renamed")).one())
    assert event.details == {"from": "Gold", "to": "Premium", "records": 1}


def test_renaming_a_choice_onto_another_is_refused(world, staff_client, app):
    in_tenant(app, world.a, lambda: make_custom_field("Tier", "choice", choices=["Gold", "Silver"]))
    field = _field(app, world, "Tier")
    response = post_form(staff_client("admin"), f"{PAGE}/fields/{field.id}/rename-choice",
                         {"old": "Gold", "new": "silver"})
    body = response.get_data(as_text=True)
    assert 'id="new-error"' in body and "“Silver” is already a choice." in body and 'value="silver"' in body


def test_renaming_a_choice_of_a_company_field_updates_companies(world, staff_client, app):
    def seed():
        make_custom_field("Industry", "choice", entity="company", choices=["Retail"])
        return make_company("Shop", custom_fields={"industry": "Retail"}).id
    company_id = in_tenant(app, world.a, seed)
    field = _field(app, world, "Industry")
    response = post_form(staff_client("admin"), f"{PAGE}/fields/{field.id}/rename-choice",
                         {"old": "Retail", "new": "Retail and shops"}, follow_redirects=True)
    assert "also on 1 company that had it" in response.get_data(as_text=True)
    assert in_tenant(app, world.a, lambda: db.session.get(Company, company_id).custom_fields) == {
        "industry": "Retail and shops"}


def test_archived_field_leaves_the_form_and_filters_but_keeps_its_values(world, staff_client, app):
    client = staff_client("admin")
    _add_field(client, label="Budget", field_type="number")
    contact_id = in_tenant(app, world.a, lambda: make_contact("Ada", custom_fields={"budget": 500}).id)
    field = _field(app, world, "Budget")
    assert "500" in client.get(f"/staff/contacts/{contact_id}").get_data(as_text=True)

    response = post_form(client, f"{PAGE}/fields/{field.id}/archive", follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "Field “Budget” archived: it is off the forms and filters. The values already entered are kept" in body
    assert "Archived contact fields (1)" in body and "Restore “Budget”" in body
    assert 'name="cf_budget"' not in client.get("/staff/contacts/new").get_data(as_text=True)
    assert 'name="cf_budget"' not in client.get("/staff/contacts").get_data(as_text=True)
    assert "Budget" not in client.get(f"/staff/contacts/{contact_id}").get_data(as_text=True)
    # editing the contact does not lose the archived value
    post_form(client, f"/staff/contacts/{contact_id}/edit", {**CONTACT, "first_name": "Augusta"})
    assert in_tenant(app, world.a, lambda: db.session.get(Contact, contact_id).custom_fields) == {"budget": 500}

    response = post_form(client, f"{PAGE}/fields/{field.id}/restore", follow_redirects=True)
    assert "Field “Budget” restored, with the values entered before." in response.get_data(as_text=True)
    assert 'name="cf_budget"' in client.get("/staff/contacts/new").get_data(as_text=True)
    assert "500" in client.get(f"/staff/contacts/{contact_id}").get_data(as_text=True)
    actions = in_tenant(app, world.a, lambda: db.session.scalars(sa.select(AuditEvent.action)).all())
    assert {"custom_field.archived", "custom_field.restored"} <= set(actions)


def test_reorder_changes_the_order_on_the_form(world, staff_client, app):
    client = staff_client("admin")
    for label in ("First", "Second", "Third"):
        _add_field(client, label=label)
    third = _field(app, world, "Third")
    response = post_form(client, f"{PAGE}/fields/{third.id}/move", {"direction": "up"}, follow_redirects=True)
    assert "Moved “Third” up." in response.get_data(as_text=True)
    assert _fields(app, world) == [("First", 0, False), ("Third", 1, False), ("Second", 2, False)]
    form = client.get("/staff/contacts/new").get_data(as_text=True)
    assert form.index('name="cf_first"') < form.index('name="cf_third"') < form.index('name="cf_second"')
    response = post_form(client, f"{PAGE}/fields/{third.id}/move", {"direction": "up"})
    response = post_form(client, f"{PAGE}/fields/{third.id}/move", {"direction": "up"}, follow_redirects=True)
    assert "“Third” is already first." in response.get_data(as_text=True)
    # archiving and restoring keep positions 0..n-1, active ones first
    post_form(client, f"{PAGE}/fields/{third.id}/archive")
    assert _fields(app, world) == [("First", 0, False), ("Second", 1, False), ("Third", 2, True)]
    post_form(client, f"{PAGE}/fields/{third.id}/restore")
    assert _fields(app, world) == [("First", 0, False), ("Second", 1, False), ("Third", 2, False)]


def test_the_settings_page_lists_fields_per_entity(world, staff_client, app):
    in_tenant(app, world.a, lambda: (make_custom_field("Budget", "number", help_text="Per year"),
                               make_custom_field("Tier", "choice", choices=["Gold", "Silver"], required=True),
                               make_custom_field("Industry", "text", entity="company")))
    body = staff_client("admin").get(PAGE).get_data(as_text=True)
    section = body[body.index('id="custom-fields"'):body.index('id="visibility"')]
    contacts, companies = section.split('id="fields-company"')
    assert "Budget" in contacts and "Per year" in contacts and "Gold, Silver" in contacts
    assert "Industry" in companies and "Industry" not in contacts
    assert "Add a field for contacts" in contacts and "Add a field for companies" in companies
