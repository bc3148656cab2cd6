"""review counts on card states; the time-window index covers the class's numbers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

COUNTS = ('reps', 'lapses', 'again_count')


def upgrade() -> None:
    with op.batch_alter_table('card_state', schema=None) as batch_op:
        for name in COUNTS:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default='0', nullable=False))
    # Existing states get their counts from the review log, the source of truth (ratings: 1 is
    # Again; review states: 2 is Review), read through the index on (user_id, card_id, ...).
    same_card = ("review_log.user_id = card_state.user_id AND review_log.card_id = card_state.card_id")
    op.execute(
        "UPDATE card_state SET "
        f"reps = (SELECT count(*) FROM review_log WHERE {same_card}), "
        f"again_count = (SELECT count(*) FROM review_log WHERE {same_card} AND review_log.rating = 1), "
        f"lapses = (SELECT count(*) FROM review_log WHERE {same_card} AND review_log.rating = 1 "
        "AND review_log.state_before = 2)"
    )
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_index('ix_review_log_user_time')
        batch_op.create_index('ix_review_log_user_time',
                              ['user_id', 'reviewed_at', 'card_id', 'state_before', 'rating'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_index('ix_review_log_user_time')
        batch_op.create_index('ix_review_log_user_time', ['user_id', 'reviewed_at'], unique=False)
    with op.batch_alter_table('card_state', schema=None) as batch_op:
        for name in reversed(COUNTS):
            batch_op.drop_column(name)
