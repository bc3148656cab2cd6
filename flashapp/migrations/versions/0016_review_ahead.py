"""a student's choice to review ahead in a deck, for one study day

Revision ID: review_ahead_today
Revises: rescheduled_due_dates
Create Date: 2026-11-26 02:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'review_ahead_today'
down_revision = 'rescheduled_due_dates'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'review_ahead',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('deck_id', sa.Integer(), nullable=False),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('until', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['deck_id'], ['deck.id'], name=op.f('fk_review_ahead_deck_id_deck')),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_review_ahead_user_id_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review_ahead')),
    )
    op.create_index('ix_review_ahead_user_deck_time', 'review_ahead', ['user_id', 'deck_id', 'granted_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_review_ahead_user_deck_time', table_name='review_ahead')
    op.drop_table('review_ahead')
