"""the index of a student's answers in time carries each answer's origin

Revision ID: day_index_with_origin
Revises: class_stats_index_lean
Create Date: 2026-11-27 14:40:00.000000

The study page reads, from the student's answers of the day, the highest position among the new
cards they were given in the app: the walk for the next new card starts there. Answers brought back
from Anki are left out of it, so the index that walk reads gains the origin, and the walk does not
visit each answer's row.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'day_index_with_origin'
down_revision = 'class_stats_index_lean'
branch_labels = None
depends_on = None

BEFORE = ['user_id', 'reviewed_at', 'card_id', 'state_before', 'rating', 'last_interval']
AFTER = [*BEFORE, 'origin']


def upgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_index('ix_review_log_user_time')
        batch_op.create_index('ix_review_log_user_time', AFTER, unique=False)


def downgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_index('ix_review_log_user_time')
        batch_op.create_index('ix_review_log_user_time', BEFORE, unique=False)
