"""alarm repeats: a repeat of the same rule or hot-list entry on the same camera folds into the open alarm — how many
times it was seen, when last, and the event of the latest sighting (docs/operations.md, "Once, not a flood")

Revision ID: 0013_alarm_repeats
Revises: 0009_export_bytes
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa
import kuzet.store.models.base


revision = '0013_alarm_repeats'
down_revision = '0009_export_bytes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alarms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('occurrences', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('last_seen_at', kuzet.store.models.base.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('last_event_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_alarms_last_event_id_events'), 'events', ['last_event_id'], ['id'],
                                    ondelete='SET NULL')
    # Alarms raised before: seen once, last at the time they were raised, with their own event's picture.
    op.execute("UPDATE alarms SET last_seen_at = raised_at, last_event_id = event_id")


def downgrade() -> None:
    with op.batch_alter_table('alarms', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_alarms_last_event_id_events'), type_='foreignkey')
        batch_op.drop_column('last_event_id')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('occurrences')
