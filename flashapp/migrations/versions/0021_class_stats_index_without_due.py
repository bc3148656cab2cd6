"""the index of a student's answers card by card no longer carries each answer's due time

Revision ID: class_stats_index_lean
Revises: class_numbers_kept
Create Date: 2026-11-26 08:20:00.000000

Only the statistics page's old pairing of each answer with the card's previous one read the
due time from this index (migration 0013); since answers keep their last interval (0019) no
query needs it there. Every answer wrote it into the index all the same, and SQLite's integrity
check compared it: about 26 bytes an answer.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'class_stats_index_lean'
down_revision = 'class_numbers_kept'
branch_labels = None
depends_on = None

AFTER = ['user_id', 'card_id', 'reviewed_at', 'state_before', 'rating']
BEFORE = [*AFTER, 'due']


def upgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_index('ix_review_log_class_stats')
        batch_op.create_index('ix_review_log_class_stats', AFTER, unique=False)


def downgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_index('ix_review_log_class_stats')
        batch_op.create_index('ix_review_log_class_stats', BEFORE, unique=False)
