"""Payments and refunds of each contact, as Stripe last said, for the staff's payments panel

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 01:16:54.549183

"""
from alembic import op
import sqlalchemy as sa

from core.rls import disable_rls, enable_rls


# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

TABLES = ('billing_payment', 'billing_refund')


def upgrade():
    op.create_table('billing_payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('entitlement_id', sa.Integer(), nullable=True),
    sa.Column('stripe_charge_id', sa.String(length=255), nullable=False),
    sa.Column('stripe_payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_invoice_id', sa.String(length=255), nullable=True),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_refunded', sa.Integer(), server_default='0', nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('failure_message', sa.String(length=500), nullable=True),
    sa.Column('disputed', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('charged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("status in ('succeeded', 'failed', 'pending')", name=op.f('ck_billing_payment_status')),
    sa.CheckConstraint('amount >= 0 AND amount_refunded >= 0', name=op.f('ck_billing_payment_amounts')),
    sa.ForeignKeyConstraint(['tenant_id', 'contact_id'], ['contact.tenant_id', 'contact.id'], name=op.f('fk_billing_payment_tenant_id_contact_id_contact'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'entitlement_id'], ['entitlement.tenant_id', 'entitlement.id'], name=op.f('fk_billing_payment_tenant_id_entitlement_id_entitlement'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_billing_payment_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_payment')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_billing_payment_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'stripe_charge_id', name=op.f('uq_billing_payment_tenant_id_stripe_charge_id'))
    )
    with op.batch_alter_table('billing_payment', schema=None) as batch_op:
        batch_op.create_index('ix_billing_payment_tenant_id_contact_id', ['tenant_id', 'contact_id'], unique=False)

    op.create_table('billing_refund',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('stripe_refund_id', sa.String(length=255), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_billing_refund_amount')),
    sa.ForeignKeyConstraint(['tenant_id', 'payment_id'], ['billing_payment.tenant_id', 'billing_payment.id'], name=op.f('fk_billing_refund_tenant_id_payment_id_billing_payment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_billing_refund_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_refund')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_billing_refund_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'stripe_refund_id', name=op.f('uq_billing_refund_tenant_id_stripe_refund_id'))
    )
    with op.batch_alter_table('billing_refund', schema=None) as batch_op:
        batch_op.create_index('ix_billing_refund_tenant_id_payment_id', ['tenant_id', 'payment_id'], unique=False)

    for table in TABLES:
        enable_rls(op, table)


def downgrade():
    for table in TABLES:
        disable_rls(op, table)
    with op.batch_alter_table('billing_refund', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_refund_tenant_id_payment_id')

    op.drop_table('billing_refund')
    with op.batch_alter_table('billing_payment', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_payment_tenant_id_contact_id')

    op.drop_table('billing_payment')
