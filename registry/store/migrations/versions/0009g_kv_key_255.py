"""kv keys up to 255 characters

The witness state keys (`witness:<backbone address>@<block hash>:<uscc>:<ledger>`, registry/logs/witness.py)
run to ~150 characters. SQLite never enforced the old VARCHAR(100); PostgreSQL refuses the insert.

Revision ID: 0009g
Revises: 0001
Create Date: 2026-12-02 02:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009g'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('kv') as batch:
        batch.alter_column('key', existing_type=sa.String(length=100), type_=sa.String(length=255),
                           existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('kv') as batch:
        batch.alter_column('key', existing_type=sa.String(length=255), type_=sa.String(length=100),
                           existing_nullable=False)
