"""Operator commands for kickoff forms: `flask --app wsgi forms reprocess --tenant SLUG`."""
from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from core.db import db
from core.tenancy import tenant_context
from crm.cli import _tenant
from forms.models import FormSubmission, SubmissionState
from forms.submissions import process_submission, reprocess

forms_cli = AppGroup("forms", help="Kickoff forms: their submissions.")


@forms_cli.command("reprocess")
@click.option("--tenant", "slug", required=True, help="The tenant's slug.")
@click.option("--failed", "include_failed", is_flag=True,
              help="Also the submissions whose processing failed (after fixing what made them fail).")
@click.option("--inline", is_flag=True, help="Process them in this process, now, instead of on the worker.")
def reprocess_command(slug, include_failed, inline):
    """Process again the tenant's submissions still waiting (a worker died or the queue was
    lost), and with --failed those that failed. Processed submissions are never touched."""
    tenant = _tenant(slug)
    with tenant_context(tenant):
        ids = reprocess(include_failed=include_failed, queue=not inline)
        db.session.commit()
    what = "waiting or failed" if include_failed else "waiting"
    if not ids:
        click.echo(f"No {what} submissions in {tenant.slug}.")
        return
    if not inline:
        click.echo(f"Queued {len(ids):,} {what} submission{'s' if len(ids) != 1 else ''} of {tenant.slug} "
                   "for the worker.")
        return
    for submission_id in ids:
        try:
            process_submission.call_local(submission_id, tenant_id=tenant.id)
        except Exception as exc:  # recorded on the submission, which the counts below report
            click.echo(f"Submission {submission_id}: {exc}", err=True)
    with tenant_context(tenant):
        states = dict(db.session.execute(
            sa.select(FormSubmission.state, sa.func.count()).where(FormSubmission.id.in_(ids))
            .group_by(FormSubmission.state)).all())
        db.session.commit()
    click.echo(f"Processed: {states.get(SubmissionState.PROCESSED, 0):,}")
    click.echo(f"Failed: {states.get(SubmissionState.FAILED, 0):,}")
