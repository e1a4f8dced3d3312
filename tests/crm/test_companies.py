"""Companies: their people, and their circles and tags as the company page shows and changes them."""
from __future__ import annotations

import re

import sqlalchemy as sa

from core.db import db, utcnow
from crm.companies import match_company
from crm.models import CircleMember, Company, CompanyTag, Contact, Tag, TimelineEntry
from tests.crm.test_circles import in_b
from tests.support import in_tenant, post_form
from tests.factories import add_to_circle, make_circle, make_company, make_contact, make_tag, tag_record
from tests.test_query_counts import counted_queries


def test_add_company_and_see_its_people(world, staff_client, app):
    client = staff_client("owner")
    bad = post_form(client, "/staff/companies/new", {"name": "", "role": "lead"})
    assert "Enter the company&#39;s name." in bad.get_data(as_text=True)
    bad = post_form(client, "/staff/companies/new", {"name": "Umbrella", "domain": "not a domain", "role": "lead"})
    assert "Enter a domain like example.com." in bad.get_data(as_text=True)
    page = post_form(client, "/staff/companies/new", {"name": "Umbrella Corp", "domain": "https://www.umbrella.example/x",
                                                      "phone": "+1 415 555 0199", "role": "prospect"},
                     follow_redirects=True).get_data(as_text=True)
    assert "Umbrella Corp is added." in page and "umbrella.example" in page and "+1 415-555-0199" in page
    company_id = in_tenant(app, world.a, lambda: db.session.scalar(sa.select(Company.id)))
    in_tenant(app, world.a, lambda: make_contact("Albert", "Wesker", company_id=company_id))
    detail = client.get(f"/staff/companies/{company_id}").get_data(as_text=True)
    assert "People (1)" in detail and "Albert Wesker" in detail
    listing = client.get("/staff/companies?q=umbrella").get_data(as_text=True)
    assert "Umbrella Corp" in listing and "1 company" in listing


def test_primary_contact_must_be_one_of_its_own(world, staff_client, app):
    company, own, stranger = in_tenant(app, world.a, lambda: (lambda c: (c, make_contact("Own", "Person", company_id=c.id),
                                                                   make_contact("Strange", "Person")))(make_company("Soylent")))
    client = staff_client("owner")
    refused = post_form(client, f"/staff/companies/{company.id}/primary", {"contact_id": stranger.id},
                        follow_redirects=True)
    assert "Strange Person does not work at Soylent." in refused.get_data(as_text=True)
    post_form(client, f"/staff/companies/{company.id}/primary", {"contact_id": own.id})
    assert "Primary contact" in client.get(f"/staff/companies/{company.id}").get_data(as_text=True)
    assert in_tenant(app, world.a, lambda: db.session.get(Contact, own.id)).is_primary_contact is True


def test_renaming_a_company_updates_its_peoples_search(world, staff_client, app):
    company = in_tenant(app, world.a, lambda: make_company("Old Name"))
    in_tenant(app, world.a, lambda: make_contact("Searchable", "Person", company_id=company.id))
    post_form(staff_client("owner"), f"/staff/companies/{company.id}/edit", {"name": "Brand New", "role": "lead"})
    client = staff_client("owner")
    assert "Searchable Person" in client.get("/staff/contacts?q=brand+new").get_data(as_text=True)
    assert "Searchable Person" not in client.get("/staff/contacts?q=old+name").get_data(as_text=True)


def test_deleting_a_company_keeps_its_people(world, staff_client, app):
    company = in_tenant(app, world.a, lambda: make_company("Doomed"))
    person = in_tenant(app, world.a, lambda: make_contact("Survivor", "Person", company_id=company.id, is_primary_contact=True))
    client = staff_client("owner")
    assert "Its 1 contact stay" in client.get(f"/staff/companies/{company.id}/delete").get_data(as_text=True)
    post_form(client, f"/staff/companies/{company.id}/delete")
    kept = in_tenant(app, world.a, lambda: db.session.get(Contact, person.id))
    assert (kept.company_id, kept.is_primary_contact) == (None, False)


def test_company_names_match_despite_case_punctuation_and_suffixes(world, app):
    def check():
        original = make_company("Initech, LLC")
        assert match_company("initech") == original
        assert match_company("INITECH llc.") == original
        assert match_company("Initek") is None  # close, but under the default 90 threshold? token ratio
        assert match_company("Initech Corporation") == original
    in_tenant(app, world.a, check)


