"""What a tenant's CRM starts with."""
from __future__ import annotations

import sqlalchemy as sa

from core.db import db
from crm.models import DEFAULT_STATUSES, CrmSettings, PipelineStatus


def set_up_tenant(tenant) -> None:
    """Default settings and pipeline; safe to run again (the demo command does)."""
    if db.session.scalar(sa.select(CrmSettings.id)) is None:
        db.session.add(CrmSettings())
    if db.session.scalar(sa.select(PipelineStatus.id).limit(1)) is None:
        for position, name in enumerate(DEFAULT_STATUSES):
            db.session.add(PipelineStatus(name=name, position=position, is_default=position == 0))
    db.session.flush()


def settings() -> CrmSettings:
    """The current tenant's CRM settings (created on first use for tenants made before the CRM)."""
    current = db.session.scalar(sa.select(CrmSettings))
    if current is None:
        set_up_tenant(None)
        current = db.session.scalar(sa.select(CrmSettings))
    return current
