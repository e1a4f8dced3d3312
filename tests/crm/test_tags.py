"""Tags: free labels on contacts and companies, one tag whatever the case, a tag cloud with
counts, renaming (and merging) and deleting for admins."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db, utcnow
from core.errors import ServiceError
from crm import tags
from crm.models import CompanyTag, Contact, ContactTag, Tag, TimelineEntry
from tests.crm.test_circles import in_a, in_b, member
from tests.factories import (add_to_circle, assign_to_circle, make_circle, make_company, make_contact, make_tag,
                             restrict_staff_visibility, tag_record)
from tests.support import post_form
from tests.test_query_counts import counted_queries


def tag_rows(app, world):
    return in_a(app, world, lambda: [(t.name, t.key) for t in db.session.scalars(sa.select(Tag).order_by(Tag.id))])


# --- one tag whatever the case --------------------------------------------------------------------------

def test_a_tag_is_one_tag_whatever_the_case_and_spacing(world, app):
    def run():
        first = tags.get_or_create_tag("  VIP ")
        assert tags.get_or_create_tag("vip").id == first.id
        assert tags.get_or_create_tag("Vip").id == first.id
        assert tags.get_or_create_tag("Big  Spender").id == tags.get_or_create_tag("big spender").id
    in_a(app, world, run)
    assert tag_rows(app, world) == [("VIP", "vip"), ("Big Spender", "big spender")]


@pytest.mark.parametrize("name, message", [
    ("", "Enter a tag."),
    ("   ", "Enter a tag."),
    ("x" * 61, "A tag can be at most 60 characters."),
    ("two\nlines", "A tag must be one line of plain text."),
])
def test_bad_tag_names_are_refused_in_plain_words(world, app, name, message):
    def run():
        with pytest.raises(ServiceError) as refused:
            tags.get_or_create_tag(name)
        return refused.value
    refused = in_a(app, world, run)
    assert (refused.message, refused.field) == (message, "name")


def test_tags_are_per_tenant(world, app):
    in_b(app, world, lambda: make_tag("vip"))
    in_a(app, world, lambda: tags.get_or_create_tag("VIP"))
    assert tag_rows(app, world) == [("VIP", "vip")]


# --- tagging contacts from their page ----------------------------------------------------------------------

def test_staff_tag_and_untag_their_own_contact(world, staff_client, app):
    mine = in_a(app, world, lambda: make_contact("Mine", owner_id=world.a.members["staff"].id).id)
    client = staff_client("staff")
    response = post_form(client, f"/staff/contacts/{mine}/tags", {"name": " Hot  lead "})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/staff/contacts/{mine}")
    post_form(client, f"/staff/contacts/{mine}/tags", {"name": "HOT LEAD"})  # the same tag: no change

    def check():
        contact = db.session.get(Contact, mine)
        assert [t.name for t in tags.tags_of_contact(contact)] == ["Hot lead"]
        entries = db.session.scalars(sa.select(TimelineEntry).where(TimelineEntry.contact_id == mine)).all()
        assert [(e.kind, e.summary, e.actor_label) for e in entries] == [
            ("tag_added", "Tagged “Hot lead”", "Sam Staff")]
        return tags.tags_of_contact(contact)[0].id
    tag_id = in_a(app, world, check)

    response = post_form(client, f"/staff/contacts/{mine}/tags/{tag_id}/remove")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/staff/contacts/{mine}")
    kinds = in_a(app, world, lambda: db.session.scalars(
        sa.select(TimelineEntry.kind).where(TimelineEntry.contact_id == mine).order_by(TimelineEntry.id)).all())
    assert kinds == ["tag_added", "tag_removed"]
    assert in_a(app, world, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(ContactTag))) == 0
    assert tag_rows(app, world) == [("Hot lead", "hot lead")]  # the label stays for next time


def test_an_empty_tag_is_explained_and_changes_nothing(world, staff_client, app):
    contact_id = in_a(app, world, lambda: make_contact("Ann").id)
    response = post_form(staff_client("admin"), f"/staff/contacts/{contact_id}/tags", {"name": "  "},
                         follow_redirects=True)
    assert "Enter a tag." in response.get_data(as_text=True)
    assert tag_rows(app, world) == []


def test_tagging_someone_elses_contact_is_403_and_another_tenants_is_404(world, staff_client, app):
    def setup():
        contact = make_contact("Theirs")
        tag = make_tag("vip")
        tag_record(tag, contact=contact)
        return contact.id, tag.id
    theirs, tag_id = in_a(app, world, setup)
    b_contact, b_tag = in_b(app, world, lambda: (make_contact("CANARY-B").id, make_tag("CANARY-B tag").id))
    client = staff_client("staff")
    assert post_form(client, f"/staff/contacts/{theirs}/tags", {"name": "mine now"}).status_code == 403
    assert post_form(client, f"/staff/contacts/{theirs}/tags/{tag_id}/remove").status_code == 403
    assert post_form(client, f"/staff/contacts/{b_contact}/tags", {"name": "x"}).status_code == 404
    assert post_form(client, f"/staff/contacts/{theirs}/tags/{b_tag}/remove").status_code == 404
    assert client.get(f"/staff/tags/{b_tag}").status_code == 404
    assert tag_rows(app, world) == [("vip", "vip")]

    def services_refuse():
        with pytest.raises(ServiceError, match="permission to change this contact's tags"):
            tags.tag_contact(db.session.get(Contact, theirs), "x", member(world, "staff"))
    in_a(app, world, services_refuse)


def test_restricted_staff_cannot_tag_hidden_contacts(world, staff_client, app):
    def setup():
        restrict_staff_visibility()
        return make_contact("Hidden").id
    hidden = in_a(app, world, setup)
    assert post_form(staff_client("staff"), f"/staff/contacts/{hidden}/tags", {"name": "x"}).status_code == 404


def test_companies_are_tagged_too(world, app):
    def run():
        admin = member(world, "admin")
        company = make_company("Initech")
        tag = tags.tag_company(company, "Partner", admin)
        assert [t.name for t in tags.tags_of_company(company)] == ["Partner"]
        assert tags.untag_company(company, tag, admin) is True
        assert tags.untag_company(company, tag, admin) is False
        return db.session.scalars(sa.select(TimelineEntry.kind).where(TimelineEntry.company_id == company.id)
                                  .order_by(TimelineEntry.id)).all()
    assert in_a(app, world, run) == ["tag_added", "tag_removed"]


# --- the cloud -------------------------------------------------------------------------------------

@pytest.fixture
def tagged(app, world):
    """vip: 3 contacts + 1 company (one more contact archived); newsletter: 1 contact of
    Sam's; unused: nothing."""
    staff_id = world.a.members["staff"].id

    def setup():
        vip, news, unused = make_tag("vip"), make_tag("newsletter"), make_tag("unused")
        for i in range(3):
            tag_record(vip, contact=make_contact("Vip", f"P{i}"))
        gone = make_contact("Gone")
        tag_record(vip, contact=gone)
        gone.archived_at = utcnow()
        tag_record(vip, company=make_company("Vip Co"))
        tag_record(news, contact=make_contact("Sams", owner_id=staff_id))
        return {"vip": vip.id, "newsletter": news.id, "unused": unused.id}
    return in_a(app, world, setup)


