"""analysis leases: the nodes running the analysis service and the camera leases they hold, apart from recording

Revision ID: 0024_analysis_leases
Revises: 0023_city_wide_lists
"""
from alembic import op
import sqlalchemy as sa

from kuzet.store.models.base import UTCDateTime

revision = "0024_analysis_leases"
down_revision = "0023_city_wide_lists"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_nodes",
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("cameras_held", sa.Integer(), nullable=False),
        sa.Column("upload_backlog_files", sa.Integer(), nullable=False),
        sa.Column("upload_backlog_bytes", sa.BigInteger(), nullable=False),
        sa.Column("advertise_url", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_analysis_nodes")),
    )
    op.create_table(
        "analysis_leases",
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=True),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=True),
        sa.Column("renewed_at", UTCDateTime(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["camera_id"], ["cameras.id"], name=op.f("fk_analysis_leases_camera_id_cameras"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("camera_id", name=op.f("pk_analysis_leases")),
    )
    op.create_index("ix_analysis_leases_node", "analysis_leases", ["node"])


def downgrade() -> None:
    op.drop_index("ix_analysis_leases_node", table_name="analysis_leases")
    op.drop_table("analysis_leases")
    op.drop_table("analysis_nodes")
