"""Circle content: staff write, publish, order and delete pages, links and files on a Circle's
page; rich text is cleaned; files are checked by content and never left half-written; the
portal's membership rule (current members only, themselves or through their company)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from core.errors import ServiceError
from core.rich_text import clean_html, rich_text_from_input
from core.storage import LocalStorage, StoredFileMissing, storage
from core.tenancy import tenant_context
from core.web import service_call
from crm import circle_content as content
from crm.models import Circle, CircleItem, CircleMember
from tests.factories import add_to_circle, make_circle, make_circle_item, make_company, make_contact
from tests.support import csrf_token, in_tenant, post_form, staff_member, tenant_session
from tests.test_query_counts import counted_queries

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def _circle(app, world, name="Members"):
    return in_tenant(app, world.a, lambda: make_circle(name))


def _items(app, world):
    return in_tenant(app, world.a, lambda: list(db.session.scalars(sa.select(CircleItem).order_by(CircleItem.position))))


def _stored_files(app) -> list[Path]:
    root = Path(app.config["FILE_STORAGE_PATH"])
    return [p for p in root.rglob("*") if p.is_file()]


def _upload(client, circle_id, data: bytes, name: str, title: str = "", publish=False):
    form = {"csrf_token": csrf_token(client, "/staff/account"), "title": title,
            "file": (io.BytesIO(data), name)}
    if publish:
        form["publish"] = "y"
    return client.post(f"/staff/circles/{circle_id}/items/new?kind=file", data=form,
                       content_type="multipart/form-data")


# --- the sanitiser --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dirty, kept, gone", [
    ("<p>Hi<script>alert(1)</script></p>", "<p>Hi</p>", "alert"),
    ('<img src=x onerror="alert(1)"><p onclick="x()">Text</p>', "<p>Text</p>", "onerror"),
    ('<a href="javascript:alert(1)">link</a>', "link", "javascript"),
    ('<a href="https://example.com/a">ok</a>', 'href="https://example.com/a"', "onclick"),
    ("<style>p{}</style><iframe src=//evil></iframe><p>x</p>", "<p>x</p>", "iframe"),
])
def test_clean_html_keeps_text_and_drops_script(dirty, kept, gone):
    cleaned = clean_html(dirty)
    assert kept in cleaned and gone not in cleaned


def test_plain_text_becomes_paragraphs_and_is_escaped():
    assert rich_text_from_input("One\nline\n\nTwo & three") == "<p>One<br>line</p><p>Two &amp; three</p>"


def test_a_page_with_script_is_stored_clean_and_shown_clean(app, world, staff_client):
    circle = _circle(app, world)
    client = staff_client("admin")
    body = ('<h2>Welcome</h2><p onmouseover="steal()">Read <a href="javascript:alert(1)">this</a> and '
            '<a href="https://example.com/guide">the guide</a>.</p><script>alert("x")</script><img src=x onerror=alert(2)>')
    response = post_form(client, f"/staff/circles/{circle.id}/items/new?kind=page",
                         {"title": "Welcome", "body": body})
    assert response.status_code == 302
    item = _items(app, world)[0]
    for bad in ("script", "onmouseover", "onerror", "javascript:", "<img", "alert"):
        assert bad not in item.body
    assert "<h2>Welcome</h2>" in item.body and 'href="https://example.com/guide"' in item.body
    assert not item.published and item.created_by_id == world.a.members["admin"].id

    # A row written dirty (by hand, or by an older rule) is cleaned again when shown.
    with tenant_session(app, world.a):
        db.session.get(CircleItem, item.id).body = '<p>Hi</p><script>alert("late")</script>'
    page = client.get(f"/staff/circles/{circle.id}/items/{item.id}/edit").get_data(as_text=True)
    preview = page.split("As members read it", 1)[1]
    assert "<p>Hi</p>" in preview and "alert(&#34;late&#34;)" not in preview and "<script>alert" not in preview


# --- staff authoring ------------------------------------------------------------------------------------

def test_admin_writes_publishes_orders_and_deletes(app, world, staff_client):
    circle = _circle(app, world)
    client = staff_client("admin")
    page = client.get(f"/staff/circles/{circle.id}").get_data(as_text=True)
    assert "Content for members" in page and "Nothing published to this circle yet." in page
    assert client.get(f"/staff/circles/{circle.id}/items/new?kind=link").status_code == 200

    post_form(client, f"/staff/circles/{circle.id}/items/new?kind=page", {"title": "Agenda", "body": "Day one"})
    response = post_form(client, f"/staff/circles/{circle.id}/items/new?kind=link",
                         {"title": "Booking", "url": "https://example.com/book", "publish": "y"})
    landing = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Link “Booking” published." in landing
    agenda, booking = _items(app, world)
    assert (agenda.title, agenda.published, booking.published) == ("Agenda", False, True)
    section = landing.split('id="content"', 1)[1]
    assert section.index("Agenda") < section.index("Booking") and "Draft" in section

    post_form(client, f"/staff/circles/{circle.id}/items/{agenda.id}/publish")
    post_form(client, f"/staff/circles/{circle.id}/items/{booking.id}/move", {"direction": "up"})
    assert [i.title for i in _items(app, world)] == ["Booking", "Agenda"]
    response = post_form(client, f"/staff/circles/{circle.id}/items/{booking.id}/move", {"direction": "up"})
    assert "“Booking” is already first." in client.get(response.headers["Location"]).get_data(as_text=True)
    assert all(i.published for i in _items(app, world))

    response = post_form(client, f"/staff/circles/{circle.id}/items/{agenda.id}/edit",
                         {"title": "Agenda, day one", "body": "<p>From <strong>nine</strong></p>"})
    assert response.status_code == 302
    post_form(client, f"/staff/circles/{circle.id}/items/{booking.id}/unpublish")
    post_form(client, f"/staff/circles/{circle.id}/items/{booking.id}/delete")
    (left,) = _items(app, world)
    assert left.title == "Agenda, day one" and left.body == "<p>From <strong>nine</strong></p>"
    actions = in_tenant(app, world.a, lambda: db.session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.action.like("circle.item%")).order_by(AuditEvent.id)).all())
    assert actions == ["circle.item_created", "circle.item_created", "circle.item_published", "circle.item_moved",
                       "circle.item_updated", "circle.item_unpublished", "circle.item_deleted"]


def test_bad_input_rerenders_with_field_errors_and_saves_nothing(app, world, staff_client):
    circle = _circle(app, world)
    client = staff_client("admin")
    for url in ("javascript:alert(1)", "ftp://example.com/x", "example"):
        response = post_form(client, f"/staff/circles/{circle.id}/items/new?kind=link", {"title": "Bad", "url": url})
        assert response.status_code == 422
        assert "Enter a web address starting with https://" in response.get_data(as_text=True)
    response = post_form(client, f"/staff/circles/{circle.id}/items/new?kind=page",
                         {"title": "", "body": "<script>only script</script>"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "Enter a title." in body
    response = post_form(client, f"/staff/circles/{circle.id}/items/new?kind=page",
                         {"title": "Empty", "body": "<script>only script</script>"})
    assert "Write the page&#39;s text." in response.get_data(as_text=True)
    assert _items(app, world) == []


def test_staff_without_configure_sees_the_content_but_cannot_author(app, world, staff_client):
    circle = _circle(app, world)
    item = in_tenant(app, world.a, lambda: make_circle_item(db.session.get(Circle, circle.id), "page", "Rules"))
    client = staff_client("staff")
    page = client.get(f"/staff/circles/{circle.id}").get_data(as_text=True)
    assert "Rules" in page and "Write a page" not in page and "Unpublish" not in page
    assert client.get(f"/staff/circles/{circle.id}/items/new?kind=page").status_code == 403
    for action in ("unpublish", "delete"):
        assert post_form(client, f"/staff/circles/{circle.id}/items/{item.id}/{action}").status_code == 403
    assert _items(app, world)[0].published


def test_an_item_of_another_circle_is_not_found_through_this_one(app, world, staff_client):
    one, other = _circle(app, world, "One"), _circle(app, world, "Other")
    item = in_tenant(app, world.a, lambda: make_circle_item(db.session.get(Circle, other.id), "page"))
    client = staff_client("owner")
    assert client.get(f"/staff/circles/{one.id}/items/{item.id}/edit").status_code == 404
    assert post_form(client, f"/staff/circles/{one.id}/items/{item.id}/delete").status_code == 404


# --- files -------------------------------------------------------------------------------------------------

def test_a_file_is_checked_by_content_stored_and_downloaded(app, world, staff_client):
    circle = _circle(app, world)
    client = staff_client("admin")
    response = _upload(client, circle.id, PDF, "Price list.pdf", publish=True)
    assert response.status_code == 302, response.get_data(as_text=True)
    (item,) = _items(app, world)
    assert (item.title, item.file_name, item.file_size, item.content_type) == (
        "Price list.pdf", "Price list.pdf", len(PDF), "application/pdf")
    assert item.storage_key.startswith(f"circle-files/{world.a.id}/{circle.id}/")
    assert len(_stored_files(app)) == 1

    download = client.get(f"/staff/circles/{circle.id}/items/{item.id}/file")
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("inline")
    assert download.headers["X-Content-Type-Options"] == "nosniff"

    # Text is told by sniffing; it is always downloaded, never shown as a page.
    _upload(client, circle.id, b"name,email\nAnn,ann@example.com\n", "people.csv", title="People")
    csv_item = _items(app, world)[1]
    download = client.get(f"/staff/circles/{circle.id}/items/{csv_item.id}/file")
    assert download.headers["Content-Type"].startswith("text/csv")
    assert download.headers["Content-Disposition"].startswith("attachment") and "people.csv" in \
        download.headers["Content-Disposition"]


@pytest.mark.parametrize("data, name, message", [
    (PNG, "report.pdf", "“report.pdf” is named like a .pdf file, but its content is a PNG image."),
    (b"<html><script>alert(1)</script></html>", "invoice.pdf", "its content is a Text file"),
    (b"PK\x03\x04" + b"\x00" * 200, "archive.zip", "“archive.zip” is a kind of file by its content"),
    (b"", "empty.pdf", "“empty.pdf” is empty."),
    (b"MZ\x90\x00\x03" + b"\x00" * 100, "setup.exe", "which circles do not take"),
])
def test_refused_uploads_leave_no_row_and_no_file(app, world, staff_client, data, name, message):
    circle = _circle(app, world)
    response = _upload(staff_client("admin"), circle.id, data, name)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True).replace("&#34;", '"')
    assert _items(app, world) == [] and _stored_files(app) == []


def test_the_tenants_limits_decide_size_and_kinds(app, world, staff_client):
    circle = _circle(app, world)
    client = staff_client("admin")
    response = post_form(client, "/staff/settings/crm/circle-files",
                         {"circle_file_max_mb": "0", "circle_file_kinds": ["pdf"]})
    assert response.status_code == 422 and "Enter a whole number of megabytes from 1 to" in response.get_data(as_text=True)
    response = post_form(client, "/staff/settings/crm/circle-files",
                         {"circle_file_max_mb": "1", "circle_file_kinds": ["pdf", "txt"]})
    assert response.status_code == 302
    page = client.get("/staff/settings/crm").get_data(as_text=True)
    assert 'value="1"' in page.split('id="circle-files"', 1)[1]

    big = PDF + b"%" * (1024 * 1024)
    response = _upload(client, circle.id, big, "big.pdf")
    assert "“big.pdf” is larger than 1 MB, the most a file may be." in response.get_data(as_text=True)
    response = _upload(client, circle.id, PNG, "logo.png")
    assert "“logo.png” is PNG image by its content, which circles do not take. Allowed: PDF, Text file." in \
        response.get_data(as_text=True)
    assert _items(app, world) == [] and _stored_files(app) == []
    assert "crm.circle_file_limits_changed" in in_tenant(app, world.a, lambda: db.session.scalars(
        sa.select(AuditEvent.action)).all())


class _BreaksMidway(io.RawIOBase):
    """A stream that gives some bytes, then fails: a connection dropped mid-upload."""

    def __init__(self):
        self.sent = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.sent >= 3:
            raise OSError("connection reset")
        self.sent += 1
        chunk = (PDF if self.sent == 1 else b"%" * 1000)[:len(buffer)]
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_an_upload_that_fails_midway_leaves_no_half_file_and_no_row(app, world):
    circle = _circle(app, world)
    with app.test_request_context(), tenant_context(world.a.id):
        admin = staff_member(world.a, "admin")
        circle_row = db.session.get(Circle, circle.id)

        # The store's write breaks partway: no file under the key, no temporary left behind.
        store = storage()
        with pytest.raises(OSError):
            store.put("circle-files/x/broken", _BreaksMidway())
        assert _stored_files(app) == []

        # The file is stored whole, then the transaction does not commit: the file goes too.
        with pytest.raises(RuntimeError):
            with service_call():
                content.create_file(circle_row, "Doc", io.BytesIO(PDF), "doc.pdf", admin)
                assert len(_stored_files(app)) == 1
                raise RuntimeError("the database went away before the commit")
        assert _stored_files(app) == []
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CircleItem)) == 0

        # Committed: the file stays; deleted and committed: it goes.
        with service_call():
            item = content.create_file(circle_row, "Doc", io.BytesIO(PDF), "doc.pdf", admin)
        assert len(_stored_files(app)) == 1
        with service_call(show_error=False) as outcome:
            content.delete_item(item, circle_row, admin)
            raise ServiceError("changed my mind")
        assert outcome.error is not None and not outcome
        assert len(_stored_files(app)) == 1, "a rolled-back deletion keeps the file"
        item = db.session.get(CircleItem, item.id)
        with service_call():
            content.delete_item(item, circle_row, admin)
        assert _stored_files(app) == []


def test_replacing_a_file_keeps_the_old_one_until_the_change_commits(app, world, staff_client):
    circle = _circle(app, world)
    client = staff_client("admin")
    _upload(client, circle.id, PDF, "v1.pdf", title="Terms")
    (item,) = _items(app, world)
    response = client.post(f"/staff/circles/{circle.id}/items/{item.id}/edit", content_type="multipart/form-data",
                           data={"csrf_token": csrf_token(client, "/staff/account"), "title": "Terms",
                                 "file": (io.BytesIO(PNG), "v2.pdf")})
    assert response.status_code == 422 and _items(app, world)[0].file_name == "v1.pdf"
    assert len(_stored_files(app)) == 1
    client.post(f"/staff/circles/{circle.id}/items/{item.id}/edit", content_type="multipart/form-data",
                data={"csrf_token": csrf_token(client, "/staff/account"), "title": "Terms 2",
                      "file": (io.BytesIO(PDF + b"v2"), "v2.pdf")})
    (item,) = _items(app, world)
    assert (item.title, item.file_name, item.file_size) == ("Terms 2", "v2.pdf", len(PDF) + 2)
    (only,) = _stored_files(app)
    assert only.read_bytes() == PDF + b"v2"


def test_a_file_missing_from_the_store_gives_a_clear_message(app, world, staff_client):
    circle = _circle(app, world)
    item = in_tenant(app, world.a, lambda: make_circle_item(db.session.get(Circle, circle.id), "file", "Brochure"))
    for path in _stored_files(app):
        os.remove(path)
    client = staff_client("admin")
    response = client.get(f"/staff/circles/{circle.id}/items/{item.id}/file")
    assert response.status_code == 302
    assert "The file of “Brochure” is missing from the file store. Upload it again with Edit." in \
        client.get(response.headers["Location"]).get_data(as_text=True)


def test_local_storage_refuses_keys_outside_its_folder(tmp_path):
    store = LocalStorage(tmp_path / "files")
    with pytest.raises(ValueError):
        store.put("../escape", io.BytesIO(b"x"))
    with pytest.raises(StoredFileMissing):
        store.open("circle-files/1/none")


# --- who reads a circle in the portal (the rule the portal pages ask) ------------------------------------------

def test_members_read_their_circles_and_nobody_else_does(app, world):
    def build():
        company = make_company("Initech")
        person = make_contact("Mia", "Member", role="client")
        colleague = make_contact("Cole", "Colleague", role="client", company_id=company.id)
        outsider = make_contact("Otto", "Outsider", role="client")
        leaver = make_contact("Lee", "Leaver", role="client")
        own, via_company, archived, other = (make_circle(n) for n in ("Own", "Via company", "Archived", "Other"))
        add_to_circle(own, contact=person)
        add_to_circle(own, contact=leaver).removed_at = own.created_at
        add_to_circle(via_company, company=company)
        add_to_circle(archived, contact=person)
        archived.archived_at = archived.created_at
        make_circle_item(own, "page", "Own page")
        make_circle_item(own, "page", "Own draft", published=False)
        make_circle_item(via_company, "link", "Company link")
        make_circle_item(archived, "page", "Archived page")
        make_circle_item(other, "page", "Other page")
        db.session.flush()
        return {
            "person": [c.name for c in content.member_circles(person)],
            "colleague": [c.name for c in content.member_circles(colleague)],
            "outsider": content.member_circles(outsider),
            "leaver": content.member_circle(leaver, own.id),
            "person_other": content.member_circle(person, other.id),
            "person_latest": [row.title for row in content.latest_items(person)],
            "colleague_latest": [row.title for row in content.latest_items(colleague)],
            "draft": content.published_item(own, content.items_of(own)[1].id),
        }
    seen = in_tenant(app, world.a, build)
    assert seen["person"] == ["Own"] and seen["colleague"] == ["Via company"]
    assert seen["outsider"] == [] and seen["leaver"] is None and seen["person_other"] is None
    assert seen["person_latest"] == ["Own page"] and seen["colleague_latest"] == ["Company link"]
    assert seen["draft"] is None


def test_latest_content_is_one_query_for_many_circles(app, world):
    with app.app_context(), tenant_context(world.a.id):
        person = make_contact("Many", "Circles", role="client")
        for n in range(20):
            circle = make_circle(f"C{n:02d}")
            add_to_circle(circle, contact=person)
            for i in range(10):
                make_circle_item(circle, "page", f"C{n:02d} item {i}")
        db.session.commit()
        db.session.refresh(person)
        with counted_queries(app) as statements:
            latest = content.latest_items(person)
        assert len(latest) == content.LATEST and len(statements) == 1
        assert latest[0].title == "C19 item 9"
        member = db.session.scalar(sa.select(CircleMember).where(CircleMember.contact_id == person.id))
        member.removed_at = member.added_at
        db.session.flush()
        assert len(content.member_circles(person)) == 19
