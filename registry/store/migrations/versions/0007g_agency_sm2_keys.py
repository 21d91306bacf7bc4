"""agency SM2 keys: each agency's SM2 application-signature key (GB/T 32918), sealed under the master key
beside its secp256k1 transaction key (registry/consortium/keys.py)

Revision ID: 0007g
Revises: 0001
Create Date: 2026-12-02 10:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007g'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agency_sm2_keys',
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=64), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key_id')
    )
    op.create_index('ix_agency_sm2_keys_uscc', 'agency_sm2_keys', ['uscc'])


def downgrade() -> None:
    op.drop_index('ix_agency_sm2_keys_uscc', table_name='agency_sm2_keys')
    op.drop_table('agency_sm2_keys')
