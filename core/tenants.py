"""Tenant lifecycle: create (with its first Owner), brand, suspend, reactivate, domains."""
from __future__ import annotations

import sqlalchemy as sa

from core.audit import record
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffRole, StaffSession, StaffUser
from core.tenancy import (COLOR_RE, Tenant, TenantDomain, cross_tenant, platform_hostname, tenant_context,
                          validate_slug)
from core.text import clean_line

LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF87a": "image/gif",
              b"GIF89a": "image/gif", b"RIFF": "image/webp"}
LOGO_MAX_BYTES = 512 * 1024

_tenant_created_hooks: list = []


def on_tenant_created(fn):
    """Register `fn(tenant)`, run as the new tenant inside its creating transaction: each
    domain package sets up what a new tenant needs (the CRM's default pipeline, …)."""
    _tenant_created_hooks.append(fn)
    return fn


def create_tenant(slug: str, name: str, owner_email: str, owner_password: str | None = None,
                  owner_name: str = "", actor=None) -> tuple[Tenant, StaffUser]:
    """A new tenant and its first Owner. With no password the Owner is e-mailed an invitation."""
    from core.accounts import create_staff_user, send_invitation

    slug = (slug or "").strip().lower()
    problem = validate_slug(slug)
    if problem:
        raise ServiceError(problem, field="slug")
    name = clean_line(name, label="the business name", field="name")
    owner_name = clean_line(owner_name, label="the owner's name", field="owner_name", required=False) or ""
    with cross_tenant(f"create tenant {slug}", actor=actor):
        if db.session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)) is not None:
            raise ServiceError(f"The address “{slug}” is already taken.", field="slug")
        tenant = Tenant(slug=slug, name=name)
        db.session.add(tenant)
        db.session.flush()
        record("tenant.created", tenant, actor=actor, details={"slug": slug})
    with tenant_context(tenant):
        owner = create_staff_user(owner_email, owner_name, StaffRole.OWNER, password=owner_password)
        record("staff.created", owner, actor=actor, details={"role": StaffRole.OWNER})
        if owner_password is None:
            send_invitation(owner)
        for hook in _tenant_created_hooks:
            hook(tenant)
    return tenant, owner


def set_tenant_status(tenant: Tenant, status: str, reason: str = "", actor=None) -> None:
    if status not in (Tenant.ACTIVE, Tenant.SUSPENDED):
        raise ServiceError("Unknown status.")
    if tenant.status == status:
        return
    tenant.status = status
    tenant.suspended_reason = (reason.strip() or None) if status == Tenant.SUSPENDED else None
    with cross_tenant(f"{status} tenant {tenant.slug}", actor=actor):
        if status == Tenant.SUSPENDED:
            # End every staff session of the tenant at once, not at their next request.
            db.session.execute(sa.update(StaffSession).where(StaffSession.tenant_id == tenant.id,
                                                             StaffSession.revoked_at.is_(None))
                               .values(revoked_at=utcnow()).execution_options(synchronize_session=False))
        record("tenant.suspended" if status == Tenant.SUSPENDED else "tenant.reactivated", tenant,
               actor=actor, tenant_id=tenant.id, details={"reason": reason} if reason else None)


def update_tenant_profile(tenant: Tenant, *, name: str, display_name: str, primary_color: str, actor=None) -> None:
    """The operator console's edit: the business name and its branding, checked like the
    tenant's own settings page checks them."""
    name = clean_line(name, label="the business name", field="name")
    if name != tenant.name:
        record("tenant.renamed", tenant, actor=actor, tenant_id=tenant.id, details={"from": tenant.name, "to": name})
        tenant.name = name
    update_branding(tenant, display_name=display_name, primary_color=primary_color, actor=actor)


def logo_mimetype(logo: bytes, field: str = "logo") -> str:
    """The image type of an uploaded logo, read from its bytes (not its name); ServiceError
    beside `field` when it is too large or not an image a browser shows everywhere."""
    if len(logo) > LOGO_MAX_BYTES:
        raise ServiceError("The logo must be 512 KB or smaller.", field=field)
    mimetype = next((m for magic, m in LOGO_TYPES.items() if logo.startswith(magic)), None)
    if mimetype is None or (mimetype == "image/webp" and logo[8:12] != b"WEBP"):
        raise ServiceError("Upload the logo as a PNG, JPEG, GIF or WebP image.", field=field)
    return mimetype


def update_branding(tenant: Tenant, *, display_name: str, primary_color: str,
                    logo: bytes | None = None, remove_logo: bool = False, actor=None) -> None:
    color = (primary_color or "").strip()
    if not COLOR_RE.match(color):
        raise ServiceError("Use a colour like #1f6feb.", field="primary_color")
    if logo is not None:
        mimetype = logo_mimetype(logo)
    changes = {}
    display_name = clean_line(display_name, label="the name shown to your users", field="display_name",
                              required=False)
    if display_name != tenant.display_name:
        changes["display_name"] = display_name
        tenant.display_name = display_name
    if color.lower() != tenant.primary_color.lower():
        changes["primary_color"] = color.lower()
        tenant.primary_color = color.lower()
    if logo is not None:
        tenant.logo, tenant.logo_mimetype = logo, mimetype
        tenant.logo_version += 1
        changes["logo"] = "uploaded"
    elif remove_logo and tenant.logo_mimetype:
        tenant.logo, tenant.logo_mimetype = None, None
        tenant.logo_version += 1
        changes["logo"] = "removed"
    if changes:
        record("tenant.branding_changed", tenant, tenant_id=tenant.id, details=changes, actor=actor)


def normalize_hostname(hostname: str) -> str:
    host = (hostname or "").strip().lower().rstrip(".")
    labels = host.split(".")
    if len(labels) < 2 or not all(labels) or any(len(label) > 63 for label in labels) or len(host) > 253 or \
            not all(c.isascii() and (c.isalnum() or c in "-.") for c in host):
        raise ServiceError("Enter a host name like portal.example.com.", field="hostname")
    platform = platform_hostname()
    if host == platform or host.endswith("." + platform):
        raise ServiceError(f"{host} is part of the platform's own domain; use the business's own domain.",
                           field="hostname")
    return host


def add_domain(tenant: Tenant, hostname: str, actor=None) -> TenantDomain:
    host = normalize_hostname(hostname)
    with cross_tenant(f"add domain {host}", actor=actor):
        if db.session.scalar(sa.select(TenantDomain.id).where(TenantDomain.hostname == host)):
            raise ServiceError(f"{host} is already in use.", field="hostname")
        domain = TenantDomain(tenant_id=tenant.id, hostname=host)
        db.session.add(domain)
        db.session.flush()
        record("tenant.domain_added", tenant, actor=actor, tenant_id=tenant.id, details={"hostname": host})
    return domain