def test_a_misspelt_name_is_matched_among_many_without_reading_every_company(world, app):
    """Among 400 companies the misspelling finds its company; on PostgreSQL the candidates come
    from the trigram index (a handful of names), not from a read of every company."""
    from crm.companies import TRIGRAM_CANDIDATES, _fuzzy_candidates

    def check():
        for i in range(400):
            db.session.add(Company(name=f"Company {i}", name_key=f"company {i}"))
        wanted = make_company("Vandelay Industries International")
        assert match_company("Vandelay Industries Internationl") == wanted
        assert match_company("Kramerica Industries") is None
        if db.session.get_bind().dialect.name == "postgresql":
            candidates = _fuzzy_candidates("vandelay industries internationl")
            assert wanted.id in candidates and len(candidates) <= TRIGRAM_CANDIDATES
            connection = db.session.connection()
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = "\n".join(row[0] for row in connection.exec_driver_sql(
                "EXPLAIN SELECT id FROM company WHERE name_key %% 'vandelay industries internationl'"))
            assert "ix_company_name_key_trigrams" in plan
    in_tenant(app, world.a, check)


def test_a_tags_companies_are_listed_from_its_page(world, staff_client, app):
    def setup():
        vip, unused = make_tag("vip"), make_tag("unused")
        for i in range(51):
            tag_record(vip, company=make_company(f"Vip {i:02d}"))
        make_company("Plain Co")
        return vip.id, unused.id
    vip, unused = in_tenant(app, world.a, setup)
    client = staff_client("staff")
    assert (f'href="/staff/companies?tag={vip}">Show the companies tagged “vip”'
            in client.get(f"/staff/tags/{vip}").get_data(as_text=True))
    assert "Show the companies tagged" not in client.get(f"/staff/tags/{unused}").get_data(as_text=True)

    listing = client.get(f"/staff/companies?tag={vip}").get_data(as_text=True)
    assert "51 companies tagged “vip”." in listing and "Vip 00" in listing and "Plain Co" not in listing
    assert 'href="/staff/companies">Show all companies</a>' in listing
    next_page = re.search(r'href="([^"]+)" rel="next"', listing).group(1).replace("&amp;", "&")
    assert f"tag={vip}" in next_page and "Vip 50" in client.get(next_page).get_data(as_text=True)
    searched = client.get(f"/staff/companies?tag={vip}&q=vip+07").get_data(as_text=True)
    assert "1 company tagged “vip”." in searched and f'name="tag" value="{vip}"' in searched
    assert "No company is tagged “unused”." in client.get(f"/staff/companies?tag={unused}").get_data(as_text=True)
    for bad in ("999999", "abc", "", str(2**40)):
        assert client.get(f"/staff/companies?tag={bad}").status_code == 404, bad


# --- circles and tags on the company page ---------------------------------------------------------------

def _memberships(app, world):
    """Everything the circle and tag forms could change in tenant A: current circle members,
    company tags, tags and the company timeline."""
    def read():
        return {
            "members": db.session.execute(sa.select(CircleMember.circle_id, CircleMember.company_id, CircleMember.removed_at)
                                          .order_by(CircleMember.id)).all(),
            "company_tags": db.session.execute(sa.select(CompanyTag.company_id, CompanyTag.tag_id)
                                               .order_by(CompanyTag.id)).all(),
            "tags": db.session.scalars(sa.select(Tag.name).order_by(Tag.id)).all(),
            "timeline": db.session.scalars(sa.select(TimelineEntry.summary).where(TimelineEntry.company_id.is_not(None))
                                           .order_by(TimelineEntry.id)).all(),
        }
    return in_tenant(app, world.a, read)


def _section(page: str, heading: str) -> str:
    """The panel of the company page under this header."""
    start = page.index(f"<header>{heading}</header>")
    return page[start:page.index("</article>", start)]


