"""Tenants: a configuration version, bumped by every change to roles, CRM settings, forms, custom fields and the lists' choices, that per-process caches are keyed by

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-07 12:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('config_version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.drop_column('config_version')
