"""Importing contacts: from an uploaded file to contacts, at scale, without losing or
duplicating anyone.

1. `new_import` sniffs the file and freezes its rows into the database (ContactImportChunk,
   CHUNK rows a row), streaming: workers on other machines never need the upload, and
   memory stays flat. A workbook of several sheets is kept until its sheet is chosen.
2. The member maps columns and sets options; `preview` shows the first rows as they will be
   imported, with every problem per cell.
3. `start_import` moves the frozen rows to a background operation (core.operations) and
   queues `run_import`, which works through them a batch per transaction: clean each row with
   the services' checks, merge the file's own duplicates, match existing contacts by e-mail,
   then phone (one query per batch), then insert the new contacts, their search words and
   timeline entries with multi-row INSERTs, and update the matched ones as the member chose.
   The batches are cut so that one person's rows (same e-mail, else phone) share a batch, so
   on PostgreSQL every running worker takes batches of the same import at once
   (core.operations.work_in_parallel); the last batch to commit finishes the import.
   Each batch records what it did (ContactImportBatch), in the same transaction: the result,
   the failed-rows file and undo read it. A worker killed mid-batch leaves nothing of it; the
   retry resumes after the last committed batch.
4. `undo_import`, within UNDO_DAYS, removes the contacts the import created and restores the
   fields it changed (where nobody changed them since), as an operation of its own.
"""
from __future__ import annotations

import io
import json
import logging
import re
import threading
from array import array
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import IO, Iterable

import sqlalchemy as sa
from huey import crontab

from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser
from core.jobs import job, on_commit, periodic_job
from core.operations import (Operation, OperationChunk, jobs_to_queue, register_kind, work_in_parallel,
                             work_through)
from core.spreadsheet import csv_chunks
from core.statistics import analyze_grown
from core.tenancy import TENANT_CHECKED_SQL, cross_tenant, current_tenant_id
from core.text import clean_line
from crm import custom_fields
from crm.contacts import default_status_id
from crm.imports.mapping import (NEW_FIELD, RowCleaner, check_mapping, guess_mapping, header_key,
                                 load_custom_fields, saved_form)
from crm.imports.models import ContactImport, ContactImportBatch, ContactImportChunk, ImportMapping
from crm.imports.reading import MAX_BYTES, FileInfo, ImportFileError, Table, sniff
from crm.identity import Details, contact_addresses, contacts_for, decide
from crm.models import (Circle, CircleMember, Company, Contact, ContactAddress, ContactRole, ContactSearchToken,
                        ContactTag, PipelineStatus, TimelineEntry)
from crm.normalize import company_name_key
from crm.search import contact_tokens, index_contacts
from crm.setup import settings
from crm.timeline import actor_columns

logger = logging.getLogger(__name__)

KIND, UNDO_KIND = "contacts.import", "contacts.import_undo"
CHUNK = 1000  # rows a batch: one transaction, a handful of multi-row statements
MAX_ROWS = 1_000_000
RETRIES = 5
PREVIEW_ROWS = 20
PARALLEL_JOBS = 8  # at most this many workers share one import
# What a batch inserts into: their statistics are refreshed as they grow (core.statistics).
GROWN_TABLES = (Contact.__tablename__, ContactSearchToken.__tablename__, ContactAddress.__tablename__,
                TimelineEntry.__tablename__,
                Company.__tablename__, CircleMember.__tablename__, ContactTag.__tablename__,
                ContactImportBatch.__tablename__)

register_actions({
    "contact_import.started": "Contact import started",
    "contact_import.finished": "Contact import finished",
    "contact_import.undone": "Contact import undone",
})


def _counts_sentence(created: int, updated: int, skipped: int, merged: int, failed: int) -> str:
    parts = [f"{created:,} created", f"{updated:,} updated", f"{skipped:,} skipped"]
    if merged:
        parts.append(f"{merged:,} merged with another row of the file")
    parts.append(f"{failed:,} failed")
    return ", ".join(parts) + "."


def _summary(operation: Operation) -> str:
    result = operation.result or {}
    return _counts_sentence(result.get("created", 0), result.get("updated", 0), result.get("skipped_rows", 0),
                            result.get("merged", 0), operation.errors)




# --- upload ------------------------------------------------------------------------------------

def new_import(source: IO[bytes], filename: str, *, actor, max_bytes: int = MAX_BYTES) -> ContactImport:
    """Sniff the file and freeze its rows (or keep a workbook of several sheets until one is
    chosen). ImportFileError, with nothing written, for a file that cannot be imported."""
    info = sniff(source, max_bytes=max_bytes)
    upload = ContactImport(filename=_clean_filename(filename), file_format=info.format, encoding=info.encoding,
                           delimiter=info.delimiter, size=info.size, sheets=info.sheets,
                           created_by_id=getattr(actor, "id", None) if isinstance(actor, StaffUser) else None)
    db.session.add(upload)
    db.session.flush()
    if len(info.sheets) > 1:
        upload.file = source.read()
        source.seek(0)
        return upload
    _freeze(upload, source, info, info.sheets[0] if info.sheets else None)
    return upload


def _clean_filename(filename: str) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:255] or "upload"


def choose_sheet(upload: ContactImport, sheet: str) -> None:
    if not upload.needs_sheet or upload.file is None:
        raise ServiceError("This file's sheet has been chosen already.", field="sheet")
    if sheet not in upload.sheets:
        raise ServiceError("Choose one of the workbook's sheets.", field="sheet")
    info = FileInfo(upload.file_format, upload.size, sheets=upload.sheets)
    _freeze(upload, io.BytesIO(upload.file), info, sheet)
    upload.file = None


def _freeze(upload: ContactImport, source: IO[bytes], info: FileInfo, sheet: str | None) -> None:
    table = Table(source, info, sheet)
    upload.sheet, upload.header = sheet, table.header
    count, seq, rows = 0, 0, []
    for row in table.rows():
        rows.append([row.line, row.cells])
        count += 1
        if count > MAX_ROWS:
            raise ImportFileError(f"The file has more than {MAX_ROWS:,} rows; import it in parts.")
        if len(rows) == CHUNK:
            db.session.execute(sa.insert(ContactImportChunk), [{"import_id": upload.id, "seq": seq, "rows": rows}])
            seq, rows = seq + 1, []
    if rows:
        db.session.execute(sa.insert(ContactImportChunk), [{"import_id": upload.id, "seq": seq, "rows": rows}])
    if not count:
        where = f"The sheet “{sheet}”" if sheet and len(info.sheets) > 1 else "The file"
        raise ImportFileError(f"{where} has a header row but no contacts under it.")
    upload.row_count = count
    upload.mapping = guess_mapping(table.header, saved=_saved_mapping_for(table.header), fields=load_custom_fields())


