"""An import's records: the upload and its settings, its rows frozen in the database until
they are worked through, what each batch did (for the result, the failed-rows file and
undo), and mappings saved for reuse."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from core.db import TenantScoped, UTCDateTime, db, tenant_fk, utcnow

UNDO_DAYS = 7


class ContactImport(TenantScoped, db.Model):
    """One file imported (or being set up for import) into the tenant's contacts."""

    __tablename__ = "contact_import"
    audit_type = "contact_import"
    UPLOADED, RUNNING, DONE, FAILED, CANCELLED, UNDONE = "uploaded", "running", "done", "failed", "cancelled", "undone"
    LABELS = {UPLOADED: "Not started", RUNNING: "Importing", DONE: "Imported", FAILED: "Stopped by an error",
              CANCELLED: "Cancelled", UNDONE: "Undone"}
    SKIP, FILL, OVERWRITE, CREATE = "skip", "fill", "overwrite", "create"
    ON_DUPLICATE = {
        SKIP: "Skip the row (leave the contact as it is)",
        FILL: "Update the contact's empty fields only",
        OVERWRITE: "Overwrite the contact's fields with the file's",
        CREATE: "Create a new contact anyway",
    }
    __tenant_table_args__ = (
        tenant_fk("created_by_id", "staff_user"),
        tenant_fk("operation_id", "operation"),
        sa.CheckConstraint("status in ('uploaded', 'running', 'done', 'failed', 'cancelled', 'undone')",
                           name="status"),
        sa.Index("ix_contact_import_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    file_format: Mapped[str] = mapped_column(sa.String(10))
    encoding: Mapped[str | None] = mapped_column(sa.String(20))
    delimiter: Mapped[str | None] = mapped_column(sa.String(1))
    size: Mapped[int] = mapped_column(default=0)
    sheets: Mapped[list] = mapped_column(sa.JSON, default=list)
    sheet: Mapped[str | None] = mapped_column(sa.String(120))
    # The workbook itself, kept only until its sheet is chosen (a file of one sheet is read
    # at once); the rows then live in contact_import_chunk.
    file: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))
    header: Mapped[list] = mapped_column(sa.JSON, default=list)
    row_count: Mapped[int] = mapped_column(default=0)
    mapping: Mapped[list] = mapped_column(sa.JSON, default=list)
    options: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    status: Mapped[str] = mapped_column(sa.String(20), default=UPLOADED)
    operation_id: Mapped[int | None]
    created_by_id: Mapped[int | None]
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[object | None] = mapped_column(UTCDateTime)
    undone_at: Mapped[object | None] = mapped_column(UTCDateTime)
    counts: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    created_by = relationship(
        "StaffUser", foreign_keys="[ContactImport.created_by_id]",
        primaryjoin="and_(ContactImport.created_by_id == StaffUser.id, "
                    "ContactImport.tenant_id == StaffUser.tenant_id)", viewonly=True)
    operation = relationship(
        "Operation", foreign_keys="[ContactImport.operation_id]",
        primaryjoin="and_(ContactImport.operation_id == Operation.id, ContactImport.tenant_id == Operation.tenant_id)",
        viewonly=True)

    @property
    def status_label(self) -> str:
        return self.LABELS[self.status]

    @property
    def needs_sheet(self) -> bool:
        return self.status == self.UPLOADED and not self.header

    @property
    def undo_until(self):
        return self.finished_at + timedelta(days=UNDO_DAYS) if self.finished_at else None

    @property
    def can_undo(self) -> bool:
        return (self.status in (self.DONE, self.FAILED, self.CANCELLED) and self.finished_at is not None
                and utcnow() < self.undo_until and (self.counts or {}).get("created", 0)
                + (self.counts or {}).get("updated", 0) > 0)

    @property
    def keeps_details(self) -> bool:
        """The failed rows and undo data are kept UNDO_DAYS after the import ended."""
        return self.finished_at is None or utcnow() < self.undo_until

    def __str__(self) -> str:
        return self.filename


class ContactImportChunk(TenantScoped, db.Model):
    """Rows of an uploaded file, frozen as read: [[line, [cells…]], …], up to CHUNK a row.
    They move to the import's operation when it starts, and are gone when it is abandoned."""

    __tablename__ = "contact_import_chunk"
    __tenant_table_args__ = (
        tenant_fk("import_id", "contact_import", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "import_id", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int]
    seq: Mapped[int]
    rows: Mapped[list] = mapped_column(sa.JSON)


class ContactImportBatch(TenantScoped, db.Model):
    """What one batch of rows did, written in the batch's own transaction: the contacts and
    companies it created, the fields it changed with their values before (for undo), the rows
    that failed with why (for the failed-rows file)."""

    __tablename__ = "contact_import_batch"
    __tenant_table_args__ = (
        tenant_fk("import_id", "contact_import", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "import_id", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int]
    seq: Mapped[int]
    created: Mapped[list] = mapped_column(sa.JSON, default=list)  # contact ids
    updated: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # contact id -> {field: [before, after]}
    failed: Mapped[list] = mapped_column(sa.JSON, default=list)  # [[line, reason, [cells…]], …]
    circle_members: Mapped[list] = mapped_column(sa.JSON, default=list)  # CircleMember ids it added
    contact_tags: Mapped[list] = mapped_column(sa.JSON, default=list)  # ContactTag ids it added
    # Companies it created for names the tenant did not have; undo removes those nobody uses since.
    companies: Mapped[list] = mapped_column(sa.JSON, default=list, server_default="[]")


class ImportMapping(TenantScoped, db.Model):
    """A mapping saved for reuse: header (folded) -> target."""

    __tablename__ = "import_mapping"
    __tenant_table_args__ = (
        tenant_fk("created_by_id", "staff_user"),
        sa.UniqueConstraint("tenant_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    columns: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_by_id: Mapped[int | None]
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    def __str__(self) -> str:
        return self.name
