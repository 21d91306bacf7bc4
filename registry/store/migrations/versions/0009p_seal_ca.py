"""The consortium seal CA and the PAdES certificates it issues for seals (the sealed printable PDF)

Revision ID: 0009p
Revises: 0001
Create Date: 2026-12-02 02:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009p'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'seal_ca_keys',
        sa.Column('fingerprint', sa.String(length=64), primary_key=True),
        sa.Column('uscc', sa.String(length=18), nullable=False, unique=True),
        sa.Column('certificate', sa.LargeBinary(), nullable=False),
        sa.Column('key_blob', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_table(
        'seal_pdf_certs',
        sa.Column('seal_id', sa.String(length=64), primary_key=True),
        sa.Column('ca_fingerprint', sa.String(length=64), nullable=False),
        sa.Column('serial', sa.String(length=40), nullable=False),
        sa.Column('certificate', sa.LargeBinary(), nullable=False),
        sa.Column('key_blob', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('seal_pdf_certs')
    op.drop_table('seal_ca_keys')
