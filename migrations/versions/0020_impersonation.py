"""Impersonation: one row per admin seeing the product as someone, tied to the admin's staff session; the tenant's time limit and e-mail notice

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 15:51:04.187953

"""
from alembic import op
import sqlalchemy as sa

from core.rls import disable_rls, enable_rls


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('impersonation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_session_id', sa.Integer(), nullable=False),
    sa.Column('admin_id', sa.Integer(), nullable=False),
    sa.Column('target_staff_id', sa.Integer(), nullable=True),
    sa.Column('target_account_id', sa.Integer(), nullable=True),
    sa.Column('admin_label', sa.String(length=320), nullable=False),
    sa.Column('target_label', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('return_url', sa.String(length=500), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=40), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('(target_staff_id IS NULL) <> (target_account_id IS NULL)', name=op.f('ck_impersonation_one_target')),
    sa.ForeignKeyConstraint(['tenant_id', 'admin_id'], ['staff_user.tenant_id', 'staff_user.id'], name=op.f('fk_impersonation_tenant_id_admin_id_staff_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'staff_session_id'], ['staff_session.tenant_id', 'staff_session.id'], name=op.f('fk_impersonation_tenant_id_staff_session_id_staff_session'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'target_account_id'], ['portal_account.tenant_id', 'portal_account.id'], name=op.f('fk_impersonation_tenant_id_target_account_id_portal_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'target_staff_id'], ['staff_user.tenant_id', 'staff_user.id'], name=op.f('fk_impersonation_tenant_id_target_staff_id_staff_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_impersonation_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_impersonation')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_impersonation_tenant_id_id'))
    )
    with op.batch_alter_table('impersonation', schema=None) as batch_op:
        batch_op.create_index('ix_impersonation_tenant_id_staff_session_id', ['tenant_id', 'staff_session_id'], unique=False)
        batch_op.create_index('ix_impersonation_tenant_id_target_account_id', ['tenant_id', 'target_account_id'], unique=False)
        batch_op.create_index('ix_impersonation_tenant_id_target_staff_id', ['tenant_id', 'target_staff_id'], unique=False)
    enable_rls(op, 'impersonation')

    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('impersonation_minutes', sa.Integer(), server_default='30', nullable=False))
        batch_op.add_column(sa.Column('impersonation_notify', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade():
    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.drop_column('impersonation_notify')
        batch_op.drop_column('impersonation_minutes')

    disable_rls(op, 'impersonation')
    with op.batch_alter_table('impersonation', schema=None) as batch_op:
        batch_op.drop_index('ix_impersonation_tenant_id_target_staff_id')
        batch_op.drop_index('ix_impersonation_tenant_id_target_account_id')
        batch_op.drop_index('ix_impersonation_tenant_id_staff_session_id')

    op.drop_table('impersonation')
