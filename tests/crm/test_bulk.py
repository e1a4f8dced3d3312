"""Selecting contacts across pages, acting on them in bulk, exporting, and segments."""
from __future__ import annotations

import csv
import io
import re

import sqlalchemy as sa
from openpyxl import load_workbook

from core.audit import AuditEvent
from core.db import db
from crm.models import CircleMember, Contact, CrmSettings, Segment
from tests.support import in_tenant, post_form
from tests.factories import make_contact

LINK = re.compile(r'href="/staff/contacts/(\d+)"')


def _select_page(client, page_html: str, chosen: list[int]):
    ids = [int(i) for i in LINK.findall(page_html)]
    data = {"change": "page", "page_ids": [str(i) for i in ids], "ids": [str(i) for i in chosen if i in ids]}
    return post_form(client, "/staff/contacts/selection", data)


def _next_url(page_html: str) -> str:
    return re.search(r'href="([^"]+)" rel="next"', page_html).group(1).replace("&amp;", "&")


def test_selection_survives_paging_and_bulk_adds_to_a_circle(world, staff_client, crowd, app):
    ids, circle_id = crowd
    client = staff_client("owner")
    first = client.get("/staff/contacts?sort=name&dir=asc").get_data(as_text=True)
    first_ids = [int(i) for i in LINK.findall(first)]
    _select_page(client, first, first_ids[:3])
    second = client.get(_next_url(first)).get_data(as_text=True)
    second_ids = [int(i) for i in LINK.findall(second)]
    _select_page(client, second, second_ids[:2])
    back = client.get("/staff/contacts?sort=name&dir=asc").get_data(as_text=True)
    assert "5</span> selected" in back
    assert back.count("checked") >= 3  # the first page still shows its three ticks
    done = post_form(client, "/staff/contacts/bulk", {"action": "add_to_circle", "circle_id": circle_id},
                     follow_redirects=True).get_data(as_text=True)
    assert "Add to a circle: 5 contacts changed." in done
    members = in_tenant(app, world.a, lambda: db.session.scalars(sa.select(CircleMember.contact_id).where(
        CircleMember.circle_id == circle_id, CircleMember.removed_at.is_(None))).all())
    assert sorted(members) == sorted(first_ids[:3] + second_ids[:2])
    again = post_form(client, "/staff/contacts/bulk", {"action": "add_to_circle", "circle_id": circle_id},
                      follow_redirects=True).get_data(as_text=True)
    assert "0 contacts changed, 5 already so." in again


def test_select_all_matching_and_set_status(world, staff_client, crowd, app):
    from crm.models import PipelineStatus
    qualified = in_tenant(app, world.a, lambda: db.session.scalar(sa.select(PipelineStatus.id).where(
        PipelineStatus.name == "Qualified")))
    client = staff_client("owner")
    post_form(client, "/staff/contacts/selection", {"change": "all_matching", "q": "crowd"})
    page = client.get("/staff/contacts?q=crowd").get_data(as_text=True)
    assert "All 60 contacts matching the chosen filters are selected." in page
    done = post_form(client, "/staff/contacts/bulk", {"action": "set_status", "status_id": qualified},
                     follow_redirects=True).get_data(as_text=True)
    assert "60 contacts changed" in done
    assert in_tenant(app, world.a, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Contact).where(
        Contact.status_id == qualified))) == 60
    event = in_tenant(app, world.a, lambda: db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "contact.bulk_action")).one())
    assert event.details["all_matching"] is True and event.details["changed"] == 60


def test_bulk_skips_what_the_member_may_not_change(world, staff_client, crowd, app):
    client = staff_client("staff")
    post_form(client, "/staff/contacts/selection", {"change": "all_matching", "q": "crowd"})
    done = post_form(client, "/staff/contacts/bulk", {"action": "set_role", "role": "prospect"},
                     follow_redirects=True).get_data(as_text=True)
    assert "5 contacts changed, 55 skipped (you may change only your own contacts)." in done


def test_bulk_role_backwards_needs_admin_and_confirmation(world, staff_client, app):
    in_tenant(app, world.a, lambda: [make_contact(f"Client{i}", "Big", role="client") for i in range(3)])
    staff = staff_client("staff")
    post_form(staff, "/staff/contacts/selection", {"change": "all_matching", "q": "big"})
    refused = post_form(staff, "/staff/contacts/bulk", {"action": "set_role", "role": "lead"}, follow_redirects=True)
    assert "your role may not do that" in refused.get_data(as_text=True)
    admin = staff_client("admin")
    post_form(admin, "/staff/contacts/selection", {"change": "all_matching", "q": "big"})
    ask = post_form(admin, "/staff/contacts/bulk", {"action": "set_role", "role": "lead"})
    assert "3 of these contacts would move back to Lead." in ask.get_data(as_text=True)
    done = post_form(admin, "/staff/contacts/bulk", {"action": "set_role", "role": "lead", "confirm": "yes"},
                     follow_redirects=True)
    assert "3 contacts changed" in done.get_data(as_text=True)