def test_the_cloud_counts_contacts_and_companies(world, app, tagged):
    cloud = in_a(app, world, lambda: [(t.name, n) for t, n in tags.tag_cloud()])
    assert cloud == [("newsletter", 1), ("unused", 0), ("vip", 4)]


def test_the_cloud_page_links_each_tag_to_its_contacts_sized_by_use(world, staff_client, app, tagged):
    page = staff_client("staff").get("/staff/tags").get_data(as_text=True)
    vip = re.search(r'<a href="([^"]+)" class="tag-size-(\d)">vip<span class="tag-count">4', page)
    news = re.search(r'<a href="([^"]+)" class="tag-size-(\d)">newsletter<span class="tag-count">1', page)
    unused = re.search(r'class="tag-size-(\d)">unused<span class="tag-count">0', page)
    assert vip and news and unused, page
    assert vip.group(1) == f"/staff/contacts?tag={tagged['vip']}"
    assert news.group(1) == f"/staff/contacts?tag={tagged['newsletter']}"
    assert int(vip.group(2)) == 5 > int(news.group(2)) > int(unused.group(1)) == 1
    assert "Rename, merge or delete tags" not in page  # Staff do not manage tags
    assert "Rename, merge or delete tags" in staff_client("admin").get("/staff/tags").get_data(as_text=True)


