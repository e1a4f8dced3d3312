"""What a tenant's CRM starts with."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core import tenant_cache
from core.db import db
from core.tenancy import current_tenant_id
from crm.models import DEFAULT_STATUSES, CrmSettings, PipelineStatus


def set_up_tenant(tenant) -> None:
    """Default settings and pipeline; safe to run again (the demo command does)."""
    if db.session.scalar(sa.select(CrmSettings.id)) is None:
        db.session.add(CrmSettings())
    if db.session.scalar(sa.select(PipelineStatus.id).limit(1)) is None:
        for position, name in enumerate(DEFAULT_STATUSES):
            db.session.add(PipelineStatus(name=name, position=position, is_default=position == 0))
    db.session.flush()


_HELD = "portico_crm_settings"  # session.info: (tenant id, its CrmSettings) read in this transaction


def settings() -> CrmSettings:
    """The current tenant's CRM settings (created on first use for tenants made before the CRM).
    Read once a transaction: a form's processing asks for them at every step."""
    session = db.session()
    tenant_id = current_tenant_id()
    held = session.info.get(_HELD)
    if held is not None and held[0] == tenant_id and held[1] in session:
        return held[1]
    current = session.scalar(sa.select(CrmSettings))
    if current is None:
        set_up_tenant(None)
        current = session.scalar(sa.select(CrmSettings))
    if session.get_transaction() is not None:
        session.info[_HELD] = (tenant_id, current)
    return current


@dataclass(frozen=True)
class CrmConfig:
    """The CRM settings as plain values, for code that only reads them."""

    staff_visibility: str
    default_region: str
    company_match_threshold: int
    form_embed_origins: tuple[str, ...]


def _snapshot(current: CrmSettings) -> CrmConfig:
    return CrmConfig(current.staff_visibility, current.default_region, current.company_match_threshold,
                     tuple(current.form_embed_origins or ()))


def config() -> CrmConfig:
    """The current tenant's CRM settings for reading, from the process's cache at the tenant's
    configuration version (core.tenant_cache), so a request or a form's processing reads no
    settings row. Settings changed in this transaction and not yet flushed are seen as
    settings() sees them."""
    session = db.session()
    held = session.info.get(_HELD)
    if held is not None and held[0] == current_tenant_id() and held[1] in session and session.is_modified(held[1]):
        return _snapshot(held[1])
    return tenant_cache.cached("crm_config", lambda: _snapshot(settings()))


@sa.event.listens_for(Session, "after_transaction_end")
def _forget_settings(session, transaction) -> None:
    if transaction.parent is None:  # the transaction itself, not a savepoint: read afresh next time
        session.info.pop(_HELD, None)
