"""Payments (billing/): each tenant's Stripe keys and payment rule, access plans and their circles, contacts' Stripe customers, the Stripe events received, and entitlements; every table tenant-scoped with row-level security

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 15:02:56.397757

"""
from alembic import op
import sqlalchemy as sa

from core.rls import disable_rls, enable_rls


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


TABLES = ('access_plan', 'stripe_event', 'access_plan_circle', 'billing_settings', 'billing_customer', 'entitlement')


def upgrade():
    op.create_table('access_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('initial_fee', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('interval', sa.String(length=10), nullable=True),
    sa.Column('interval_count', sa.Integer(), server_default='1', nullable=False),
    sa.Column('trial_days', sa.Integer(), server_default='0', nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('stripe_product_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_price_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_fee_price_id', sa.String(length=255), nullable=True),
    sa.Column('price_version', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("interval IS NULL OR interval in ('week', 'month', 'year')", name=op.f('ck_access_plan_interval')),
    sa.CheckConstraint("kind in ('one_time', 'recurring', 'both')", name=op.f('ck_access_plan_kind')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_access_plan_amount')),
    sa.CheckConstraint('interval_count >= 1 AND interval_count <= 52', name=op.f('ck_access_plan_interval_count')),
    sa.CheckConstraint('trial_days >= 0 AND trial_days <= 730', name=op.f('ck_access_plan_trial_days')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_access_plan_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_plan')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_access_plan_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_access_plan_tenant_id_name'))
    )
    op.create_table('stripe_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('object_id', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('stripe_created', sa.BigInteger(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("state in ('pending', 'applied', 'ignored')", name=op.f('ck_stripe_event_state')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_stripe_event_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_event')),
    sa.UniqueConstraint('tenant_id', 'event_id', name=op.f('uq_stripe_event_tenant_id_event_id')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_stripe_event_tenant_id_id'))
    )
    op.create_table('access_plan_circle',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('circle_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'circle_id'], ['circle.tenant_id', 'circle.id'], name=op.f('fk_access_plan_circle_tenant_id_circle_id_circle'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'plan_id'], ['access_plan.tenant_id', 'access_plan.id'], name=op.f('fk_access_plan_circle_tenant_id_plan_id_access_plan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'plan_id', 'circle_id', name=op.f('pk_access_plan_circle'))
    )
    op.create_table('billing_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('secret_key_encrypted', sa.Text(), nullable=True),
    sa.Column('secret_key_hint', sa.String(length=40), nullable=True),
    sa.Column('livemode', sa.Boolean(), nullable=True),
    sa.Column('webhook_secret_encrypted', sa.Text(), nullable=True),
    sa.Column('webhook_secret_hint', sa.String(length=40), nullable=True),
    sa.Column('required_plan_id', sa.Integer(), nullable=True),
    sa.Column('grace_days', sa.Integer(), server_default='3', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('grace_days >= 0 AND grace_days <= 60', name=op.f('ck_billing_settings_grace_days')),
    sa.ForeignKeyConstraint(['tenant_id', 'required_plan_id'], ['access_plan.tenant_id', 'access_plan.id'], name=op.f('fk_billing_settings_tenant_id_required_plan_id_access_plan')),
    sa.ForeignKeyConstraint(['tenant_id', 'updated_by_id'], ['staff_user.tenant_id', 'staff_user.id'], name=op.f('fk_billing_settings_tenant_id_updated_by_id_staff_user')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_billing_settings_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_settings')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_billing_settings_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', name='uq_billing_settings_tenant_id')
    )
    op.create_table('billing_customer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('stripe_customer_id', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'contact_id'], ['contact.tenant_id', 'contact.id'], name=op.f('fk_billing_customer_tenant_id_contact_id_contact'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_billing_customer_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_customer')),
    sa.UniqueConstraint('tenant_id', 'contact_id', name=op.f('uq_billing_customer_tenant_id_contact_id')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_billing_customer_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'stripe_customer_id', name=op.f('uq_billing_customer_tenant_id_stripe_customer_id'))
    )
    op.create_table('entitlement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('stripe_customer_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_subscription_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('past_due_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('current_period_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_at_period_end', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('disputed', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('is_open', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('closes_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("source in ('subscription', 'payment', 'complimentary')", name=op.f('ck_entitlement_source')),
    sa.ForeignKeyConstraint(['tenant_id', 'contact_id'], ['contact.tenant_id', 'contact.id'], name=op.f('fk_entitlement_tenant_id_contact_id_contact'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'plan_id'], ['access_plan.tenant_id', 'access_plan.id'], name=op.f('fk_entitlement_tenant_id_plan_id_access_plan')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_entitlement_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entitlement')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_entitlement_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'stripe_payment_intent_id', name=op.f('uq_entitlement_tenant_id_stripe_payment_intent_id')),
    sa.UniqueConstraint('tenant_id', 'stripe_subscription_id', name=op.f('uq_entitlement_tenant_id_stripe_subscription_id'))
    )
    with op.batch_alter_table('entitlement', schema=None) as batch_op:
        batch_op.create_index('ix_entitlement_tenant_id_contact_id', ['tenant_id', 'contact_id'], unique=False)

    for table in TABLES:
        enable_rls(op, table)


def downgrade():
    for table in TABLES:
        disable_rls(op, table)
    with op.batch_alter_table('entitlement', schema=None) as batch_op:
        batch_op.drop_index('ix_entitlement_tenant_id_contact_id')

    op.drop_table('entitlement')
    op.drop_table('billing_customer')
    op.drop_table('billing_settings')
    op.drop_table('access_plan_circle')
    op.drop_table('stripe_event')
    op.drop_table('access_plan')
