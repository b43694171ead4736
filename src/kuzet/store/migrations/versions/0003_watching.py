"""watching: tables of the watching capability (see store/models/watching.py)

Revision ID: 0003_watching
Revises: 0002_recording
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import kuzet.store.models.base  # noqa: F401

revision = "0003_watching"
down_revision = "0002_recording"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
