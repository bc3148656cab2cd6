"""the index of a student's answers card by card carries each answer's due time

Revision ID: review_log_card_index_due
Revises: personal_fsrs_parameters
Create Date: 2026-11-26 02:00:00.000000

The statistics page pairs each answer with the card's previous one (the interval it scheduled
says whether the card was young or mature); with the due time in the index, that pass reads
the index alone.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'review_log_card_index_due'
down_revision = 'personal_fsrs_parameters'
branch_labels = None
depends_on = None

BEFORE = ['user_id', 'card_id', 'reviewed_at', 'state_before', 'rating']
AFTER = [*BEFORE, 'due']


def upgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_index('ix_review_log_class_stats')
        batch_op.create_index('ix_review_log_class_stats', AFTER, unique=False)


def downgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_index('ix_review_log_class_stats')
        batch_op.create_index('ix_review_log_class_stats', BEFORE, unique=False)
