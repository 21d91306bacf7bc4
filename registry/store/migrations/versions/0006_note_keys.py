"""note keys: Ed25519 keys for C2SP signed notes (log keys, witness cosignature keys); the latest signed
checkpoint note of each ledger log

Revision ID: 0006
Revises: 0001
Create Date: 2026-12-01 21:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('note_keys',
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('sig_type', sa.Integer(), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('uscc', 'sig_type')
    )
    op.create_table('checkpoint_notes',
    sa.Column('ledger', sa.String(length=32), nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('cosignatures', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('ledger')
    )


def downgrade() -> None:
    op.drop_table('checkpoint_notes')
    op.drop_table('note_keys')
