"""patrol cars' live GPS fixes (posted by the dash camera with its push key while it streams), and checkpoints of
redaction jobs so that one taken over after a restart resumes where it was

Revision ID: 0022_bodycam_live_fixes
Revises: 0021_bodycam_redaction_jobs
"""
from alembic import op
import sqlalchemy as sa

import kuzet.store.models.base

revision = "0022_bodycam_live_fixes"
down_revision = "0021_bodycam_redaction_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bodycam_live_fixes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("shift_id", sa.Integer(), nullable=True),
        sa.Column("at", kuzet.store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("speed_kmh", sa.Float(), nullable=True),
        sa.Column("received_at", kuzet.store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["bodycam_devices.id"],
                                name=op.f("fk_bodycam_live_fixes_device_id_bodycam_devices"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["shift_id"], ["bodycam_shifts.id"],
                                name=op.f("fk_bodycam_live_fixes_shift_id_bodycam_shifts"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bodycam_live_fixes")),
    )
    with op.batch_alter_table("bodycam_live_fixes") as batch:
        batch.create_index("ix_bodycam_live_fixes_device_at", ["device_id", "at"], unique=True)
        batch.create_index(batch.f("ix_bodycam_live_fixes_shift_id"), ["shift_id"], unique=False)
    op.create_table(
        "bodycam_redaction_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("redaction_id", sa.Integer(), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("created_at", kuzet.store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["redaction_id"], ["bodycam_redactions.id"],
                                name=op.f("fk_bodycam_redaction_checkpoints_redaction_id_bodycam_redactions"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bodycam_redaction_checkpoints")),
    )
    with op.batch_alter_table("bodycam_redaction_checkpoints") as batch:
        batch.create_index("ix_bodycam_redaction_checkpoints_job", ["redaction_id", "frame"], unique=True)


def downgrade() -> None:
    op.drop_table("bodycam_redaction_checkpoints")
    op.drop_table("bodycam_live_fixes")
