"""Owners and Admins shape the contact pipeline on the CRM settings page: add, rename, reorder,
choose the default, archive (keeping or moving the contacts) and restore statuses."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from core.errors import ServiceError
from core.identity import StaffUser
from core.tenancy import tenant_context
from crm import pipeline
from crm.models import Contact, PipelineStatus, TimelineEntry
from tests.factories import make_contact
from tests.support import in_tenant, post_form

PAGE = "/staff/settings/crm"




def _status(name: str) -> PipelineStatus:
    return db.session.scalars(sa.select(PipelineStatus).where(PipelineStatus.name == name)).one()


def _status_id(app, world, name: str) -> int:
    return in_tenant(app, world.a, lambda: _status(name).id)


def _pipeline(app, world) -> list[tuple[str, int, bool, bool]]:
    """(name, position, default, archived) of every status, in position order."""
    return in_tenant(app, world.a, lambda: [(s.name, s.position, s.is_default, s.archived_at is not None)
                                      for s in pipeline.statuses()])


def _active_names(app, world) -> list[str]:
    return [name for name, _, _, archived in _pipeline(app, world) if not archived]


def _positions_are_contiguous(app, world) -> None:
    rows = _pipeline(app, world)
    assert [position for _, position, _, _ in rows] == list(range(len(rows)))


def _pipeline_section(body: str) -> str:
    return body[body.index('id="pipeline"'):body.index('id="custom-fields"')]


def _audit_actions(app, world) -> list[str]:
    return in_tenant(app, world.a, lambda: db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all())


def test_page_shows_the_pipeline_in_order_with_its_default(world, staff_client):
    body = staff_client("admin").get(PAGE).get_data(as_text=True)
    section = _pipeline_section(body)
    names = ["New", "Contacted", "Qualified", "Converted", "Unqualified"]
    assert [section.index(f"<strong>{n}</strong>") for n in names] == sorted(section.index(f"<strong>{n}</strong>")
                                                                             for n in names)
    assert re.search(r"<strong>New</strong>\s*<span class=\"badge badge-ok\">Default</span>", section)
    assert "Make “New” the default" not in section  # the default has no such button
    assert 'aria-label="Move “New” up"' in section and "disabled" in section  # first: up is disabled


def test_add_a_status_at_the_end(world, staff_client, app):
    client = staff_client("admin")
    response = post_form(client, f"{PAGE}/statuses", {"name": "  Proposal sent "}, follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "Status “Proposal sent” added at the end of the pipeline." in body
    assert _active_names(app, world)[-1] == "Proposal sent"
    _positions_are_contiguous(app, world)
    assert "pipeline.status_added" in _audit_actions(app, world)
    # offered for contacts straight away
    assert ">Proposal sent</option>" in client.get("/staff/contacts/new").get_data(as_text=True)


@pytest.mark.parametrize("name, message", [
    ("", "Enter a name for the status."),
    ("contacted", "There is already a status called “Contacted”."),
    ("x" * 81, "A name for the status can be at most 80 characters."),
    ("Won\r\nLost", "A name for the status must be one line of plain text."),
])
def test_a_bad_status_name_is_explained_beside_the_field(world, staff_client, app, name, message):
    response = post_form(staff_client("owner"), f"{PAGE}/statuses", {"name": name})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<small id="name-error" class="field-error">{message}</small>' in body
    assert 'aria-invalid="true"' in body
    if name.strip() and "\n" not in name:
        assert f'value="{name}"' in body  # what was typed is kept
    assert len(_active_names(app, world)) == 5


def test_rename_keeps_contacts_and_shows_the_new_name(world, staff_client, app):
    contact = in_tenant(app, world.a, lambda: make_contact("Ada", "Lovelace", status_id=_status("Contacted").id))
    status_id = _status_id(app, world, "Contacted")
    client = staff_client("admin")
    response = post_form(client, f"{PAGE}/statuses/{status_id}/rename", {f"rename-{status_id}-name": "Called"},
                         follow_redirects=True)
    assert "“Contacted” is now called “Called”; its contacts show the new name." in response.get_data(as_text=True)
    page = client.get(f"/staff/contacts/{contact.id}").get_data(as_text=True)
    assert "Called" in page and "Contacted" not in page
    event = in_tenant(app, world.a, lambda: db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "pipeline.status_renamed")).one())
    assert event.details == {"from": "Contacted", "to": "Called"} and event.target_label == "Called"


def test_rename_to_a_taken_name_reopens_the_row_with_the_error(world, staff_client, app):
    status_id = _status_id(app, world, "Contacted")
    response = post_form(staff_client("admin"), f"{PAGE}/statuses/{status_id}/rename",
                         {f"rename-{status_id}-name": "QUALIFIED"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    error = f'id="rename-{status_id}-name-error" class="field-error">'
    assert error + "There is already a status called “Qualified”." in body
    assert 'value="QUALIFIED"' in body
    assert re.search(r"<details open>\s*<summary role=\"button\" class=\"secondary outline\" "
                     r"aria-label=\"Rename “Contacted”\"", body)
    assert "Contacted" in _active_names(app, world)


def test_move_up_and_down_keeps_positions_contiguous(world, staff_client, app):
    client = staff_client("admin")
    qualified = _status_id(app, world, "Qualified")
    response = post_form(client, f"{PAGE}/statuses/{qualified}/move", {"direction": "up"}, follow_redirects=True)
    assert "Moved “Qualified” up." in response.get_data(as_text=True)
    assert _active_names(app, world) == ["New", "Qualified", "Contacted", "Converted", "Unqualified"]
    post_form(client, f"{PAGE}/statuses/{qualified}/move", {"direction": "down"})
    post_form(client, f"{PAGE}/statuses/{qualified}/move", {"direction": "down"})
    assert _active_names(app, world) == ["New", "Contacted", "Converted", "Qualified", "Unqualified"]
    _positions_are_contiguous(app, world)
    # the new order is the order of the contact form's status list
    form = client.get("/staff/contacts/new").get_data(as_text=True)
    assert form.index(">Converted</option>") < form.index(">Qualified</option>")

    new = _status_id(app, world, "New")
    response = post_form(client, f"{PAGE}/statuses/{new}/move", {"direction": "up"}, follow_redirects=True)
    assert "“New” is already first." in response.get_data(as_text=True)
    response = post_form(client, f"{PAGE}/statuses/{new}/move", {"direction": "sideways"}, follow_redirects=True)
    assert "Choose up or down." in response.get_data(as_text=True)


def test_the_default_status_is_what_new_contacts_get(world, staff_client, app):
    client = staff_client("owner")
    qualified = _status_id(app, world, "Qualified")
    response = post_form(client, f"{PAGE}/statuses/{qualified}/default", follow_redirects=True)
    assert "New contacts now get “Qualified”." in response.get_data(as_text=True)
    assert [name for name, _, default, _ in _pipeline(app, world) if default] == ["Qualified"]
    # the contact form preselects it, and a contact added without a status gets it
    form = client.get("/staff/contacts/new").get_data(as_text=True)
    assert re.search(rf'<option selected value="{qualified}">Qualified</option>|'
                     rf'<option value="{qualified}" selected>Qualified</option>', form)
    with app.app_context(), tenant_context(world.a.id):
        from crm.contacts import create_contact
        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        contact = create_contact({"first_name": "Grace"}, actor=owner)
        assert contact.status.name == "Qualified"
        db.session.rollback()


def test_the_default_and_the_last_active_status_cannot_be_archived(world, staff_client, app):
    client = staff_client("admin")
    new = _status_id(app, world, "New")
    page = client.get(f"{PAGE}/statuses/{new}/archive").get_data(as_text=True)
    assert "“New” is the status new contacts get. Make another status the default first" in page
    assert "Archive status</button>" not in page
    post_form(client, f"{PAGE}/statuses/{new}/archive")
    assert "New" in _active_names(app, world)

    with app.app_context(), tenant_context(world.a.id):
        admin = db.session.get(StaffUser, world.a.members["admin"].id)
        for status in pipeline.statuses(include_archived=False):
            if not status.is_default:
                pipeline.archive_status(status, admin)
        only = _status("New")
        only.is_default = False  # even without a default, the last one stays
        with pytest.raises(ServiceError, match="the only active status; a pipeline needs at least one"):
            pipeline.archive_status(only, admin)
        db.session.rollback()


def test_archiving_keeps_the_status_on_its_contacts(world, staff_client, app):
    contacted = _status_id(app, world, "Contacted")
    contact = in_tenant(app, world.a, lambda: make_contact("Ada", "Lovelace", status_id=contacted))
    client = staff_client("admin")
    page = client.get(f"{PAGE}/statuses/{contacted}/archive").get_data(as_text=True)
    assert "1 contact</strong> has this status." in page
    assert "They keep it (shown as archived)" in page and "Move to “Qualified”" in page
    response = post_form(client, f"{PAGE}/statuses/{contacted}/archive", {"move_to": ""}, follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "“Contacted” is archived. Its contacts keep it until someone changes their status." in body
    archived = body[body.index("Archived statuses (1)"):]
    assert "Contacted" in archived and "Restore “Contacted”" in archived and "Move its contact to" in archived

    assert in_tenant(app, world.a, lambda: db.session.get(Contact, contact.id).status_id) == contacted
    assert "Contacted" in client.get(f"/staff/contacts/{contact.id}").get_data(as_text=True)  # still shown
    assert ">Contacted</option>" not in client.get("/staff/contacts/new").get_data(as_text=True)
    assert "Contacted" not in client.get("/staff/contacts").get_data(as_text=True).split("<legend>Status</legend>")[1] \
        .split("</fieldset>")[0]  # no longer a filter choice
    assert _active_names(app, world) == ["New", "Qualified", "Converted", "Unqualified"]
    _positions_are_contiguous(app, world)
    assert "pipeline.status_archived" in _audit_actions(app, world)


def test_archiving_can_move_the_contacts_to_another_status(world, staff_client, app):
    contacted, qualified = _status_id(app, world, "Contacted"), _status_id(app, world, "Qualified")
    ids = in_tenant(app, world.a, lambda: [make_contact(status_id=contacted).id for _ in range(3)])
    response = post_form(staff_client("admin"), f"{PAGE}/statuses/{contacted}/archive", {"move_to": str(qualified)},
                         follow_redirects=True)
    assert "“Contacted” is archived; 3 contacts moved to “Qualified”." in response.get_data(as_text=True)

    def check():
        statuses = db.session.scalars(sa.select(Contact.status_id).where(Contact.id.in_(ids))).all()
        entries = db.session.scalars(sa.select(TimelineEntry).where(TimelineEntry.contact_id.in_(ids))).all()
        return statuses, [(e.kind, e.summary, e.actor_label) for e in entries]

    statuses, entries = in_tenant(app, world.a, check)
    assert statuses == [qualified] * 3
    assert entries == [("status_changed", "Status changed from Contacted to Qualified", "Adam Admin")] * 3
    assert {"pipeline.contacts_moved", "pipeline.status_archived"} <= set(_audit_actions(app, world))


def test_archiving_refuses_a_move_to_an_unknown_status(world, staff_client, app):
    contacted = _status_id(app, world, "Contacted")
    in_tenant(app, world.a, lambda: make_contact(status_id=contacted))
    response = post_form(staff_client("admin"), f"{PAGE}/statuses/{contacted}/archive", {"move_to": "999999"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="move_to-error" class="field-error">Choose a status from the list.' in body
    assert "Contacted" in _active_names(app, world)


def test_contacts_of_an_archived_status_can_be_moved_later(world, staff_client, app):
    contacted, converted = _status_id(app, world, "Contacted"), _status_id(app, world, "Converted")
    ids = in_tenant(app, world.a, lambda: [make_contact(status_id=contacted).id for _ in range(2)])
    client = staff_client("owner")
    post_form(client, f"{PAGE}/statuses/{contacted}/archive", {"move_to": ""})
    response = post_form(client, f"{PAGE}/statuses/{contacted}/move-contacts",
                         {f"move-{contacted}-move_to": str(converted)}, follow_redirects=True)
    assert "2 contacts moved from “Contacted” to “Converted”." in response.get_data(as_text=True)
    assert in_tenant(app, world.a, lambda: set(db.session.scalars(
        sa.select(Contact.status_id).where(Contact.id.in_(ids))))) == {converted}
    response = post_form(client, f"{PAGE}/statuses/{contacted}/move-contacts",
                         {f"move-{contacted}-move_to": str(contacted)}, follow_redirects=True)
    assert "Choose an active status to move the contacts to." in response.get_data(as_text=True)


def test_restore_brings_a_status_back_at_the_end(world, staff_client, app):
    client = staff_client("admin")
    contacted = _status_id(app, world, "Contacted")
    post_form(client, f"{PAGE}/statuses/{contacted}/archive")
    response = post_form(client, f"{PAGE}/statuses/{contacted}/restore", follow_redirects=True)
    assert "“Contacted” is back, at the end of the pipeline." in response.get_data(as_text=True)
    assert _active_names(app, world) == ["New", "Qualified", "Converted", "Unqualified", "Contacted"]
    _positions_are_contiguous(app, world)
    assert "pipeline.status_restored" in _audit_actions(app, world)


def test_an_archived_name_cannot_be_taken_by_a_new_status(world, staff_client, app):
    client = staff_client("admin")
    post_form(client, f"{PAGE}/statuses/{_status_id(app, world, 'Contacted')}/archive")
    response = post_form(client, f"{PAGE}/statuses", {"name": "Contacted"})
    assert "There is an archived status called “Contacted”: restore it instead, or choose another name." \
        in response.get_data(as_text=True)


def test_positions_stay_contiguous_through_any_sequence(world, app):
    with app.app_context(), tenant_context(world.a.id):
        admin = db.session.get(StaffUser, world.a.members["admin"].id)
        won = pipeline.add_status("Won", admin)
        pipeline.move_status(won, "up", admin)
        pipeline.archive_status(_status("Contacted"), admin)
        pipeline.set_default_status(won, admin)
        pipeline.archive_status(_status("New"), admin)
        pipeline.move_status(_status("Unqualified"), "down", admin)  # already last: nothing happens
        pipeline.restore_status(_status("New"), admin)
        pipeline.move_status(_status("Qualified"), "up", admin)
        rows = [(s.name, s.position, s.archived_at is not None) for s in pipeline.statuses()]
        db.session.rollback()
    assert rows == [("Qualified", 0, False), ("Converted", 1, False), ("Won", 2, False), ("Unqualified", 3, False),
                    ("New", 4, False), ("Contacted", 5, True)]
