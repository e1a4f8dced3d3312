"""Who is acting: staff users (one tenant each), platform super admins (no tenant), and portal
logins (one contact each, portal.models). Different kinds of principal, different login pages
and different session rows. Staff users and platform admins sign in through Flask-Login, whose
session id names the kind, and a principal is only ever loaded on its own kind of host; portal
logins have their own cookie and loader (portal.auth), built on the session helpers here.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import ClassVar

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app, g, has_request_context, request
from flask_login import AnonymousUserMixin, LoginManager, UserMixin, current_user, login_user, logout_user
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import TenantScoped, UTCDateTime, adopt, adoptable_columns, db, first_row, platform_wide, tenant_fk, utcnow
from core.tenancy import Tenant, cross_tenant, current_tenant_id

login_manager = LoginManager()
login_manager.session_protection = "basic"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"


class Anonymous(AnonymousUserMixin):
    principal_type = "anonymous"
    is_staff = False
    is_platform_admin = False


login_manager.anonymous_user = Anonymous


def _new_session_token() -> str:
    return secrets.token_urlsafe(32)


class Principal(UserMixin):
    """What every kind of signed-in identity shares. Each signed-in device has a session row
    (StaffSession, PlatformSession); its token is what the session cookie and the remember-me
    cookie hold, so signing out, a password change or deactivation ends it on the server, and
    a copied cookie is worth nothing afterwards."""

    principal_type = "principal"
    id_prefix = "?"
    is_staff = False
    is_platform_admin = False
    session_model: type = None  # the login-session table of this kind of principal
    # The token of the device this request comes from (set at sign-in and by the loader).
    current_session_token: str | None = None

    def get_id(self) -> str:
        return f"{self.id_prefix}:{self.current_session_token}"

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def audit_label(self) -> str:
        return self.email


class LoginSessionMixin:
    """One signed-in device of a principal. Each table names the column pointing at its
    principal in `owner_column`, so the helpers below serve every kind of principal."""

    owner_column: ClassVar[str]

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(sa.String(64), unique=True, default=_new_session_token)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[object] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(sa.String(300))
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    revoked_at: Mapped[object | None] = mapped_column(UTCDateTime)


class StaffRole:
    OWNER, ADMIN, STAFF = "owner", "admin", "staff"
    ALL = (OWNER, ADMIN, STAFF)
    LABELS = {OWNER: "Owner", ADMIN: "Admin", STAFF: "Staff"}
    RANK = {OWNER: 3, ADMIN: 2, STAFF: 1}


class StaffUser(Principal, TenantScoped, db.Model):
    __tablename__ = "staff_user"
    __tenant_config__ = True  # its changes bump tenant.config_version (core.tenant_cache)
    __tenant_config_ignores__ = frozenset({"last_login_at", "password_hash", "password_changed_at"})
    __tenant_table_args__ = (
        sa.UniqueConstraint("tenant_id", "email"),
        tenant_fk("invited_by_id", "staff_user"),
        sa.CheckConstraint("role in ('owner', 'admin', 'staff')", name="role"),
    )
    principal_type = "staff"
    id_prefix = "s"
    is_staff = True

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20), default=StaffRole.STAFF)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    invited_by_id: Mapped[int | None]
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[object | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[object | None] = mapped_column(UTCDateTime)

    tenant: Mapped[Tenant] = relationship(lazy="joined")
    invited_by: Mapped["StaffUser | None"] = relationship(
        remote_side="StaffUser.id",
        primaryjoin="and_(StaffUser.invited_by_id == remote(StaffUser.id), "
                    "StaffUser.tenant_id == remote(StaffUser.tenant_id))",
        foreign_keys="[StaffUser.invited_by_id]",
        viewonly=True,
    )

    @property
    def role_label(self) -> str:
        return StaffRole.LABELS[self.role]

    @property
    def has_accepted_invitation(self) -> bool:
        return self.password_hash is not None

    @property
    def display_name(self) -> str:
        return self.name or self.email

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class PlatformAdmin(Principal, db.Model):
    """A platform operator (super admin). Platform-wide: belongs to no tenant."""

    __tablename__ = "platform_admin"
    __table_args__ = (platform_wide("operators of the whole platform belong to no tenant"),)
    principal_type = "platform_admin"
    id_prefix = "p"
    is_platform_admin = True

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[object | None] = mapped_column(UTCDateTime)

    @property
    def display_name(self) -> str:
        return self.name or self.email

    def __str__(self) -> str:
        return self.email


class StaffSession(LoginSessionMixin, TenantScoped, db.Model):
    __tablename__ = "staff_session"
    __tenant_table_args__ = (
        tenant_fk("staff_id", "staff_user", ondelete="CASCADE"),
        sa.Index("ix_staff_session_tenant_id_staff_id", "tenant_id", "staff_id"),
    )
    owner_column = "staff_id"
    staff_id: Mapped[int]


class PlatformSession(LoginSessionMixin, db.Model):
    __tablename__ = "platform_session"
    __table_args__ = (platform_wide("sessions of platform operators, who belong to no tenant"),)
    owner_column = "admin_id"
    admin_id: Mapped[int] = mapped_column(sa.ForeignKey("platform_admin.id", ondelete="CASCADE"), index=True)


StaffUser.session_model = StaffSession
PlatformAdmin.session_model = PlatformSession
SESSION_TOUCH_INTERVAL = timedelta(minutes=5)


def start_session(principal, *, lifetime: int | None = None) -> str:
    """A new signed-in device for `principal`, ending on the server after `lifetime` seconds
    (the "keep me signed in" duration by default); returns its token and sets
    principal.current_session_token (which login_user, through get_id(), then stores)."""
    model = principal.session_model
    now = utcnow()
    lifetime = current_app.config["REMEMBER_COOKIE_DURATION"] if lifetime is None else lifetime
    row = model(created_at=now, last_seen_at=now, expires_at=now + timedelta(seconds=lifetime),
                user_agent=(request.user_agent.string or "")[:300] if has_request_context() else None,
                ip_address=request.remote_addr if has_request_context() else None)
    setattr(row, model.owner_column, principal.id)
    db.session.add(row)
    db.session.flush()
    principal.current_session_token = row.token
    return row.token


def sign_in(principal, *, remember: bool = False) -> None:
    """Start a session row for this device and sign the principal in with it."""
    start_session(principal)
    db.session.commit()
    login_user(principal, remember=remember)


def sign_out() -> None:
    """End this device's session, on the server too (and an impersonation held by it)."""
    principal = real_principal()
    if isinstance(principal, StaffUser):
        from core.impersonation import end_with_session
        end_with_session(principal)
    if principal is not None and principal.current_session_token:
        end_sessions(principal, only=principal.current_session_token)
    logout_user()


