"""Reading the spreadsheets people import: CSV in any common encoding and delimiter, Excel
.xlsx and legacy .xls. Everything streams: rows come one at a time, so a file ten times
larger takes ten times as long, not ten times the memory.

A file is told by its first bytes, not its name (a ".csv" saved by Excel as .xlsx happens):
a zip is an .xlsx, an OLE2 compound file is an .xls (or an encrypted workbook, which is one
too), anything else must decode as text. Every refusal is an ImportFileError in plain words,
raised before anything is written.

Cells come out as strings, the way they looked in the spreadsheet: 4155550123.0 from Excel is
"4155550123", a date is "2024-03-01", a tick is "yes".
"""
from __future__ import annotations

import codecs
import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import IO, Iterator

from core.errors import ServiceError

MAX_BYTES = 50 * 1024 * 1024  # what an upload may weigh (IMPORT_MAX_BYTES overrides it)
MAX_COLUMNS = 200
MAX_CELL = 10_000
# An .xlsx is a zip of XML; a real one inflates 5-20 times. More than this in all, or a
# member inflating more than MAX_RATIO times past a few MB, is a zip bomb.
MAX_UNZIPPED = 1024 * 1024 * 1024
MAX_RATIO = 200
SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}

_ZIP = b"PK\x03\x04"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")

csv.field_size_limit(MAX_CELL * 10)


class ImportFileError(ServiceError):
    """The file cannot be imported, with why, in words its uploader can act on."""

    def __init__(self, message: str):
        super().__init__(message, field="file")


@dataclass
class FileInfo:
    format: str  # "csv", "xlsx", "xls"
    size: int
    encoding: str | None = None  # CSV only
    delimiter: str | None = None  # CSV only
    sheets: list[str] = field(default_factory=list)  # workbooks only

    @property
    def description(self) -> str:
        if self.format == "csv":
            return f"CSV, {_ENCODING_LABELS.get(self.encoding, self.encoding)}, {DELIMITER_NAMES[self.delimiter]}-separated"
        return "Excel workbook" + (" (.xls)" if self.format == "xls" else "")


_ENCODING_LABELS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "cp1252": "Windows-1252"}


def _size(source: IO[bytes]) -> int:
    source.seek(0, io.SEEK_END)
    size = source.tell()
    source.seek(0)
    return size


def sniff(source: IO[bytes], *, max_bytes: int = MAX_BYTES) -> FileInfo:
    """What kind of file this is, and how to read it; ImportFileError if it cannot be."""
    size = _size(source)
    if size == 0:
        raise ImportFileError("The file is empty.")
    if size > max_bytes:
        raise ImportFileError(f"The file is {_mb(size)}; imports take files of up to {_mb(max_bytes)}. "
                              "Split it into parts, or save it as CSV, which is smaller.")
    head = source.read(SNIFF_BYTES)
    source.seek(0)
    if head.startswith(_ZIP):
        return FileInfo("xlsx", size, sheets=_xlsx_sheets(source))
    if head.startswith(_OLE2):
        return FileInfo("xls", size, sheets=_xls_sheets(source))
    encoding = _encoding(head)
    text = _decode_sample(head, encoding)
    if encoding not in ("utf-16",) and "\x00" in text:
        raise ImportFileError("This is not a spreadsheet: upload a .csv, .xlsx or .xls file.")
    if not text.strip():
        raise ImportFileError("The file is empty.")
    return FileInfo("csv", size, encoding=encoding, delimiter=_delimiter(text))


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB" if size >= 1024 * 1024 else f"{size / 1024:,.0f} KB"


# --- CSV -----------------------------------------------------------------------------------------

def _encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    # UTF-16 without a BOM: every other byte of Latin text is zero.
    if len(head) >= 4 and head[1::2].count(0) > len(head) // 4 and head[0::2].count(0) == 0:
        return "utf-16-le"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and len(head) == SNIFF_BYTES:  # cut in the middle of a character
            return "utf-8"
    from charset_normalizer import from_bytes

    results = from_bytes(head, cp_isolation=["cp1252", "latin_1", "iso8859_15", "cp1250", "mac_roman"])
    best = results.best()
    if best is None:
        raise ImportFileError("This is not a spreadsheet: upload a .csv, .xlsx or .xls file.")
    # A short sample reads about as well in several Western code pages; then take the one
    # Western Windows exports use.
    for result in results:
        if result.encoding == "cp1252" and result.chaos <= best.chaos + 0.05:
            return "cp1252"
    # Western exports (Outlook, Excel's "CSV" on Windows) are Windows-1252; ISO-8859-1 is its
    # subset, and the two read the same text.
    return "cp1252" if best.encoding in ("cp1252", "latin_1", "iso8859_15") else best.encoding


