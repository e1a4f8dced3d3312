"""The CRM's records. Every table is tenant-owned; references between them carry the tenant
(core.db.tenant_fk), and the indexes lead with tenant_id because every query does."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import TenantScoped, UTCDateTime, db, tenant_fk, utcnow


class ContactRole:
    LEAD, PROSPECT, CLIENT = "lead", "prospect", "client"
    ALL = (LEAD, PROSPECT, CLIENT)
    LABELS = {LEAD: "Lead", PROSPECT: "Prospect", CLIENT: "Client"}
    RANK = {LEAD: 1, PROSPECT: 2, CLIENT: 3}


_ROLE_CHECK = "role in ('lead', 'prospect', 'client')"
DEFAULT_FILE_KINDS = ("pdf", "png", "jpeg", "gif", "webp", "docx", "xlsx", "pptx", "txt", "csv")
DEFAULT_FILE_KINDS_JSON = '["pdf", "png", "jpeg", "gif", "webp", "docx", "xlsx", "pptx", "txt", "csv"]'
DEFAULT_STATUSES = ("New", "Contacted", "Qualified", "Converted", "Unqualified")


class CrmSettings(TenantScoped, db.Model):
    """One row per tenant: how the CRM behaves there."""

    __tablename__ = "crm_settings"
    __tenant_config__ = True  # its changes bump tenant.config_version (core.tenant_cache)
    ALL_CONTACTS, OWN_OR_CIRCLES = "all", "own_or_circles"
    __tenant_table_args__ = (
        sa.UniqueConstraint("tenant_id", name="uq_crm_settings_tenant"),
        sa.CheckConstraint("staff_visibility in ('all', 'own_or_circles')", name="staff_visibility"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Staff see every contact, or only those they own or that are in Circles assigned to them.
    staff_visibility: Mapped[str] = mapped_column(sa.String(20), default=ALL_CONTACTS)
    default_region: Mapped[str] = mapped_column(sa.String(2), default="US")  # for phone numbers
    # How alike (0-100) a company name typed on a form must be to an existing one to match it.
    company_match_threshold: Mapped[int] = mapped_column(default=90, server_default="90")
    # Origins (scheme://host[:port]) allowed to frame the tenant's kickoff forms.
    form_embed_origins: Mapped[list] = mapped_column(sa.JSON, default=list, server_default="[]")
    # Files staff put in Circles for the portal: the largest one, and the kinds allowed
    # (crm.circle_content.FILE_KINDS), told by their content.
    circle_file_max_mb: Mapped[int] = mapped_column(default=20, server_default="20")
    circle_file_kinds: Mapped[list] = mapped_column(sa.JSON, default=lambda: list(DEFAULT_FILE_KINDS),
                                                    server_default=DEFAULT_FILE_KINDS_JSON)


class PipelineStatus(TenantScoped, db.Model):
    """A step of the tenant's contact pipeline (New, Contacted, …), in order."""

    __tablename__ = "pipeline_status"
    __tenant_config__ = True  # its changes bump tenant.config_version (core.tenant_cache)
    __tenant_table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    position: Mapped[int] = mapped_column(default=0)
    is_default: Mapped[bool] = mapped_column(default=False)
    archived_at: Mapped[object | None] = mapped_column(UTCDateTime)

    def __str__(self) -> str:
        return self.name


