"""Payment rules per kickoff form; the form a portal login registered through

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 01:16:38.853300

"""
from alembic import op
import sqlalchemy as sa

from core.rls import disable_rls, enable_rls


# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('form_access_rule',
    sa.Column('form_id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("mode in ('free', 'plans')", name=op.f('ck_form_access_rule_mode')),
    sa.ForeignKeyConstraint(['tenant_id', 'form_id'], ['kickoff_form.tenant_id', 'kickoff_form.id'], name=op.f('fk_form_access_rule_tenant_id_form_id_kickoff_form'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'form_id', name=op.f('pk_form_access_rule'))
    )
    op.create_table('form_access_plan',
    sa.Column('form_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'form_id'], ['form_access_rule.tenant_id', 'form_access_rule.form_id'], name=op.f('fk_form_access_plan_tenant_id_form_id_form_access_rule'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'plan_id'], ['access_plan.tenant_id', 'access_plan.id'], name=op.f('fk_form_access_plan_tenant_id_plan_id_access_plan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'form_id', 'plan_id', name=op.f('pk_form_access_plan'))
    )
    enable_rls(op, 'form_access_rule')
    enable_rls(op, 'form_access_plan')
    with op.batch_alter_table('portal_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('form_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_portal_account_tenant_id_form_id_kickoff_form'), 'kickoff_form', ['tenant_id', 'form_id'], ['tenant_id', 'id'])
    # Logins made before this was kept: the first submission of theirs on a form that gives one.
    op.execute("""
        UPDATE portal_account SET form_id = (
            SELECT s.form_id FROM kickoff_form_submission s
            JOIN kickoff_form f ON f.tenant_id = s.tenant_id AND f.id = s.form_id
            WHERE s.tenant_id = portal_account.tenant_id AND s.contact_id = portal_account.contact_id
              AND f.portal_login <> 'none'
            ORDER BY s.submitted_at, s.id LIMIT 1)
        WHERE form_id IS NULL AND source <> 'Invitation'
    """)



def downgrade():
    with op.batch_alter_table('portal_account', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_portal_account_tenant_id_form_id_kickoff_form'), type_='foreignkey')
        batch_op.drop_column('form_id')

    disable_rls(op, 'form_access_plan')
    disable_rls(op, 'form_access_rule')
    op.drop_table('form_access_plan')
    op.drop_table('form_access_rule')