def test_bulk_archive_then_delete(world, staff_client, crowd, app):
    ids, _ = crowd
    client = staff_client("owner")
    page = client.get("/staff/contacts?sort=name&dir=asc").get_data(as_text=True)
    _select_page(client, page, ids[:2])
    post_form(client, "/staff/contacts/bulk", {"action": "archive"})
    assert "2 contacts" in client.get("/staff/contacts?history=1").get_data(as_text=True)
    post_form(client, "/staff/contacts/bulk", {"action": "delete"})
    assert in_tenant(app, world.a, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Contact))) == 58


def test_restricted_staff_cannot_select_or_act_on_hidden_contacts(world, staff_client, crowd, app):
    ids, circle_id = crowd
    in_tenant(app, world.a, lambda: setattr(db.session.scalar(sa.select(CrmSettings)), "staff_visibility",
                                      CrmSettings.OWN_OR_CIRCLES))
    client = staff_client("staff")
    hidden = ids[10]  # owned by the owner, in no assigned circle
    post_form(client, "/staff/contacts/selection", {"change": "page", "page_ids": [hidden], "ids": [hidden]})
    post_form(client, "/staff/contacts/selection", {"change": "all_matching", "q": "crowd"})
    page = client.get("/staff/contacts?q=crowd").get_data(as_text=True)
    assert "All 5 contacts matching" in page
    export = client.get("/staff/contacts/export?format=csv&q=crowd").get_data(as_text=True)
    assert len(list(csv.reader(io.StringIO(export.lstrip("\ufeff"))))) == 1 + 5


def test_export_csv_and_xlsx_follow_the_filters_and_defuse_formulas(world, staff_client, app):
    in_tenant(app, world.a, lambda: (make_contact("=HYPERLINK(\"http://evil\")", "Formula", email="f@example.com"),
                               make_contact("Plain", "Person", email="p@example.com", role="client")))
    client = staff_client("owner")
    response = client.get("/staff/contacts/export?format=csv")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:4] == ["ID", "First name", "Last name", "E-mail"]
    names = {row[1] for row in rows[1:]}
    assert "'=HYPERLINK(\"http://evil\")" in names and "Plain" in names
    only_clients = client.get("/staff/contacts/export?format=xlsx&role=client")
    sheet = load_workbook(io.BytesIO(only_clients.data)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert [v[1] for v in values[1:]] == ["Plain"]
    exported = in_tenant(app, world.a, lambda: db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "contact.exported").order_by(AuditEvent.id)).all())
    assert [(e.details["format"], e.details["contacts"]) for e in exported] == [("csv", 2), ("xlsx", 1)]


def test_an_excel_export_too_large_to_build_in_a_request_offers_csv(world, staff_client, app, monkeypatch):
    from crm import export

    monkeypatch.setattr(export, "XLSX_MAX", 2)  # test-only: "too large" is three contacts here
    in_tenant(app, world.a, lambda: [make_contact(f"Row{i}", "Big", role="client") for i in range(3)])
    client = staff_client("owner")
    refused = client.get("/staff/contacts/export?format=xlsx&role=client")
    assert refused.status_code == 302 and "role=client" in refused.headers["Location"]
    page = client.get(refused.headers["Location"]).get_data(as_text=True)
    assert "Excel exports hold up to 2 contacts and this list has more. Export it as CSV" in page
    assert client.get("/staff/contacts/export?format=csv&role=client").get_data(as_text=True).count("Big") == 3
    assert load_workbook(io.BytesIO(client.get("/staff/contacts/export?format=xlsx&role=client&q=row1").data))


def test_segments_are_saved_and_re_evaluated(world, staff_client, app):
    in_tenant(app, world.a, lambda: make_contact("First", "Client", role="client"))
    client = staff_client("owner")
    saved = post_form(client, "/staff/segments", {"name": "Clients", "role": "client"}, follow_redirects=True)
    body = saved.get_data(as_text=True)
    assert "Saved the segment “Clients”" in body and "First Client" in body
    in_tenant(app, world.a, lambda: make_contact("Second", "Client", role="client"))
    segment_id = in_tenant(app, world.a, lambda: db.session.scalar(sa.select(Segment.id)))
    again = client.get(f"/staff/segments/{segment_id}", follow_redirects=True).get_data(as_text=True)
    assert "Second Client" in again and "<h1>Clients</h1>" in again
    duplicate = post_form(client, "/staff/segments", {"name": "clients", "role": "lead"}, follow_redirects=True)
    assert "There is already a segment called “clients”." in duplicate.get_data(as_text=True)
    assert "Clients" in client.get("/staff/segments").get_data(as_text=True)
    post_form(client, f"/staff/segments/{segment_id}/delete")
    assert client.get(f"/staff/segments/{segment_id}").status_code == 404


def test_private_segment_is_hidden_from_others(world, staff_client, app):
    client = staff_client("staff")
    post_form(client, "/staff/segments", {"name": "Mine", "role": "lead", "shared": "no"})
    segment_id = in_tenant(app, world.a, lambda: db.session.scalar(sa.select(Segment.id)))
    assert staff_client("admin").get(f"/staff/segments/{segment_id}").status_code == 404
