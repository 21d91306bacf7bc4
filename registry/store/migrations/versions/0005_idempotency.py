"""idempotency: certificate numbers per type and issuer, Idempotency-Key records

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-25 10:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('certificate_numbers',
    sa.Column('type_code', sa.String(length=21), nullable=False),
    sa.Column('issuer_uscc', sa.String(length=18), nullable=False),
    sa.Column('number_mac', sa.String(length=64), nullable=False),
    sa.Column('identifier', sa.String(length=120), nullable=False),
    sa.Column('values_mac', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('type_code', 'issuer_uscc', 'number_mac')
    )
    op.create_table('idempotency_keys',
    sa.Column('agency_uscc', sa.String(length=18), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('request_mac', sa.String(length=64), nullable=False),
    sa.Column('response', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('agency_uscc', 'key_hash')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_created_at'))
    op.drop_table('idempotency_keys')
    op.drop_table('certificate_numbers')