def _decode_sample(head: bytes, encoding: str) -> str:
    return head.decode(encoding, errors="ignore")


def _delimiter(text: str) -> str:
    """The delimiter that cuts the first lines into the same number of columns, most of them."""
    lines = text.splitlines()[:50]
    if len(text) >= SNIFF_BYTES - 4 and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    sample = "\n".join(lines)
    best, best_score = ",", (-1, 0)
    for delimiter in DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        agree = sum(1 for c in counts if c == counts[0])
        score = (agree, counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_rows(source: IO[bytes], info: FileInfo) -> Iterator[list[str]]:
    text = io.TextIOWrapper(source, encoding=info.encoding, newline="", errors="strict")
    try:
        for row in csv.reader(text, delimiter=info.delimiter):
            yield row
    except UnicodeDecodeError:
        raise ImportFileError(f"The file is not {_ENCODING_LABELS.get(info.encoding, info.encoding)} throughout: "
                              "part of it is in another encoding. Save it again as “CSV UTF-8” and upload that.") \
            from None
    except csv.Error as exc:
        raise ImportFileError(f"The file is not valid CSV ({exc}). Open it in a spreadsheet and save it as CSV again.") \
            from None
    finally:
        text.detach()


# --- Excel ---------------------------------------------------------------------------------------

def _check_zip(source: IO[bytes]) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise ImportFileError("The workbook is damaged (it is not a complete .xlsx file).") from None
    total = 0
    for member in archive.infolist():
        total += member.file_size
        if total > MAX_UNZIPPED or (member.file_size > 8 * 1024 * 1024
                                    and member.file_size > MAX_RATIO * max(member.compress_size, 1)):
            raise ImportFileError("The workbook unpacks to far more data than a spreadsheet holds; it was refused "
                                  "as unsafe. Save it again from Excel, or export it as CSV.")
    if "xl/workbook.xml" not in archive.namelist():
        raise ImportFileError("This zip file is not an Excel workbook: upload a .csv, .xlsx or .xls file.")
    return archive


def _open_xlsx(source: IO[bytes]):
    from openpyxl import load_workbook

    _check_zip(source)
    source.seek(0)
    try:
        return load_workbook(source, read_only=True, data_only=True)
    except Exception:  # openpyxl raises a zoo of exceptions for a broken workbook
        raise ImportFileError("The workbook could not be read; it may be damaged. Save it again from Excel, "
                              "or export it as CSV.") from None


def _xlsx_sheets(source: IO[bytes]) -> list[str]:
    workbook = _open_xlsx(source)
    try:
        return [ws.title for ws in workbook.worksheets]
    finally:
        workbook.close()
        source.seek(0)


def _is_encrypted(source: IO[bytes]) -> bool:
    """An encrypted .xlsx is an OLE2 file holding an "EncryptedPackage" stream."""
    source.seek(0)
    found, tail = False, b""
    while chunk := source.read(1024 * 1024):
        if _ENCRYPTED in tail + chunk:
            found = True
            break
        tail = chunk[-len(_ENCRYPTED):]
    source.seek(0)
    return found


_PROTECTED = ("The workbook is protected with a password. Open it in Excel, remove the password "
              "(File › Info › Protect Workbook), save it, and upload it again.")


def _open_xls(source: IO[bytes]):
    import xlrd

    if _is_encrypted(source):
        raise ImportFileError(_PROTECTED)
    data = source.read()
    source.seek(0)
    try:
        return xlrd.open_workbook(file_contents=data, on_demand=True)
    except xlrd.biffh.XLRDError as exc:
        if "encrypt" in str(exc).lower():
            raise ImportFileError(_PROTECTED) from None
        raise ImportFileError("The .xls workbook could not be read; it may be damaged. Save it again from Excel "
                              "as .xlsx or CSV.") from None
    except Exception:
        raise ImportFileError("The .xls workbook could not be read; it may be damaged. Save it again from Excel "
                              "as .xlsx or CSV.") from None


def _xls_sheets(source: IO[bytes]) -> list[str]:
    book = _open_xls(source)
    try:
        return list(book.sheet_names())
    finally:
        book.release_resources()


def _xlsx_rows(source: IO[bytes], sheet: str | None) -> Iterator[list]:
    workbook = _open_xlsx(source)
    try:
        ws = workbook[sheet] if sheet else workbook.worksheets[0]
        for row in ws.iter_rows(values_only=True):
            yield list(row)
    finally:
        workbook.close()


def _xls_rows(source: IO[bytes], sheet: str | None) -> Iterator[list]:
    import xlrd

    book = _open_xls(source)
    try:
        ws = book.sheet_by_name(sheet) if sheet else book.sheet_by_index(0)
        for r in range(ws.nrows):
            out = []
            for cell in ws.row(r):
                if cell.ctype == xlrd.XL_CELL_DATE:
                    try:
                        out.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
                    except (ValueError, OverflowError):
                        out.append(cell.value)
                elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                    out.append(bool(cell.value))
                elif cell.ctype in (xlrd.XL_CELL_ERROR, xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    out.append(None)
                else:
                    out.append(cell.value)
            yield out
    finally:
        book.release_resources()


def cell_text(value) -> str:
    """A cell as the text it showed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e17 else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


# --- the table -----------------------------------------------------------------------------------

@dataclass
class Row:
    line: int  # the row's number as a spreadsheet shows it (the header is row 1, usually)
    cells: list[str]


class Table:
    """A sheet's header and rows. `rows()` streams; read it once."""

    def __init__(self, source: IO[bytes], info: FileInfo, sheet: str | None = None):
        if info.sheets and sheet is not None and sheet not in info.sheets:
            raise ImportFileError(f"The workbook has no sheet called “{sheet}”.")
        self.source, self.info, self.sheet = source, info, sheet
        self._raw = self._open()
        self.header, self._header_line = self._read_header()

    def _open(self) -> Iterator[tuple[int, list[str]]]:
        self.source.seek(0)
        if self.info.format == "csv":
            raw = _csv_rows(self.source, self.info)
        elif self.info.format == "xlsx":
            raw = _xlsx_rows(self.source, self.sheet)
        else:
            raw = _xls_rows(self.source, self.sheet)
        for line, cells in enumerate(raw, 1):
            texts = [cell_text(c) for c in cells]
            while texts and not texts[-1].strip():
                texts.pop()
            yield line, texts

    def _read_header(self) -> tuple[list[str], int]:
        for line, cells in self._raw:
            if cells:
                break
        else:
            where = f"The sheet “{self.sheet}”" if self.sheet else "The file"
            raise ImportFileError(f"{where} is empty: there is no header row and no contacts.")
        if len(cells) > MAX_COLUMNS:
            raise ImportFileError(f"The file has {len(cells):,} columns; imports take up to {MAX_COLUMNS}. "
                                  "Remove the columns you do not need.")
        header, seen = [], {}
        for index, name in enumerate(cells):
            name = " ".join(name.split())[:120] or f"Column {_letters(index)}"
            count = seen[name.casefold()] = seen.get(name.casefold(), 0) + 1
            header.append(name if count == 1 else f"{name} ({count})")
        return header, line

    def rows(self) -> Iterator[Row]:
        """The rows under the header, blank ones left out; cells beyond the header are kept
        (the import refuses such a row with a reason)."""
        for line, cells in self._raw:
            if not any(c.strip() for c in cells):
                continue
            yield Row(line, [c[:MAX_CELL] for c in cells])


def _letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def open_table(source: IO[bytes], info: FileInfo | None = None, sheet: str | None = None, *,
               max_bytes: int = MAX_BYTES) -> Table:
    info = info or sniff(source, max_bytes=max_bytes)
    if sheet is None and info.sheets:
        sheet = info.sheets[0]
    return Table(source, info, sheet)
