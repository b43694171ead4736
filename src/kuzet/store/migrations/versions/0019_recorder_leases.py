"""recorder leases: the recorder nodes, the camera leases they hold, and the node and fencing token of each file

Revision ID: 0019_recorder_leases
Revises: 0018_upload_queue
"""
from alembic import op
import sqlalchemy as sa

from kuzet.store.models.base import UTCDateTime

revision = "0019_recorder_leases"
down_revision = "0018_upload_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recorder_nodes",
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("cameras_held", sa.Integer(), nullable=False),
        sa.Column("upload_backlog_files", sa.Integer(), nullable=False),
        sa.Column("upload_backlog_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_recorder_nodes")),
    )
    op.create_table(
        "camera_leases",
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=True),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=True),
        sa.Column("renewed_at", UTCDateTime(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["camera_id"], ["cameras.id"], name=op.f("fk_camera_leases_camera_id_cameras"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("camera_id", name=op.f("pk_camera_leases")),
    )
    op.create_index("ix_camera_leases_node", "camera_leases", ["node"])
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("lease_token", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("lease_token")
        batch_op.drop_column("node")
    op.drop_index("ix_camera_leases_node", table_name="camera_leases")
    op.drop_table("camera_leases")
    op.drop_table("recorder_nodes")
