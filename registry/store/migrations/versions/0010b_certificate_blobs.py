"""Certificate blobs beside the certificate rows: the by-reference blob (~3 KB, written once) moves from
``certificates.blob`` to its own table, so that the rewrites of a certificate row (batch assigned, anchored,
status changes) no longer copy it

Revision ID: 0010b
Revises: 0001
Create Date: 2026-12-02 13:10:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010b'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'certificate_blobs',
        sa.Column('identifier', sa.String(length=120), sa.ForeignKey('certificates.identifier', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('blob', sa.LargeBinary(), nullable=False),
    )
    op.execute("INSERT INTO certificate_blobs (identifier, blob) SELECT identifier, blob FROM certificates")
    # SQLite >= 3.35 drops a plain column in place (no table copy: certificates are referenced by other tables)
    op.drop_column('certificates', 'blob')


def downgrade() -> None:
    op.add_column('certificates', sa.Column('blob', sa.LargeBinary(), nullable=True))
    op.execute("UPDATE certificates SET blob = (SELECT b.blob FROM certificate_blobs b "
               "WHERE b.identifier = certificates.identifier)")
    op.drop_table('certificate_blobs')
