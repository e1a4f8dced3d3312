"""What staff publish to a Circle for its members to read in the portal: pages, links and
files, in the Circle's order, each published or not.

It lives beside crm.circles because it is the Circle's own domain data, written by staff on
the Circle's page; the portal only reads it, through the membership rule below.

Who may do what:
  * authoring (write, edit, publish, order, delete) needs "crm.configure", the permission
    that manages Circles;
  * a portal contact sees a Circle's published items only while they are a current member
    of that (unarchived) Circle, themselves or through their company (`member_circles`);
    everything else is "no such thing" to them (the views answer 404).

Files: checked by their content (filetype; plain text by sniffing), never by the name or the
browser's word, against the tenant's size limit and allowed kinds (CRM settings), then put in
core.storage under a random key before the row is written; a transaction that does not
commit takes the file away again (core.storage.delete_if_rolled_back).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

import sqlalchemy as sa

from core import storage as stored
from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser
from core.permissions import can
from core.rich_text import rich_text_from_input, visible_text
from core.text import clean_line, clean_web_address
from crm.models import Circle, CircleItem, CircleMember, Contact
from crm.setup import settings

TITLE_MAX = 200
BODY_MAX = 200_000
FILE_NAME_MAX = 255
UP, DOWN = "up", "down"
LATEST = 10

register_actions({
    "circle.item_created": "Circle content added",
    "circle.item_updated": "Circle content changed",
    "circle.item_published": "Circle content published",
    "circle.item_unpublished": "Circle content unpublished",
    "circle.item_moved": "Circle content moved",
    "circle.item_deleted": "Circle content deleted",
    "crm.circle_file_limits_changed": "Circle file limits changed",
})


@dataclass(frozen=True)
class FileKind:
    label: str
    mime: str
    extensions: tuple[str, ...]
    inline: bool = False  # shown in the browser (images, PDF); everything else is downloaded


# The kinds a tenant may allow, by the name its settings store. Text has no signature: it is
# what is left when the content decodes as text (the name then tells CSV from plain text).
FILE_KINDS: dict[str, FileKind] = {
    "pdf": FileKind("PDF", "application/pdf", ("pdf",), inline=True),
    "png": FileKind("PNG image", "image/png", ("png",), inline=True),
    "jpeg": FileKind("JPEG image", "image/jpeg", ("jpg", "jpeg", "jpe"), inline=True),
    "gif": FileKind("GIF image", "image/gif", ("gif",), inline=True),
    "webp": FileKind("WebP image", "image/webp", ("webp",), inline=True),
    "docx": FileKind("Word document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                     ("docx",)),
    "xlsx": FileKind("Excel workbook", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     ("xlsx",)),
    "pptx": FileKind("PowerPoint presentation",
                     "application/vnd.openxmlformats-officedocument.presentationml.presentation", ("pptx",)),
    "txt": FileKind("Text file", "text/plain", ("txt", "text", "md")),
    "csv": FileKind("CSV file", "text/csv", ("csv",)),
}
_BY_MIME = {kind.mime: name for name, kind in FILE_KINDS.items() if name not in ("txt", "csv")}
_INLINE_MIMES = frozenset(kind.mime for kind in FILE_KINDS.values() if kind.inline)
MAX_MB_LIMIT = 1024


def _actor_id(actor) -> int | None:
    return actor.id if isinstance(actor, StaffUser) else None


def _require_author(actor) -> None:
    if not can(actor, "crm.configure"):
        raise ServiceError("You do not have permission to change what circles publish.")


def _audit(action: str, item: CircleItem, circle: Circle, actor, **details) -> None:
    record(action, item, actor=actor, details={"circle_id": circle.id, "circle": circle.name, "kind": item.kind,
                                               **details})


# --- reading -----------------------------------------------------------------------------------------

def items_of(circle: Circle, *, published_only: bool = False) -> list[CircleItem]:
    query = sa.select(CircleItem).where(CircleItem.circle_id == circle.id)
    if published_only:
        query = query.where(CircleItem.published_at.is_not(None))
    return list(db.session.scalars(query.order_by(CircleItem.position, CircleItem.id)))


def item_of(circle: Circle, item_id: int | None) -> CircleItem | None:
    """The circle's item with this id (of this tenant), or None."""
    if item_id is None:
        return None
    return db.session.scalar(sa.select(CircleItem).where(CircleItem.id == item_id,
                                                         CircleItem.circle_id == circle.id))


def shown_inline(item: CircleItem) -> bool:
    """Images and PDFs open in the browser; every other file is downloaded."""
    return item.content_type in _INLINE_MIMES


def open_file(item: CircleItem) -> BinaryIO:
    """The item's stored file; core.storage.StoredFileMissing when the store has lost it."""
    return stored.storage().open(item.storage_key)


