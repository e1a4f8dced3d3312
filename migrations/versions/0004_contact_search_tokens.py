"""Contact search by word prefixes (contact_search_token replaces contact.search_text); an index of inactive contacts' e-mails for the duplicates page

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 07:48:09.987884

"""
from alembic import op
import sqlalchemy as sa

from core.rls import disable_rls, enable_rls

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BATCH = 5000
INACTIVE = 'NOT is_active AND archived_at IS NULL AND merged_into_id IS NULL AND email IS NOT NULL'


def upgrade():
    op.create_table('contact_search_token',
    sa.Column('token', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'contact_id'], ['contact.tenant_id', 'contact.id'], name=op.f('fk_contact_search_token_tenant_id_contact_id_contact'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_contact_search_token_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'token', 'contact_id', name=op.f('pk_contact_search_token'))
    )
    with op.batch_alter_table('contact_search_token', schema=None) as batch_op:
        batch_op.create_index('ix_contact_search_token_tenant_id_contact_id', ['tenant_id', 'contact_id'], unique=False)
    enable_rls(op, 'contact_search_token')
    _index_existing_contacts()
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_column('search_text')
        batch_op.create_index('ix_contact_tenant_id_email_inactive', ['tenant_id', 'email'], unique=False,
                              postgresql_where=sa.text(INACTIVE), sqlite_where=sa.text(INACTIVE))


def _index_existing_contacts():
    """Every contact's words, computed by the app's own tokenizer (the words are derived data:
    a later change of tokenizer re-indexes in a migration of its own)."""
    from crm.search import contact_tokens

    connection = op.get_bind()
    contact = sa.table('contact', *(sa.column(c) for c in (
        'id', 'tenant_id', 'first_name', 'last_name', 'email', 'phone', 'company_id')),
        sa.column('extra_emails', sa.JSON), sa.column('extra_phones', sa.JSON))
    company = sa.table('company', sa.column('id'), sa.column('tenant_id'), sa.column('name'))
    token = sa.table('contact_search_token', sa.column('tenant_id'), sa.column('contact_id'), sa.column('token'))
    after = 0
    while True:
        rows = connection.execute(
            sa.select(contact.c.id, contact.c.tenant_id, contact.c.first_name, contact.c.last_name, contact.c.email,
                      contact.c.extra_emails, contact.c.phone,
                      contact.c.extra_phones, company.c.name)
            .select_from(contact.outerjoin(company, sa.and_(company.c.id == contact.c.company_id,
                                                            company.c.tenant_id == contact.c.tenant_id)))
            .where(contact.c.id > after).order_by(contact.c.id).limit(BATCH)).all()
        if not rows:
            return
        values = [{'tenant_id': tenant_id, 'contact_id': contact_id, 'token': word}
                  for contact_id, tenant_id, first, last, email, emails, phone, phones, company_name in rows
                  for word in contact_tokens(names=(first, last, company_name), emails=(email, *(emails or ())),
                                             phones=(phone, *(phones or ())))]
        if values:
            connection.execute(token.insert(), values)
        after = rows[-1][0]


def downgrade():
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_tenant_id_email_inactive')
        batch_op.add_column(sa.Column('search_text', sa.TEXT(), nullable=False, server_default=''))
    # The old column held names and e-mail, lower-cased; rebuilt so search still works.
    op.execute("UPDATE contact SET search_text = lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '')"
               " || ' ' || coalesce(email, ''))")
    disable_rls(op, 'contact_search_token')
    with op.batch_alter_table('contact_search_token', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_search_token_tenant_id_contact_id')
    op.drop_table('contact_search_token')
