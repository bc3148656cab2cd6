"""memory states recomputed under the study-day rules

Revision ID: fsrs_study_days
Revises: 0007_study_active_cards
Create Date: 2026-11-25 23:00:00.000000

Scheduling now counts elapsed days in study days (the student's time zone and day-start
hour) and caps stability: every card state is recomputed from its review log, the source of
truth, under those rules. No schema change.
"""
from flask import current_app
from sqlalchemy.orm import Session

from flashapp.scheduling import make_scheduler, recompute_memory_states

# revision identifiers, used by Alembic.
revision = 'fsrs_study_days'
down_revision = '0007_study_active_cards'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from alembic import op

    scheduler = current_app.extensions.get("flashapp.scheduler") or make_scheduler()
    with Session(bind=op.get_bind()) as session:
        recompute_memory_states(session, scheduler)
        session.flush()


def downgrade() -> None:
    # The states stay as recomputed: the review log, not the state, is what history keeps.
    pass
