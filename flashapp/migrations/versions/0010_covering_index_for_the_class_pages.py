"""covering indexes on card states for the class's pages

Revision ID: 0010_class_pages_cover
Revises: 0009_input_throttling
Create Date: 2026-11-25 23:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010_class_pages_cover'
down_revision = '0009_input_throttling'
branch_labels = None
depends_on = None

BY_USER = ['user_id', 'due', 'card_id', 'state', 'last_review', 'stability', 'reps', 'again_count', 'lapses']
BY_CARD = ['card_id', 'user_id', 'last_review', 'stability', 'reps', 'again_count', 'lapses']


def upgrade() -> None:
    with op.batch_alter_table('card_state', schema=None) as batch_op:
        batch_op.drop_index('ix_card_state_user_due')
        batch_op.drop_index('ix_card_state_card_id')
        batch_op.create_index('ix_card_state_user_due_cover', BY_USER, unique=False)
        batch_op.create_index('ix_card_state_card_cover', BY_CARD, unique=False)


def downgrade() -> None:
    with op.batch_alter_table('card_state', schema=None) as batch_op:
        batch_op.drop_index('ix_card_state_card_cover')
        batch_op.drop_index('ix_card_state_user_due_cover')
        batch_op.create_index('ix_card_state_card_id', ['card_id'], unique=False)
        batch_op.create_index('ix_card_state_user_due', ['user_id', 'due'], unique=False)
