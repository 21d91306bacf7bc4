"""audit: checkpoint records, signed audit reports, replay snapshots

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24 09:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checkpoint_records',
    sa.Column('hash', sa.String(length=66), nullable=False),
    sa.Column('subchain_id', sa.String(length=66), nullable=False),
    sa.Column('ledger', sa.String(length=32), nullable=False),
    sa.Column('index', sa.BigInteger(), nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('root', sa.String(length=66), nullable=False),
    sa.Column('prev_hash', sa.String(length=66), nullable=False),
    sa.Column('from_block', sa.BigInteger(), nullable=False),
    sa.Column('to_block', sa.BigInteger(), nullable=False),
    sa.Column('to_block_hash', sa.String(length=66), nullable=False),
    sa.Column('signer', sa.String(length=42), nullable=False),
    sa.Column('signer_uscc', sa.String(length=18), nullable=False),
    sa.Column('signature', sa.String(length=140), nullable=False),
    sa.Column('main_chain_id', sa.BigInteger(), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=True),
    sa.Column('main_block', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('hash')
    )
    with op.batch_alter_table('checkpoint_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkpoint_records_ledger'), ['ledger'], unique=False)

    op.create_table('audit_reports',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('digest', sa.String(length=66), nullable=False),
    sa.Column('auditor_uscc', sa.String(length=18), nullable=False),
    sa.Column('signer', sa.String(length=42), nullable=False),
    sa.Column('signature', sa.String(length=140), nullable=False),
    sa.Column('findings', sa.Integer(), nullable=False),
    sa.Column('from_block', sa.BigInteger(), nullable=False),
    sa.Column('to_block', sa.BigInteger(), nullable=False),
    sa.Column('to_block_hash', sa.String(length=66), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('log_index', sa.BigInteger(), nullable=True),
    sa.Column('checkpoint_hash', sa.String(length=66), nullable=True),
    sa.Column('anchor_tx', sa.String(length=66), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest'),
    sa.UniqueConstraint('log_index')
    )
    with op.batch_alter_table('audit_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_reports_auditor_uscc'), ['auditor_uscc'], unique=False)

    op.create_table('audit_snapshots',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('audit_snapshots')
    with op.batch_alter_table('audit_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_reports_auditor_uscc'))
    op.drop_table('audit_reports')
    with op.batch_alter_table('checkpoint_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkpoint_records_ledger'))
    op.drop_table('checkpoint_records')
