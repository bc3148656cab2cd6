"""index for the class statistics

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 01:11:38.714024

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.create_index('ix_review_log_class_stats',
                              ['user_id', 'card_id', 'reviewed_at', 'state_before', 'rating'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_index('ix_review_log_class_stats')