# --- checks --------------------------------------------------------------------------------------------

def _title(title: str | None) -> str:
    return clean_line(title, label="a title", field="title", max_length=TITLE_MAX)


def _body(body: str | None) -> str:
    if len(body or "") > BODY_MAX:
        raise ServiceError(f"The text can be at most {BODY_MAX:,} characters.", field="body")
    cleaned = rich_text_from_input(body)
    if not visible_text(cleaned):
        raise ServiceError("Write the page's text.", field="body")
    return cleaned


def _url(url: str | None) -> str:
    return clean_web_address(url, label="the web address", field="url", required=True)


def _extension(name: str) -> str:
    return os.path.splitext(name)[1].lstrip(".").lower()


def _clean_file_name(name: str | None) -> str:
    # Browsers send a bare name; old ones sent a whole path.
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in '"<>|:*?').strip(" .")
    return base[-FILE_NAME_MAX:] or "file"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for cut in range(4):  # the sample may end inside a UTF-8 character
        try:
            head[:len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    # Not UTF-8: still text when it holds no control characters but tab, line breaks and form feed.
    return not any(b < 32 and b not in (9, 10, 12, 13) for b in head)


def _sniff(head: bytes, name: str) -> str | None:
    """The FILE_KINDS name the content is, or None for content we do not know."""
    import filetype  # here, not with the app: only uploads sniff files

    guess = filetype.guess(head)
    if guess is not None:
        return _BY_MIME.get(guess.mime, f"?{guess.extension}")
    if _looks_like_text(head):
        return "csv" if _extension(name) == "csv" else "txt"
    return None


@dataclass
class CheckedUpload:
    """An upload that passed the checks, spooled to a temporary file."""

    file: BinaryIO
    name: str
    size: int
    kind: str

    @property
    def content_type(self) -> str:
        return FILE_KINDS[self.kind].mime


def allowed_kinds() -> list[str]:
    return [k for k in settings().circle_file_kinds or [] if k in FILE_KINDS]


def max_bytes() -> int:
    return settings().circle_file_max_mb * 1024 * 1024


def check_upload(stream: BinaryIO | None, filename: str | None) -> CheckedUpload:
    """Read the upload into a temporary file, within the tenant's size limit, and tell its kind
    by its content. Raises ServiceError (field "file") for nothing, an empty file, a file over
    the limit, content of a kind not allowed, or a name that says another kind than the content."""
    if stream is None or not filename:
        raise ServiceError("Choose a file to upload.", field="file")
    name = _clean_file_name(filename)
    limit = max_bytes()
    spool = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)
    size = 0
    try:
        while chunk := stream.read(stored.CHUNK):
            size += len(chunk)
            if size > limit:
                raise ServiceError(f"“{name}” is larger than {settings().circle_file_max_mb} MB, the most a "
                                   "file may be. Make it smaller, or ask an admin to raise the limit.", field="file")
            spool.write(chunk)
        if size == 0:
            raise ServiceError(f"“{name}” is empty. Choose the file again.", field="file")
        spool.seek(0)
        head = spool.read(8192)
        spool.seek(0)
        kind = _sniff(head, name)
        allowed = allowed_kinds()
        words = ", ".join(FILE_KINDS[k].label for k in allowed) or "none"
        if kind not in allowed:
            what = FILE_KINDS[kind].label if kind in FILE_KINDS else "a kind of file"
            raise ServiceError(f"“{name}” is {what} by its content, which circles do not take. "
                               f"Allowed: {words}.", field="file")
        extension = _extension(name)
        if extension and extension not in FILE_KINDS[kind].extensions:
            raise ServiceError(f"“{name}” is named like a .{extension} file, but its content is a "
                               f"{FILE_KINDS[kind].label}. Rename it to end in .{FILE_KINDS[kind].extensions[0]}, "
                               "or choose the right file.", field="file")
    except BaseException:
        spool.close()
        raise
    return CheckedUpload(spool, name, size, kind)


def _store(circle: Circle, upload: CheckedUpload, item: CircleItem) -> None:
    """Put the file under a new key and point the item at it; the file goes again if the
    transaction does not commit."""
    key = stored.new_key(f"circle-files/{circle.tenant_id}/{circle.id}")
    try:
        stored.storage().put(key, upload.file)
    finally:
        upload.file.close()
    stored.delete_if_rolled_back(key)
    item.storage_key, item.file_name, item.file_size, item.content_type = (
        key, upload.name, upload.size, upload.content_type)


# --- authoring --------------------------------------------------------------------------------------------

def _next_position(circle: Circle) -> int:
    last = db.session.scalar(sa.select(sa.func.max(CircleItem.position)).where(CircleItem.circle_id == circle.id))
    return (last if last is not None else -1) + 1