def test_company_page_adds_and_removes_circles_and_tags(world, staff_client, app):
    company_id, circle_id = in_tenant(app, world.a, lambda: (make_company("Umbrella Corp").id, make_circle("Suppliers").id))
    client = staff_client("admin")
    page = client.get(f"/staff/companies/{company_id}").get_data(as_text=True)
    assert "In no circle." in _section(page, "Circles") and "No tags." in _section(page, "Tags")

    response = post_form(client, f"/staff/companies/{company_id}/circles", {"circle_id": circle_id})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/staff/companies/{company_id}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Added to “Suppliers”." in page
    assert f'<a href="/staff/circles/{circle_id}">Suppliers</a>' in _section(page, "Circles")
    assert "Added to the circle “Suppliers”" in page[page.index('id="timeline-heading"'):]
    # the circle lists the company, and links back to its page
    circle_page = client.get(f"/staff/circles/{circle_id}").get_data(as_text=True)
    companies = circle_page[circle_page.index('id="companies"'):circle_page.index('id="staff"')]
    assert f'<a href="/staff/companies/{company_id}">Umbrella Corp</a>' in companies
    history = circle_page[circle_page.index('id="history"'):]
    assert f'<a href="/staff/companies/{company_id}">Umbrella Corp</a> <small class="muted">(company)</small>' in history
    found = client.get(f"/staff/circles/{circle_id}?find_company=umbrella").get_data(as_text=True)
    assert f'<span><a href="/staff/companies/{company_id}">Umbrella Corp</a>' in found
    again = post_form(client, f"/staff/companies/{company_id}/circles", {"circle_id": circle_id}, follow_redirects=True)
    assert "Already in “Suppliers”." in again.get_data(as_text=True)

    page = post_form(client, f"/staff/companies/{company_id}/tags", {"name": "  Key   account "},
                     follow_redirects=True).get_data(as_text=True)
    tag_id = in_tenant(app, world.a, lambda: db.session.scalar(sa.select(Tag.id)))
    assert "Tagged “Key account”." in page
    assert f'<a href="/staff/companies?tag={tag_id}">Key account</a>' in _section(page, "Tags")
    listing = client.get(f"/staff/companies?tag={tag_id}").get_data(as_text=True)
    assert "1 company tagged “Key account”." in listing and "Umbrella Corp" in listing

    page = post_form(client, f"/staff/companies/{company_id}/tags/{tag_id}/remove",
                     follow_redirects=True).get_data(as_text=True)
    assert "Tag “Key account” removed." in page and "No tags." in _section(page, "Tags")
    assert "No company is tagged “Key account”." in client.get(f"/staff/companies?tag={tag_id}").get_data(as_text=True)

    page = post_form(client, f"/staff/companies/{company_id}/circles/{circle_id}/remove",
                     follow_redirects=True).get_data(as_text=True)
    assert "Removed from “Suppliers”." in page and "In no circle." in _section(page, "Circles")
    assert "No companies in this circle" in client.get(f"/staff/circles/{circle_id}").get_data(as_text=True)
    # every change is on the company's activity, by whom
    assert in_tenant(app, world.a, lambda: db.session.execute(
        sa.select(TimelineEntry.summary, TimelineEntry.actor_label).where(TimelineEntry.company_id == company_id)
        .order_by(TimelineEntry.id)).all()) == [
        ("Added to the circle “Suppliers”", "Adam Admin"), ("Tagged “Key account”", "Adam Admin"),
        ("Tag “Key account” removed", "Adam Admin"), ("Removed from the circle “Suppliers”", "Adam Admin")]


def test_bad_circle_or_tag_is_explained_and_changes_nothing(world, staff_client, app):
    def setup():
        archived = make_circle("Old friends", archived_at=utcnow())
        return make_company("Initech").id, archived.id
    company_id, archived_id = in_tenant(app, world.a, setup)
    client = staff_client("admin")
    before = _memberships(app, world)
    for data in ({}, {"circle_id": ""}, {"circle_id": "nope"}, {"circle_id": 999999}, {"circle_id": 2**40}):
        page = post_form(client, f"/staff/companies/{company_id}/circles", data, follow_redirects=True)
        assert page.status_code == 200 and "Choose a circle." in page.get_data(as_text=True), data
    archived = post_form(client, f"/staff/companies/{company_id}/circles", {"circle_id": archived_id},
                         follow_redirects=True).get_data(as_text=True)
    assert "The circle “Old friends” is archived; restore it before adding to it." in archived
    for name in ("", "   "):
        page = post_form(client, f"/staff/companies/{company_id}/tags", {"name": name}, follow_redirects=True)
        assert "Enter a tag." in page.get_data(as_text=True)
    assert "at most 60" in post_form(client, f"/staff/companies/{company_id}/tags", {"name": "x" * 61},
                                     follow_redirects=True).get_data(as_text=True)
    assert _memberships(app, world) == before


