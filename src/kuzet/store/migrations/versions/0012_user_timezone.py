"""users.timezone: the time zone a user reads times in (empty: the installation's, [general] timezone)

Revision ID: 0012_user_timezone
Revises: 0010_cloud
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0012_user_timezone"
down_revision = "0010_cloud"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("timezone")
