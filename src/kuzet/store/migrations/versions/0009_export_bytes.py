"""exports.bytes as a 64-bit integer: bundles may reach security.export_max_bytes (16 GiB by default), past the
2 GiB a PostgreSQL integer holds

Revision ID: 0009_export_bytes
Revises: 0008_district_assignments
"""
from alembic import op
import sqlalchemy as sa

revision = "0009_export_bytes"
down_revision = '0008_district_assignments'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.alter_column("bytes", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.alter_column("bytes", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True)
