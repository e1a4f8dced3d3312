"""Portal sessions: one row per device signed in to the client portal, carried by the portal's own cookie

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 15:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

from core.rls import disable_rls, enable_rls

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('portal_session',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('ip_address', sa.String(length=45), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'account_id'], ['portal_account.tenant_id', 'portal_account.id'], name=op.f('fk_portal_session_tenant_id_account_id_portal_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_portal_session_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_session')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_portal_session_tenant_id_id')),
    sa.UniqueConstraint('token', name=op.f('uq_portal_session_token'))
    )
    with op.batch_alter_table('portal_session', schema=None) as batch_op:
        batch_op.create_index('ix_portal_session_tenant_id_account_id', ['tenant_id', 'account_id'], unique=False)
    enable_rls(op, 'portal_session')


def downgrade():
    disable_rls(op, 'portal_session')
    with op.batch_alter_table('portal_session', schema=None) as batch_op:
        batch_op.drop_index('ix_portal_session_tenant_id_account_id')
    op.drop_table('portal_session')
