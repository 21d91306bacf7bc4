"""Three indexes of the certificates table that no query needs go: `issuer_uscc` and `type_code` are the
leading columns of `ix_certificates_pending` and `uq_certificate_serial`, which serve every lookup by them, and
no query orders or filters certificates by `created_at` alone (the anchoring worker's scan uses
`ix_certificates_pending`, a holder's list `ix_certificates_holder_key_digest`). Each is a b-tree less to write
per issued certificate.

Revision ID: 0011i
Revises: 0001
Create Date: 2026-12-02 16:00:00.000000
"""
from __future__ import annotations

from alembic import op

revision = '0011i'
down_revision = '0001'
branch_labels = None
depends_on = None

DROPPED = {'ix_certificates_issuer_uscc': ['issuer_uscc'], 'ix_certificates_type_code': ['type_code'],
           'ix_certificates_created_at': ['created_at']}


def upgrade() -> None:
    for name in DROPPED:
        op.drop_index(name, table_name='certificates')


def downgrade() -> None:
    for name, columns in DROPPED.items():
        op.create_index(name, 'certificates', columns)
