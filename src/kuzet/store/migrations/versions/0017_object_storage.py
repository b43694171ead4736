"""recordings in object storage: the object key of an uploaded file and the SHA-256 its upload was verified with

Revision ID: 0017_object_storage
Revises: 0010_cloud
"""
from alembic import op
import sqlalchemy as sa

revision = "0017_object_storage"
down_revision = "0014_api_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("object_key", sa.String(length=600), nullable=True))
        batch_op.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("sha256")
        batch_op.drop_column("object_key")
