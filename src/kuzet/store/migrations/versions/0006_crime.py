"""crime: tables of the crime capability (see store/models/crime.py)

Revision ID: 0006_crime
Revises: 0005_safeyard
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import kuzet.store.models.base  # noqa: F401

revision = "0006_crime"
down_revision = "0005_safeyard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
