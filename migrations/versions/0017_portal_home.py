"""Portal home: events answered by their attendees (rsvp), tasks shared with their contact and who ticked them off, custom fields the contact may edit, and timeline entries made by a contact on the portal (actor_type, actor_portal_account_id)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 15:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('custom_field', schema=None) as batch_op:
        batch_op.add_column(sa.Column('editable_by_contact', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('event_attendee', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rsvp', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('rsvp_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint('rsvp', "rsvp IS NULL OR rsvp in ('going', 'not_going')")

    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('done_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('done_by_portal_account_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('shared_with_contact', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_foreign_key(batch_op.f('fk_task_tenant_id_done_by_portal_account_id_portal_account'), 'portal_account', ['tenant_id', 'done_by_portal_account_id'], ['tenant_id', 'id'])
        batch_op.create_foreign_key(batch_op.f('fk_task_tenant_id_done_by_id_staff_user'), 'staff_user', ['tenant_id', 'done_by_id'], ['tenant_id', 'id'])
        batch_op.create_check_constraint('shared_has_contact', 'NOT shared_with_contact OR contact_id IS NOT NULL')

    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor_type', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('actor_portal_account_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_timeline_entry_tenant_id_actor_portal_account_id_portal_account'), 'portal_account', ['tenant_id', 'actor_portal_account_id'], ['tenant_id', 'id'])
        batch_op.create_check_constraint('actor_type', "actor_type IS NULL OR actor_type in ('staff', 'portal')")
    # Until now only staff were named as actors by id.
    op.execute("UPDATE timeline_entry SET actor_type = 'staff' WHERE actor_id IS NOT NULL")


def downgrade():
    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_timeline_entry_actor_type'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_timeline_entry_tenant_id_actor_portal_account_id_portal_account'), type_='foreignkey')
        batch_op.drop_column('actor_portal_account_id')
        batch_op.drop_column('actor_type')

    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_task_shared_has_contact'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_task_tenant_id_done_by_id_staff_user'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_task_tenant_id_done_by_portal_account_id_portal_account'), type_='foreignkey')
        batch_op.drop_column('shared_with_contact')
        batch_op.drop_column('done_by_portal_account_id')
        batch_op.drop_column('done_by_id')

    with op.batch_alter_table('event_attendee', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_event_attendee_rsvp'), type_='check')
        batch_op.drop_column('rsvp_at')
        batch_op.drop_column('rsvp')

    with op.batch_alter_table('custom_field', schema=None) as batch_op:
        batch_op.drop_column('editable_by_contact')
