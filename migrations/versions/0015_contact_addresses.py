"""Contact addresses: every e-mail and phone a contact answers to (main and other ones, normalised), looked up by (tenant_id, address), for crm.identity; filled from the contacts there are

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 12:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

from core.rls import disable_rls, enable_rls

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade():
    op.create_table('contact_address',
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'contact_id'], ['contact.tenant_id', 'contact.id'], name=op.f('fk_contact_address_tenant_id_contact_id_contact'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'address', 'contact_id', name=op.f('pk_contact_address'))
    )
    with op.batch_alter_table('contact_address', schema=None) as batch_op:
        batch_op.create_index('ix_contact_address_tenant_id_contact_id', ['tenant_id', 'contact_id'], unique=False)
    enable_rls(op, 'contact_address')
    _fill()


def _fill():
    """Every contact's addresses, computed by the app's own function (crm.identity), a batch of
    contacts at a time."""
    from crm.identity import contact_addresses

    connection = op.get_bind()
    contact = sa.table('contact', sa.column('id'), sa.column('tenant_id'), sa.column('email'), sa.column('phone'),
                       sa.column('extra_emails', sa.JSON), sa.column('extra_phones', sa.JSON))
    address = sa.table('contact_address', sa.column('tenant_id'), sa.column('contact_id'), sa.column('address'))
    after = 0
    while True:
        rows = connection.execute(
            sa.select(contact.c.id, contact.c.tenant_id, contact.c.email, contact.c.extra_emails, contact.c.phone,
                      contact.c.extra_phones)
            .where(contact.c.id > after).order_by(contact.c.id).limit(BATCH)).all()
        if not rows:
            return
        values = [{'tenant_id': tenant_id, 'contact_id': contact_id, 'address': value}
                  for contact_id, tenant_id, email, emails, phone, phones in rows
                  for value in contact_addresses((email, *(emails or ())), (phone, *(phones or ())))]
        if values:
            connection.execute(address.insert(), values)
        after = rows[-1][0]


def downgrade():
    disable_rls(op, 'contact_address')
    with op.batch_alter_table('contact_address', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_address_tenant_id_contact_id')
    op.drop_table('contact_address')
