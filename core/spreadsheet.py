"""The one writer of every file we hand out for a spreadsheet (contact, submission and
failed-row exports, the command line's export): CSV streamed, Excel built whole, and every cell
defused on the way out, headers included. A header can come from what a member typed or from
an uploaded file's first row (a custom field named `=HYPERLINK(…)`), so no cell is trusted.
"""
from __future__ import annotations

import csv
import io
import re
from typing import Iterable, Iterator

from flask import Response, g, stream_with_context

from core.tenancy import tenant_context

# A cell starting with one of these is read as a formula by Excel, LibreOffice and Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
ROWS_PER_CHUNK = 1000
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def safe_cell(value):
    """Text a spreadsheet shows as text: a leading formula character gets a quote. Numbers
    stay numbers (a negative number is no formula). Applying it twice changes nothing."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_chunks(rows: Iterable[Iterable]) -> Iterator[str]:
    """CSV text in chunks, every cell defused; UTF-8 with a BOM so Excel reads accents right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    for count, row in enumerate(rows, 1):
        writer.writerow([safe_cell(cell) for cell in row])
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def xlsx_bytes(rows: Iterable[Iterable], sheet_title: str) -> bytes:
    """An Excel workbook of one sheet holding the rows, every cell defused."""
    from openpyxl import Workbook  # ~20 MB: loaded by the process that exports, not by every worker

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title[:31])
    for row in rows:
        sheet.append([safe_cell(cell) for cell in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def download(rows: Iterable[Iterable], fmt: str, filename_stem: str, *, sheet_title: str = "Sheet1") -> Response:
    """The rows as a file to save: `fmt` "csv" (streamed, read as the request's tenant after the
    view has returned) or "xlsx"; never cached; the file name made safe for the header."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", filename_stem).strip("-.")[:120] or "export"
    headers = {"Content-Disposition": f'attachment; filename="{stem}.{fmt}"', "Cache-Control": "no-store"}
    if fmt == "xlsx":
        return Response(xlsx_bytes(rows, sheet_title), headers=headers, mimetype=XLSX_MIMETYPE)
    if fmt != "csv":
        raise ValueError(f"no spreadsheet format {fmt!r}")
    return Response(stream_with_context(_as_tenant(g.tenant.id, csv_chunks(rows))), headers=headers,
                    mimetype="text/csv; charset=utf-8")


def _as_tenant(tenant_id: int, chunks: Iterator[str]) -> Iterator[str]:
    """A streamed body is produced after the view returns, outside the request's tenant:
    enter it again for the rows."""
    with tenant_context(tenant_id):
        yield from chunks
