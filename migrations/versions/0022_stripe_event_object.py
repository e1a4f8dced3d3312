"""Stripe events: an index by the object they are about (tenant_id, object_id), so applying one finds the other pending events of the same object, which its re-read from Stripe covers

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08 01:40:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('stripe_event', schema=None) as batch_op:
        batch_op.create_index('ix_stripe_event_tenant_id_object_id', ['tenant_id', 'object_id'], unique=False)


def downgrade():
    with op.batch_alter_table('stripe_event', schema=None) as batch_op:
        batch_op.drop_index('ix_stripe_event_tenant_id_object_id')
