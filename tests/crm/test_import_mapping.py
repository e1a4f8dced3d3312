"""Mapping an import's columns: guesses from the headers other systems export, saved mappings,
a Name column split in two, custom fields, and the row checks the preview shows."""
from __future__ import annotations

import pytest

from core.errors import ServiceError
from crm.imports.mapping import (FULL_NAME, IGNORE, NEW_FIELD, RowCleaner, check_mapping, guess_mapping,
                                 import_date, saved_form, split_name)
from crm.models import CustomField


def _field(key, label, field_type, **kw):
    return CustomField(key=key, label=label, field_type=field_type, entity="contact", **kw)


@pytest.mark.parametrize("header, expected", [
    # Google Contacts (old and new exports)
    (["Name", "Given Name", "Family Name", "E-mail 1 - Type", "E-mail 1 - Value", "E-mail 2 - Value",
      "Phone 1 - Type", "Phone 1 - Value", "Organization 1 - Name", "Organization 1 - Title", "Labels"],
     [IGNORE, "first_name", "last_name", IGNORE, "email", "extra_emails", IGNORE, "phone", "company_name",
      "job_title", "tags"]),
    # Outlook
    (["First Name", "Last Name", "E-mail Address", "E-mail 2 Address", "Mobile Phone", "Business Phone",
      "Company", "Job Title", "Business City", "Business Country/Region", "Notes"],
     ["first_name", "last_name", "email", "extra_emails", "phone", "extra_phones", "company_name", "job_title",
      "city", "country", "notes"]),
    # HubSpot / Salesforce / Mailchimp
    (["Email", "Phone Number", "Company Name", "State/Region", "Postal Code"],
     ["email", "phone", "company_name", "region", "postal_code"]),
    (["Account Name", "Title", "Mailing Street", "Mailing Zip/Postal Code", "Lead Source"],
     ["company_name", "job_title", "street", "postal_code", "source"]),
    (["Email Address", "Name", "Address", "TAGS"], ["email", FULL_NAME, "street", "tags"]),
    (["Something else", "Shoe size"], [IGNORE, "cf:shoe_size"]),
])
def test_headers_from_other_systems_are_pre_mapped(header, expected):
    fields = [_field("shoe_size", "Shoe size", "number")]
    assert guess_mapping(header, fields=fields) == expected


def test_a_saved_mapping_wins_over_the_guess_and_follows_moved_columns():
    saved = saved_form(["Kontakt", "Mail", "Notes"], ["full_name", "email", IGNORE])
    assert guess_mapping(["Mail", "Notes", "Kontakt", "City"], saved=saved, fields=[]) == \
        ["email", IGNORE, FULL_NAME, "city"]


@pytest.mark.parametrize("full, expected", [
    ("Ada Lovelace", ("Ada", "Lovelace")), ("Lovelace, Ada", ("Ada", "Lovelace")),
    ("Dr. Mary Ann Smith Jr.", ("Mary Ann", "Smith Jr.")), ("Cher", ("Cher", "")), ("  ", ("", "")),
])
def test_split_name(full, expected):
    assert split_name(full) == expected


def test_check_mapping_refuses_a_field_filled_twice_and_a_mapping_saying_nothing_of_who():
    with pytest.raises(ServiceError, match="both fill E-mail"):
        check_mapping(["A", "B"], ["email", "email"], [])
    with pytest.raises(ServiceError, match="at least a name, an e-mail or a phone"):
        check_mapping(["A", "B"], ["city", IGNORE], [])
    with pytest.raises(ServiceError, match="either a full name"):
        check_mapping(["A", "B"], [FULL_NAME, "first_name"], [])
    check_mapping(["A", "B", "C"], ["email", "tags", NEW_FIELD], [])


def test_dates_are_read_when_unambiguous():
    assert str(import_date("2024-03-01")) == "2024-03-01"
    assert str(import_date("25/12/2023")) == "2023-12-25"
    assert str(import_date("12/25/2023")) == "2023-12-25"
    assert import_date("03/04/2024") == "03/04/2024"  # March or April: left for the field to refuse
    assert str(import_date("1 March 2024")) == "2024-03-01"


def test_a_row_is_cleaned_with_every_problem_beside_its_cell(app):
    fields = [_field("plan", "Plan", "choice", choices=["Basic", "Pro"]), _field("since", "Since", "date"),
              _field("seats", "Seats", "number")]
    header = ["Name", "Email", "Phone", "Plan", "Since", "Seats", "Country"]
    mapping = [FULL_NAME, "email", "phone", "cf:plan", "cf:since", "cf:seats", "country"]
    cleaner = RowCleaner(header, mapping, region="US", fields=fields)
    good = cleaner.clean(["Ada Lovelace", " ADA@Example.com ", "(415) 555-0123", "pro", "31.12.2023", "3",
                          "United Kingdom"])
    assert good.ok
    assert good.values == {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
                           "phone": "+14155550123", "country": "GB",
                           "custom_fields": {"plan": "Pro", "since": "2023-12-31", "seats": 3}}
    bad = cleaner.clean(["Bob", "bob@", "12", "Gold", "03/04/2024", "many", "Narnia"])
    assert not bad.ok
    assert set(bad.problems) == {1, 2, 3, 4, 5, 6}
    assert "not valid" in bad.problems[1] and "phone number" in bad.problems[2]
    assert "“Gold” is not one of the choices" in bad.problems[3]
    assert "YYYY-MM-DD" in bad.problems[4] and "enter a number" in bad.problems[5]
    assert "Plan: “Gold”" in bad.reason(header) and bad.reason(header).startswith("Email:")
    ragged = cleaner.clean(["A", "a@example.com", "", "", "", "", "", "extra"])
    assert "8 values but the file has 7 columns" in ragged.row_problem
    nobody = cleaner.clean(["", "", "", "Pro"])
    assert nobody.row_problem.startswith("no name, e-mail or phone")
