"""SM3 roots: each batch keeps the RFC 6962 root of its documents' SM3 digests (anchored on chain beside the
SHA-256 root), each certificate its SM3 audit path in that tree

Revision ID: 0007s
Revises: 0001
Create Date: 2026-12-02 10:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007s'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: batches anchored before this revision have no SM3 root on chain (verifiers report the SM3
    # check as not available for them, never as valid)
    with op.batch_alter_table('batches') as batch:
        batch.add_column(sa.Column('root_sm3', sa.String(length=66), nullable=True))
    with op.batch_alter_table('certificates') as batch:
        batch.add_column(sa.Column('proof_sm3', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('certificates') as batch:
        batch.drop_column('proof_sm3')
    with op.batch_alter_table('batches') as batch:
        batch.drop_column('root_sm3')