def test_restricted_staff_count_only_what_they_see(world, staff_client, app, tagged):
    in_a(app, world, restrict_staff_visibility)
    cloud = in_a(app, world, lambda: [(t.name, n) for t, n in tags.tag_cloud(member(world, "staff"))])
    assert cloud == [("newsletter", 1), ("unused", 0), ("vip", 1)]  # only the company is theirs to see
    page = staff_client("staff").get(f"/staff/tags/{tagged['vip']}").get_data(as_text=True)
    assert "<dt>Contacts</dt><dd>0</dd>" in page and "<dt>Companies</dt><dd>1</dd>" in page

    # a circle assigned to them shows its contacts in the counts too
    def assign():
        circle = make_circle("VIPs")
        for contact in db.session.scalars(sa.select(Contact).where(Contact.first_name == "Vip")):
            add_to_circle(circle, contact=contact)
        assign_to_circle(circle, world.a.members["staff"].id)
    in_a(app, world, assign)
    assert dict(in_a(app, world, lambda: [(t.name, n) for t, n in tags.tag_cloud(member(world, "staff"))]))["vip"] == 4


def test_tag_cloud_is_one_query(world, staff_client, app, tagged):
    client = staff_client("staff")
    client.get("/staff/tags")
    with counted_queries(app) as few:
        client.get("/staff/tags")

    def more():
        for i in range(25):
            tag = make_tag(f"extra{i}")
            tag_record(tag, contact=make_contact("More"))
            tag_record(tag, company=make_company())
    in_a(app, world, more)
    client.get("/staff/tags")  # new tags are a change of configuration: the caches refill once
    with counted_queries(app) as many:
        assert "extra24" in client.get("/staff/tags").get_data(as_text=True)
    assert len(many) == len(few)
    with app.app_context():
        from core.tenancy import tenant_context
        with tenant_context(world.a.id), counted_queries(app) as cloud_queries:
            assert len(tags.tag_cloud()) == 28
    assert len(cloud_queries) == 1


# --- managing tags ----------------------------------------------------------------------------------------

def test_admin_renames_a_tag(world, staff_client, app, tagged):
    client = staff_client("admin")
    page = client.get(f"/staff/tags/{tagged['newsletter']}").get_data(as_text=True)
    assert 'value="newsletter"' in page and "Rename tag" in page
    response = post_form(client, f"/staff/tags/{tagged['newsletter']}", {"rename-name": "Newsletter 2025"},
                         follow_redirects=True)
    assert "Tag renamed to “Newsletter 2025”." in response.get_data(as_text=True)
    assert ("Newsletter 2025", "newsletter 2025") in tag_rows(app, world)
    post_form(client, f"/staff/tags/{tagged['newsletter']}", {"rename-name": "NEWSLETTER 2025"})
    assert ("NEWSLETTER 2025", "newsletter 2025") in tag_rows(app, world)  # a change of case is a rename
    assert in_a(app, world, lambda: db.session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.action.like("tag.%"))).all()) == ["tag.renamed", "tag.renamed"]