class CustomField(TenantScoped, db.Model):
    """A field a tenant adds to its contacts or companies; values live in the record's
    `custom_fields` JSON under `key`."""

    __tablename__ = "custom_field"
    __tenant_config__ = True  # its changes bump tenant.config_version (core.tenant_cache)
    TYPES = {
        "text": "Text", "long_text": "Long text", "number": "Number", "date": "Date",
        "boolean": "Yes/no", "choice": "Single choice", "multi_choice": "Multiple choice",
        "url": "URL", "email": "E-mail", "phone": "Phone",
    }
    ENTITIES = ("contact", "company")
    __tenant_table_args__ = (
        sa.UniqueConstraint("tenant_id", "entity", "key"),
        sa.CheckConstraint("entity in ('contact', 'company')", name="entity"),
        sa.CheckConstraint(
            "field_type in ('text', 'long_text', 'number', 'date', 'boolean', 'choice', "
            "'multi_choice', 'url', 'email', 'phone')", name="field_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(sa.String(20))
    key: Mapped[str] = mapped_column(sa.String(60))
    label: Mapped[str] = mapped_column(sa.String(120))
    field_type: Mapped[str] = mapped_column(sa.String(20))
    choices: Mapped[list] = mapped_column(sa.JSON, default=list)
    required: Mapped[bool] = mapped_column(default=False)
    help_text: Mapped[str | None] = mapped_column(sa.String(300))
    position: Mapped[int] = mapped_column(default=0)
    archived_at: Mapped[object | None] = mapped_column(UTCDateTime)
    # A contact field the contact may change on their portal profile (never a company's).
    editable_by_contact: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class Company(TenantScoped, db.Model):
    __tablename__ = "company"
    audit_type = "company"
    __tenant_table_args__ = (
        tenant_fk("owner_id", "staff_user"),
        sa.CheckConstraint(_ROLE_CHECK, name="role"),
        sa.Index("ix_company_tenant_id_name_key", "tenant_id", "name_key"),
        # Fuzzy matching a new name (crm.companies.match_company) reads the few names that share
        # its trigrams, not every company of the tenant. PostgreSQL's pg_trgm only.
        sa.Index("ix_company_name_key_trigrams", "name_key", postgresql_using="gin",
                 postgresql_ops={"name_key": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # Lower-cased, punctuation and legal suffixes removed: what "the same company" means.
    name_key: Mapped[str] = mapped_column(sa.String(200))
    domain: Mapped[str | None] = mapped_column(sa.String(253))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    street: Mapped[str | None] = mapped_column(sa.String(200))
    city: Mapped[str | None] = mapped_column(sa.String(100))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))
    region: Mapped[str | None] = mapped_column(sa.String(100))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    role: Mapped[str] = mapped_column(sa.String(20), default=ContactRole.LEAD)
    owner_id: Mapped[int | None]
    custom_fields: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    archived_at: Mapped[object | None] = mapped_column(UTCDateTime)

    owner = relationship("StaffUser", foreign_keys="[Company.owner_id]",
                         primaryjoin="and_(Company.owner_id == StaffUser.id, Company.tenant_id == StaffUser.tenant_id)",
                         viewonly=True)

    def __str__(self) -> str:
        return self.name


class ContactNaming:
    """How a contact is named on every page (its names, else its e-mail, else its number) and
    its role's label: for a Contact and for a row of the contact list alike."""
    __slots__ = ()

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.email or f"Contact {self.id}"

    @property
    def role_label(self) -> str:
        return ContactRole.LABELS[self.role]


class Contact(ContactNaming, TenantScoped, db.Model):
    """One real person. E-mail is stored normalised and is unique among a tenant's active
    contacts; phones are E.164."""

    __tablename__ = "contact"
    audit_type = "contact"
    _live = "is_active AND archived_at IS NULL AND merged_into_id IS NULL AND email IS NOT NULL"
    _inactive = "NOT is_active AND archived_at IS NULL AND merged_into_id IS NULL AND email IS NOT NULL"
    __tenant_table_args__ = (
        tenant_fk("company_id", "company"),
        tenant_fk("owner_id", "staff_user"),
        tenant_fk("status_id", "pipeline_status"),
        tenant_fk("merged_into_id", "contact"),
        sa.CheckConstraint(_ROLE_CHECK, name="role"),
        sa.Index("uq_contact_tenant_id_email_live", "tenant_id", "email", unique=True,
                 postgresql_where=sa.text(_live), sqlite_where=sa.text(_live)),
        # A company has at most one primary contact, and it is one of its own.
        sa.Index("uq_contact_tenant_id_company_id_primary", "tenant_id", "company_id", unique=True,
                 postgresql_where=sa.text("is_primary_contact"), sqlite_where=sa.text("is_primary_contact")),
        sa.Index("ix_contact_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        sa.Index("ix_contact_tenant_id_updated_at_id", "tenant_id", "updated_at", "id"),
        sa.Index("ix_contact_tenant_id_last_name_first_name_id", "tenant_id", "last_name", "first_name", "id"),
        sa.Index("ix_contact_tenant_id_last_activity_at_id", "tenant_id", "last_activity_at", "id"),
        sa.Index("ix_contact_tenant_id_phone", "tenant_id", "phone"),
        sa.Index("ix_contact_tenant_id_company_id", "tenant_id", "company_id"),
        sa.Index("ix_contact_tenant_id_owner_id", "tenant_id", "owner_id"),
        sa.Index("ix_contact_tenant_id_status_id", "tenant_id", "status_id"),
        # The e-mails of inactive contacts, in order: every duplicate e-mail group holds one.
        sa.Index("ix_contact_tenant_id_email_inactive", "tenant_id", "email",
                 postgresql_where=sa.text(_inactive), sqlite_where=sa.text(_inactive)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(sa.String(100), default="")
    last_name: Mapped[str] = mapped_column(sa.String(100), default="")
    email: Mapped[str | None] = mapped_column(sa.String(320))
    extra_emails: Mapped[list] = mapped_column(sa.JSON, default=list)
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    extra_phones: Mapped[list] = mapped_column(sa.JSON, default=list)
    street: Mapped[str | None] = mapped_column(sa.String(200))
    city: Mapped[str | None] = mapped_column(sa.String(100))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))
    region: Mapped[str | None] = mapped_column(sa.String(100))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    company_id: Mapped[int | None]
    is_primary_contact: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    job_title: Mapped[str | None] = mapped_column(sa.String(200))
    source: Mapped[str | None] = mapped_column(sa.String(100))
    notes: Mapped[str | None] = mapped_column(sa.Text)
    social: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    role: Mapped[str] = mapped_column(sa.String(20), default=ContactRole.LEAD)
    status_id: Mapped[int | None]
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    is_test: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    owner_id: Mapped[int | None]
    custom_fields: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_activity_at: Mapped[object | None] = mapped_column(UTCDateTime)
    archived_at: Mapped[object | None] = mapped_column(UTCDateTime)  # "moved to history"
    merged_into_id: Mapped[int | None]

    company: Mapped[Company | None] = relationship(
        foreign_keys="[Contact.company_id]",
        primaryjoin="and_(Contact.company_id == Company.id, Contact.tenant_id == Company.tenant_id)",
        viewonly=True)
    status: Mapped[PipelineStatus | None] = relationship(
        foreign_keys="[Contact.status_id]",
        primaryjoin="and_(Contact.status_id == PipelineStatus.id, Contact.tenant_id == PipelineStatus.tenant_id)",
        viewonly=True)
    owner = relationship("StaffUser", foreign_keys="[Contact.owner_id]",
                         primaryjoin="and_(Contact.owner_id == StaffUser.id, Contact.tenant_id == StaffUser.tenant_id)",
                         viewonly=True)

    def __str__(self) -> str:
        return self.full_name


class Circle(TenantScoped, db.Model):
    """A named group of contacts and companies."""

    __tablename__ = "circle"
    __tenant_config__ = True  # its changes bump tenant.config_version (core.tenant_cache)
    audit_type = "circle"
    __tenant_table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    description: Mapped[str | None] = mapped_column(sa.Text)
    color: Mapped[str] = mapped_column(sa.String(7), default="#6b7280")
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[object | None] = mapped_column(UTCDateTime)

    def __str__(self) -> str:
        return self.name


class CircleMember(TenantScoped, db.Model):
    """Membership with its history: leaving sets removed_at; a row is never deleted."""

    __tablename__ = "circle_member"
    _current = "removed_at IS NULL"
    __tenant_table_args__ = (
        tenant_fk("circle_id", "circle", ondelete="CASCADE"),
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        tenant_fk("company_id", "company", ondelete="CASCADE"),
        tenant_fk("added_by_id", "staff_user"),
        tenant_fk("removed_by_id", "staff_user"),
        sa.CheckConstraint("(contact_id IS NULL) <> (company_id IS NULL)", name="one_member"),
        sa.Index("uq_circle_member_current_contact", "tenant_id", "circle_id", "contact_id", unique=True,
                 postgresql_where=sa.text(f"{_current} AND contact_id IS NOT NULL"),
                 sqlite_where=sa.text(f"{_current} AND contact_id IS NOT NULL")),
        sa.Index("uq_circle_member_current_company", "tenant_id", "circle_id", "company_id", unique=True,
                 postgresql_where=sa.text(f"{_current} AND company_id IS NOT NULL"),
                 sqlite_where=sa.text(f"{_current} AND company_id IS NOT NULL")),
        sa.Index("ix_circle_member_tenant_id_contact_id", "tenant_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    circle_id: Mapped[int]
    contact_id: Mapped[int | None]
    company_id: Mapped[int | None]
    added_by_id: Mapped[int | None]
    added_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    removed_by_id: Mapped[int | None]
    removed_at: Mapped[object | None] = mapped_column(UTCDateTime)


class CircleStaff(TenantScoped, db.Model):
    """Staff assigned to a Circle: with restricted visibility, they see its members."""

    __tablename__ = "circle_staff"
    __tenant_table_args__ = (
        tenant_fk("circle_id", "circle", ondelete="CASCADE"),
        tenant_fk("staff_id", "staff_user", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "circle_id", "staff_id"),
        sa.Index("ix_circle_staff_tenant_id_staff_id", "tenant_id", "staff_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    circle_id: Mapped[int]
    staff_id: Mapped[int]


class CircleItem(TenantScoped, db.Model):
    """What staff publish to a Circle's members in the portal, in the Circle's order: a page
    (title and sanitised rich text), a link (an http(s) address) or a file (kept in
    core.storage under `storage_key`; its type told by its content). Unpublished while
    `published_at` is NULL."""

    __tablename__ = "circle_item"
    audit_type = "circle_item"
    PAGE, LINK, FILE = "page", "link", "file"
    KINDS = {PAGE: "Page", LINK: "Link", FILE: "File"}
    __tenant_table_args__ = (
        tenant_fk("circle_id", "circle", ondelete="CASCADE"),
        tenant_fk("created_by_id", "staff_user"),
        tenant_fk("updated_by_id", "staff_user"),
        sa.CheckConstraint("kind in ('page', 'link', 'file')", name="kind"),
        sa.CheckConstraint("kind <> 'link' OR url IS NOT NULL", name="link_has_url"),
        sa.CheckConstraint("kind <> 'file' OR (storage_key IS NOT NULL AND file_name IS NOT NULL "
                           "AND file_size IS NOT NULL AND content_type IS NOT NULL)", name="file_is_stored"),
        # A Circle's items in order; and the newest published ones of a few Circles (the
        # portal's "latest" panel) from the same index.
        sa.Index("ix_circle_item_tenant_id_circle_id_position", "tenant_id", "circle_id", "position"),
        sa.Index("ix_circle_item_tenant_id_circle_id_published_at", "tenant_id", "circle_id", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    circle_id: Mapped[int]
    kind: Mapped[str] = mapped_column(sa.String(10))
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str | None] = mapped_column(sa.Text)  # page: sanitised HTML
    url: Mapped[str | None] = mapped_column(sa.String(2000))  # link
    storage_key: Mapped[str | None] = mapped_column(sa.String(200))  # file
    file_name: Mapped[str | None] = mapped_column(sa.String(255))
    file_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    content_type: Mapped[str | None] = mapped_column(sa.String(100))
    position: Mapped[int] = mapped_column(default=0)
    published_at: Mapped[object | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None]
    updated_by_id: Mapped[int | None]
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def published(self) -> bool:
        return self.published_at is not None

    @property
    def kind_label(self) -> str:
        return self.KINDS[self.kind]

    def __str__(self) -> str:
        return self.title


class Tag(TenantScoped, db.Model):
    __tablename__ = "tag"
    __tenant_config__ = True  # its changes bump tenant.config_version (core.tenant_cache)
    __tenant_table_args__ = (sa.UniqueConstraint("tenant_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(60))
    key: Mapped[str] = mapped_column(sa.String(60))  # lower-cased name: "VIP" and "vip" are one tag

    def __str__(self) -> str:
        return self.name


# Search tokens compare byte by byte, so a prefix is a plain key range on both databases
# (in a linguistic collation "abc" <= x < "abd" is not "x starts with abc").
SearchToken = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


class ContactSearchToken(TenantScoped, db.Model):
    """The words a contact is found by (crm.search keeps them): a search for "love" is the key
    range "love" ≤ token < "lovf". A range on a B-tree is what PostgreSQL can still use under
    row-level security, where LIKE and trigram operators are not leak-proof and so cannot
    drive an index scan."""
    __tablename__ = "contact_search_token"
    __tenant_keyed_by_id__ = False
    # An import writes a dozen of these per contact: its key to the contact carries the tenant.
    __tenant_fk__ = False
    __tenant_table_args__ = (
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "token", "contact_id"),
        sa.Index("ix_contact_search_token_tenant_id_contact_id", "tenant_id", "contact_id"),
    )

    token: Mapped[str] = mapped_column(SearchToken)
    contact_id: Mapped[int]


class ContactAddress(TenantScoped, db.Model):
    """Every e-mail and phone a contact answers to, main and other ones, normalised (e-mails
    as core.identity.normalize_email writes them, phones in E.164): what crm.identity looks a
    person up by, one B-tree probe on (tenant_id, address) whatever the words of the address.
    crm.search.index_contacts keeps it in step with the contact's fields (and the import writes
    it with the contacts it creates); deleting a contact takes its rows with it.

    Not unique: offices, families and switchboards share a phone, an inactive duplicate keeps
    the e-mail of the live contact it duplicates, and a contact merged away or moved to
    history keeps its rows (undo and restore need no rewrite). Which of the contacts holding
    an address is the person is crm.identity's rule, read with the contact's own state; the
    one e-mail per live contact is already held by uq_contact_tenant_id_email_live."""
    __tablename__ = "contact_address"
    __tenant_keyed_by_id__ = False
    __tenant_fk__ = False  # the composite key to the contact carries the tenant
    __tenant_table_args__ = (
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "address", "contact_id"),
        sa.Index("ix_contact_address_tenant_id_contact_id", "tenant_id", "contact_id"),
    )

    address: Mapped[str] = mapped_column(sa.String(320))
    contact_id: Mapped[int]


class ContactTag(TenantScoped, db.Model):
    __tablename__ = "contact_tag"
    __tenant_table_args__ = (
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        tenant_fk("tag_id", "tag", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "tag_id", "contact_id"),
        sa.Index("ix_contact_tag_tenant_id_contact_id", "tenant_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int]
    tag_id: Mapped[int]


class CompanyTag(TenantScoped, db.Model):
    __tablename__ = "company_tag"
    __tenant_table_args__ = (
        tenant_fk("company_id", "company", ondelete="CASCADE"),
        tenant_fk("tag_id", "tag", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "tag_id", "company_id"),
        sa.Index("ix_company_tag_tenant_id_company_id", "tenant_id", "company_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int]
    tag_id: Mapped[int]


class Note(TenantScoped, db.Model):
    __tablename__ = "note"
    __tenant_table_args__ = (
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        tenant_fk("company_id", "company", ondelete="CASCADE"),
        tenant_fk("author_id", "staff_user"),
        sa.Index("ix_note_tenant_id_contact_id", "tenant_id", "contact_id"),
        sa.Index("ix_note_tenant_id_company_id", "tenant_id", "company_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int | None]
    company_id: Mapped[int | None]
    author_id: Mapped[int | None]
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Task(TenantScoped, db.Model):
    __tablename__ = "task"
    KINDS = {"task": "Task", "call": "Call", "meeting": "Meeting", "email": "E-mail", "comment": "Comment"}
    __tenant_table_args__ = (
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        tenant_fk("company_id", "company", ondelete="CASCADE"),
        tenant_fk("assignee_id", "staff_user"),
        tenant_fk("created_by_id", "staff_user"),
        tenant_fk("done_by_id", "staff_user"),
        tenant_fk("done_by_portal_account_id", "portal_account"),
        sa.CheckConstraint("kind in ('task', 'call', 'meeting', 'email', 'comment')", name="kind"),
        sa.CheckConstraint("NOT shared_with_contact OR contact_id IS NOT NULL", name="shared_has_contact"),
        sa.Index("ix_task_tenant_id_assignee_id_done_at_due_at", "tenant_id", "assignee_id", "done_at", "due_at"),
        sa.Index("ix_task_tenant_id_contact_id", "tenant_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20), default="task")
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    due_at: Mapped[object | None] = mapped_column(UTCDateTime)
    assignee_id: Mapped[int | None]
    contact_id: Mapped[int | None]
    company_id: Mapped[int | None]
    created_by_id: Mapped[int | None]
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[object | None] = mapped_column(UTCDateTime)
    # Who ticked it off: a member of staff, or the contact on their portal (a shared task).
    done_by_id: Mapped[int | None]
    done_by_portal_account_id: Mapped[int | None]
    # On the contact's portal home, where they can mark it done.
    shared_with_contact: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class Event(TenantScoped, db.Model):
    __tablename__ = "event"
    __tenant_table_args__ = (
        tenant_fk("created_by_id", "staff_user"),
        sa.CheckConstraint("ends_at IS NULL OR ends_at >= starts_at", name="ends_after_start"),
        sa.Index("ix_event_tenant_id_starts_at", "tenant_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    starts_at: Mapped[object] = mapped_column(UTCDateTime)
    ends_at: Mapped[object | None] = mapped_column(UTCDateTime)
    location: Mapped[str | None] = mapped_column(sa.String(300))
    link: Mapped[str | None] = mapped_column(sa.String(500))
    capacity: Mapped[int | None]
    created_by_id: Mapped[int | None]
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)


class EventAttendee(TenantScoped, db.Model):
    __tablename__ = "event_attendee"
    STATUSES = ("invited", "accepted", "declined", "attended")
    __tenant_table_args__ = (
        tenant_fk("event_id", "event", ondelete="CASCADE"),
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        tenant_fk("via_circle_id", "circle"),
        sa.UniqueConstraint("tenant_id", "event_id", "contact_id"),
        sa.CheckConstraint("status in ('invited', 'accepted', 'declined', 'attended')", name="status"),
        sa.CheckConstraint("rsvp IS NULL OR rsvp in ('going', 'not_going')", name="rsvp"),
        sa.Index("ix_event_attendee_tenant_id_contact_id", "tenant_id", "contact_id"),
    )
    RSVP_LABELS = {"going": "Going", "not_going": "Not going"}

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int]
    contact_id: Mapped[int]
    via_circle_id: Mapped[int | None]
    status: Mapped[str] = mapped_column(sa.String(20), default="invited")
    added_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    # The contact's own answer on the portal (staff set `status`; an answer sets it too).
    rsvp: Mapped[str | None] = mapped_column(sa.String(20))
    rsvp_at: Mapped[object | None] = mapped_column(UTCDateTime)


class TimelineEntry(TenantScoped, db.Model):
    """One line of a contact's (or company's) activity: what happened, when, by whom.
    Later features (form submissions, payments, imports) add their own kinds."""

    __tablename__ = "timeline_entry"
    __tenant_table_args__ = (
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        tenant_fk("company_id", "company", ondelete="CASCADE"),
        tenant_fk("actor_id", "staff_user"),
        tenant_fk("actor_portal_account_id", "portal_account"),
        sa.CheckConstraint("actor_type IS NULL OR actor_type in ('staff', 'portal')", name="actor_type"),
        sa.Index("ix_timeline_entry_tenant_id_contact_id_occurred_at", "tenant_id", "contact_id", "occurred_at"),
        sa.Index("ix_timeline_entry_tenant_id_company_id_occurred_at", "tenant_id", "company_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int | None]
    company_id: Mapped[int | None]
    kind: Mapped[str] = mapped_column(sa.String(40))
    summary: Mapped[str] = mapped_column(sa.String(500))
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Who did it: "staff" (actor_id), "portal" (the contact on their portal login,
    # actor_portal_account_id), or None for the system (imports, forms, jobs).
    actor_type: Mapped[str | None] = mapped_column(sa.String(20))
    actor_id: Mapped[int | None]
    actor_portal_account_id: Mapped[int | None]
    actor_label: Mapped[str | None] = mapped_column(sa.String(320))
    subject_type: Mapped[str | None] = mapped_column(sa.String(40))  # e.g. "note", "task"
    subject_id: Mapped[int | None]
    occurred_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def actor_text(self) -> str | None:
        """Who did it, as a staff page names them: a contact's own act says where it came from."""
        if self.actor_type == "portal":
            return f"{self.actor_label or 'the contact'} on the portal"
        return self.actor_label


class Segment(TenantScoped, db.Model):
    """A saved filter set, re-evaluated each time it is opened."""

    __tablename__ = "segment"
    __tenant_config__ = True  # its changes bump tenant.config_version (core.tenant_cache)
    __tenant_table_args__ = (
        tenant_fk("owner_id", "staff_user"),
        sa.UniqueConstraint("tenant_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    filters: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    owner_id: Mapped[int | None]
    shared: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)


class SelectedContact(TenantScoped, db.Model):
    """A staff member's selection on the contact list, kept server-side so it survives paging
    and reloads. "All N matching" is kept as the filter instead (staff selection state)."""

    __tablename__ = "selected_contact"
    __tenant_table_args__ = (
        tenant_fk("staff_id", "staff_user", ondelete="CASCADE"),
        tenant_fk("contact_id", "contact", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "staff_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int]
    contact_id: Mapped[int]
