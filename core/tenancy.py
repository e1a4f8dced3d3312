"""Tenants, and the rule everything rests on: a request sees only its own tenant's rows.

Three walls keep tenants apart:
  1. composite foreign keys `(tenant_id, x_id)` (core.db.tenant_fk), so the database refuses
     a row pointing into another tenant;
  2. the ORM: reads of TenantScoped models are filtered to the current tenant, inserts are
     stamped with it, and a query on a tenant table with no tenant set raises (fail closed);
  3. PostgreSQL row-level security (core.rls), fed by `app.tenant_id`, which is set with
     set_config(..., is_local => true) at the start of every transaction.

Code that must cross tenants (operator console, CLI, migrations) goes through
`cross_tenant()`, which is explicit and audited.
"""
from __future__ import annotations

import re
import weakref
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import sqlalchemy as sa
from blinker import Namespace
from flask import abort, current_app, g, request
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, with_loader_criteria
from sqlalchemy.orm.context import FromStatement

from core.db import TenantScoped, UTCDateTime, adopt, db, first_row, platform_wide, utcnow

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$")
RESERVED_SLUGS = frozenset(
    {"www", "admin", "api", "app", "static", "mail", "smtp", "portal", "staff", "help",
     "support", "status", "docs", "billing", "platform", "assets", "cdn"}
)
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_PRIMARY_COLOR = "#1f6feb"


class TenantError(Exception):
    pass


class TenantNotSet(TenantError):
    """A tenant-owned table was touched with no tenant in context: refuse rather than leak."""


class CrossTenantWrite(TenantError):
    """A row of one tenant was about to be written while another tenant is current."""


