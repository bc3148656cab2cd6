"""where each answer was given: in the app, or in Anki and brought back

Revision ID: review_origin
Revises: review_ahead_today
Create Date: 2026-11-26 02:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'review_origin'
down_revision = 'review_ahead_today'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every answer so far was given in the app.
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=16), server_default='app', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('review_log', schema=None) as batch_op:
        batch_op.drop_column('origin')