def _saved_mapping_for(header: list[str]) -> dict[str, str] | None:
    """The saved mapping that knows every column of this file (the newest, when several do):
    the same export as last time is mapped as it was then."""
    keys = {header_key(name) for name in header}
    for saved in db.session.scalars(sa.select(ImportMapping).order_by(ImportMapping.id.desc()).limit(50)):
        if keys <= set(saved.columns):
            return saved.columns
    return None


# --- mapping, preview, options ------------------------------------------------------------------

def saved_mappings() -> list[ImportMapping]:
    return list(db.session.scalars(sa.select(ImportMapping).order_by(ImportMapping.name)))


def apply_saved_mapping(upload: ContactImport, mapping: ImportMapping) -> list[str]:
    return guess_mapping(upload.header, saved=mapping.columns, fields=load_custom_fields())


def save_mapping(name: str, header: list[str], mapping: list[str], *, actor) -> ImportMapping:
    name = clean_line(name, label="a name for the mapping", field="mapping_name", max_length=120)
    saved = db.session.scalar(sa.select(ImportMapping).where(ImportMapping.name == name))
    columns = saved_form(header, mapping)
    if saved is None:
        saved = ImportMapping(name=name, columns=columns, created_by_id=getattr(actor, "id", None))
        db.session.add(saved)
    else:
        saved.columns = {**saved.columns, **columns}
    db.session.flush()
    return saved


def set_mapping(upload: ContactImport, mapping: list[str]) -> None:
    _require_editable(upload)
    check_mapping(upload.header, mapping, load_custom_fields())
    new_labels = [upload.header[i] for i, target in enumerate(mapping) if target == NEW_FIELD]
    taken = {header_key(f.label) for f in custom_fields.definitions("contact", include_archived=True)}
    for label in new_labels:
        if header_key(label) in taken:
            raise ServiceError(f"There is already a custom field called “{label}”: map the column to it.",
                               field="mapping")
    upload.mapping = list(mapping)


def _require_editable(upload: ContactImport) -> None:
    if upload.status != ContactImport.UPLOADED:
        raise ServiceError("This import has started already; its mapping and options can no longer change.")


@dataclass
class PreviewRow:
    line: int
    cells: list[str]
    problems: dict[int, str]
    row_problem: str | None
    values: dict


def preview(upload: ContactImport, *, limit: int = PREVIEW_ROWS) -> list[PreviewRow]:
    """The first rows as the import will read them, with what is wrong in each cell."""
    rows: list = []
    for chunk in db.session.scalars(sa.select(ContactImportChunk.rows).where(
            ContactImportChunk.import_id == upload.id).order_by(ContactImportChunk.seq)
            .execution_options(yield_per=1)):
        rows.extend(chunk[:limit - len(rows)])
        if len(rows) >= limit:
            break
    cleaner = RowCleaner(upload.header, upload.mapping, region=settings().default_region,
                         fields=load_custom_fields())
    out = []
    for line, cells in rows:
        row = cleaner.clean(cells)
        out.append(PreviewRow(line, cells, row.problems, row.row_problem, row.values))
    return out


def check_options(options: dict) -> dict:
    """The run's options, checked: what to do with duplicates, and the role, status, owner,
    circles and tags new contacts get."""
    on_duplicate = options.get("on_duplicate") or ContactImport.SKIP
    if on_duplicate not in ContactImport.ON_DUPLICATE:
        raise ServiceError("Choose what to do with rows that match a contact.", field="on_duplicate")
    role = options.get("role") or ContactRole.LEAD
    if role not in ContactRole.ALL:
        raise ServiceError("Choose Lead, Prospect or Client.", field="role")
    status_id = int(options.get("status_id") or 0) or None
    if status_id is not None:
        status = db.session.get(PipelineStatus, status_id)
        if status is None or status.archived_at is not None:
            raise ServiceError("Choose a status from the list.", field="status_id")
    owner_id = int(options.get("owner_id") or 0) or None
    if owner_id is not None:
        owner = db.session.get(StaffUser, owner_id)
        if owner is None or not owner.active:
            raise ServiceError("Choose an active member of the team as owner.", field="owner_id")
    circle_ids = sorted({int(c) for c in options.get("circle_ids") or [] if str(c).isdigit()})
    for circle_id in circle_ids:
        circle = db.session.get(Circle, circle_id)
        if circle is None or circle.archived_at is not None:
            raise ServiceError("Choose circles from the list.", field="circle_ids")
    tags = []
    for name in options.get("tags") or []:
        name = " ".join(str(name).split())
        if name:
            tags.append(clean_line(name, label="a tag", field="tags", max_length=60))
    return {"on_duplicate": on_duplicate, "role": role, "status_id": status_id, "owner_id": owner_id,
            "circle_ids": circle_ids, "tags": list(dict.fromkeys(tags))}


def start_import(upload: ContactImport, options: dict, *, actor, queue: bool = True) -> Operation:
    """Check the mapping and options, make the new custom fields, and hand the frozen rows to
    a background operation, queued once the caller commits (queue=False: the caller runs it)."""
    _require_editable(upload)
    if upload.needs_sheet:
        raise ServiceError("Choose the sheet to import first.", field="sheet")
    set_mapping(upload, upload.mapping)
    options = check_options(options)
    new_fields = {}
    for index, target in enumerate(upload.mapping):
        if target == NEW_FIELD:
            definition = custom_fields.create_field("contact", upload.header[index], "text", actor=actor)
            new_fields[str(index)] = definition.key
    options["new_fields"] = new_fields
    upload.options = options
    operation = Operation(kind=KIND, title=f"Import {upload.filename}"[:300], params={"import_id": upload.id},
                          total=upload.row_count, started_by_id=upload.created_by_id)
    db.session.add(operation)
    db.session.flush()
    chunks = _partition(upload)
    if chunks:
        db.session.execute(sa.insert(OperationChunk), [
            {"operation_id": operation.id, "seq": seq, "refs": rows} for seq, rows in enumerate(chunks)])
    db.session.execute(sa.delete(ContactImportChunk).where(ContactImportChunk.import_id == upload.id))
    upload.status, upload.operation_id = ContactImport.RUNNING, operation.id
    record("contact_import.started", upload, actor=actor,
           details={"file": upload.filename, "rows": upload.row_count, "on_duplicate": options["on_duplicate"]})
    if queue:
        # On PostgreSQL one job per worker that may take part; each takes batches until none
        # are left (core.operations.work_in_parallel). A resumed import is queued alike.
        for _ in range(jobs_to_queue(KIND, len(chunks))):
            on_commit(run_import, operation.id, tenant_id=operation.tenant_id)
    return operation


