"""E-seals: the seals made on this node, their outbox steps, the seal maker's keys, the SealRegistry events
(every agency's) and the sealed signatures of issued records

Revision ID: 0008e
Revises: 0001
Create Date: 2026-12-10 10:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008e'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'seals',
        sa.Column('id', sa.String(length=64), primary_key=True),
        sa.Column('key', sa.String(length=66), nullable=False, unique=True),
        sa.Column('agency_uscc', sa.String(length=18), nullable=False, index=True),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('category', sa.String(length=20), nullable=False),
        sa.Column('image_type', sa.String(length=8), nullable=False),
        sa.Column('image', sa.LargeBinary(), nullable=False),
        sa.Column('image_digest', sa.String(length=66), nullable=False),
        sa.Column('key_algorithm', sa.String(length=12), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('key_blob', sa.LargeBinary(), nullable=False),
        sa.Column('key_digest', sa.String(length=66), nullable=False),
        sa.Column('seseal', sa.LargeBinary(), nullable=False),
        sa.Column('seal_info_digest', sa.String(length=66), nullable=False),
        sa.Column('valid_from', sa.DateTime(), nullable=False),
        sa.Column('valid_until', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_table(
        'seal_steps',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('seal_id', sa.String(length=64), nullable=True, index=True),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('actor_uscc', sa.String(length=18), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
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
    op.create_index('ix_seal_steps_open', 'seal_steps', ['state', 'id'])
    op.create_table(
        'seal_maker_keys',
        sa.Column('key_digest', sa.String(length=66), primary_key=True),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('algorithm', sa.String(length=12), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('key_blob', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_table(
        'seal_chain_events',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('tx_hash', sa.String(length=66), nullable=False),
        sa.Column('log_index', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=24), nullable=False),
        sa.Column('seal_key', sa.String(length=66), nullable=False, index=True),
        sa.Column('agency_uscc', sa.String(length=18), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('block_number', sa.BigInteger(), nullable=False),
        sa.Column('block_hash', sa.String(length=66), nullable=False),
        sa.Column('block_timestamp', sa.BigInteger(), nullable=False),
        sa.UniqueConstraint('tx_hash', 'log_index', name='uq_seal_chain_events_log'),
    )
    op.create_table(
        'sealed_signatures',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('record_kind', sa.String(length=12), nullable=False),
        sa.Column('record_id', sa.String(length=100), nullable=False),
        sa.Column('seal_id', sa.String(length=64), nullable=False, index=True),
        sa.Column('format', sa.String(length=20), nullable=False),
        sa.Column('signature', sa.LargeBinary(), nullable=False),
        sa.Column('digest_sha256', sa.String(length=64), nullable=False),
        sa.Column('digest_sm3', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('record_kind', 'record_id', name='uq_sealed_signatures_record'),
    )


def downgrade() -> None:
    for table in ('sealed_signatures', 'seal_chain_events', 'seal_maker_keys', 'seal_steps', 'seals'):
        op.drop_table(table)
