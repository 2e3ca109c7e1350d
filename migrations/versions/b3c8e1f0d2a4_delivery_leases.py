"""delivery leases: claimed_by on flow_starts and messages (a claim is a lease its holder renews)

Revision ID: b3c8e1f0d2a4
Revises: d4e8a1c2b9f0
Create Date: 2026-12-01 20:45:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b3c8e1f0d2a4'
down_revision = 'd4e8a1c2b9f0'
branch_labels = None
depends_on = None


def upgrade():
    # Rows claimed before this release have no holder: they are reclaimed once their claim is stale.
    # Plain ADD / DROP COLUMN (SQLite 3.35+): batch mode would rebuild the tables.
    op.add_column('flow_starts', sa.Column('claimed_by', sa.String(length=36), nullable=True))
    op.add_column('messages', sa.Column('claimed_by', sa.String(length=36), nullable=True))


def downgrade():
    op.drop_column('messages', 'claimed_by')
    op.drop_column('flow_starts', 'claimed_by')
