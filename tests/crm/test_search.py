"""The words a contact is found by, and keeping them in step with the contact."""
from __future__ import annotations

import sqlalchemy as sa

from core.db import db
from crm.companies import update_company
from crm.contacts import delete_contact, update_contact
from crm.models import Contact, ContactSearchToken
from crm.search import contact_matches, contact_tokens, query_tokens
from tests.support import in_tenant
from tests.factories import make_company, make_contact


def test_tokens_cover_names_emails_and_phones():
    tokens = contact_tokens(names=("Ágata", "Núñez-Ortiz", "Globex, Inc."), emails=("Agata.N@Example.com",),
                            phones=("+442079460958",))
    assert {"agata", "nunez", "ortiz", "globex", "inc"} <= tokens
    assert {"agata", "n", "example", "com"} <= tokens
    assert {"442079460958", "2079460958", "02079460958", "~859064970244"} <= tokens  # backwards: found by its end
    assert "" not in tokens


def test_query_words_and_phone_numbers():
    assert query_tokens("  Lovelace   ADA ") == ["lovelace", "ada"]
    assert query_tokens("(020) 7946-0958") == ["02079460958"]  # one number, not three words
    assert query_tokens("50%_off") == ["50", "off"]  # punctuation separates, never a wildcard
    assert query_tokens("") == [] and query_tokens(None) == []
    assert len(query_tokens(" ".join(f"w{i}" for i in range(20)))) == 8


def test_the_index_follows_edits_company_renames_and_deletes(app, world):
    def scenario():
        def found(text):
            return set(db.session.scalars(sa.select(Contact.id).where(*contact_matches(text))))
        company = make_company("Initech")
        person = make_contact("Milton", "Waddams", company_id=company.id, email="milton@initech.example")
        assert found("milton initech") == {person.id}

        update_contact(person, {"first_name": "Bob", "email": "bob@initech.example"})
        assert found("milton") == set() and found("bob waddams") == {person.id}

        update_company(company, {"name": "Initrode", "role": "lead"})
        assert found("initech") == {person.id}  # still in the e-mail address
        assert found("initrode") == {person.id} and found("initech waddams bob") == {person.id}

        delete_contact(person, actor=None)
        remaining = db.session.scalar(sa.select(sa.func.count()).select_from(ContactSearchToken)
                                      .where(ContactSearchToken.contact_id == person.id))
        return remaining, found("waddams")

    assert in_tenant(app, world.a, scenario) == (0, set())


def test_search_stays_inside_the_tenant(app, world, staff_client):
    in_tenant(app, world.a, lambda: make_contact("Shared", "Surname"))
    with app.app_context():
        from core.tenancy import tenant_context
        with tenant_context(world.b.id):
            make_contact("Shared", "Surname", email="canary-b@example.com")
            db.session.commit()
    page = staff_client("owner").get("/staff/contacts?q=shared+surname").get_data(as_text=True)
    assert "1 contact" in page and "canary-b" not in page
