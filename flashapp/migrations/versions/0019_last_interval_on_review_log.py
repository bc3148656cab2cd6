"""each answer keeps the interval its card had (Anki's lastIvl)

Revision ID: review_last_interval
Revises: documents_into_decks
Create Date: 2026-11-26 03:00:00.000000

The statistics page told young from mature reviews by pairing each answer with the card's
previous one; each answer now keeps that interval itself (`ReviewLog.last_interval`: study
days, minus seconds for a learning step within the day, 0 for a card's first answer). The
column is filled in from the log, student by student (their time zone, the install's day-start
hour), then added to the index of a student's answers in time order, which then covers the
page's one pass.
"""
import sqlalchemy as sa
from alembic import op
from flask import current_app
from sqlalchemy.orm import Session

from flashapp.scheduling import make_scheduler, restore_last_intervals, study_scheduler

# revision identifiers, used by Alembic.
revision = 'review_last_interval'
down_revision = 'documents_into_decks'
branch_labels = None
depends_on = None

BEFORE = ['user_id', 'reviewed_at', 'card_id', 'state_before', 'rating']
AFTER = [*BEFORE, 'last_interval']


def upgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_interval', sa.Integer(), server_default='0', nullable=False))
    scheduler = current_app.extensions.get("flashapp.scheduler") or make_scheduler()
    with Session(bind=op.get_bind()) as session:
        restore_last_intervals(session, day_starts_at_hour=study_scheduler(scheduler).day_starts_at_hour)
        session.flush()
    # Made after the rows are filled in, rather than kept up to date through every one of their updates.
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_index('ix_review_log_user_time')
        batch_op.create_index('ix_review_log_user_time', AFTER, unique=False)


def downgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_index('ix_review_log_user_time')
        batch_op.create_index('ix_review_log_user_time', BEFORE, unique=False)
        batch_op.drop_column('last_interval')
