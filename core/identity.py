"""Who is acting: staff users (one tenant each), platform super admins (no tenant), and later
portal logins (one contact each). Different kinds of principal, different login pages; the
session id names the kind, and a principal is only ever loaded on its own kind of host.
"""
from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app, g
from flask_login import AnonymousUserMixin, LoginManager, UserMixin, current_user
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Mapped, mapped_column, relationship
from zxcvbn import zxcvbn

from core.db import TenantScoped, UTCDateTime, db, platform_wide, tenant_fk, utcnow
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
    """What every kind of signed-in identity shares. `session_token` is what the session and
    the remember-me cookie hold; changing it signs the principal out everywhere (password
    change, deactivation)."""

    principal_type = "principal"
    id_prefix = "?"
    is_staff = False
    is_platform_admin = False

    def get_id(self) -> str:
        return f"{self.id_prefix}:{self.session_token}"

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def audit_label(self) -> str:
        return self.email

    def rotate_session_token(self) -> None:
        self.session_token = _new_session_token()


class StaffRole:
    OWNER, ADMIN, STAFF = "owner", "admin", "staff"
    ALL = (OWNER, ADMIN, STAFF)
    LABELS = {OWNER: "Owner", ADMIN: "Admin", STAFF: "Staff"}
    RANK = {OWNER: 3, ADMIN: 2, STAFF: 1}


class StaffUser(Principal, TenantScoped, db.Model):
    __tablename__ = "staff_user"
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
    session_token: Mapped[str] = mapped_column(sa.String(64), unique=True, default=_new_session_token)
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
    session_token: Mapped[str] = mapped_column(sa.String(64), unique=True, default=_new_session_token)
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[object | None] = mapped_column(UTCDateTime)

    @property
    def display_name(self) -> str:
        return self.name or self.email

    def __str__(self) -> str:
        return self.email


# --- current principal -------------------------------------------------------------------

def current_principal():
    """The principal the request acts as, or None."""
    user = current_user._get_current_object() if current_user else None
    return user if user is not None and user.is_authenticated else None


def real_principal():
    """The person really behind the request: differs from current_principal() only while an
    admin impersonates someone (g.real_principal is set by impersonation)."""
    return g.get("real_principal") or current_principal()


@login_manager.user_loader
def _load_principal(session_id: str):
    kind, _, token = session_id.partition(":")
    if not token:
        return None
    host_kind = g.get("host_kind")
    if kind == StaffUser.id_prefix and host_kind == "tenant" and current_tenant_id() is not None:
        # tenant-filtered: another tenant's staff never loads here
        user = db.session.scalar(sa.select(StaffUser).where(StaffUser.session_token == token))
        return user if user is not None and user.active else None
    if kind == PlatformAdmin.id_prefix and host_kind == "platform":
        admin = db.session.scalar(sa.select(PlatformAdmin).where(PlatformAdmin.session_token == token))
        return admin if admin is not None and admin.active else None
    return None


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


def _fingerprint(user) -> str:
    # The token dies as soon as the password changes, which makes it single-use.
    return hashlib.sha256((user.password_hash or "unset").encode()).hexdigest()[:16]


def make_token(user, purpose: str) -> str:
    return _serializer(purpose).dumps({"u": user.id, "f": _fingerprint(user)})


def load_token(model, token: str, purpose: str, max_age: int):
    """The user a token was made for, or None when it is forged, expired or already used."""
    try:
        data = _serializer(purpose).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    user = db.session.get(model, data.get("u"))
    if user is None or not secrets.compare_digest(_fingerprint(user), data.get("f", "")):
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