def _new(circle: Circle, kind: str, title: str, actor, publish: bool, **fields) -> CircleItem:
    item = CircleItem(circle_id=circle.id, kind=kind, title=title, position=_next_position(circle),
                      published_at=utcnow() if publish else None, created_by_id=_actor_id(actor),
                      updated_by_id=_actor_id(actor), **fields)
    return item


def _add(item: CircleItem, circle: Circle, actor) -> CircleItem:
    db.session.add(item)
    db.session.flush()
    _audit("circle.item_created", item, circle, actor, published=item.published)
    return item


def create_page(circle: Circle, title: str, body: str, actor, *, publish: bool = False) -> CircleItem:
    _require_author(actor)
    item = _new(circle, CircleItem.PAGE, _title(title), actor, publish, body=_body(body))
    return _add(item, circle, actor)


def create_link(circle: Circle, title: str, url: str, actor, *, publish: bool = False) -> CircleItem:
    _require_author(actor)
    item = _new(circle, CircleItem.LINK, _title(title), actor, publish, url=_url(url))
    return _add(item, circle, actor)


def create_file(circle: Circle, title: str | None, stream: BinaryIO | None, filename: str | None, actor, *,
                publish: bool = False) -> CircleItem:
    """A title left empty is the file's name."""
    _require_author(actor)
    title = (title or "").strip()
    checked_title = _title(title) if title else None
    upload = check_upload(stream, filename)
    item = _new(circle, CircleItem.FILE, checked_title or _title(upload.name[:TITLE_MAX]), actor, publish)
    _store(circle, upload, item)
    return _add(item, circle, actor)


def update_item(item: CircleItem, circle: Circle, actor, *, title: str | None, body: str | None = None,
                url: str | None = None, stream: BinaryIO | None = None, filename: str | None = None) -> list[str]:
    """Change what the item says (a file: its title, and its file when a new one is given);
    returns the names of what changed."""
    _require_author(actor)
    new = {"title": _title(title)}
    if item.kind == CircleItem.PAGE:
        new["body"] = _body(body)
    elif item.kind == CircleItem.LINK:
        new["url"] = _url(url)
    changed = [k for k, v in new.items() if getattr(item, k) != v]
    for key in changed:
        setattr(item, key, new[key])
    if item.kind == CircleItem.FILE and filename:
        old_key = item.storage_key
        _store(circle, check_upload(stream, filename), item)
        stored.delete_after_commit(old_key)
        changed.append("file")
    if not changed:
        return []
    item.updated_by_id = _actor_id(actor)
    item.updated_at = utcnow()
    db.session.flush()
    _audit("circle.item_updated", item, circle, actor, changed=changed)
    return changed


def set_published(item: CircleItem, circle: Circle, published: bool, actor) -> bool:
    """Publish (members see it from now on, and it is new in their "latest") or take it back.
    False when it already was so."""
    _require_author(actor)
    if item.published == published:
        return False
    item.published_at = utcnow() if published else None
    item.updated_by_id = _actor_id(actor)
    _audit("circle.item_published" if published else "circle.item_unpublished", item, circle, actor)
    return True


def move_item(item: CircleItem, circle: Circle, direction: str, actor) -> bool:
    """One place up (earlier) or down (later) in the circle's order; False at either end."""
    _require_author(actor)
    if direction not in (UP, DOWN):
        raise ServiceError("Choose up or down.", field="direction")
    items = items_of(circle)
    index = next(i for i, other in enumerate(items) if other.id == item.id)
    other = index - 1 if direction == UP else index + 1
    if not 0 <= other < len(items):
        return False
    items[index], items[other] = items[other], items[index]
    for position, each in enumerate(items):
        each.position = position
    db.session.flush()
    _audit("circle.item_moved", item, circle, actor, direction=direction, position=item.position)
    return True


def delete_item(item: CircleItem, circle: Circle, actor) -> None:
    """Gone for members and staff; its file leaves the store once the deletion commits."""
    _require_author(actor)
    _audit("circle.item_deleted", item, circle, actor, title=item.title)
    if item.storage_key:
        stored.delete_after_commit(item.storage_key)
    db.session.delete(item)
    db.session.flush()


# --- settings ----------------------------------------------------------------------------------------------

