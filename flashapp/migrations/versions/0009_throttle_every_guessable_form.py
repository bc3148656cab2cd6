"""throttle every guessable form: failed attempts by action, name and address

Revision ID: 0009_input_throttling
Revises: fsrs_study_days
Create Date: 2026-11-25 23:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009_input_throttling'
down_revision = 'fsrs_study_days'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The old table only counted log-ins, per name or per address; its rows matter for a minute at
    # most, so it is replaced rather than converted.
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_username_time')
        batch_op.drop_index('ix_login_attempt_address_time')
    op.drop_table('login_attempt')

    op.create_table('failed_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_failed_attempt'))
    )
    with op.batch_alter_table('failed_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_failed_attempt_pair', ['action', 'name', 'address', 'attempted_at'], unique=False)
        batch_op.create_index('ix_failed_attempt_address', ['action', 'address', 'attempted_at'], unique=False)
        batch_op.create_index('ix_failed_attempt_time', ['attempted_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('failed_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_failed_attempt_time')
        batch_op.drop_index('ix_failed_attempt_address')
        batch_op.drop_index('ix_failed_attempt_pair')
    op.drop_table('failed_attempt')

    op.create_table('login_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempt'))
    )
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempt_address_time', ['address', 'attempted_at'], unique=False)
        batch_op.create_index('ix_login_attempt_username_time', ['username', 'attempted_at'], unique=False)