def test_staff_who_may_not_edit_the_company_get_403_and_change_nothing(world, staff_client, app):
    staff_id = world.a.members["staff"].id

    def setup():
        theirs, mine = make_company("Theirs Ltd"), make_company("Mine Ltd", owner_id=staff_id)
        circle, tag = make_circle("Partners"), make_tag("vip")
        add_to_circle(circle, company=theirs)
        tag_record(tag, company=theirs)
        return theirs.id, mine.id, circle.id, tag.id
    theirs, mine, circle_id, tag_id = in_tenant(app, world.a, setup)
    client = staff_client("staff")
    page = client.get(f"/staff/companies/{theirs}").get_data(as_text=True)
    assert "Partners" in _section(page, "Circles") and "vip" in _section(page, "Tags")  # they see them
    assert 'name="circle_id"' not in page and 'id="add-tag"' not in page and "Remove from Partners" not in page
    before = _memberships(app, world)
    assert post_form(client, f"/staff/companies/{theirs}/circles", {"circle_id": circle_id}).status_code == 403
    assert post_form(client, f"/staff/companies/{theirs}/circles/{circle_id}/remove").status_code == 403
    assert post_form(client, f"/staff/companies/{theirs}/tags", {"name": "mine now"}).status_code == 403
    assert post_form(client, f"/staff/companies/{theirs}/tags/{tag_id}/remove").status_code == 403
    assert _memberships(app, world) == before
    # their own company they may change, from its page
    assert 'name="circle_id"' in client.get(f"/staff/companies/{mine}").get_data(as_text=True)
    assert post_form(client, f"/staff/companies/{mine}/circles", {"circle_id": circle_id}).status_code == 302
    assert post_form(client, f"/staff/companies/{mine}/tags", {"name": "vip"}).status_code == 302
    after = _memberships(app, world)
    assert len(after["members"]) == 2 and len(after["company_tags"]) == 2 and after["tags"] == ["vip"]


def test_another_tenants_circle_tag_or_company_is_404_and_changes_nothing(world, staff_client, app):
    def setup_b():
        company, circle, tag = make_company("CANARY-B Co"), make_circle("CANARY-B circle"), make_tag("CANARY-B tag")
        add_to_circle(circle, company=company)
        tag_record(tag, company=company)
        return company.id, circle.id, tag.id
    b_company, b_circle, b_tag = in_b(app, world, setup_b)
    own, own_circle = in_tenant(app, world.a, lambda: (make_company("Own Co").id, make_circle("Own circle").id))
    client = staff_client("admin")
    before = _memberships(app, world)
    for path, data in ((f"/staff/companies/{own}/circles/{b_circle}/remove", {}),
                       (f"/staff/companies/{own}/tags/{b_tag}/remove", {}),
                       (f"/staff/companies/{b_company}/circles", {"circle_id": own_circle}),
                       (f"/staff/companies/{b_company}/circles/{b_circle}/remove", {}),
                       (f"/staff/companies/{b_company}/tags", {"name": "x"}),
                       (f"/staff/companies/{b_company}/tags/{b_tag}/remove", {})):
        assert post_form(client, path, data).status_code == 404, path
    assert client.get(f"/staff/companies?tag={b_tag}").status_code == 404
    # B's circle named in the form on A's own company is "no such circle", not a change
    page = post_form(client, f"/staff/companies/{own}/circles", {"circle_id": b_circle},
                     follow_redirects=True).get_data(as_text=True)
    assert "Choose a circle." in page and "CANARY-B" not in page
    assert _memberships(app, world) == before

    def b_unchanged():
        return (db.session.scalar(sa.select(sa.func.count()).select_from(CircleMember)
                                  .where(CircleMember.removed_at.is_(None))),
                db.session.scalar(sa.select(sa.func.count()).select_from(CompanyTag)))
    assert in_b(app, world, b_unchanged) == (1, 1)


def test_company_page_runs_the_same_queries_however_many_circles_and_tags(world, staff_client, app):
    company_id = in_tenant(app, world.a, lambda: make_company("Counted").id)
    client = staff_client("admin")
    path = f"/staff/companies/{company_id}"
    client.get(path)
    with counted_queries(app) as few:
        client.get(path)

    def grow():
        company = db.session.get(Company, company_id)
        for i in range(15):
            circle = make_circle(f"Circle {i}")
            if i % 2:
                add_to_circle(circle, company=company)
            tag_record(make_tag(f"tag {i}"), company=company)
    in_tenant(app, world.a, grow)
    client.get(path)  # new circles and tags are a change of configuration: the caches refill once
    with counted_queries(app) as many:
        page = client.get(path).get_data(as_text=True)
    assert "tag 14" in page and "Circle 13" in page
    assert len(many) == len(few)
