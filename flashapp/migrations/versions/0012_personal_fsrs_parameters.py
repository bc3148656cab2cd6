"""each student's own FSRS parameters and desired retention, and a class default retention

Revision ID: personal_fsrs_parameters
Revises: extra_new_cards_today
Create Date: 2026-11-26 00:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'personal_fsrs_parameters'
down_revision = 'extra_new_cards_today'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'personal_parameters',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('parameters', sa.Text(), nullable=True),
        sa.Column('fitted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('review_count', sa.Integer(), nullable=True),
        sa.Column('log_loss_before', sa.Float(), nullable=True),
        sa.Column('rmse_before', sa.Float(), nullable=True),
        sa.Column('log_loss_after', sa.Float(), nullable=True),
        sa.Column('rmse_after', sa.Float(), nullable=True),
        sa.Column('tried_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('tried_review_count', sa.Integer(), nullable=False),
        sa.Column('tried_outcome', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_personal_parameters_user_id_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_personal_parameters')),
    )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('desired_retention', sa.Float(), nullable=True))
    with op.batch_alter_table('classroom', schema=None) as batch_op:
        batch_op.add_column(sa.Column('desired_retention', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('classroom', schema=None) as batch_op:
        batch_op.drop_column('desired_retention')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('desired_retention')
    op.drop_table('personal_parameters')
