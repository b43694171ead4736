"""city-wide lists: indexes for the lists of a caller who sees every camera (issue 16), checked with EXPLAIN by
tests/test_api_indexes.py. The alarm queue's default order (priority rank, then newest) is served by an index on both
databases (the control centre's alarms were sorted in full at every request); the events' ``start`` filter (events
still running or ending after it) by an index on their end, now that the control centre's event search carries no
camera condition that used to lead it.

Revision ID: 0023_city_wide_lists
Revises: 0022_bodycam_live_fixes
Create Date: 2026-12-01
"""
from alembic import op

revision = '0023_city_wide_lists'
down_revision = '0022_bodycam_live_fixes'
branch_labels = None
depends_on = None

# The very expression GET /alarms orders by (store.models.operations.alarm_rank), values written out: an expression
# index serves only a query spelling the same expression without bound parameters.
RANK = ("CASE priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 3 WHEN 'critical' THEN 4 "
        "ELSE 0 END")


def upgrade() -> None:
    op.execute(f"CREATE INDEX ix_alarms_rank_raised_id ON alarms (({RANK}), raised_at, id)")
    op.create_index("ix_events_end_at", "events", ["end_at"])  # GET /events?start=


def downgrade() -> None:
    op.drop_index("ix_events_end_at", table_name="events")
    op.execute("DROP INDEX IF EXISTS ix_alarms_rank_raised_id")
