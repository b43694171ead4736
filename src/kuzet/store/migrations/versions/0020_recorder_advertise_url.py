"""recorder nodes advertise the URL of their API: the other nodes pass it live requests for the cameras it holds

Revision ID: 0020_recorder_advertise_url
Revises: 0019_recorder_leases
"""
from alembic import op
import sqlalchemy as sa

revision = "0020_recorder_advertise_url"
down_revision = "0019_recorder_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recorder_nodes") as batch:
        batch.add_column(sa.Column("advertise_url", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recorder_nodes") as batch:
        batch.drop_column("advertise_url")