def set_file_limits(max_mb, kinds, actor, *, platform_max_bytes: int) -> bool:
    """The largest file (in MB, up to what the platform takes) and the kinds allowed.
    Returns whether anything changed."""
    from crm.settings_service import AuditTarget

    if not can(actor, "crm.configure"):
        raise ServiceError("You do not have permission to change CRM settings.")
    ceiling = max(1, min(MAX_MB_LIMIT, platform_max_bytes // (1024 * 1024)))
    try:
        mb = int(str(max_mb).strip())
    except (TypeError, ValueError):
        mb = None
    if mb is None or not 1 <= mb <= ceiling:
        raise ServiceError(f"Enter a whole number of megabytes from 1 to {ceiling}.", field="circle_file_max_mb")
    unknown = [k for k in kinds if k not in FILE_KINDS]
    if unknown:
        raise ServiceError("Choose kinds of file from the list.", field="circle_file_kinds")
    chosen = [k for k in FILE_KINDS if k in kinds]
    current = settings()
    before = {"max_mb": current.circle_file_max_mb, "kinds": list(current.circle_file_kinds or [])}
    after = {"max_mb": mb, "kinds": chosen}
    if before == after:
        return False
    current.circle_file_max_mb, current.circle_file_kinds = mb, chosen
    record("crm.circle_file_limits_changed", AuditTarget(current, "crm_settings", "CRM settings"), actor=actor,
           details={"from": before, "to": after}, tenant_id=current.tenant_id)
    return True


# --- what a portal contact sees ------------------------------------------------------------------------------

def _member_circle_ids(with_company: bool):
    who = CircleMember.contact_id == sa.bindparam("contact_id")
    if with_company:
        who = sa.or_(who, CircleMember.company_id == sa.bindparam("company_id"))
    return (sa.select(CircleMember.circle_id)
            .join(Circle, sa.and_(Circle.id == CircleMember.circle_id, Circle.tenant_id == CircleMember.tenant_id))
            .where(who, CircleMember.removed_at.is_(None), Circle.archived_at.is_(None)))


def member_circle_ids(contact: Contact):
    """SELECT of the ids of the (unarchived) Circles the contact is a current member of: in
    the Circle themselves, or their company is. The one rule the portal asks."""
    with_company = contact.company_id is not None
    query = _member_circle_ids(with_company)
    values = {"contact_id": contact.id, **({"company_id": contact.company_id} if with_company else {})}
    return query.params(values)


def member_circles(contact: Contact) -> list[Circle]:
    """The Circles whose content the contact may read, by name."""
    return list(db.session.scalars(
        sa.select(Circle).where(Circle.id.in_(member_circle_ids(contact)))
        .order_by(sa.func.lower(Circle.name), Circle.id)))


def member_circle(contact: Contact, circle_id: int | None) -> Circle | None:
    """The Circle, when the contact may read it; None for any other (another Circle, a Circle
    they left, an archived one, another tenant's)."""
    if circle_id is None:
        return None
    return db.session.scalar(sa.select(Circle).where(Circle.id == circle_id,
                                                     Circle.id.in_(member_circle_ids(contact))))


def published_item(circle: Circle, item_id: int | None) -> CircleItem | None:
    """A published item of a Circle the caller already checked with member_circle()."""
    item = item_of(circle, item_id)
    return item if item is not None and item.published else None


@dataclass(frozen=True)
class LatestItem:
    """What the "latest" panel shows of an item (not its body), with its Circle's name."""

    id: int
    kind: str
    title: str
    url: str | None
    file_name: str | None
    file_size: int | None
    published_at: object
    circle_id: int
    circle_name: str


def _latest_query(with_company: bool):
    return (sa.select(CircleItem.id, CircleItem.kind, CircleItem.title, CircleItem.url, CircleItem.file_name,
                      CircleItem.file_size, CircleItem.published_at, Circle.id, Circle.name)
            .join(Circle, sa.and_(Circle.id == CircleItem.circle_id, Circle.tenant_id == CircleItem.tenant_id))
            .where(CircleItem.circle_id.in_(_member_circle_ids(with_company)), CircleItem.published_at.is_not(None))
            .order_by(CircleItem.published_at.desc(), CircleItem.id.desc())
            .limit(sa.bindparam("limit")))


# Built once: every visit to the portal home runs it, and building the statement cost more
# than running it. The tenant's filter is added when it runs (core.tenancy), as for any query.
_LATEST = {with_company: _latest_query(with_company) for with_company in (False, True)}


def latest_items(contact: Contact, limit: int = LATEST) -> list[LatestItem]:
    """The newest published items of all the contact's Circles, newest first: one query
    (the membership rule as a subquery, each Circle's items from
    ix_circle_item_tenant_id_circle_id_published_at), of the columns the panel shows."""
    with_company = contact.company_id is not None
    values = {"contact_id": contact.id, "limit": limit,
              **({"company_id": contact.company_id} if with_company else {})}
    return [LatestItem(*row) for row in db.session.execute(_LATEST[with_company], values)]


def published_counts(circle_ids: list[int]) -> dict[int, int]:
    """{circle id: its published items}, in one grouped query."""
    if not circle_ids:
        return {}
    return dict(db.session.execute(
        sa.select(CircleItem.circle_id, sa.func.count())
        .where(CircleItem.circle_id.in_(circle_ids), CircleItem.published_at.is_not(None))
        .group_by(CircleItem.circle_id)).all())
