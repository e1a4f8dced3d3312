"""Real spreadsheet files for the import tests, made the way other programs write them."""
from __future__ import annotations

import codecs
import csv
import io


def csv_bytes(rows: list[list], *, encoding: str = "utf-8", delimiter: str = ",", bom: bool = False) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    data = buffer.getvalue().encode(encoding)
    if bom and encoding == "utf-8":
        data = codecs.BOM_UTF8 + data
    return data


def xlsx_bytes(sheets: dict[str, list[list]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def xls_bytes(sheets: dict[str, list[list]]) -> bytes:
    """A legacy .xls, written by xlwt (a test-only dependency)."""
    import xlwt

    book = xlwt.Workbook()
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for name, rows in sheets.items():
        sheet = book.add_sheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if hasattr(value, "year"):
                    sheet.write(r, c, value, date_style)
                else:
                    sheet.write(r, c, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def encrypted_xlsx_bytes(rows: list[list], password: str = "secret") -> bytes:
    """An .xlsx protected with a password, as Excel's "Encrypt with Password" saves it."""
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = io.BytesIO(xlsx_bytes({"Sheet1": rows}))
    out = io.BytesIO()
    OOXMLFile(plain).encrypt(password, out)
    return out.getvalue()


def zip_bomb_bytes() -> bytes:
    """A zip named like a workbook whose sheet inflates to 128 MB of zeros (compressed: ~130 KB)."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            block = b"\0" * (16 * 1024 * 1024)
            for _ in range(8):
                member.write(block)
    return out.getvalue()


GOOGLE_HEADER = ["Name", "Given Name", "Family Name", "E-mail 1 - Type", "E-mail 1 - Value", "E-mail 2 - Value",
                 "Phone 1 - Type", "Phone 1 - Value", "Organization 1 - Name", "Organization 1 - Title"]
