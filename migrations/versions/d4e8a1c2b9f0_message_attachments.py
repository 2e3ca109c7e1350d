"""message attachments: files of messages kept in Ticketer's media store

Revision ID: d4e8a1c2b9f0
Revises: b3c41d5e7f20
Create Date: 2026-12-01 21:20:00

"""
from alembic import op
import sqlalchemy as sa

import ticketer.models

revision = 'd4e8a1c2b9f0'
down_revision = 'b3c41d5e7f20'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('message_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('source_url', sa.Text(), nullable=True),
    sa.Column('content_type', sa.String(length=128), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('storage_key', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_on', ticketer.models.UTCDateTime(), nullable=True),
    sa.Column('created_on', ticketer.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id', 'position', name='uq_message_attachments_position'),
    sa.UniqueConstraint('uuid')
    )
    op.create_index('ix_message_attachments_due', 'message_attachments', ['status', 'next_attempt_on'], unique=False)


def downgrade():
    op.drop_index('ix_message_attachments_due', table_name='message_attachments')
    op.drop_table('message_attachments')
