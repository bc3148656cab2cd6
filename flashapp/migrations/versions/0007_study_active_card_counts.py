"""each deck keeps its count of active cards, so the study page need not count them

Revision ID: 0007_study_active_cards
Revises: 0006
Create Date: 2026-11-25 23:10:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007_study_active_cards'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deck', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active_cards', sa.Integer(), server_default='0', nullable=False))
    deck = sa.table('deck', sa.column('id', sa.Integer()), sa.column('active_cards', sa.Integer()))
    card = sa.table('card', sa.column('id', sa.Integer()), sa.column('deck_id', sa.Integer()),
                    sa.column('retired', sa.Boolean()))
    op.execute(deck.update().values(active_cards=sa.select(sa.func.count(card.c.id))
                                    .where(card.c.deck_id == deck.c.id, card.c.retired.is_(False))
                                    .scalar_subquery()))


def downgrade() -> None:
    with op.batch_alter_table('deck', schema=None) as batch_op:
        batch_op.drop_column('active_cards')