def _partition(upload: ContactImport) -> list[list]:
    """The frozen rows cut into batches of about CHUNK rows such that rows the identity rule
    could take for one person share a batch, each in file order: batches may then run at once
    on several workers, and the file's own duplicates still meet in one batch.

    Rows are linked when they share any e-mail or any phone, in any of their e-mail and phone
    columns (union-find, one pass): a row with e-mail X and phone P, another with phone P only
    and a third with X among its other e-mails are one group, wherever they sit in the file.
    A phone links rows even when their e-mails differ: both may be matched to the same
    existing contact (one with that phone and no e-mail), and which batch commits first must
    not decide who that contact becomes. Each group goes to the batch its first row picks,
    round robin over the file, so batches stay about CHUNK rows unless one group is larger."""
    emails = [i for i, target in enumerate(upload.mapping) if target in ("email", "extra_emails")]
    phones = [i for i, target in enumerate(upload.mapping) if target in ("phone", "extra_phones")]
    count = max(1, -(-(upload.row_count or 0) // CHUNK))
    rows: list = []
    parent = array("l")  # row index -> a row of its group, nearer the group's first row
    first_with: dict[int, int] = {}  # person key (its hash: smaller; a collision only joins two groups) -> first row

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # halve the path as we go: near-constant time
            i = parent[i]
        return i

    frozen = db.session.scalars(sa.select(ContactImportChunk.rows).where(ContactImportChunk.import_id == upload.id)
                                .order_by(ContactImportChunk.seq))
    for chunk in frozen:
        for line, cells in chunk:
            index = len(rows)
            rows.append([line, cells])
            parent.append(index)
            for key in _person_keys(cells, emails, phones):
                other = first_with.setdefault(hash(key), index)
                if other != index:
                    a, b = root(index), root(other)
                    if a != b:  # the group's first row stays its root
                        parent[max(a, b)] = min(a, b)
    del first_with
    batches: list[list] = [[] for _ in range(count)]
    for index, row in enumerate(rows):
        batches[root(index) % count].append(row)
    return [batch for batch in batches if batch]


_LIST_SPLIT = re.compile(r"[;,\s]+|:::")
_PHONE_SPLIT = re.compile(r"[;,\n]+|:::")  # as RowCleaner splits a list of other phones
_EXTENSION = re.compile(r"(?i)\s*(?:ext|x\s*\d|#).*$")  # "… ext. 12", "… x12", "… #12": not the number
_NOT_DIGIT = re.compile(r"\D+")
_KEYPAD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "22233344455566677778889999")  # 1-800-FLOWERS


def _person_keys(cells: list, emails: list[int], phones: list[int]) -> set[str]:
    """What may say two rows are one person, roughly as the cleaned row will (RowCleaner):
    every e-mail, lower-cased, and every phone's last seven digits (the extension left off;
    seven, not more: a national number typed without its country code still ends in the same
    seven digits, and a million rows still rarely collide). Rough is enough as long as it never
    tells one address apart from itself: rows it wrongly puts together only share a batch."""
    keys = set()
    for index in emails:
        if index < len(cells) and cells[index]:
            keys.update("e:" + e for e in _LIST_SPLIT.split(str(cells[index]).lower()) if "@" in e)
    for index in phones:
        if index < len(cells) and cells[index]:
            for number in _PHONE_SPLIT.split(str(cells[index])):
                digits = _NOT_DIGIT.sub("", _EXTENSION.sub("", number).upper().translate(_KEYPAD))
                if len(digits) >= 7:  # shorter is no phone number the cleaner would keep
                    keys.add("p:" + digits[-7:])
    return keys


def discard_import(upload: ContactImport) -> None:
    """Forget an import that was never started (its frozen rows go with it)."""
    _require_editable(upload)
    db.session.execute(sa.delete(ContactImportChunk).where(ContactImportChunk.import_id == upload.id))
    db.session.delete(upload)


# --- the job ------------------------------------------------------------------------------------

@job(retries=RETRIES, retry_delay=10)
def run_import(operation_id: int) -> None:
    """Work through an import's rows beside the other workers doing the same (queued by
    start_import; re-queued after a crash)."""
    work_in_parallel(operation_id, prepare=_prepare, finish=_finish, retries=RETRIES)


register_kind(KIND, unit="rows", summary=_summary, job=run_import, parallel=lambda: PARALLEL_JOBS)


def run_inline(operation_id: int) -> None:
    """The same, in this process (the CLI): retried here, as the job would be."""
    for _ in range(RETRIES + 1):
        try:
            work_through(operation_id, prepare=_prepare, finish=_finish, retries=RETRIES)
            return
        except Exception:  # recorded on the operation; try again from the last committed batch
            db.session.rollback()
    return


def _import_of(operation: Operation) -> ContactImport:
    upload = db.session.get(ContactImport, operation.params["import_id"])
    if upload is None:
        raise ServiceError("Stopped: the import was removed.")
    return upload


def _actor_of(upload: ContactImport):
    if upload.created_by_id is None:
        return None  # an operator's import from the command line
    from core.permissions import can

    actor = db.session.get(StaffUser, upload.created_by_id)
    if actor is None or not actor.active:
        raise ServiceError("Stopped: the account of the member who started this import is no longer active. "
                           "What was imported before stays imported.")
    if not can(actor, "contacts.import"):
        raise ServiceError("Stopped: the role of the member who started this import may no longer import "
                           "contacts. What was imported before stays imported.")
    return actor


def _prepare(operation: Operation):
    upload = _import_of(operation)
    actor = _actor_of(upload)
    batch = Batch(upload, actor)
    return batch.run


def _finish(operation: Operation) -> None:
    upload = _import_of(operation)
    upload.status = {Operation.DONE: ContactImport.DONE, Operation.CANCELLED: ContactImport.CANCELLED}.get(
        operation.status, ContactImport.FAILED)
    upload.finished_at = utcnow()
    upload.counts = _counts_of(operation)
    record("contact_import.finished", upload, actor=_started_by(upload),
           details={"file": upload.filename, "status": operation.status, **upload.counts})


def _started_by(upload: ContactImport):
    return db.session.get(StaffUser, upload.created_by_id) if upload.created_by_id else None


def _counts_of(operation: Operation) -> dict:
    result = operation.result or {}
    return {"rows": operation.total, "processed": operation.processed, "created": result.get("created", 0),
            "updated": result.get("updated", 0), "skipped": result.get("skipped_rows", 0),
            "merged": result.get("merged", 0), "failed": operation.errors}


def sync_status(upload: ContactImport) -> ContactImport:
    """An import whose operation was cancelled (cancelling ends the operation between batches,
    without the job's finish) reads as cancelled."""
    if upload.status == ContactImport.RUNNING and upload.operation is not None and upload.operation.is_finished:
        upload.status = {Operation.DONE: ContactImport.DONE, Operation.CANCELLED: ContactImport.CANCELLED}.get(
            upload.operation.status, ContactImport.FAILED)
        upload.finished_at = upload.operation.finished_at
        upload.counts = _counts_of(upload.operation)
    return upload


def live_counts(upload: ContactImport) -> dict:
    if upload.operation is None:
        return dict(upload.counts or {})
    return _counts_of(upload.operation)


# --- writing many rows --------------------------------------------------------------------------

def _json_value(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value insert_rows can send")


def insert_rows(model, rows: list[dict], *, with_ids: bool = False) -> list[int]:
    """Insert many rows of a tenant table in one statement, as the current tenant.

    On PostgreSQL (where the app's role may not COPY, being bound by row-level security) the
    rows go as one JSON document, read back into the table's own row type by
    `json_populate_recordset`: one round trip, one statement to plan, and the encoding is
    the json module's C code (psycopg builds arrays value by value in Python, which cost an
    import as much as the database's work). Ids, when wanted, are drawn from the table's
    sequence first, so they come back in the rows' order. Elsewhere (SQLite) the ORM's
    multi-row insert does it. Row-level security still checks every row on PostgreSQL, and the
    tenant is the current one, written by this function, not by the caller."""
    if not rows:
        return []
    from core.tenancy import TENANT_CHECKED_SQL, current_tenant_id

    session = db.session
    if session.get_bind().dialect.name != "postgresql":
        statement = sa.insert(model).execution_options(render_nulls=True)
        if with_ids:
            return list(session.scalars(statement.returning(model.id, sort_by_parameter_order=True), rows))
        session.execute(statement, rows)
        return []
    table = model.__table__.name
    columns = list(rows[0])
    ids: list[int] = []
    if with_ids:
        ids = list(session.scalars(sa.text(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, :n)")
            .execution_options(**{TENANT_CHECKED_SQL: True}), {"n": len(rows)}))
        rows = [{**row, "id": row_id} for row_id, row in zip(ids, rows)]
        columns = ["id", *columns]
    names = ", ".join(columns)
    session.execute(sa.text(
        f"INSERT INTO {table} (tenant_id, {names}) SELECT CAST(:tenant_id AS INTEGER), {names} "
        f"FROM json_populate_recordset(NULL::{table}, CAST(:rows AS JSON))")
        .execution_options(**{TENANT_CHECKED_SQL: True}),
        {"tenant_id": current_tenant_id(), "rows": json.dumps(rows, default=_json_value, separators=(",", ":"))})
    return ids


# --- one batch ----------------------------------------------------------------------------------

_CONTACT_FIELDS = ("first_name", "last_name", "email", "extra_emails", "phone", "extra_phones", "street", "city",
                   "postal_code", "region", "country", "job_title", "source", "notes")
_LISTS = ("extra_emails", "extra_phones")


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


# Per thread: a worker's threads run batches of one import side by side, and a company one
# batch makes is another's to use only once that batch has committed (the cache is checked
# against the table, so a company of a batch rolled back is matched again).
_COMPANY_CACHES = threading.local()


class Batch:
    """Applies one chunk of rows; made afresh for every chunk (work_through's prepare), so the
    member's account, the circles and the custom fields are read again each time."""

    def __init__(self, upload: ContactImport, actor):
        self.upload, self.actor = upload, actor
        options = upload.options or {}
        self.options = options
        self.on_duplicate = options.get("on_duplicate", ContactImport.SKIP)
        self.now = utcnow()
        new_fields = {int(k): v for k, v in (options.get("new_fields") or {}).items()}
        self.cleaner = RowCleaner(upload.header, upload.mapping, region=settings().default_region,
                                  fields=load_custom_fields(), new_fields=new_fields)
        self.status_id = options.get("status_id") or default_status_id()
        self.owner_id = options.get("owner_id") or (actor.id if isinstance(actor, StaffUser) else None)
        self.circles = [c for c in (db.session.get(Circle, i) for i in options.get("circle_ids") or [])
                        if c is not None and c.archived_at is None]
        self._tag_ids: list[int] | None = None
        # name key -> (id, name), kept across the import's batches in this process: a file names
        # the same few hundred companies again and again, and matching one is a fuzzy search.
        caches = _COMPANY_CACHES.__dict__.setdefault("by_import", {})
        self.companies = caches.setdefault(upload.id, {})
        self.created_companies: list[int] = []
        while len(caches) > 8:
            caches.pop(next(iter(caches)))
        self.actor_id = actor.id if isinstance(actor, StaffUser) else None
        self.actor_columns = actor_columns(actor if isinstance(actor, StaffUser) else None)
        self.actor_label = getattr(actor, "display_name", None) or "Command line import"

    # -- the step -------------------------------------------------------------------------------
    def run(self, rows: list) -> dict:
        seq = rows[0][0] if rows else 0
        failed: list = []
        holders: dict[str, list[_RowHolder]] = {}  # address -> the rows above that answer to it
        order: list[dict] = []
        merged = 0
        for line, cells in rows:
            row = self.cleaner.clean(cells)
            if not row.ok:
                failed.append([line, row.reason(self.upload.header), cells])
                continue
            values = row.values
            # The same person further up the file, by the rule that matches contacts
            # (crm.identity): any e-mail in common, else a phone when one side has no e-mail.
            same = decide(_details_of(values), holders)
            if same is not None:
                _fold_into(same.entry["values"], values)
                same.entry["lines"].append(line)
                same.refresh(holders)
                merged += 1
                continue
            entry = {"line": line, "lines": [line], "values": values}
            order.append(entry)
            _RowHolder(entry, len(order)).refresh(holders)
        counts = {"created": 0, "updated": 0, "skipped_rows": 0, "unchanged": 0, "merged": merged}
        self._resolve_companies(order)
        matches = self._match(order)
        ours = self._created_by_this_import({c.id for c in matches.values()})
        creates, updates = [], []
        for index, entry in enumerate(order):
            contact = matches.get(index)
            if contact is None:
                creates.append(entry)
            elif contact.id in ours:  # the same person further down the file: one contact
                updates.append((entry, contact, ContactImport.FILL))
                counts["merged"] += 1
            elif self.on_duplicate == ContactImport.SKIP:
                counts["skipped_rows"] += 1
            elif self.on_duplicate == ContactImport.CREATE:
                entry["inactive"] = bool(entry["values"].get("email")) and contact.email == entry["values"]["email"]
                creates.append(entry)
            else:
                updates.append((entry, contact, self.on_duplicate))
        created_ids = self._create(creates)
        counts["created"] = len(created_ids)
        changed = self._update(updates, counts)
        touched = created_ids + [contact.id for contact in changed]
        added_members, added_tags = self._circles_and_tags(created_ids, [c.id for c in changed])
        db.session.execute(sa.insert(ContactImportBatch), [{
            "import_id": self.upload.id, "seq": seq, "created": created_ids,
            "updated": {str(c.id): c._import_before for c in changed}, "failed": failed,
            "circle_members": added_members, "contact_tags": added_tags, "companies": self.created_companies}])
        db.session.flush()
        analyze_grown(GROWN_TABLES)
        problems = [f"Row {line}: {reason}" for line, reason, _ in failed[:5]]
        skipped = counts["skipped_rows"] + counts["merged"] + counts["unchanged"]
        return {"changed": len(touched), "skipped": skipped, "errors": len(failed), "problems": problems,
                "created": counts["created"], "updated": counts["updated"], "skipped_rows": counts["skipped_rows"]
                + counts["unchanged"], "merged": counts["merged"]}

    # -- companies ------------------------------------------------------------------------------
    def _resolve_companies(self, entries: list[dict]) -> None:
        from crm.companies import create_company, match_company

        names, details = {}, {}
        for entry in entries:
            name = entry["values"].get("company_name")
            if name:
                key = company_name_key(name)
                names.setdefault(key, name)
                for field, value in (entry["values"].get("company_details") or {}).items():
                    details.setdefault(key, {}).setdefault(field, value)  # the first row that says wins
        cached = {self.companies[key][0] for key in names if key in self.companies}
        if cached:  # deleted since they were cached: match them again
            alive = set(db.session.scalars(sa.select(Company.id).where(Company.id.in_(cached))))
            for key in [k for k, (company_id, _) in self.companies.items() if company_id in cached - alive]:
                del self.companies[key]
        missing = [key for key in names if key and key not in self.companies]
        if missing:
            self._read_companies(missing)
        missing = sorted(key for key in names if key and key not in self.companies)
        if missing and db.session.get_bind().dialect.name == "postgresql":
            # New names. Another batch of the import, running beside this one, may be making
            # the same company: whoever locks a name first makes it, the other waits for that
            # batch to commit and finds it. All in one sorted sweep: two batches never wait on
            # each other.
            db.session.execute(sa.text(
                "SELECT pg_advisory_xact_lock(CAST(:tenant AS INTEGER), hashtext(k)) "
                "FROM unnest(CAST(:keys AS TEXT[])) WITH ORDINALITY AS t(k, n) ORDER BY n")
                .execution_options(**{TENANT_CHECKED_SQL: True}), {"tenant": current_tenant_id(), "keys": missing})
            self._read_companies(missing)
        for key, name in names.items():
            if not key or key in self.companies:
                continue
            company = match_company(name)
            if company is None:
                company = create_company({**details.get(key, {}), "name": name}, actor=self.actor)
                self.created_companies.append(company.id)
            self.companies[key] = (company.id, company.name)
        for entry in entries:
            entry["values"].pop("company_details", None)
            name = entry["values"].pop("company_name", None)
            if name and company_name_key(name):
                entry["values"]["company_id"], entry["company"] = self.companies[company_name_key(name)]

    def _read_companies(self, keys: list[str]) -> None:
        for company_id, key, name in db.session.execute(
                sa.select(Company.id, Company.name_key, Company.name).where(Company.name_key.in_(keys))
                .order_by(Company.id)):
            self.companies.setdefault(key, (company_id, name))

    # -- matching ------------------------------------------------------------------------------
    def _match(self, entries: list[dict]) -> dict[int, Contact]:
        """index in entries -> the existing contact it matches, by crm.identity's rule (an
        e-mail match wins; a phone only when the row or the contact has no e-mail): one query
        for the batch."""
        people = [_details_of(entry["values"]) for entry in entries]
        return {i: contact for i, contact in enumerate(contacts_for(people)) if contact is not None}

    def _created_by_this_import(self, ids: set[int]) -> set[int]:
        if not ids:
            return set()
        return set(db.session.scalars(sa.select(TimelineEntry.contact_id).where(
            TimelineEntry.contact_id.in_(ids), TimelineEntry.kind == "imported",
            TimelineEntry.subject_type == "contact_import", TimelineEntry.subject_id == self.upload.id)))

    # -- creating -------------------------------------------------------------------------------
    def _create(self, entries: list[dict]) -> list[int]:
        if not entries:
            return []
        role = self.options.get("role") or ContactRole.LEAD
        rows = []
        for entry in entries:
            values = entry["values"]
            rows.append({
                "first_name": values.get("first_name") or "", "last_name": values.get("last_name") or "",
                "email": values.get("email"), "extra_emails": values.get("extra_emails") or [],
                "phone": values.get("phone"), "extra_phones": values.get("extra_phones") or [],
                "street": values.get("street"), "city": values.get("city"), "postal_code": values.get("postal_code"),
                "region": values.get("region"), "country": values.get("country"),
                "company_id": values.get("company_id"), "job_title": values.get("job_title"),
                "source": values.get("source"), "notes": values.get("notes"), "social": {}, "role": role,
                "status_id": self.status_id, "is_active": not entry.get("inactive"), "is_test": False,
                "is_primary_contact": False, "owner_id": self.owner_id,
                "custom_fields": values.get("custom_fields") or {}, "created_at": self.now, "updated_at": self.now,
                "last_activity_at": self.now,
            })
        ids = insert_rows(Contact, rows, with_ids=True)
        tokens, addresses, entries_out = [], [], []
        summary = f"Imported from {self.upload.filename}"[:500]
        for contact_id, entry, row in zip(ids, entries, rows):
            for token in contact_tokens(names=(row["first_name"], row["last_name"], entry.get("company")),
                                        emails=(row["email"], *row["extra_emails"]),
                                        phones=(row["phone"], *row["extra_phones"])):
                tokens.append({"contact_id": contact_id, "token": token})
            addresses.extend({"contact_id": contact_id, "address": address} for address in
                             contact_addresses((row["email"], *row["extra_emails"]), (row["phone"], *row["extra_phones"])))
            entries_out.append({"contact_id": contact_id, "company_id": None, "kind": "imported", "summary": summary,
                                "details": {"import_id": self.upload.id, "rows": entry["lines"]},
                                **self.actor_columns, "actor_label": self.actor_label,
                                "subject_type": "contact_import", "subject_id": self.upload.id,
                                "occurred_at": self.now})
        insert_rows(ContactSearchToken, tokens)
        insert_rows(ContactAddress, addresses)
        insert_rows(TimelineEntry, entries_out)
        return ids

    # -- updating -------------------------------------------------------------------------------
    def _update(self, updates: list[tuple[dict, Contact, str]], counts: dict) -> list[Contact]:
        changed_contacts = []
        live_emails = set()
        wanted = [e["values"]["email"] for e, c, _ in updates if e["values"].get("email")
                  and e["values"]["email"] != c.email]
        if wanted:
            live_emails = set(db.session.scalars(sa.select(Contact.email).where(
                Contact.email.in_(wanted), Contact.is_active.is_(True), Contact.archived_at.is_(None),
                Contact.merged_into_id.is_(None))))
        seen: dict[int, Contact] = {}
        for entry, contact, mode in updates:
            before = getattr(contact, "_import_before", None)
            if before is None:
                before = {}
            values = entry["values"]
            changes: dict = {}
            for name in _CONTACT_FIELDS + ("company_id",):
                if name not in values or _empty(values[name]):
                    continue
                new, current = values[name], getattr(contact, name)
                if name in _LISTS:
                    primary = contact.email if name == "extra_emails" else contact.phone
                    merged = list(dict.fromkeys([*(current or []), *[v for v in new if v != primary]]))
                    if merged != list(current or []):
                        changes[name] = merged
                    continue
                if name == "email" and (new in live_emails or not contact.is_active):
                    continue  # another live contact has it
                if new != current and (mode == ContactImport.OVERWRITE or _empty(current)):
                    changes[name] = new
            if values.get("custom_fields"):
                current = dict(contact.custom_fields or {})
                merged = dict(current)
                for key, value in values["custom_fields"].items():
                    if _empty(value):
                        continue
                    if mode == ContactImport.OVERWRITE or _empty(current.get(key)):
                        merged[key] = value
                if merged != current:
                    changes["custom_fields"] = merged
            if not changes:
                if contact.id not in seen:
                    counts["unchanged"] += 1
                continue
            for name, value in changes.items():
                before.setdefault(name, [_jsonable(getattr(contact, name)), None])
                before[name][1] = _jsonable(value)
                setattr(contact, name, value)
            if "email" in changes:
                live_emails.add(changes["email"])
            contact.updated_at = contact.last_activity_at = self.now
            contact._import_before = before
            if contact.id not in seen:
                seen[contact.id] = contact
                changed_contacts.append(contact)
        if changed_contacts:
            db.session.flush()
            index_contacts(changed_contacts)
            summary = f"Updated from the import of {self.upload.filename}"[:500]
            insert_rows(TimelineEntry, [{
                "contact_id": c.id, "company_id": None, "kind": "import_updated",
                "summary": f"{summary}: {', '.join(_field_words(c._import_before))}"[:500],
                "details": {"import_id": self.upload.id, "fields": sorted(c._import_before)},
                **self.actor_columns, "actor_label": self.actor_label, "subject_type": "contact_import",
                "subject_id": self.upload.id, "occurred_at": self.now} for c in changed_contacts])
        counts["updated"] += len(changed_contacts)
        return changed_contacts

    # -- circles and tags -----------------------------------------------------------------------
    def _tags(self) -> list[int]:
        if self._tag_ids is None:
            from crm.tags import get_or_create_tag

            self._tag_ids = [get_or_create_tag(name).id for name in self.options.get("tags") or []]
        return self._tag_ids

    def _circles_and_tags(self, created: list[int], updated: list[int]) -> tuple[list[int], list[int]]:
        """Put the imported contacts in the chosen circles and give them the chosen tags;
        returns the ids of what was added to contacts that existed before (undo removes those;
        created contacts take theirs with them)."""
        everyone = created + updated
        added_members, added_tags = [], []
        tag_ids = self._tags() if everyone else []
        for circle in self.circles:
            have = set(db.session.scalars(sa.select(CircleMember.contact_id).where(
                CircleMember.circle_id == circle.id, CircleMember.removed_at.is_(None),
                CircleMember.contact_id.in_(updated)))) if updated else set()
            rows = [{"circle_id": circle.id, "contact_id": i, "company_id": None, "added_by_id": self.actor_id,
                     "added_at": self.now} for i in everyone if i not in have]
            if rows:
                ids = insert_rows(CircleMember, rows, with_ids=True)
                added_members += [member_id for member_id, row in zip(ids, rows) if row["contact_id"] in updated]
        for tag_id in tag_ids:
            have = set(db.session.scalars(sa.select(ContactTag.contact_id).where(
                ContactTag.tag_id == tag_id, ContactTag.contact_id.in_(updated)))) if updated else set()
            rows = [{"contact_id": i, "tag_id": tag_id} for i in everyone if i not in have]
            if rows:
                ids = insert_rows(ContactTag, rows, with_ids=True)
                added_tags += [tag_row_id for tag_row_id, row in zip(ids, rows) if row["contact_id"] in updated]
        return added_members, added_tags


def _details_of(values: dict) -> Details:
    """A cleaned row's e-mails and phones (normalised by the cleaner), for crm.identity."""
    return Details(tuple(dict.fromkeys(e for e in (values.get("email"), *(values.get("extra_emails") or ())) if e)),
                   tuple(dict.fromkeys(p for p in (values.get("phone"), *(values.get("extra_phones") or ())) if p)))


class _RowHolder:
    """A row of the batch (with the rows folded into it) as crm.identity.decide sees a contact."""

    is_active = True

    def __init__(self, entry: dict, position: int):
        self.entry, self.id = entry, position  # the row further up wins a tie, as the oldest contact does
        self.filed: set[str] = set()

    def __getattr__(self, name: str):  # email, extra_emails, phone, extra_phones: the row's, as folded
        if name in ("email", "phone", *_LISTS):
            return self.entry["values"].get(name) or ([] if name in _LISTS else None)
        raise AttributeError(name)

    def refresh(self, holders: dict) -> None:
        """File it under every address it answers to now (a fold may have added some)."""
        person = _details_of(self.entry["values"])
        for address in (*person.emails, *person.phones):
            if address not in self.filed:
                self.filed.add(address)
                holders.setdefault(address, []).append(self)


def _fold_into(target: dict, extra: dict) -> None:
    """A later row of the same person fills what the first left empty; lists add up."""
    for name, value in extra.items():
        if _empty(value):
            continue
        if name in _LISTS or name == "tags":
            target[name] = list(dict.fromkeys([*(target.get(name) or []), *value]))
        elif name in ("custom_fields", "company_details"):
            target[name] = {**value, **{k: v for k, v in (target.get(name) or {}).items() if not _empty(v)}}
        elif _empty(target.get(name)):
            target[name] = value
    for name in _LISTS:
        primary = target.get("email" if name == "extra_emails" else "phone")
        if target.get(name) and primary in target[name]:
            target[name] = [v for v in target[name] if v != primary]


def _jsonable(value):
    return list(value) if isinstance(value, (list, tuple)) else dict(value) if isinstance(value, dict) else value


_WORDS = {"company_id": "company", "custom_fields": "custom fields", "extra_emails": "other e-mails",
          "extra_phones": "other phones", "email": "e-mail"}


def _field_words(before: dict) -> list[str]:
    return [_WORDS.get(name, name.replace("_", " ")) for name in before]


# --- the result ----------------------------------------------------------------------------------

FAILED_COLUMNS = ("Row", "Why it was not imported")


def failed_rows(upload: ContactImport) -> Iterable[list]:
    """The header, then each failed row as it was in the file, with its row number and why:
    fix the cells, delete the two last columns or leave them (they are not mapped), upload."""
    yield [*upload.header, *FAILED_COLUMNS]
    width = len(upload.header)
    for line, reason, cells in _failed_in_file_order(upload):
        yield [*cells, *[""] * (width - len(cells)), line, reason]


def _failed_in_file_order(upload: ContactImport) -> Iterable[list]:
    """Every batch's failed rows, in the order of the file: batches hold rows of all over the
    file (one person's rows share a batch), so the database sorts them, streaming."""
    if db.session.get_bind().dialect.name == "postgresql":
        row = sa.func.json_array_elements(ContactImportBatch.failed).table_valued("value").alias("row")
        line = sa.cast(row.c.value.op("->>")(0), sa.Integer)
    else:
        row = sa.func.json_each(ContactImportBatch.failed).table_valued("value").alias("row")
        line = sa.func.json_extract(row.c.value, "$[0]")
    query = (sa.select(row.c.value).select_from(ContactImportBatch).join(row, sa.true())
             .where(ContactImportBatch.import_id == upload.id).order_by(line))
    for (value,) in db.session.execute(query.execution_options(yield_per=500)):
        yield json.loads(value) if isinstance(value, str) else value


def failed_rows_csv(upload: ContactImport) -> Iterable[str]:
    return csv_chunks(failed_rows(upload))


def imports_list(*, limit: int = 50) -> list[ContactImport]:
    from sqlalchemy.orm import selectinload

    return list(db.session.scalars(sa.select(ContactImport).options(
        selectinload(ContactImport.created_by), selectinload(ContactImport.operation))
        .order_by(ContactImport.id.desc()).limit(limit)))


# --- undo ---------------------------------------------------------------------------------------

def undo_import(upload: ContactImport, *, actor, queue: bool = True) -> Operation:
    """Remove what the import created and restore what it changed, as a background operation."""
    sync_status(upload)
    if upload.status == ContactImport.UNDONE:
        raise ServiceError("This import has been undone already.")
    if upload.status == ContactImport.RUNNING:
        raise ServiceError("The import is still running: cancel it first, then undo what it did.")
    if not upload.can_undo:
        raise ServiceError("An import can be undone for 7 days after it ended, when it created or changed contacts."
                           if upload.finished_at else "This import has not run.")
    batch_ids = list(db.session.scalars(sa.select(ContactImportBatch.id).where(
        ContactImportBatch.import_id == upload.id).order_by(ContactImportBatch.seq)))
    operation = Operation(kind=UNDO_KIND, title=f"Undo the import of {upload.filename}"[:300],
                          params={"import_id": upload.id}, total=len(batch_ids),
                          started_by_id=getattr(actor, "id", None) if isinstance(actor, StaffUser) else None)
    db.session.add(operation)
    db.session.flush()
    chunks = [{"operation_id": operation.id, "seq": seq, "refs": batch_ids[start:start + 5]}
              for seq, start in enumerate(range(0, len(batch_ids), 5))]
    if chunks:
        db.session.execute(sa.insert(OperationChunk), chunks)
    upload.status, upload.undone_at = ContactImport.UNDONE, utcnow()
    if queue:
        on_commit(run_undo, operation.id, tenant_id=operation.tenant_id)
    return operation


@job(retries=RETRIES, retry_delay=10)
def run_undo(operation_id: int) -> None:
    work_through(operation_id, prepare=_prepare_undo, finish=_finish_undo, retries=RETRIES)


register_kind(UNDO_KIND, unit="batches", job=run_undo,
              summary=lambda op: _undo_summary(op.result or {}))


def _undo_summary(result: dict) -> str:
    text = f"{result.get('removed', 0):,} contacts removed, {result.get('restored', 0):,} restored"
    if result.get("companies_removed"):
        text += f", {result['companies_removed']:,} companies the import had added removed"
    return text + "."


def _prepare_undo(operation: Operation):
    upload = _import_of(operation)
    actor = db.session.get(StaffUser, operation.started_by_id) if operation.started_by_id else None

    def step(batch_ids: list[int]) -> dict:
        removed = restored = kept = 0
        for batch in db.session.scalars(sa.select(ContactImportBatch).where(ContactImportBatch.id.in_(batch_ids))
                                        .order_by(ContactImportBatch.seq)):
            if batch.circle_members:
                db.session.execute(sa.delete(CircleMember).where(CircleMember.id.in_(batch.circle_members)))
            if batch.contact_tags:
                db.session.execute(sa.delete(ContactTag).where(ContactTag.id.in_(batch.contact_tags)))
            if batch.created:
                # A contact someone has merged another into since keeps the merged one's history: it stays.
                keep = set(db.session.scalars(sa.select(Contact.merged_into_id).where(
                    Contact.merged_into_id.in_(batch.created))))
                gone = [i for i in batch.created if i not in keep]
                kept += len(keep)
                if gone:
                    removed += db.session.execute(sa.delete(Contact).where(Contact.id.in_(gone))).rowcount or 0
            if batch.updated:
                contacts = db.session.scalars(sa.select(Contact).where(
                    Contact.id.in_([int(i) for i in batch.updated]))).all()
                back = []
                for contact in contacts:
                    fields = []
                    for name, (before, after) in batch.updated[str(contact.id)].items():
                        if _jsonable(getattr(contact, name)) == after:  # nobody changed it since
                            setattr(contact, name, before)
                            fields.append(name)
                    if fields:
                        contact.updated_at = utcnow()
                        back.append(contact)
                        db.session.add(TimelineEntry(
                            contact_id=contact.id, kind="import_undone",
                            summary=f"Import of {upload.filename} undone: {', '.join(_field_words(dict.fromkeys(fields)))} restored"[:500],
                            details={"import_id": upload.id, "fields": fields}, **actor_columns(actor),
                            actor_label=getattr(actor, "display_name", None), subject_type="contact_import",
                            subject_id=upload.id, occurred_at=utcnow()))
                if back:
                    db.session.flush()
                    index_contacts(back)
                    restored += len(back)
        db.session.flush()
        return {"changed": removed + restored, "removed": removed, "restored": restored, "kept": kept}

    return step


def _finish_undo(operation: Operation) -> None:
    upload = _import_of(operation)
    actor = db.session.get(StaffUser, operation.started_by_id) if operation.started_by_id else None
    companies_removed = 0
    if operation.status == Operation.DONE:
        # Last, once every batch's contacts are gone: a company made by one batch is named by
        # rows of later ones too.
        companies_removed = _remove_unused_companies(upload, actor)
    operation.result = {**(operation.result or {}), "companies_removed": companies_removed}
    result = operation.result
    record("contact_import.undone", upload, actor=actor,
           details={"file": upload.filename, "removed": result.get("removed", 0),
                    "restored": result.get("restored", 0), "kept": result.get("kept", 0),
                    "companies_removed": companies_removed, "status": operation.status})


def _remove_unused_companies(upload: ContactImport, actor) -> int:
    """Delete the companies the import created that nothing uses now: no contact (current,
    archived or merged), note, task, circle or tag refers to them, and nobody edited them."""
    from crm.companies import delete_company
    from crm.models import CompanyTag, Note, Task

    created = [company_id for companies in db.session.scalars(sa.select(ContactImportBatch.companies).where(
        ContactImportBatch.import_id == upload.id)) for company_id in companies or []]
    removed = 0
    for start in range(0, len(created), 500):
        ids = created[start:start + 500]
        used = set()
        for model in (Contact, Note, Task, CircleMember, CompanyTag):
            used.update(db.session.scalars(sa.select(model.company_id).where(model.company_id.in_(ids)).distinct()))
        for company in db.session.scalars(sa.select(Company).where(Company.id.in_(ids))):
            # Both times are stamped as the row is made, microseconds apart; an edit is later.
            if company.id in used or company.updated_at - company.created_at > timedelta(seconds=1):
                continue
            delete_company(company, actor=actor)
            removed += 1
    return removed


# --- housekeeping --------------------------------------------------------------------------------

UPLOAD_KEPT = timedelta(days=1)  # an upload nobody went on with


def expire_imports(now=None) -> tuple[int, int]:
    """Forget uploads never started after UPLOAD_KEPT (their frozen rows with them), and what
    finished imports kept for undo and the failed-rows file once UNDO_DAYS have passed; the
    counts stay. Returns (uploads removed, imports expired)."""
    from crm.imports.models import UNDO_DAYS

    now = now or utcnow()
    with cross_tenant("expire old import uploads and undo data", audit=False):
        stale = list(db.session.scalars(sa.select(ContactImport.id).where(
            ContactImport.status == ContactImport.UPLOADED, ContactImport.created_at < now - UPLOAD_KEPT)))
        if stale:
            db.session.execute(sa.delete(ContactImportChunk).where(ContactImportChunk.import_id.in_(stale)))
            db.session.execute(sa.delete(ContactImport).where(ContactImport.id.in_(stale)))
        old = list(db.session.scalars(sa.select(ContactImport.id).where(
            ContactImport.finished_at < now - timedelta(days=UNDO_DAYS),
            sa.select(ContactImportBatch.id).where(ContactImportBatch.import_id == ContactImport.id).exists())))
        if old:
            db.session.execute(sa.delete(ContactImportBatch).where(ContactImportBatch.import_id.in_(old)))
        db.session.commit()
    return len(stale), len(old)


@periodic_job(crontab(minute="23"))
def expire_imports_hourly() -> None:
    expire_imports()
