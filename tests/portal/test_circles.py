"""A portal contact's Circles: the Circles they belong to now (themselves or through their
company), what staff published there, a page, a file's download, the home's latest panel;
and everything else a 404, by page and by the file's own URL."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.db import db, utcnow
from core.tenancy import tenant_context
from crm.models import Circle, CircleMember, Contact
from tests.factories import add_to_circle, make_circle, make_circle_item, make_company
from tests.test_query_counts import counted_queries

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
def member_world(app, world, portal_client):
    """A signed-in client in the circle "Members" (published page, link, PDF, Word file, a
    draft), and a circle "Other" they are not in; ids in a dict."""
    client = portal_client("client")
    with app.app_context(), tenant_context(world.a.id):
        contact = db.session.get(Contact, client.contact_id)
        members, other = make_circle("Members"), make_circle("Other")
        add_to_circle(members, contact=contact)
        ids = {
            "members": members.id, "other": other.id,
            "page": make_circle_item(members, "page", "Welcome pack",
                                     body='<p>Hello <strong>members</strong></p><script>alert(1)</script>').id,
            "link": make_circle_item(members, "link", "Booking", url="https://example.com/book").id,
            "pdf": make_circle_item(members, "file", "Price list", data=PDF, file_name="prices.pdf").id,
            "docx": make_circle_item(members, "file", "Contract", data=b"PK\x03\x04docx", file_name="contract.docx",
                                     content_type=DOCX_TYPE).id,
            "draft": make_circle_item(members, "page", "Draft plans", published=False).id,
            "other_page": make_circle_item(other, "page", "Other page").id,
            "other_file": make_circle_item(other, "file", "Other file", data=PDF).id,
        }
        db.session.commit()
    return client, ids


def test_a_member_sees_the_circle_its_published_items_and_files(member_world):
    client, ids = member_world
    listing = client.get("/portal/circles").get_data(as_text=True)
    assert "Members" in listing and "4 items" in listing and "Other" not in listing

    page = client.get(f"/portal/circles/{ids['members']}").get_data(as_text=True)
    for title in ("Welcome pack", "Booking", "Price list", "Contract"):
        assert title in page
    assert "Draft plans" not in page and 'href="https://example.com/book"' in page

    item = client.get(f"/portal/circles/{ids['members']}/items/{ids['page']}")
    body = item.get_data(as_text=True)
    assert item.status_code == 200 and "Hello <strong>members</strong>" in body and "alert(1)" not in body

    pdf = client.get(f"/portal/circles/{ids['members']}/items/{ids['pdf']}/file")
    assert pdf.status_code == 200 and pdf.data == PDF
    assert pdf.headers["Content-Type"] == "application/pdf" and pdf.headers["Content-Disposition"].startswith("inline")
    assert pdf.headers["X-Content-Type-Options"] == "nosniff" and "no-store" in pdf.headers["Cache-Control"]
    word = client.get(f"/portal/circles/{ids['members']}/items/{ids['docx']}/file")
    assert word.headers["Content-Type"] == DOCX_TYPE
    assert word.headers["Content-Disposition"] == "attachment; filename=contract.docx"


def test_the_home_shows_the_latest_from_the_contacts_circles(member_world):
    client, ids = member_world
    home = client.get("/portal/").get_data(as_text=True)
    assert "Latest from your circles" in home
    panel = home.split("Latest from your circles", 1)[1]
    assert panel.index("Contract") < panel.index("Welcome pack")  # newest first
    assert "Draft plans" not in panel and "Other page" not in panel
    assert 'href="/portal/circles"' in home  # the navigation's Circles link


@pytest.mark.parametrize("what", ["draft", "other_page", "other_file", "page_via_other_circle"])
def test_what_the_contact_may_not_read_is_not_found(member_world, what):
    client, ids = member_world
    paths = {
        "draft": [f"/portal/circles/{ids['members']}/items/{ids['draft']}"],
        "other_page": [f"/portal/circles/{ids['other']}", f"/portal/circles/{ids['other']}/items/{ids['other_page']}"],
        "other_file": [f"/portal/circles/{ids['other']}/items/{ids['other_file']}/file",
                       f"/portal/circles/{ids['members']}/items/{ids['other_file']}/file"],
        "page_via_other_circle": [f"/portal/circles/{ids['other']}/items/{ids['page']}",
                                  f"/portal/circles/{ids['other']}/items/{ids['page']}/file"],
    }[what]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Other page" not in response.get_data(as_text=True)


def test_a_removed_member_and_an_archived_circle_are_not_found(app, world, member_world):
    client, ids = member_world
    urls = [f"/portal/circles/{ids['members']}", f"/portal/circles/{ids['members']}/items/{ids['page']}",
            f"/portal/circles/{ids['members']}/items/{ids['pdf']}/file"]
    assert all(client.get(u).status_code == 200 for u in urls)
    with app.app_context(), tenant_context(world.a.id):
        db.session.query(CircleMember).filter_by(circle_id=ids["members"]).update({"removed_at": utcnow()})
        db.session.commit()
    assert [client.get(u).status_code for u in urls] == [404, 404, 404]
    assert "Members" not in client.get("/portal/circles").get_data(as_text=True)
    assert "Latest from your circles" not in client.get("/portal/").get_data(as_text=True)

    with app.app_context(), tenant_context(world.a.id):
        db.session.query(CircleMember).filter_by(circle_id=ids["members"]).update({"removed_at": None})
        db.session.get(Circle, ids["members"]).archived_at = utcnow()
        db.session.commit()
    assert [client.get(u).status_code for u in urls] == [404, 404, 404]


def test_a_companys_contacts_read_the_companys_circles(app, world, portal_client):
    with app.app_context(), tenant_context(world.a.id):
        company = make_company("Initech")
        company_id = company.id
        db.session.commit()
    client = portal_client("client", company_id=company_id)
    with app.app_context(), tenant_context(world.a.id):
        circle = make_circle("Partners")
        add_to_circle(circle, company=db.session.get(type(company), company_id))
        item = make_circle_item(circle, "page", "Partner terms")
        ids = circle.id, item.id
        db.session.commit()
    assert "Partners" in client.get("/portal/circles").get_data(as_text=True)
    assert "Partner terms" in client.get(f"/portal/circles/{ids[0]}/items/{ids[1]}").get_data(as_text=True)


def test_anonymous_visitors_sign_in_first_and_other_tenants_ids_are_not_found(app, world, member_world, client_for):
    _, ids = member_world
    anonymous = client_for(world.a.slug)
    response = anonymous.get(f"/portal/circles/{ids['members']}/items/{ids['pdf']}/file")
    assert response.status_code == 302 and response.headers["Location"].startswith("/portal/login?next=")
    on_b = client_for(world.b.slug)
    assert on_b.get(f"/portal/circles/{ids['members']}/items/{ids['pdf']}/file").status_code == 404


def test_a_file_missing_from_the_store_says_so(app, member_world):
    client, ids = member_world
    for path in Path(app.config["FILE_STORAGE_PATH"]).rglob("*"):
        if path.is_file():
            os.remove(path)
    response = client.get(f"/portal/circles/{ids['members']}/items/{ids['pdf']}/file")
    assert response.status_code == 404
    assert "“Price list” is not available right now" in response.get_data(as_text=True)


def test_the_home_panel_is_one_query_for_twenty_circles(app, world, portal_client):
    client = portal_client("client")
    with app.app_context(), tenant_context(world.a.id):
        contact = db.session.get(Contact, client.contact_id)
        for n in range(20):
            circle = make_circle(f"Circle {n:02d}")
            add_to_circle(circle, contact=contact)
            for i in range(10):
                make_circle_item(circle, "page", f"Item {n:02d}-{i}")
        db.session.commit()
    client.get("/portal/")
    with counted_queries(app) as statements:
        home = client.get("/portal/").get_data(as_text=True)
    assert "Item 19-9" in home
    circle_item_queries = [s for s in statements if "circle_item" in s]
    assert len(circle_item_queries) == 1, circle_item_queries
