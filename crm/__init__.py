"""The CRM domain (contacts, companies, circles, tags, notes, tasks, events, import/export):
models and services with no HTTP in them."""
from core.tenants import on_tenant_created
from crm import demo, models  # noqa: F401  (tables for the metadata; the demo tenant's sample data)
from crm.imports import models as import_models  # noqa: F401  (the imports' tables)


@on_tenant_created
def _set_up_crm(tenant) -> None:
    from crm.setup import set_up_tenant

    set_up_tenant(tenant)
