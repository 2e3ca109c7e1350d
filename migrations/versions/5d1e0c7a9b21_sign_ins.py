"""sign_ins: one row per sign-in, so signing out ends that sign-in's cookies on the server

Revision ID: 5d1e0c7a9b21
Revises: a7fb6b53a6ab
Create Date: 2026-12-01 20:40:00

"""
import sqlalchemy as sa
from alembic import op

import ticketer.models

# revision identifiers, used by Alembic.
revision = '5d1e0c7a9b21'
down_revision = 'a7fb6b53a6ab'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sign_ins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_on', ticketer.models.UTCDateTime(), nullable=False),
    sa.Column('expires_on', ticketer.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sign_ins_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_ins')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_sign_ins_token_hash'))
    )
    with op.batch_alter_table('sign_ins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_ins_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('sign_ins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_ins_user_id'))

    op.drop_table('sign_ins')
