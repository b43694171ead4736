"""body-camera redaction plans made by a background job: its progress, heartbeat and error kept with the redaction,
so a job survives a server restart

Revision ID: 0021_bodycam_redaction_jobs
Revises: 0018_upload_queue
"""
from alembic import op
import sqlalchemy as sa

import kuzet.store.models.base

revision = "0021_bodycam_redaction_jobs"
down_revision = "0020_recorder_advertise_url"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bodycam_redactions") as batch:
        batch.add_column(sa.Column("frames_done", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("frames_total", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", kuzet.store.models.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bodycam_redactions") as batch:
        for name in ("error", "heartbeat_at", "frames_total", "frames_done"):
            batch.drop_column(name)
