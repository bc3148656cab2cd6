"""extra new cards a student asks for in a deck, for one study day

Revision ID: extra_new_cards_today
Revises: 0010_class_pages_cover
Create Date: 2026-11-26 00:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'extra_new_cards_today'
down_revision = '0010_class_pages_cover'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'extra_new_cards',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('deck_id', sa.Integer(), nullable=False),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['deck_id'], ['deck.id'], name=op.f('fk_extra_new_cards_deck_id_deck')),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_extra_new_cards_user_id_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_extra_new_cards')),
    )
    op.create_index('ix_extra_new_cards_user_deck_time', 'extra_new_cards', ['user_id', 'deck_id', 'granted_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_extra_new_cards_user_deck_time', table_name='extra_new_cards')
    op.drop_table('extra_new_cards')
