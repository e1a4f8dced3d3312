"""Companies and their people."""
from __future__ import annotations

import re

import sqlalchemy as sa

from core.db import db
from crm.companies import match_company
from crm.models import Company, Contact
from tests.crm.test_contacts import _in_a
from tests.factories import make_company, make_contact, make_tag, tag_record
from tests.support import post_form


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
    company_id = _in_a(app, world, lambda: db.session.scalar(sa.select(Company.id)))
    _in_a(app, world, lambda: make_contact("Albert", "Wesker", company_id=company_id))
    detail = client.get(f"/staff/companies/{company_id}").get_data(as_text=True)
    assert "People (1)" in detail and "Albert Wesker" in detail
    listing = client.get("/staff/companies?q=umbrella").get_data(as_text=True)
    assert "Umbrella Corp" in listing and "1 company" in listing


def test_primary_contact_must_be_one_of_its_own(world, staff_client, app):
    company, own, stranger = _in_a(app, world, lambda: (lambda c: (c, make_contact("Own", "Person", company_id=c.id),
                                                                   make_contact("Strange", "Person")))(make_company("Soylent")))
    client = staff_client("owner")
    refused = post_form(client, f"/staff/companies/{company.id}/primary", {"contact_id": stranger.id},
                        follow_redirects=True)
    assert "Strange Person does not work at Soylent." in refused.get_data(as_text=True)
    post_form(client, f"/staff/companies/{company.id}/primary", {"contact_id": own.id})
    assert "Primary contact" in client.get(f"/staff/companies/{company.id}").get_data(as_text=True)
    assert _in_a(app, world, lambda: db.session.get(Contact, own.id)).is_primary_contact is True


def test_renaming_a_company_updates_its_peoples_search(world, staff_client, app):
    company = _in_a(app, world, lambda: make_company("Old Name"))
    person = _in_a(app, world, lambda: make_contact("Searchable", "Person", company_id=company.id))
    post_form(staff_client("owner"), f"/staff/companies/{company.id}/edit", {"name": "Brand New", "role": "lead"})
    assert "brand new" in _in_a(app, world, lambda: db.session.get(Contact, person.id)).search_text


def test_deleting_a_company_keeps_its_people(world, staff_client, app):
    company = _in_a(app, world, lambda: make_company("Doomed"))
    person = _in_a(app, world, lambda: make_contact("Survivor", "Person", company_id=company.id, is_primary_contact=True))
    client = staff_client("owner")
    assert "Its 1 contact stay" in client.get(f"/staff/companies/{company.id}/delete").get_data(as_text=True)
    post_form(client, f"/staff/companies/{company.id}/delete")
    kept = _in_a(app, world, lambda: db.session.get(Contact, person.id))
    assert (kept.company_id, kept.is_primary_contact) == (None, False)


def test_company_names_match_despite_case_punctuation_and_suffixes(world, app):
    def check():
        original = make_company("Initech, LLC")
        assert match_company("initech") == original
        assert match_company("INITECH llc.") == original
        assert match_company("Initek") is None  # close, but under the default 90 threshold? token ratio
        assert match_company("Initech Corporation") == original
    _in_a(app, world, check)


def test_a_tags_companies_are_listed_from_its_page(world, staff_client, app):
    def setup():
        vip, unused = make_tag("vip"), make_tag("unused")
        for i in range(51):
            tag_record(vip, company=make_company(f"Vip {i:02d}"))
        make_company("Plain Co")
        return vip.id, unused.id
    vip, unused = _in_a(app, world, setup)
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
