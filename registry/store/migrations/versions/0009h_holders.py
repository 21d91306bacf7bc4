"""Holders: bound certificates (certificates.holder_key_digest), presentation challenges, the holder request
replay cache, grants and their outbox steps, the GrantRegistry events, the agencies' exchange keys

Revision ID: 0009h
Revises: 0001
Create Date: 2026-12-02 02:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009h'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: only bound certificates have a holder key (SHA-256 of the holder's SPKI: no holder plaintext)
    with op.batch_alter_table('certificates') as batch:
        batch.add_column(sa.Column('holder_key_digest', sa.String(length=64), nullable=True))
        batch.create_index('ix_certificates_holder_key_digest', ['holder_key_digest'])
    op.create_table(
        'holder_challenges',
        sa.Column('nonce', sa.String(length=32), primary_key=True),
        sa.Column('verifier', sa.String(length=200), nullable=False),
        sa.Column('issued_at', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False, index=True),
        sa.Column('consumed_at', sa.BigInteger(), nullable=True),
        sa.Column('consumed_by', sa.String(length=64), nullable=True),
    )
    op.create_table(
        'holder_requests_seen',
        sa.Column('signature_digest', sa.String(length=64), primary_key=True),
        sa.Column('key_id', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False, index=True),
    )
    op.create_table(
        'grants',
        sa.Column('digest', sa.String(length=64), primary_key=True),
        sa.Column('grant_id', sa.String(length=32), nullable=False, unique=True),
        sa.Column('certificate_digest', sa.String(length=64), nullable=False, index=True),
        sa.Column('identifier', sa.String(length=120), nullable=False),
        sa.Column('issuer_uscc', sa.String(length=18), nullable=False),
        sa.Column('holder_key_digest', sa.String(length=64), nullable=False, index=True),
        sa.Column('grantee_kind', sa.String(length=8), nullable=False),
        sa.Column('grantee_digest', sa.String(length=64), nullable=False, index=True),
        sa.Column('not_before', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False),
        sa.Column('relay_uscc', sa.String(length=18), nullable=False),
        sa.Column('body', sa.JSON(), nullable=False),
        sa.Column('revocation', sa.JSON(), nullable=True),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_table(
        'grant_steps',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('grant_digest', sa.String(length=64), nullable=False, index=True),
        sa.Column('kind', sa.String(length=8), nullable=False),
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
    op.create_index('ix_grant_steps_open', 'grant_steps', ['state', 'id'])
    op.create_table(
        'grant_chain_events',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('tx_hash', sa.String(length=66), nullable=False),
        sa.Column('log_index', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=24), nullable=False),
        sa.Column('grant_digest', sa.String(length=64), nullable=False, index=True),
        sa.Column('relay_uscc', sa.String(length=18), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('block_number', sa.BigInteger(), nullable=False),
        sa.Column('block_hash', sa.String(length=66), nullable=False),
        sa.Column('block_timestamp', sa.BigInteger(), nullable=False),
        sa.UniqueConstraint('tx_hash', 'log_index', name='uq_grant_chain_events_log'),
    )
    op.create_table(
        'agency_exchange_keys',
        sa.Column('uscc', sa.String(length=18), primary_key=True),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('key_id', sa.String(length=64), nullable=False),
        sa.Column('key_blob', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ('agency_exchange_keys', 'grant_chain_events', 'grant_steps', 'grants', 'holder_requests_seen',
                  'holder_challenges'):
        op.drop_table(table)
    with op.batch_alter_table('certificates') as batch:
        batch.drop_index('ix_certificates_holder_key_digest')
        batch.drop_column('holder_key_digest')
