"""Usage records (用证记录): the usages of certificates by agencies, each its own outbox step

Revision ID: 0009u
Revises: 0001
Create Date: 2026-12-02 02:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009u'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'usages',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('ref', sa.String(length=64), nullable=False, unique=True),
        sa.Column('key', sa.String(length=66), nullable=False, unique=True),
        sa.Column('agency_uscc', sa.String(length=18), nullable=False, index=True),
        sa.Column('certificate_doc', sa.String(length=66), nullable=False, index=True),
        sa.Column('certificate_id', sa.String(length=120), nullable=True),
        sa.Column('channel', sa.String(length=12), nullable=False),
        sa.Column('grant_digest', sa.String(length=66), nullable=True, index=True),
        sa.Column('grant', sa.JSON(), nullable=True),
        sa.Column('presentation_digest', sa.String(length=66), nullable=True),
        sa.Column('presentation', sa.JSON(), nullable=True),
        sa.Column('holder_key_id', sa.String(length=64), nullable=True, index=True),
        sa.Column('purpose', sa.Text(), nullable=False),
        sa.Column('operator_id', sa.String(length=64), nullable=True),
        sa.Column('salt', sa.String(length=32), nullable=False),
        sa.Column('purpose_digest', sa.String(length=66), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False, index=True),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('account', sa.String(length=42), nullable=True),
        sa.Column('tx_hash', sa.String(length=66), nullable=True),
        sa.Column('raw_tx', sa.LargeBinary(), nullable=True),
        sa.Column('block_number', sa.BigInteger(), nullable=True),
        sa.Column('block_hash', sa.String(length=66), nullable=True),
        sa.Column('block_timestamp', sa.BigInteger(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('done_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_usages_open', 'usages', ['state', 'id'])


def downgrade() -> None:
    op.drop_index('ix_usages_open', table_name='usages')
    op.drop_table('usages')