def end_sessions(principal, *, only: str | None = None, keep: str | None = None) -> int:
    """Revoke the principal's sessions: one device (`only`), every other device (`keep`), or all."""
    model = principal.session_model
    query = sa.update(model).where(getattr(model, model.owner_column) == principal.id,
                                   model.revoked_at.is_(None))
    if only is not None:
        query = query.where(model.token == only)
    if keep is not None:
        query = query.where(model.token != keep)
    return db.session.execute(query.values(revoked_at=utcnow()).execution_options(synchronize_session=False)).rowcount


# --- current principal -------------------------------------------------------------------

def current_principal():
    """The principal the request acts as, or None."""
    user = current_user._get_current_object() if current_user else None
    return user if user is not None and user.is_authenticated else None


def real_principal():
    """The person really behind the request: differs from current_principal() only while an
    admin impersonates someone (g.real_principal is set by impersonation)."""
    return g.get("real_principal") or current_principal()


def impersonator_of(actor):
    """The admin really acting while `actor` is the person being impersonated; else None."""
    seen_as = g.get("impersonated") if has_request_context() else None
    if seen_as is None or actor is None:
        return None
    same = (getattr(actor, "principal_type", None), getattr(actor, "id", None)) == \
        (seen_as.principal_type, seen_as.id)
    return g.get("real_principal") if same else None


@login_manager.user_loader
def _load_principal(session_id: str):
    """The principal of a live session row, on its own kind of host only."""
    kind, _, token = session_id.partition(":")
    if not token:
        return None
    host_kind = g.get("host_kind")
    if kind == StaffUser.id_prefix and host_kind == "tenant" and current_tenant_id() is not None:
        user = _principal_of_session(StaffSession, StaffUser, token)  # tenant-filtered
        return _seen_as(user) if user is not None else None
    if kind == PlatformAdmin.id_prefix and host_kind == "platform":
        return _principal_of_session(PlatformSession, PlatformAdmin, token)
    return None


