"""api indexes: an index for every filter and order the API offers (issue 16, "bounded work per request"); checked
with EXPLAIN on PostgreSQL by tests/test_api_indexes.py

Revision ID: 0014_api_indexes
Revises: 0010_cloud
Create Date: 2026-12-01
"""
from alembic import op

revision = '0014_api_indexes'
down_revision = '0012_user_timezone'
branch_labels = None
depends_on = None

# (index, table, columns): kept in step with the models' __table_args__.
INDEXES = [
    ("ix_cameras_kind_id", "cameras", ["kind", "id"]),  # GET /cameras?kind=
    ("ix_cameras_lat_lon", "cameras", ["lat", "lon"]),  # GET /map?bbox=
    ("ix_places_kind_path", "places", ["kind", "path"]),  # GET /places?kind=, ordered by path
    ("ix_events_start_id", "events", ["start_at", "id"]),  # GET /events: newest first, keyset pages
    ("ix_events_label_start", "events", ["label", "start_at"]),  # GET /events?label=
    ("ix_alarms_raised_id", "alarms", ["raised_at", "id"]),  # GET /alarms: newest first, ?since=
    ("ix_incidents_created_id", "incidents", ["created_at", "id"]),  # GET /incidents: newest first, keyset pages
    ("ix_audit_log_camera_seq", "audit_log", ["camera_id", "seq"]),  # GET /audit?camera=: a camera's log, newest first
    ("ix_audit_log_actor_seq", "audit_log", ["actor_name", "seq"]),  # GET /audit?actor=
    ("ix_audit_log_at", "audit_log", ["at"]),  # GET /audit?since=&until=
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    if op.get_bind().dialect.name == "postgresql":
        # Place subtrees are compared byte by byte (store.db.by_bytes), whatever the database's collation.
        op.execute('CREATE INDEX ix_places_path_bytes ON places (path COLLATE "C")')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_places_path_bytes")
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
