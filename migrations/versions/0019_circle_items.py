"""Circle content: pages, links and files staff publish to a Circle's members (circle_item), and the CRM settings that limit the files (largest size, allowed kinds)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 15:20:00.000000

"""
from alembic import op
import sqlalchemy as sa

from core.rls import disable_rls, enable_rls

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

KINDS = '["pdf", "png", "jpeg", "gif", "webp", "docx", "xlsx", "pptx", "txt", "csv"]'


def upgrade():
    op.create_table('circle_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('circle_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('url', sa.String(length=2000), nullable=True),
    sa.Column('storage_key', sa.String(length=200), nullable=True),
    sa.Column('file_name', sa.String(length=255), nullable=True),
    sa.Column('file_size', sa.BigInteger(), nullable=True),
    sa.Column('content_type', sa.String(length=100), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind <> 'file' OR (storage_key IS NOT NULL AND file_name IS NOT NULL AND file_size IS NOT NULL AND content_type IS NOT NULL)", name=op.f('ck_circle_item_file_is_stored')),
    sa.CheckConstraint("kind <> 'link' OR url IS NOT NULL", name=op.f('ck_circle_item_link_has_url')),
    sa.CheckConstraint("kind in ('page', 'link', 'file')", name=op.f('ck_circle_item_kind')),
    sa.ForeignKeyConstraint(['tenant_id', 'circle_id'], ['circle.tenant_id', 'circle.id'], name=op.f('fk_circle_item_tenant_id_circle_id_circle'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'created_by_id'], ['staff_user.tenant_id', 'staff_user.id'], name=op.f('fk_circle_item_tenant_id_created_by_id_staff_user')),
    sa.ForeignKeyConstraint(['tenant_id', 'updated_by_id'], ['staff_user.tenant_id', 'staff_user.id'], name=op.f('fk_circle_item_tenant_id_updated_by_id_staff_user')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_circle_item_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_circle_item')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_circle_item_tenant_id_id'))
    )
    with op.batch_alter_table('circle_item', schema=None) as batch_op:
        batch_op.create_index('ix_circle_item_tenant_id_circle_id_position', ['tenant_id', 'circle_id', 'position'], unique=False)
        batch_op.create_index('ix_circle_item_tenant_id_circle_id_published_at', ['tenant_id', 'circle_id', 'published_at'], unique=False)
    enable_rls(op, 'circle_item')

    with op.batch_alter_table('crm_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('circle_file_max_mb', sa.Integer(), server_default='20', nullable=False))
        batch_op.add_column(sa.Column('circle_file_kinds', sa.JSON(), server_default=KINDS, nullable=False))


def downgrade():
    with op.batch_alter_table('crm_settings', schema=None) as batch_op:
        batch_op.drop_column('circle_file_kinds')
        batch_op.drop_column('circle_file_max_mb')
    disable_rls(op, 'circle_item')
    with op.batch_alter_table('circle_item', schema=None) as batch_op:
        batch_op.drop_index('ix_circle_item_tenant_id_circle_id_published_at')
        batch_op.drop_index('ix_circle_item_tenant_id_circle_id_position')
    op.drop_table('circle_item')
