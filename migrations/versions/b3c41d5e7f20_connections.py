"""connections: RapidPro-compatible workspaces, the pull's cursor, workspace ids on messages

Revision ID: b3c41d5e7f20
Revises: 5d1e0c7a9b21
Create Date: 2026-12-01 20:40:00

"""
from alembic import op
import sqlalchemy as sa

import ticketer.models
from sqlalchemy.dialects import postgresql

# Written by hand: new nullable columns are added with ALTER TABLE ... ADD COLUMN (a foreign key
# inline on SQLite), never by rebuilding contacts, messages or tickets, which may be large. No ON
# DELETE on those keys (SQLite can't reflect it on an inline key): removing a connection clears
# them first (ticketer/services/connections.py).

revision = 'b3c41d5e7f20'
down_revision = '5d1e0c7a9b21'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('connections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('base_url', sa.String(length=500), nullable=False),
    sa.Column('api_token', sa.String(length=255), nullable=False),
    sa.Column('silence_bot', sa.Boolean(), nullable=False),
    sa.Column('created_on', ticketer.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connections')),
    sa.UniqueConstraint('uuid', name=op.f('uq_connections_uuid'))
    )
    op.create_index('uq_connections_name_lower', 'connections', [sa.text('lower(name)')], unique=True)
    op.create_table('connection_syncs',
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('after', ticketer.models.UTCDateTime(), nullable=False),
    sa.Column('window_newest', ticketer.models.UTCDateTime(), nullable=True),
    sa.Column('resume_before', ticketer.models.UTCDateTime(), nullable=True),
    sa.Column('retry_on', ticketer.models.UTCDateTime(), nullable=True),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_run_on', ticketer.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_connection_syncs_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', name=op.f('pk_connection_syncs'))
    )

    for table in ('contacts', 'messages'):
        name = f'fk_{table}_connection_id_connections'
        if op.get_bind().dialect.name == 'sqlite':
            # SQLite adds a column with its foreign key inline; it can't ALTER constraints.
            op.execute(
                f'ALTER TABLE {table} ADD COLUMN connection_id INTEGER '
                f'CONSTRAINT {name} REFERENCES connections (id)'
            )
        else:
            op.add_column(table, sa.Column('connection_id', sa.Integer(), nullable=True))
            op.create_foreign_key(name, table, 'connections', ['connection_id'], ['id'])
    op.add_column('messages', sa.Column('external_uuid', sa.String(length=36), nullable=True))
    op.add_column('messages', sa.Column('external_status', sa.String(length=16), nullable=True))
    op.add_column('messages', sa.Column('attachments', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
    op.create_index('uq_messages_external_uuid', 'messages', ['external_uuid'], unique=True)
    op.add_column('tickets', sa.Column('waiting_since', ticketer.models.UTCDateTime(), nullable=True))


def downgrade():
    op.drop_column('tickets', 'waiting_since')
    op.drop_index('uq_messages_external_uuid', table_name='messages')
    for column in ('attachments', 'external_status', 'external_uuid'):
        op.drop_column('messages', column)
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint('fk_messages_connection_id_connections', 'messages', type_='foreignkey')
        op.drop_constraint('fk_contacts_connection_id_connections', 'contacts', type_='foreignkey')
    op.drop_column('messages', 'connection_id')
    op.drop_column('contacts', 'connection_id')
    op.drop_table('connection_syncs')
    op.drop_index('uq_connections_name_lower', table_name='connections')
    op.drop_table('connections')
