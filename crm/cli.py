"""Operator commands for a tenant's contacts: `flask --app wsgi contacts import|export …`.

They run the services the staff pages run (crm.imports.engine, crm.export), as the tenant
named by --tenant; an import runs in this process rather than on the worker, and prints the
same counts the import's page shows."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from core.audit import record
from core.db import db
from core.errors import ServiceError
from core.operations import Operation
from core.tenancy import Tenant, cross_tenant, tenant_context
from crm.models import Circle, Contact, ContactRole

contacts_cli = AppGroup("contacts", help="Import and export a tenant's contacts.")


def _tenant(slug: str) -> Tenant:
    with cross_tenant("find tenant for contacts CLI", audit=False):
        tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise click.ClickException(f"No tenant {slug!r} (flask --app wsgi tenant list shows them).")
    return tenant


def _mapping_from(path: str, header: list[str]) -> list[str]:
    """A JSON file of {"column header": "target"}; columns it leaves out are not imported."""
    from crm.imports.mapping import header_key

    try:
        wanted = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"Could not read the mapping {path}: {exc}") from None
    if not isinstance(wanted, dict):
        raise click.ClickException('The mapping must be a JSON object: {"column header": "field", …}.')
    by_key = {header_key(k): str(v or "") for k, v in wanted.items()}
    return [by_key.get(header_key(name), "") for name in header]


@contacts_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--tenant", "slug", required=True, help="The tenant's slug.")
@click.option("--mapping", default="auto", show_default=True,
              help='"auto" (columns matched by their headers) or a JSON file {"column header": "field"}.')
@click.option("--on-duplicate", type=click.Choice(["skip", "fill", "overwrite", "create"]), default="skip",
              show_default=True, help="A row whose e-mail (or phone) matches a contact: skip it, fill the "
                                      "contact's empty fields, overwrite them, or create a new contact anyway.")
@click.option("--role", type=click.Choice(ContactRole.ALL), default=ContactRole.LEAD, show_default=True)
@click.option("--circle", "circles", multiple=True, help="Add the imported contacts to this circle (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Tag the imported contacts (repeatable).")
@click.option("--sheet", help="The workbook's sheet to import (default: the first).")
def import_command(file, slug, mapping, on_duplicate, role, circles, tags, sheet):
    """Import contacts from a CSV, .xlsx or .xls FILE; failed rows are written beside it."""
    from crm.imports import engine

    tenant = _tenant(slug)
    path = Path(file)
    with tenant_context(tenant):
        try:
            with path.open("rb") as source:
                upload = engine.new_import(source, path.name, actor=None)
            if upload.needs_sheet:
                engine.choose_sheet(upload, sheet or upload.sheets[0])
            if mapping != "auto":
                upload.mapping = _mapping_from(mapping, upload.header)
            circle_ids = []
            for name in circles:
                circle = db.session.scalar(sa.select(Circle).where(Circle.name == name, Circle.archived_at.is_(None)))
                if circle is None:
                    raise ServiceError(f"No circle called {name!r}.")
                circle_ids.append(circle.id)
            operation = engine.start_import(upload, {"on_duplicate": on_duplicate, "role": role,
                                                     "circle_ids": circle_ids, "tags": list(tags)},
                                            actor=None, queue=False)
            upload_id, operation_id = upload.id, operation.id
            db.session.commit()
        except ServiceError as exc:
            db.session.rollback()
            raise click.ClickException(exc.message) from None
        click.echo(f"Importing {upload.row_count:,} rows of {path.name} into {tenant.slug}…", err=True)
        engine.run_inline(operation_id)
        operation = db.session.get(Operation, operation_id)
        upload = engine.sync_status(db.session.get(engine.ContactImport, upload_id))
        counts = engine.live_counts(upload)
        failed_path = None
        if counts["failed"]:
            failed_path = path.with_name(f"{path.stem}-failed-rows.csv")
            with failed_path.open("w", encoding="utf-8", newline="") as out:
                for chunk in engine.failed_rows_csv(upload):
                    out.write(chunk)
        stopped = None if operation.status == Operation.DONE else (operation.last_error or operation.status_label)
        db.session.commit()
    click.echo(f"Rows: {counts['rows']:,}")
    for label, key in (("Created", "created"), ("Updated", "updated"), ("Skipped", "skipped"),
                       ("Merged with another row", "merged"), ("Failed", "failed")):
        click.echo(f"{label}: {counts[key]:,}")
    if failed_path is not None:
        click.echo(f"Failed rows, with why: {failed_path}")
    if stopped:
        click.echo(f"The import stopped: {stopped}", err=True)
    if counts["created"] + counts["updated"] == 0:
        sys.exit(1)


@contacts_cli.command("export")
@click.option("--tenant", "slug", required=True, help="The tenant's slug.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True),
              help="The file to write (default: standard output, CSV only).")
def export_command(slug, fmt, output):
    """Export the tenant's current contacts (history left out), as the contact list's export does."""
    from crm.export import to_csv, to_xlsx

    if fmt == "xlsx" and not output:
        raise click.ClickException("An .xlsx export needs --output FILE.")
    tenant = _tenant(slug)
    with tenant_context(tenant):
        query = sa.select(Contact).where(Contact.merged_into_id.is_(None), Contact.archived_at.is_(None))
        count = db.session.scalar(sa.select(sa.func.count(Contact.id)).where(
            Contact.merged_into_id.is_(None), Contact.archived_at.is_(None)))
        if fmt == "xlsx":
            Path(output).write_bytes(to_xlsx(query))
        else:
            out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout
            try:
                for chunk in to_csv(query):
                    out.write(chunk)
            finally:
                if output:
                    out.close()
        record("contact.exported", details={"format": fmt, "scope": "command line", "contacts": count})
        db.session.commit()
    click.echo(f"Exported {count:,} contacts of {tenant.slug}" + (f" to {output}" if output else "") + ".", err=True)