class Tenant(db.Model):
    """A business using Portico. Platform-wide: it is what the other tables are scoped by."""

    __tablename__ = "tenant"
    ACTIVE, SUSPENDED = "active", "suspended"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20), default=ACTIVE, server_default=ACTIVE)
    suspended_reason: Mapped[str | None] = mapped_column(sa.String(500))
    # Branding
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    primary_color: Mapped[str] = mapped_column(
        sa.String(7), default=DEFAULT_PRIMARY_COLOR, server_default=DEFAULT_PRIMARY_COLOR
    )
    logo: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    logo_mimetype: Mapped[str | None] = mapped_column(sa.String(50))
    logo_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Bumped by every change to what the tenant configures (core.tenant_cache): the key of each
    # process's caches of it.
    config_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Impersonation (core.impersonation): how long one lasts at most, and whether the person
    # impersonated is told by e-mail.
    impersonation_minutes: Mapped[int] = mapped_column(default=30, server_default="30")
    impersonation_notify: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)

    domains: Mapped[list["TenantDomain"]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan", order_by="TenantDomain.hostname"
    )

    __table_args__ = (
        sa.CheckConstraint("status in ('active', 'suspended')", name="status"),
        platform_wide("the tenants themselves"),
    )

    @property
    def is_active(self) -> bool:
        return self.status == self.ACTIVE

    @property
    def brand_name(self) -> str:
        return self.display_name or self.name

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class TenantDomain(db.Model):
    """A custom host name served as a tenant. Platform-wide: it is read before any tenant is
    known, to find the tenant."""

    __tablename__ = "tenant_domain"
    __table_args__ = (platform_wide("read to find the tenant, before any tenant is known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(sa.String(253), unique=True)
    tenant: Mapped[Tenant] = relationship(back_populates="domains")

    def __str__(self) -> str:
        return self.hostname


# --- the current tenant -------------------------------------------------------------------

_current_tenant_id: ContextVar[int | None] = ContextVar("portico_tenant_id", default=None)
_crossing_tenants: ContextVar[bool] = ContextVar("portico_cross_tenant", default=False)


def current_tenant_id() -> int | None:
    return _current_tenant_id.get()


def current_tenant() -> Tenant | None:
    return g.get("tenant")


def is_crossing_tenants() -> bool:
    return _crossing_tenants.get()


def _sync_database_settings() -> None:
    """Hand the current tenant to PostgreSQL for the transaction in progress (RLS)."""
    session = db.session()
    transaction = session.get_transaction()
    # A failed transaction must surface its own error, not one from setting the tenant.
    if transaction is not None and transaction.is_active:
        _apply_settings(session.connection())


def _apply_settings(connection) -> None:
    if connection.dialect.name != "postgresql":
        return
    tenant_id = _current_tenant_id.get()
    connection.exec_driver_sql(
        "SELECT set_config('app.tenant_id', %(t)s, true), set_config('app.cross_tenant', %(c)s, true)",
        {"t": "" if tenant_id is None else str(tenant_id), "c": "on" if _crossing_tenants.get() else "off"},
    )


@event.listens_for(Session, "after_begin")
def _set_transaction_tenant(session, transaction, connection):
    # The settings are transaction-local (is_local => true): a new transaction starts with
    # none, which is what "no tenant, not crossing" means, so that case costs no round trip;
    # a savepoint carries its transaction's settings already.
    if not transaction.nested and (_current_tenant_id.get() is not None or _crossing_tenants.get()):
        _apply_settings(connection)


def set_current_tenant(tenant: Tenant | None, *, database_told: bool = False):
    """Make `tenant` current for this request or job; returns a token for reset_current_tenant.
    `database_told`: the transaction in progress has it already (resolve_host(claim=True))."""
    g.tenant = tenant
    token = _current_tenant_id.set(tenant.id if tenant is not None else None)
    if not database_told:
        _sync_database_settings()
    return token


def reset_current_tenant(token) -> None:
    _current_tenant_id.reset(token)
    g.pop("tenant", None)


@contextmanager
def tenant_context(tenant: Tenant | int) -> Iterator[Tenant]:
    """Run a block (a job, a CLI step, a test) as one tenant."""
    told = False
    if isinstance(tenant, int):
        # The tenant table is platform-wide: no crossing needed to read it. On PostgreSQL the
        # same statement hands the tenant to the transaction (as resolve_host(claim=True)
        # does): a job's first round trip does both.
        session = db.session()
        claim = (session.get_bind().dialect.name == "postgresql" and session.get_transaction() is None
                 and _current_tenant_id.get() is None and not _crossing_tenants.get())
        if claim:
            row = session.execute(sa.select(Tenant, sa.func.set_config("app.tenant_id", sa.cast(Tenant.id, sa.Text), True),
                                            sa.func.set_config("app.cross_tenant", "off", True))
                                  .where(Tenant.id == tenant)).first()
            tenant, told = (row[0] if row is not None else None), row is not None
        else:
            with cross_tenant("load tenant for tenant_context", audit=False):
                tenant = db.session.get(Tenant, tenant)
        if tenant is None:
            raise TenantError("no such tenant")
    previous = g.get("tenant")
    token = _current_tenant_id.set(tenant.id)
    # The innermost context wins: one tenant's block inside a cross-tenant one (the console
    # creating a tenant's owner) is scoped to that tenant again.
    crossing_token = _crossing_tenants.set(False)
    g.tenant = tenant
    if not told:
        _sync_database_settings()
    try:
        yield tenant
        db.session.flush()  # this tenant's writes go out while it is still current
    finally:
        _crossing_tenants.reset(crossing_token)
        _current_tenant_id.reset(token)
        g.tenant = previous
        _sync_database_settings()


# Sent as a crossing starts, inside it; core.audit records it. Tenancy announces and audit
# listens because audit stands on tenancy (its events are tenant rows), not the other way round.
crossing_tenants = Namespace().signal("crossing-tenants")
# Sent once a request's tenant is known (None on the platform's own host); core.tenant_cache
# notes the configuration version its caches are read at.
tenant_resolved = Namespace().signal("tenant-resolved")


@contextmanager
def cross_tenant(reason: str, *, audit: bool = True, actor=None) -> Iterator[None]:
    """The one way to read or write across tenants. Audited unless told it is bookkeeping
    (`audit=False` is for resolving a tenant by id or host, which reveals nothing)."""
    token = _crossing_tenants.set(True)
    _sync_database_settings()
    try:
        if audit:
            if not crossing_tenants.receivers:
                raise RuntimeError("nothing records crossings of tenants: wire core.audit in (core.audit.init_app)")
            crossing_tenants.send(reason, actor=actor)
        yield
        # Writes made while crossing are sent while crossing: after it, the ORM guard and
        # row-level security would rightly refuse them.
        db.session.flush()
    finally:
        _crossing_tenants.reset(token)
        _sync_database_settings()


# --- the ORM wall --------------------------------------------------------------------------

class TenantFilterUnreachable(TenantError):
    """A statement reaches a tenant table through plain SQL constructs the ORM filter cannot
    rewrite (a bare Table, `sa.exists()`); write it with the model (`select(Model)`,
    `select(Model.id).where(...).exists()`) or inside cross_tenant()."""


def _is_tenant_table(from_clause) -> bool:
    return isinstance(from_clause, sa.Table) and "tenant_id" in from_clause.c and \
        "platform_wide" not in from_clause.info


def _tables_of(from_clause):
    """Tables a FROM item reads directly (through joins and table aliases, not into subqueries)."""
    for table, _ in _tables_and_entities(from_clause):
        yield table


def _tables_and_entities(from_clause):
    """(table, the ORM entity the FROM item stands for, if any) for each table it reads directly.
    An alias of a table (`aliased(Contact)`) reads that table, for the entity it aliases."""
    if isinstance(from_clause, sa.Join):
        yield from _tables_and_entities(from_clause.left)
        yield from _tables_and_entities(from_clause.right)
    elif isinstance(from_clause, sa.Table):
        yield from_clause, from_clause._annotations.get("parententity")
    elif isinstance(from_clause, sa.sql.selectable.Alias) and isinstance(from_clause.element, sa.Table):
        yield from_clause.element, from_clause._annotations.get("parententity")


def _entity_tables(entity) -> set[str]:
    return {t.name for t in sa.inspect(entity).mapper.tables} if entity is not None else set()


def _orm_entity_tables(element) -> set[str]:
    """Names of the tables the ORM knows as entities of this statement: with_loader_criteria
    rewrites these, and nothing else."""
    if isinstance(element, sa.Select):
        if element._propagate_attrs.get("compile_state_plugin") != "orm":
            # No ORM entity among its columns (`select(literal(1)).where(Contact.email == …)`):
            # SQLAlchemy compiles it as plain Core, even nested in an ORM query, and the
            # loader criteria never reach it, whatever ORM columns its WHERE names.
            return set()
        names = set()
        try:
            entities = [d.get("entity") for d in element.column_descriptions]
        except AttributeError:  # no ORM view of the columns (`sa.exists()`'s "*")
            entities = [c._annotations.get("parententity") for c in element.selected_columns]
        for entity in entities:
            names |= _entity_tables(entity)
        for from_clause in element.get_final_froms():
            for _, entity in _tables_and_entities(from_clause):
                names |= _entity_tables(entity)
        return names
    return _entity_tables(element.entity_description.get("entity"))


_CLASSIFIED: dict = {}
_CLASSIFIED_MAX = 4096


def _classify(statement) -> tuple[bool, bool]:
    """_classify_uncached, remembered per statement shape: working it out compiles the
    statement, and the same shapes run on every request. SQLAlchemy's cache key describes
    the structure without the values, which is all the answer depends on."""
    cache_key = statement._generate_cache_key()
    if cache_key is None:
        return _classify_uncached(statement)
    answer = _CLASSIFIED.get(cache_key.key)
    if answer is None:
        answer = _classify_uncached(statement)
        if len(_CLASSIFIED) >= _CLASSIFIED_MAX:
            _CLASSIFIED.clear()
        _CLASSIFIED[cache_key.key] = answer
    return answer


def _classify_uncached(statement) -> tuple[bool, bool]:
    """(touches a tenant table, some of it out of the ORM filter's reach).

    Each SELECT (and UPDATE/DELETE/INSERT) is judged on its own: every tenant table among its
    FROMs must be an ORM entity of that very statement, which is what with_loader_criteria
    rewrites. A nested SELECT lists an enclosing query's table among its FROMs when it
    correlates with it (`WHERE EXISTS (… WHERE member.contact_id = contact.id)`); that table is
    filtered where it comes from, so it does not count against the nested one."""
    touches = unreachable = False
    if not isinstance(statement, (sa.Select, sa.CompoundSelect, sa.Update, sa.Delete, sa.Insert)):
        # An expression run as a statement (`session.scalar(func.count(Contact.id))`): SQLAlchemy
        # wraps it in a SELECT of its own, which the ORM filter never sees.
        names = {t.name for f in getattr(statement, "_from_objects", ()) for t in _tables_of(f)
                 if _is_tenant_table(t)}
        return bool(names), bool(names)

    def visit(element, enclosing: frozenset) -> None:
        nonlocal touches, unreachable
        if isinstance(element, sa.Select):
            froms = element.get_final_froms()
        elif isinstance(element, (sa.Update, sa.Delete, sa.Insert)):
            froms = [element.table]
        else:
            froms = None
        if froms is not None:
            names = {t.name for f in froms for t in _tables_of(f) if _is_tenant_table(t)}
            if names:
                touches = True
                if (names - enclosing) - _orm_entity_tables(element):
                    unreachable = True
                enclosing = enclosing | names
        for child in element.get_children():
            visit(child, enclosing)

    visit(statement, frozenset())
    return touches, unreachable


TENANT_CHECKED_SQL = "portico_tenant_checked_sql"

# statement → {tenant id: the statement with the tenant filter}, for the statements built once
# and run on every request (module constants): the same filtered object each time keeps its
# cache key, which SQLAlchemy otherwise works out afresh over the whole statement per run.
_FILTERED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_FILTERED_TENANTS_MAX = 64


def _filtered(statement, tenant_id):
    try:
        per_tenant = _FILTERED.get(statement)
    except TypeError:  # not weakly referable
        per_tenant = None
    filtered = per_tenant.get(tenant_id) if per_tenant is not None else None
    if filtered is None:
        filtered = statement.options(
            with_loader_criteria(TenantScoped, lambda cls: cls.tenant_id == tenant_id, include_aliases=True))
        if per_tenant is None:
            try:
                per_tenant = _FILTERED[statement] = {}
            except TypeError:
                return filtered
        if len(per_tenant) >= _FILTERED_TENANTS_MAX:
            per_tenant.clear()
        per_tenant[tenant_id] = filtered
    return filtered


@event.listens_for(Session, "do_orm_execute")
def _filter_to_current_tenant(state):
    if state.is_relationship_load:
        return  # the criteria of the parent query travel with these loads
    if _crossing_tenants.get():
        return
    if isinstance(state.statement, (sa.TextClause, sa.TextualSelect, FromStatement)):
        # Raw SQL cannot be filtered, whatever ORM columns or entities it is read into. The
        # caller must say it filters by tenant itself (and on PostgreSQL, RLS still applies),
        # or cross tenants explicitly.
        if not state.execution_options.get(TENANT_CHECKED_SQL):
            raise TenantFilterUnreachable("raw SQL on the session: pass execution_options("
                                          f"{TENANT_CHECKED_SQL}=True) if it filters by tenant itself")
        return
    tenant_id = _current_tenant_id.get()
    filtered = None
    if state.is_insert or state.is_column_load:
        touches, unreachable = _classify(state.statement)
    else:
        # Judged on the statement as it will run, the filter added (which changes nothing of
        # the verdict): the cache key _classify works out is kept on that object, and
        # SQLAlchemy finds the compiled form by it instead of working it out a second time.
        filtered = _filtered(state.statement, tenant_id)
        touches, unreachable = _classify(filtered)
    if not touches:
        return
    if tenant_id is None:
        raise TenantNotSet("query on a tenant table with no tenant set")
    if unreachable:
        raise TenantFilterUnreachable(str(state.statement)[:200])
    if state.is_insert:
        state.statement = _stamp_insert_values(state.statement, tenant_id)
        _stamp_bulk_parameters(state.parameters, tenant_id)
        return
    if state.is_update:
        _refuse_moving_rows(state.statement, state.parameters)
    if state.is_column_load:
        # Refreshing an expired object by primary key ignores loader criteria: say it in SQL,
        # so an object of another tenant does not reload as this one.
        mapper = state.bind_mapper
        if mapper is not None and issubclass(mapper.class_, TenantScoped):
            state.statement = state.statement.where(mapper.class_.tenant_id == tenant_id)
        return
    state.statement = filtered


def _value_rows(statement) -> list[dict]:
    """An INSERT's VALUES or an UPDATE's SET, as {column name: value} per row."""
    def name(key):
        return getattr(key, "key", key)

    def value(v):
        return v.value if isinstance(v, sa.BindParameter) else v

    rows = [{name(k): value(v) for k, v in statement._values.items()}] if statement._values else []
    for batch in getattr(statement, "_multi_values", ()) or ():
        rows.extend({name(k): value(v) for k, v in row.items()} for row in batch)
    return rows


def _stamp_insert_values(statement, tenant_id: int):
    rows = _value_rows(statement)
    for row in rows:
        if "tenant_id" in row and row["tenant_id"] != tenant_id:
            raise CrossTenantWrite("insert of a row of another tenant")
    if len(rows) == 1 and "tenant_id" not in rows[0]:
        return statement.values(tenant_id=tenant_id)
    if any("tenant_id" not in row for row in rows[1:]):
        raise CrossTenantWrite("a multi-row insert must name tenant_id in every row")
    return statement


def _refuse_moving_rows(statement, parameters) -> None:
    params = parameters if isinstance(parameters, list) else [parameters or {}]
    if any("tenant_id" in row for row in _value_rows(statement) + params):
        raise CrossTenantWrite("rows never move between tenants")


def _stamp_bulk_parameters(parameters, tenant_id: int) -> None:
    """`session.execute(insert(Model), [rows])`: rows get the current tenant, or are refused
    when they name another."""
    rows = parameters if isinstance(parameters, list) else [parameters or {}]
    for row in rows:
        if row.setdefault("tenant_id", tenant_id) != tenant_id:
            raise CrossTenantWrite("bulk insert of a row of another tenant")


@event.listens_for(Session, "before_flush")
def _stamp_and_guard_tenant(session, flush_context, instances):
    if _crossing_tenants.get():
        return
    tenant_id = _current_tenant_id.get()
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if not isinstance(obj, TenantScoped):
            continue
        if tenant_id is None:
            if getattr(obj, "__tenant_optional__", False) and obj.tenant_id is None:
                continue  # a platform row of a table that also holds tenant rows
            raise TenantNotSet(f"writing {type(obj).__name__} with no tenant set")
        if obj.tenant_id is None and obj in session.new:
            obj.tenant_id = tenant_id
        elif obj.tenant_id != tenant_id:
            raise CrossTenantWrite(f"{type(obj).__name__} belongs to another tenant")


def get_or_404(model, ident):
    """Load one row of the current tenant, or answer 404 (never 403: no existence leak).
    The tenant is checked again because session.get() answers from the identity map, where an
    object loaded earlier in another tenant's context may sit."""
    obj = db.session.get(model, ident)
    if obj is None or (isinstance(obj, TenantScoped) and not _crossing_tenants.get()
                       and obj.tenant_id != _current_tenant_id.get()):
        abort(404)
    return obj


def require_tenant_host() -> None:
    """A blueprint's `before_request` for pages that exist only on a tenant's host: on the bare
    platform host they are a 404, like any unknown address."""
    if g.get("tenant") is None:
        abort(404)


# --- resolving the tenant from the request ---------------------------------------------------

def _hostname(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):  # IPv6 literal
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def platform_hostname() -> str:
    return _hostname(current_app.config["PLATFORM_DOMAIN"])


def resolve_host(host: str, *, claim: bool = False) -> tuple[str, Tenant | None]:
    """Classify a Host header: ("platform", None), ("tenant", t) or ("unknown", None).

    Ports are ignored: a tenant is a host name, whatever port the app is served on. With
    `claim`, on PostgreSQL the same statement hands the tenant found to the transaction in
    progress (set_config, as _apply_settings does): a request's first round trip does both.
    """
    hostname = _hostname(host)
    platform = platform_hostname()
    if hostname == platform:
        return "platform", None
    claim = claim and db.session.get_bind().dialect.name == "postgresql" and not _crossing_tenants.get()
    by_domain = not hostname.endswith("." + platform)
    key = hostname if by_domain else hostname[: -len(platform) - 1]
    query = _host_query(claim, by_domain=by_domain)
    row = first_row(query, {"host": key})
    tenant = adopt(Tenant, dict(zip(query.selected_columns.keys(), row))) if row is not None else None
    return ("tenant", tenant) if tenant is not None else ("unknown", None)


_HOST_QUERIES: dict = {}


def _host_query(claim: bool, *, by_domain: bool) -> sa.Select:
    """The tenant of a slug or custom domain (`host` parameter), built once: every request
    runs one. Both tables are platform-wide: no tenant filter or policy stands in the way, so
    finding the tenant needs no crossing (and costs every request no extra round trips)."""
    query = _HOST_QUERIES.get((claim, by_domain))
    if query is None:
        table = Tenant.__table__
        query = sa.select(*(c for c in table.c if c.key != "logo"))
        if claim:
            query = query.add_columns(sa.func.set_config("app.tenant_id", sa.cast(Tenant.id, sa.Text), True),
                                      sa.func.set_config("app.cross_tenant", "off", True))
        if by_domain:
            query = query.join(TenantDomain).where(TenantDomain.hostname == sa.bindparam("host"))
        else:
            query = query.where(Tenant.slug == sa.bindparam("host"))
        _HOST_QUERIES[(claim, by_domain)] = query
    return query


def tenant_url(tenant: Tenant, path: str = "/") -> str:
    """An absolute URL on the tenant's platform subdomain (for e-mails, CLI output)."""
    scheme = current_app.config["PREFERRED_URL_SCHEME"]
    return f"{scheme}://{tenant.slug}.{current_app.config['PLATFORM_DOMAIN']}{path}"


def platform_url(path: str = "/") -> str:
    scheme = current_app.config["PREFERRED_URL_SCHEME"]
    return f"{scheme}://{current_app.config['PLATFORM_DOMAIN']}{path}"


def validate_slug(slug: str) -> str | None:
    """Return a plain-words problem with the slug, or None when it is usable."""
    if not SLUG_RE.match(slug or ""):
        return "Use 3 to 40 lowercase letters, digits or hyphens, starting and ending with a letter or digit."
    if slug in RESERVED_SLUGS:
        return f"“{slug}” is reserved; choose another."
    return None


def init_app(app) -> None:
    @app.before_request
    def _resolve_tenant():
        kind, tenant = resolve_host(request.host, claim=True)
        g.host_kind = kind
        g._tenant_token = set_current_tenant(tenant, database_told=tenant is not None
                                             and db.session.get_bind().dialect.name == "postgresql")
        tenant_resolved.send(app, tenant=tenant)
        if kind == "unknown" and request.endpoint != "static":
            abort(404)
        if tenant is not None and not tenant.is_active and request.endpoint not in ("static",):
            from flask import render_template

            return render_template("errors/suspended.html", tenant=tenant), 403

    @app.teardown_request
    def _forget_tenant(exc):
        token = g.pop("_tenant_token", None)
        if token is not None:
            _current_tenant_id.reset(token)


def tenant_link(tenant: Tenant, endpoint: str, **values) -> str:
    """Absolute URL of an endpoint on the tenant's host, from a request, a job or the CLI."""
    cfg = current_app.config
    adapter = current_app.url_map.bind(
        f"{tenant.slug}.{cfg['PLATFORM_DOMAIN']}", url_scheme=cfg["PREFERRED_URL_SCHEME"]
    )
    return adapter.build(endpoint, values, force_external=True)