def test_renaming_to_an_existing_tag_merges_them(world, staff_client, app):
    def setup():
        customer, client_tag = make_tag("customer"), make_tag("Client")
        a, b, c = make_contact("A"), make_contact("B"), make_contact("C")
        tag_record(customer, contact=a)
        tag_record(customer, contact=b)
        tag_record(client_tag, contact=b)
        tag_record(client_tag, contact=c)
        company = make_company("Both Co")
        tag_record(customer, company=company)
        tag_record(client_tag, company=company)
        tag_record(customer, company=make_company("Only Customer Co"))
        return customer.id, client_tag.id
    customer, client_tag = in_a(app, world, setup)
    client = staff_client("owner")
    response = post_form(client, f"/staff/tags/{customer}", {"rename-name": "CLIENT"})
    assert response.headers["Location"].endswith(f"/staff/tags/{client_tag}")
    assert "“customer” is merged into “Client”." in client.get(response.headers["Location"]).get_data(as_text=True)

    def check():
        assert db.session.get(Tag, customer) is None
        contacts = sorted(db.session.scalars(sa.select(Contact.first_name).join(
            ContactTag, ContactTag.contact_id == Contact.id).where(ContactTag.tag_id == client_tag)))
        assert contacts == ["A", "B", "C"]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ContactTag)) == 3
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CompanyTag)
                                 .where(CompanyTag.tag_id == client_tag)) == 2
        event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "tag.merged")).one()
        assert event.details["merged"] == "customer" and event.target_id == client_tag
        return [(t.name, n) for t, n in tags.tag_cloud()]
    assert in_a(app, world, check) == [("Client", 5)]
    assert client.get(f"/staff/tags/{customer}").status_code == 404


def test_rename_errors_are_shown_beside_the_field(world, staff_client, app, tagged):
    response = post_form(staff_client("admin"), f"/staff/tags/{tagged['vip']}", {"rename-name": "x" * 61})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "A tag can be at most 60 characters." in body
    assert 'id="rename-name-error"' in body and 'value="' + "x" * 61 + '"' in body
    assert ("vip", "vip") in tag_rows(app, world)


def test_admin_deletes_a_tag_after_confirming(world, staff_client, app, tagged):
    client = staff_client("admin")
    unconfirmed = post_form(client, f"/staff/tags/{tagged['vip']}/delete")
    assert unconfirmed.status_code == 400 and "Tick the box to confirm." in unconfirmed.get_data(as_text=True)
    response = post_form(client, f"/staff/tags/{tagged['vip']}/delete", {"delete-confirm": "y"}, follow_redirects=True)
    assert "Tag “vip” deleted." in response.get_data(as_text=True)
    assert [name for name, _ in tag_rows(app, world)] == ["newsletter", "unused"]
    assert in_a(app, world, lambda: (db.session.scalar(sa.select(sa.func.count()).select_from(ContactTag)),
                                     db.session.scalar(sa.select(sa.func.count()).select_from(CompanyTag)))) == (1, 0)
    event = in_a(app, world, lambda: db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "tag.deleted")).one())
    assert (event.target_label, event.details) == ("vip", {"contacts": 4, "companies": 1})


def test_staff_see_a_tag_but_cannot_rename_or_delete_it(world, staff_client, app, tagged):
    client = staff_client("staff")
    page = client.get(f"/staff/tags/{tagged['vip']}").get_data(as_text=True)
    assert f'href="/staff/contacts?tag={tagged["vip"]}"' in page
    assert "Rename tag" not in page and "Delete tag" not in page
    assert post_form(client, f"/staff/tags/{tagged['vip']}", {"rename-name": "mine"}).status_code == 403
    assert post_form(client, f"/staff/tags/{tagged['vip']}/delete", {"delete-confirm": "y"}).status_code == 403
    assert ("vip", "vip") in tag_rows(app, world)

    def services_refuse():
        staff = member(world, "staff")
        tag = db.session.get(Tag, tagged["vip"])
        for call in (lambda: tags.rename_tag(tag, "x", staff), lambda: tags.delete_tag(tag, staff)):
            with pytest.raises(ServiceError, match="permission to manage tags"):
                call()
    in_a(app, world, services_refuse)
