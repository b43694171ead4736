"""safeyard: tables of the safeyard capability (see store/models/safeyard.py)

Revision ID: 0005_safeyard
Revises: 0004_operations
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import kuzet.store.models.base  # noqa: F401

revision = "0005_safeyard"
down_revision = "0004_operations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
