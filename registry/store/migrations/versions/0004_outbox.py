"""one outbox: status changes and batches get the outbox columns; certificates remember the change their
status reflects (compare-and-set of status changes)

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-01 20:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('status_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account', sa.String(length=42), nullable=True))
        batch_op.add_column(sa.Column('raw_tx', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('block_hash', sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column('block_timestamp', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch_op.create_index('ix_status_changes_open', ['state', 'id'], unique=False)
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raw_tx', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_change_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_column('status_change_id')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('error')
        batch_op.drop_column('raw_tx')
    with op.batch_alter_table('status_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_status_changes_open')
        batch_op.drop_column('error')
        batch_op.drop_column('attempts')
        batch_op.drop_column('block_timestamp')
        batch_op.drop_column('block_hash')
        batch_op.drop_column('raw_tx')
        batch_op.drop_column('account')
