"""the uploader's queue: a partial index of the recordings not yet in the object store (rows without an object key),
so each look for files to upload costs the same however large the archive

Revision ID: 0018_upload_queue
Revises: 0017_object_storage
"""
from alembic import op
import sqlalchemy as sa

revision = "0018_upload_queue"
down_revision = "0016_bodycams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_recordings_not_uploaded", "recordings", ["id"], postgresql_where=sa.text("object_key IS NULL"),
                    sqlite_where=sa.text("object_key IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_recordings_not_uploaded", table_name="recordings")
