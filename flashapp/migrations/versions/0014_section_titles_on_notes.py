"""each note keeps the title of its document section, so exports can name the section

Revision ID: section_titles_on_notes
Revises: review_log_card_index_due
Create Date: 2026-11-26 01:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'section_titles_on_notes'
down_revision = 'review_log_card_index_due'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty until the deck's next build (`flashapp init` rebuilds every deck file); exports fall
    # back to the section's name meanwhile.
    with op.batch_alter_table('note', schema=None) as batch_op:
        batch_op.add_column(sa.Column('section_title', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('note', schema=None) as batch_op:
        batch_op.drop_column('section_title')
