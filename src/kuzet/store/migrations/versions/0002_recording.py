"""recording: tables of the recording capability (see store/models/recording.py)

Revision ID: 0002_recording
Revises: 0001_core
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import kuzet.store.models.base  # noqa: F401

revision = "0002_recording"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