def _seen_as(admin: StaffUser):
    """Whom a staff session acts as: its own member, or the staff member they impersonate
    (then g.real_principal is the admin). Impersonating a portal login leaves /staff as it was."""
    from core.impersonation import load_for

    row = load_for(admin)
    if row is None:
        return admin
    g.real_principal = admin
    target = g.impersonated
    if isinstance(target, StaffUser):
        target.current_session_token = None  # the target's own sessions are never the request's
        return target
    return admin


def _principal_of_session(session_model, principal_model, token: str):
    found = live_session(session_model, principal_model, token)
    if found is None or not found[1].active:
        return None
    return found[1]


def live_session(session_model, principal_model, token: str, *joined) -> tuple | None:
    """(session row, principal, *joined rows) of an open session (not revoked, not expired),
    found by its token in one statement; None otherwise. `joined`: (entity, onclause) pairs
    inner-joined on and returned in order, for a caller whose rule needs more than the
    principal (the portal's needs the contact); pass the same tuple every time (a module
    constant), the statement is built once per tuple. Tenant-scoped tables are filtered to the
    current tenant, so a token is worthless on another tenant's host. Sets the principal's
    current_session_token, and notes the device as seen."""
    query, models = _session_query(session_model, principal_model, joined)
    params = {"token": token, "tenant_id": current_tenant_id()}
    values = first_row(query, params)
    if values is None:
        return None
    row, start = [], 0
    for model, keys in models:
        row.append(adopt(model, dict(zip(keys, values[start:start + len(keys)]))))
        start += len(keys)
    session_row = row[0]
    now = utcnow()
    if session_row.revoked_at is not None or session_row.expires_at <= now:
        return None
    if now - session_row.last_seen_at > SESSION_TOUCH_INTERVAL:
        # At most one write per device every few minutes, not one per request.
        db.session.execute(sa.update(session_model).where(session_model.id == session_row.id)
                           .values(last_seen_at=now).execution_options(synchronize_session=False))
        db.session.commit()
    row[1].current_session_token = token
    return tuple(row)


_SESSION_QUERIES: dict = {}


def _session_query(session_model, principal_model, joined: tuple = ()) -> sa.Select:
    """The statement of every signed-in request, built once (building one costs the request
    more than running it): pass the same `joined` tuple (a module constant) every time."""
    key = (session_model, principal_model, joined)
    query = _SESSION_QUERIES.get(key)
    if query is None:
        query = _SESSION_QUERIES[key] = _build_session_query(session_model, principal_model, joined)
    return query


def _build_session_query(session_model, principal_model, joined) -> tuple[sa.Select, list]:
    """A Core statement (no ORM entity: its rows are adopted, not loaded) and the (model, keys of
    its columns) it selects, in order. It runs on the connection, past the ORM's tenant
    filter, so it says the tenant itself: every tenant table it reads is held to the
    `tenant_id` parameter (and on PostgreSQL to the row-level policy as well)."""
    owner = getattr(session_model, session_model.owner_column)
    on = principal_model.id == owner
    if issubclass(session_model, TenantScoped) and issubclass(principal_model, TenantScoped):
        on = sa.and_(principal_model.tenant_id == session_model.tenant_id, on)  # the composite key, indexed
    models = [session_model, principal_model, *(entity for entity, _ in joined)]
    columns = [c for model in models for c in adoptable_columns(model)]
    query = sa.select(*columns).select_from(session_model).join(principal_model, on)
    for entity, onclause in joined:
        query = query.join(entity, onclause)
    query = query.where(session_model.token == sa.bindparam("token"))
    for model in models:
        if issubclass(model, TenantScoped):
            query = query.where(model.tenant_id == sa.bindparam("tenant_id"))
    return query, [(model, _column_keys(model)) for model in models]


def _column_keys(model) -> tuple[str, ...]:
    return tuple(c.key for c in adoptable_columns(model))


def open_sessions(principal) -> list:
    """The principal's signed-in devices, most recently seen first."""
    model = principal.session_model
    return list(db.session.scalars(
        sa.select(model).where(getattr(model, model.owner_column) == principal.id, model.revoked_at.is_(None),
                               model.expires_at > utcnow())
        .order_by(model.last_seen_at.desc(), model.id.desc())))


# --- passwords -----------------------------------------------------------------------------

