"""card states carry their last review as whole microseconds, kept by the database, in both covering indexes

Revision ID: last_review_microseconds
Revises: documents_into_decks
Create Date: 2026-11-26 04:30:00.000000

The class's predicted recall counts the study days since each state's last review. SQLite read
them by parsing every stored time, which cost the dashboard more than the rest of a state's
numbers; an integer column, written by a trigger on every insert and update whoever writes
the row, lets it subtract instead. Existing states get theirs here.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'last_review_microseconds'
down_revision = 'documents_into_decks'
branch_labels = None
depends_on = None

BY_USER_BEFORE = ['user_id', 'due', 'card_id', 'state', 'last_review', 'stability', 'reps', 'again_count', 'lapses']
BY_USER_AFTER = [*BY_USER_BEFORE, 'last_review_us']
BY_CARD_BEFORE = ['card_id', 'user_id', 'last_review', 'stability', 'reps', 'again_count', 'lapses']
BY_CARD_AFTER = ['card_id', 'user_id', 'last_review_us', 'stability', 'reps', 'again_count', 'lapses']

# A copy of the statements in `flashapp.models` as they were when this revision was written.
SQLITE_MICROSECONDS = ("CAST(round((julianday(substr({row}.last_review, 1, 19)) - 2440587.5) * 86400) AS INTEGER) "
                       "* 1000000 + CAST(substr({row}.last_review || '000000', 21, 6) AS INTEGER)")
NEW = SQLITE_MICROSECONDS.format(row="NEW")
TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER card_state_last_review_us_insert AFTER INSERT ON card_state "
        f"WHEN NEW.last_review_us IS NOT ({NEW}) "
        f"BEGIN UPDATE card_state SET last_review_us = ({NEW}) WHERE id = NEW.id; END",
        "CREATE TRIGGER card_state_last_review_us_update AFTER UPDATE OF last_review, last_review_us ON card_state "
        f"WHEN NEW.last_review_us IS NOT ({NEW}) "
        f"BEGIN UPDATE card_state SET last_review_us = ({NEW}) WHERE id = NEW.id; END",
    ],
    "postgresql": [
        "CREATE FUNCTION card_state_last_review_us() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "NEW.last_review_us := (extract(epoch FROM NEW.last_review) * 1000000)::bigint; RETURN NEW; END $$",
        "CREATE TRIGGER card_state_last_review_us BEFORE INSERT OR UPDATE ON card_state "
        "FOR EACH ROW EXECUTE FUNCTION card_state_last_review_us()",
    ],
}
BACKFILL = {
    "sqlite": "UPDATE card_state SET last_review_us = ({}) WHERE last_review IS NOT NULL".format(
        SQLITE_MICROSECONDS.format(row="card_state")),
    "postgresql": "UPDATE card_state SET last_review_us = (extract(epoch FROM last_review) * 1000000)::bigint "
                  "WHERE last_review IS NOT NULL",
}
DROP = {
    "sqlite": ["DROP TRIGGER card_state_last_review_us_insert", "DROP TRIGGER card_state_last_review_us_update"],
    "postgresql": ["DROP TRIGGER card_state_last_review_us ON card_state", "DROP FUNCTION card_state_last_review_us()"],
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('card_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_review_us', sa.BigInteger(), nullable=True))
        batch_op.drop_index('ix_card_state_user_due_cover')
        batch_op.drop_index('ix_card_state_card_cover')
    op.execute(BACKFILL[dialect])
    with op.batch_alter_table('card_state', schema=None) as batch_op:
        batch_op.create_index('ix_card_state_user_due_cover', BY_USER_AFTER, unique=False)
        batch_op.create_index('ix_card_state_card_cover', BY_CARD_AFTER, unique=False)
    for statement in TRIGGERS[dialect]:
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP[op.get_bind().dialect.name]:
        op.execute(statement)
    with op.batch_alter_table('card_state', schema=None) as batch_op:
        batch_op.drop_index('ix_card_state_card_cover')
        batch_op.drop_index('ix_card_state_user_due_cover')
        batch_op.create_index('ix_card_state_user_due_cover', BY_USER_BEFORE, unique=False)
        batch_op.create_index('ix_card_state_card_cover', BY_CARD_BEFORE, unique=False)
        batch_op.drop_column('last_review_us')
