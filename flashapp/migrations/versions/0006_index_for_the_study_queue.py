"""index for the study queue

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 20:55:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('card', schema=None) as batch_op:
        batch_op.create_index('ix_card_deck_queue', ['deck_id', 'retired', 'position'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('card', schema=None) as batch_op:
        batch_op.drop_index('ix_card_deck_queue')