def _hasher() -> PasswordHasher:
    hasher = current_app.extensions.get("portico_password_hasher")
    if hasher is None:
        cfg = current_app.config
        hasher = PasswordHasher(
            time_cost=cfg["ARGON2_TIME_COST"],
            memory_cost=cfg["ARGON2_MEMORY_COST"],
            parallelism=cfg["ARGON2_PARALLELISM"],
        )
        current_app.extensions["portico_password_hasher"] = hasher
    return hasher


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def _dummy_hash() -> str:
    dummy = current_app.extensions.get("portico_dummy_hash")
    if dummy is None:
        dummy = current_app.extensions["portico_dummy_hash"] = hash_password(secrets.token_hex(16))
    return dummy


def verify_password(principal, password: str) -> bool:
    """Check a password; spends the same work when there is no principal or no password, so
    timing does not tell whether an account exists."""
    stored = principal.password_hash if principal is not None else None
    try:
        _hasher().verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    if stored is None:
        return False
    if _hasher().check_needs_rehash(stored):
        principal.password_hash = hash_password(password)
    return True


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """A plain-words reason the password is too weak, or None."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(password) < minimum:
        return f"Use at least {minimum} characters."
    if len(password) > 256:
        return "Use at most 256 characters."
    from zxcvbn import zxcvbn  # ~14 MB of word lists: loaded when a password is set, not per worker

    result = zxcvbn(password[:100], user_inputs=[v for v in (email, name, "portico") if v])
    if result["score"] < 3:
        hint = result["feedback"].get("warning") or "It would be easy to guess."
        return f"This password is too weak. {hint}".strip()
    return None


def normalize_email(raw: str) -> str:
    """Lower-cased, syntax-checked e-mail address; raises ValueError with a readable message."""
    try:
        return validate_email((raw or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


# --- signed, single-use tokens (password reset, invitation) ----------------------------------

def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"portico.{purpose}")


def _fingerprint(user, state: str = "") -> str:
    # The token dies as soon as the password changes (or the `state` it was made for does),
    # which makes it single-use.
    seed = user.password_hash or "unset"
    if state:
        seed = f"{seed}|{state}"
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def make_token(user, purpose: str, *, state: str = "") -> str:
    """A signed link token for `user`. It stops working when the user's password changes, and
    when `state` (what the link is for, e.g. an unverified address) no longer matches."""
    return _serializer(purpose).dumps({"u": user.id, "f": _fingerprint(user, state)})


def load_token(model, token: str, purpose: str, max_age: int, *, state=None):
    """The user a token was made for, or None when it is forged, expired or already used.
    `state(user) -> str` gives the user's current state, for tokens made with one."""
    try:
        data = _serializer(purpose).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    user = db.session.get(model, data["u"])
    if user is None:
        return None
    expected = _fingerprint(user, state(user) if state is not None else "")
    if not secrets.compare_digest(expected, str(data.get("f", ""))):
        return None
    return user


# --- platform admins ---------------------------------------------------------------------------

def create_platform_admin(email: str, password: str, name: str = "") -> PlatformAdmin:
    email = normalize_email(email)
    problem = password_problem(password, email=email, name=name)
    if problem:
        raise ValueError(problem)
    with cross_tenant("create platform admin", audit=False):
        if db.session.scalar(sa.select(PlatformAdmin).where(PlatformAdmin.email == email)):
            raise ValueError(f"A super admin with e-mail {email} already exists.")
        admin = PlatformAdmin(email=email, name=name, password_hash=hash_password(password))
        db.session.add(admin)
        db.session.flush()
    return admin


def authenticate_platform_admin(email: str, password: str) -> PlatformAdmin | None:
    try:
        email = normalize_email(email)
    except ValueError:
        email = ""
    admin = db.session.scalar(sa.select(PlatformAdmin).where(PlatformAdmin.email == email)) if email else None
    if not verify_password(admin, password) or not admin.active:
        return None
    admin.last_login_at = utcnow()
    return admin


def authenticate_staff(email: str, password: str) -> tuple[StaffUser | None, bool]:
    """(user, password_ok) in the current tenant. The caller decides what to say; it must not
    tell an unknown e-mail from a wrong password."""
    try:
        email = normalize_email(email)
    except ValueError:
        email = ""
    user = db.session.scalar(sa.select(StaffUser).where(StaffUser.email == email)) if email else None
    ok = verify_password(user, password)
    return (user, ok)
