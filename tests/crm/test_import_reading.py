"""Reading uploaded spreadsheets: encodings, delimiters, workbooks, and files refused in plain words."""
from __future__ import annotations

import io
from datetime import date, datetime

import pytest

from crm.imports.reading import ImportFileError, open_table, sniff
from tests.crm.import_files import (csv_bytes, encrypted_xlsx_bytes, xls_bytes, xlsx_bytes, zip_bomb_bytes)

ROWS = [["First Name", "Last Name", "Email Address", "City"],
        ["Zoë", "Müller", "zoe@example.com", "Zürich"],
        ["José", "Nuñez", "jose@example.com", "São Paulo"]]


def _read(data: bytes, sheet=None, **kw):
    table = open_table(io.BytesIO(data), sheet=sheet, **kw)
    return table.info, table.header, [(r.line, r.cells) for r in table.rows()]


@pytest.mark.parametrize("encoding, bom, delimiter, label", [
    ("utf-8", False, ",", "UTF-8"), ("utf-8", True, ";", "UTF-8"), ("utf-16", False, "\t", "UTF-16"),
    ("cp1252", False, ";", "Windows-1252"), ("utf-8", False, "|", "UTF-8"),
])
def test_csv_in_every_encoding_and_delimiter_reads_the_same(encoding, bom, delimiter, label):
    info, header, rows = _read(csv_bytes(ROWS, encoding=encoding, bom=bom, delimiter=delimiter))
    assert info.format == "csv" and info.delimiter == delimiter
    assert label in info.description
    assert header == ROWS[0]
    assert rows == [(2, ROWS[1]), (3, ROWS[2])]


def test_a_delimiter_inside_quotes_does_not_fool_the_sniffer():
    data = csv_bytes([["Name", "Company", "Email"], ["Ann", "Acme, Inc.", "ann@example.com"],
                      ["Bob", "Foo; Bar", "bob@example.com"]])
    info, header, rows = _read(data)
    assert info.delimiter == "," and rows[0][1] == ["Ann", "Acme, Inc.", "ann@example.com"]


def test_blank_lines_are_skipped_and_rows_keep_their_spreadsheet_numbers():
    data = b"Name,Email\r\n\r\nAnn,ann@example.com\r\n,\r\nBob,bob@example.com\r\n"
    _, _, rows = _read(data)
    assert rows == [(3, ["Ann", "ann@example.com"]), (5, ["Bob", "bob@example.com"])]


def test_blank_and_repeated_headers_get_names():
    _, header, _ = _read(b"Email,,Email\r\na@example.com,x,b@example.com\r\n")
    assert header == ["Email", "Column B", "Email (2)"]


def test_xlsx_with_several_sheets_reads_the_chosen_one_with_cells_as_shown():
    data = xlsx_bytes({"Notes": [["nothing here"]],
                       "People": [["Name", "Phone", "Born", "VIP"], ["Ann Lee", 4155550123, datetime(1990, 5, 17), True]]})
    info, header, rows = _read(data, sheet="People")
    assert info.format == "xlsx" and info.sheets == ["Notes", "People"]
    assert header == ["Name", "Phone", "Born", "VIP"]
    assert rows == [(2, ["Ann Lee", "4155550123", "1990-05-17", "yes"])]
    with pytest.raises(ImportFileError, match="no sheet called"):
        _read(data, sheet="Nope")


def test_legacy_xls():
    data = xls_bytes({"Contacts": [["Given Name", "E-mail 1 - Value", "Since"],
                                   ["Ann", "ann@example.com", date(2020, 1, 31)], ["Bob", "bob@example.com", 12.5]]})
    info, header, rows = _read(data)
    assert info.format == "xls" and info.sheets == ["Contacts"]
    assert header == ["Given Name", "E-mail 1 - Value", "Since"]
    assert rows == [(2, ["Ann", "ann@example.com", "2020-01-31"]), (3, ["Bob", "bob@example.com", "12.5"])]


@pytest.mark.parametrize("data, message", [
    (b"", "The file is empty."),
    (b"   \r\n\r\n", "The file is empty."),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "This is not a spreadsheet"),
    (b"PK\x03\x04garbage", "damaged"),
])
def test_bad_files_are_refused_in_plain_words(data, message):
    with pytest.raises(ImportFileError, match=message):
        _read(data)


def test_a_password_protected_workbook_is_refused():
    with pytest.raises(ImportFileError, match="protected with a password"):
        _read(encrypted_xlsx_bytes(ROWS))


def test_a_zip_bomb_is_refused_without_unpacking_it():
    with pytest.raises(ImportFileError, match="unsafe"):
        _read(zip_bomb_bytes())


def test_a_file_over_the_limit_is_refused_before_reading():
    with pytest.raises(ImportFileError, match="up to 1 KB"):
        sniff(io.BytesIO(b"Name\r\n" + b"x" * 4096), max_bytes=1024)


def test_a_zip_that_is_not_a_workbook():
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ImportFileError, match="not an Excel workbook"):
        _read(out.getvalue())


def test_an_empty_sheet_says_so():
    with pytest.raises(ImportFileError, match="is empty"):
        _read(xlsx_bytes({"Empty": []}))


def test_ragged_rows_keep_their_cells_for_the_import_to_judge():
    _, header, rows = _read(b"Name,Email\r\nAnn\r\nBob,bob@example.com,extra,more\r\n")
    assert rows == [(2, ["Ann"]), (3, ["Bob", "bob@example.com", "extra", "more"])]
