"""Notes on a contact: plain text with links, written by staff who may edit the contact,
changed or deleted only by their author or an Owner/Admin, and on the contact's timeline."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import render_template

from core.audit import AuditEvent
from core.db import db
from core.errors import ServiceError
from core.identity import StaffUser
from core.tenancy import tenant_context
from crm.activities import NotAllowed, add_note, delete_note, linkify, notes_of, update_note
from crm.models import Contact, Note, TimelineEntry
from tests.factories import make_contact, make_note, restrict_staff_visibility
from tests.support import post_form, staff_member, tenant_session






def _contact_id(app, world, owner="owner", **fields) -> int:
    with tenant_session(app, world.a):
        contact = make_contact("Nora", "Notes", owner_id=world.a.members[owner].id, **fields)
        return contact.id


def _note_id(app, world, contact_id, author="owner", body="First call went well.") -> int:
    with tenant_session(app, world.a):
        contact = db.session.get(Contact, contact_id)
        return add_note(body, contact=contact, author=staff_member(world.a, author)).id


def _notes(app, world):
    with tenant_session(app, world.a):
        return [(n.body, n.author_id) for n in db.session.scalars(sa.select(Note).order_by(Note.id))]


def _timeline(app, world, contact_id):
    with tenant_session(app, world.a):
        return [(e.kind, e.summary, e.subject_type) for e in db.session.scalars(
            sa.select(TimelineEntry).where(TimelineEntry.contact_id == contact_id).order_by(TimelineEntry.id))]


# --- adding ---------------------------------------------------------------------------------------

def test_owner_adds_a_note_and_it_lands_on_the_timeline(world, staff_client, app):
    contact_id = _contact_id(app, world)
    client = staff_client("owner")
    response = post_form(client, f"/staff/contacts/{contact_id}/notes",
                         {"body": "Called Nora.\r\nShe wants the brochure: https://acme.example/brochure"})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == f"/staff/contacts/{contact_id}"
    assert _notes(app, world) == [("Called Nora.\nShe wants the brochure: https://acme.example/brochure",
                                   world.a.members["owner"].id)]
    [(kind, summary, subject)] = _timeline(app, world, contact_id)
    assert (kind, subject) == ("note", "note")
    assert summary.startswith("Note: Called Nora. She wants the brochure")
    with tenant_session(app, world.a):
        assert db.session.get(Contact, contact_id).last_activity_at is not None


@pytest.mark.parametrize("body, message", [
    ("   \n  ", "Write the note."),
    ("x" * 20_001, "The note can be at most 20,000 characters; this one has 20,001."),
])
def test_empty_or_too_long_note_is_refused_beside_the_field_and_kept(world, staff_client, app, body, message):
    contact_id = _contact_id(app, world)
    response = post_form(staff_client("owner"), f"/staff/contacts/{contact_id}/notes", {"body": body})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="body-error"' in page and message in page
    if body.strip():
        assert body in page  # what was typed is still in the box
    assert "Nora Notes" in page  # the page says whom the note was for
    assert _notes(app, world) == []


def test_a_note_of_20000_characters_is_fine(app, world):
    contact_id = _contact_id(app, world)
    _note_id(app, world, contact_id, body="y" * 20_000)
    assert len(_notes(app, world)[0][0]) == 20_000


def test_staff_may_note_only_contacts_they_may_edit(world, staff_client, app):
    theirs = _contact_id(app, world, owner="staff")
    not_theirs = _contact_id(app, world, owner="owner")
    client = staff_client("staff")
    assert post_form(client, f"/staff/contacts/{theirs}/notes", {"body": "Mine."}).status_code == 302
    assert post_form(client, f"/staff/contacts/{not_theirs}/notes", {"body": "Not mine."}).status_code == 403
    assert [body for body, _ in _notes(app, world)] == ["Mine."]


def test_a_hidden_contact_is_404_before_any_permission_check(world, staff_client, app):
    hidden = _contact_id(app, world, owner="owner")
    with tenant_session(app, world.a):  # the staff member's own note, from before the contact was theirs to see
        note_id = make_note(db.session.get(Contact, hidden), "First call went well.",
                            author_id=world.a.members["staff"].id).id
        restrict_staff_visibility()
    client = staff_client("staff")
    assert post_form(client, f"/staff/contacts/{hidden}/notes", {"body": "x"}).status_code == 404
    # Even the note's own author no longer reaches it while the contact is hidden from them.
    assert client.get(f"/staff/notes/{note_id}/edit").status_code == 404
    assert post_form(client, f"/staff/notes/{note_id}/edit", {"body": "changed"}).status_code == 404
    assert post_form(client, f"/staff/notes/{note_id}/delete").status_code == 404
    assert [body for body, _ in _notes(app, world)] == ["First call went well."]


def test_add_note_service_checks_permission_and_needs_a_subject(app, world):
    contact_id = _contact_id(app, world, owner="owner")
    with tenant_session(app, world.a):
        contact = db.session.get(Contact, contact_id)
        with pytest.raises(NotAllowed):
            add_note("Hello", contact=contact, author=staff_member(world.a, "staff"))
        with pytest.raises(ServiceError, match="Choose the contact or company"):
            add_note("Hello", author=staff_member(world.a, "owner"))


# --- changing and deleting -------------------------------------------------------------------------

def test_author_edits_their_note_and_the_timeline_quote_follows(world, staff_client, app):
    contact_id = _contact_id(app, world, owner="staff")
    note_id = _note_id(app, world, contact_id, author="staff", body="Old words")
    client = staff_client("staff")
    page = client.get(f"/staff/notes/{note_id}/edit").get_data(as_text=True)
    assert "Edit note" in page and "Old words" in page
    response = post_form(client, f"/staff/notes/{note_id}/edit", {"body": "New words"})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == f"/staff/contacts/{contact_id}"
    assert _notes(app, world)[0][0] == "New words"
    assert _timeline(app, world, contact_id)[0][1] == "Note: New words"


def test_editing_to_nothing_is_refused_and_the_text_is_kept(world, staff_client, app):
    contact_id = _contact_id(app, world, owner="staff")
    note_id = _note_id(app, world, contact_id, author="staff", body="Keep me")
    response = post_form(staff_client("staff"), f"/staff/notes/{note_id}/edit", {"body": "  "})
    assert response.status_code == 200 and "Write the note." in response.get_data(as_text=True)
    assert _notes(app, world)[0][0] == "Keep me"


@pytest.mark.parametrize("role, allowed", [("owner", True), ("admin", True), ("staff", False)])
def test_only_author_owner_or_admin_may_change_a_note(world, staff_client, app, role, allowed):
    # The staff member owns the contact (may edit it) but did not write the note.
    contact_id = _contact_id(app, world, owner="staff")
    note_id = _note_id(app, world, contact_id, author="owner" if role == "staff" else "staff")
    client = staff_client(role)
    expected = 302 if allowed else 403
    assert client.get(f"/staff/notes/{note_id}/edit").status_code == (200 if allowed else 403)
    assert post_form(client, f"/staff/notes/{note_id}/edit", {"body": "Changed"}).status_code == expected
    assert post_form(client, f"/staff/notes/{note_id}/delete").status_code == expected
    assert _notes(app, world) == ([] if allowed else [("First call went well.", world.a.members["owner"].id)])


def test_deleting_a_note_removes_it_from_the_timeline_and_audits_it(world, staff_client, app):
    contact_id = _contact_id(app, world)
    note_id = _note_id(app, world, contact_id, author="admin", body="Secret plan")
    response = post_form(staff_client("owner"), f"/staff/notes/{note_id}/delete")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == f"/staff/contacts/{contact_id}"
    assert _notes(app, world) == []
    assert _timeline(app, world, contact_id) == []
    with tenant_session(app, world.a):
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "note.deleted"))
        assert event.actor_id == world.a.members["owner"].id
        assert (event.target_type, event.target_id) == ("note", note_id)
        assert event.target_label == "Note on Nora Notes" and event.details["body"] == "Secret plan"


def test_service_refuses_other_staff_changing_a_note(app, world):
    contact_id = _contact_id(app, world, owner="staff")
    note_id = _note_id(app, world, contact_id, author="admin")
    with tenant_session(app, world.a):
        note = db.session.get(Note, note_id)
        with pytest.raises(NotAllowed):
            update_note(note, "x", staff_member(world.a, "staff"))
        with pytest.raises(NotAllowed):
            delete_note(note, staff_member(world.a, "staff"))


def test_notes_of_lists_newest_first_with_authors(app, world):
    contact_id = _contact_id(app, world)
    _note_id(app, world, contact_id, author="owner", body="one")
    _note_id(app, world, contact_id, author="admin", body="two")
    with tenant_session(app, world.a):
        notes = notes_of(db.session.get(Contact, contact_id))
        assert [(n.body, n.author_name) for n in notes] == [("two", "Adam Admin"), ("one", "Olivia Owner")]


# --- showing a note safely --------------------------------------------------------------------------

@pytest.mark.parametrize("text, html", [
    ("plain", "plain"),
    ("see https://example.com/a?b=1&c=2.", 'see <a href="https://example.com/a?b=1&amp;c=2" rel="nofollow noopener">'
                                           'https://example.com/a?b=1&amp;c=2</a>.'),
    ("(http://x.test/wiki/Foo_(bar))", '(<a href="http://x.test/wiki/Foo_(bar)" rel="nofollow noopener">'
                                       'http://x.test/wiki/Foo_(bar)</a>)'),
    ("HTTPS://EXAMPLE.COM", '<a href="HTTPS://EXAMPLE.COM" rel="nofollow noopener">HTTPS://EXAMPLE.COM</a>'),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("javascript:alert(1)", "javascript:alert(1)"),
    ("javascript://example.com/%0Aalert(1)", "javascript://example.com/%0Aalert(1)"),
    ("data:text/html,<b>x</b>", "data:text/html,&lt;b&gt;x&lt;/b&gt;"),
    ('http://x.test/"onmouseover="alert(1)', '<a href="http://x.test/" rel="nofollow noopener">http://x.test/</a>'
                                             '&#34;onmouseover=&#34;alert(1)'),
    ("http://x.test/<img src=x onerror=alert(1)>", '<a href="http://x.test/" rel="nofollow noopener">http://x.test/</a>'
                                                   "&lt;img src=x onerror=alert(1)&gt;"),
    ("ftp://files.example/x", "ftp://files.example/x"),
    ("http://", "http://"),
    ("line one\nline two\r\nline three", "line one<br>\nline two<br>\nline three"),
])
def test_linkify_escapes_everything_and_links_only_web_addresses(text, html):
    assert str(linkify(text)) == html


def test_the_note_partial_renders_safely_with_edit_controls_for_its_author(app, world, staff_client):
    contact_id = _contact_id(app, world)
    body = ("Agenda <script>alert('x')</script>\n"
            "Docs: https://docs.example/start?x=1&y=2\n"
            "Bad: javascript:alert(document.cookie)")
    note_id = _note_id(app, world, contact_id, author="owner", body=body)
    with app.test_request_context(base_url=f"http://{world.a.host}"), tenant_context(world.a.id):
        note = notes_of(db.session.get(Contact, contact_id))[0]
        html = render_template("staff/contacts/_note.html", note=note)
    assert "<script>" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert '<a href="https://docs.example/start?x=1&amp;y=2" rel="nofollow noopener">' in html
    assert 'href="javascript:' not in html and "javascript:alert(document.cookie)" in html
    assert html.count("<br>") == 2
    assert "Olivia Owner" in html
    assert f"/staff/notes/{note_id}/edit" not in html  # nobody signed in here: no controls


def test_note_partial_shows_controls_only_to_those_who_may_use_them(app, world):
    from flask_login import login_user

    contact_id = _contact_id(app, world, owner="staff")
    note_id = _note_id(app, world, contact_id, author="staff")
    for role, shown in (("staff", True), ("admin", True)):
        with app.test_request_context(base_url=f"http://{world.a.host}"), tenant_context(world.a.id):
            login_user(staff_member(world.a, role))
            html = render_template("staff/contacts/_note.html", note=notes_of(db.session.get(Contact, contact_id))[0])
        assert (f'href="/staff/notes/{note_id}/edit"' in html) is shown
        assert (f'action="/staff/notes/{note_id}/delete"' in html) is shown
    with app.test_request_context(base_url=f"http://{world.a.host}"), tenant_context(world.a.id):
        other = StaffUser(email="other@acme.example", name="Other Staff", role="staff", active=True)
        db.session.add(other)
        db.session.flush()
        login_user(other)
        html = render_template("staff/contacts/_note.html", note=notes_of(db.session.get(Contact, contact_id))[0])
        db.session.rollback()
    assert f"/staff/notes/{note_id}/edit" not in html


def test_note_on_a_company_only(app, world):
    from tests.factories import make_company

    with tenant_session(app, world.a):
        company = make_company("Initech", owner_id=world.a.members["staff"].id)
        note = add_note("Company-wide note", company=company, author=staff_member(world.a, "staff"))
        assert notes_of(company) == [note]
        entry = db.session.scalar(sa.select(TimelineEntry).where(TimelineEntry.company_id == company.id))
        assert entry.contact_id is None and entry.kind == "note"
