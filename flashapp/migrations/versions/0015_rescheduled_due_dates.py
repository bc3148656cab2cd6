"""a review keeps the due it scheduled when the student reschedules their cards

Revision ID: rescheduled_due_dates
Revises: section_titles_on_notes
Create Date: 2026-11-26 02:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'rescheduled_due_dates'
down_revision = 'section_titles_on_notes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_as_answered', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_column('due_as_answered')
