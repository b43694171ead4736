"""operations: tables of the operations capability (see store/models/operations.py)

Revision ID: 0004_operations
Revises: 0003_watching
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import kuzet.store.models.base  # noqa: F401

revision = "0004_operations"
down_revision = "0003_watching"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
