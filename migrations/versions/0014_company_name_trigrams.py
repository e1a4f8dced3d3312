"""Companies: a trigram index on the name key, so matching a new company name reads only the
names that share its trigrams (pg_trgm, PostgreSQL only)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 12:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if not bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar():
        # A trusted extension: the database's owner may create it; otherwise its administrator
        # runs `CREATE EXTENSION pg_trgm;` once (README, "PostgreSQL").
        op.execute("CREATE EXTENSION pg_trgm")
    if bind.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
        # Under row-level security an index serves only LEAKPROOF conditions; `%` (similarity_op)
        # is one in fact, but only a superuser may say so (README, "PostgreSQL").
        op.execute("ALTER FUNCTION similarity_op(text, text) LEAKPROOF")
    op.create_index("ix_company_name_key_trigrams", "company", ["name_key"], postgresql_using="gin",
                    postgresql_ops={"name_key": "gin_trgm_ops"})


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_company_name_key_trigrams", table_name="company")
