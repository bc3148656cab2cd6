"""card states carry their last review as whole microseconds; SQLite keeps each card's review counts summed, and
each account's states per deck counted

Revision ID: class_numbers_kept
Revises: review_last_interval
Create Date: 2026-11-26 04:30:00.000000

The class's predicted recall counts the study days since each state's last review. SQLite read
them by parsing every stored time, which cost the dashboard more than the rest of a state's
numbers: an integer column, written by a trigger on every insert and update whoever writes the
row, lets it subtract instead; both covering indexes carry it. On SQLite, a class holding most
of the school also takes each card's review counts from a table of sums its triggers keep,
rather than adding them up state by state, and the roster takes each student's cards started and
last answer from per-deck counts kept the same way (PostgreSQL reads the states in its own plans
and leaves both tables empty). Existing states get their numbers here.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'class_numbers_kept'
down_revision = 'review_last_interval'
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
UPSERT = ("INSERT INTO card_review_counts (card_id, reps, again_count, lapses) VALUES ({card}, {reps}, {again}, "
          "{lapses}) ON CONFLICT (card_id) DO UPDATE SET reps = reps + excluded.reps, again_count = again_count + "
          "excluded.again_count, lapses = lapses + excluded.lapses;")
ADD_NEW = UPSERT.format(card="NEW.card_id", reps="+NEW.reps", again="+NEW.again_count", lapses="+NEW.lapses")
TAKE_OLD = UPSERT.format(card="OLD.card_id", reps="-OLD.reps", again="-OLD.again_count", lapses="-OLD.lapses")
DECK_OF = "(SELECT deck_id FROM card WHERE id = {row}.card_id)"
LATEST_AGAIN = ("(SELECT max(s.last_review_us) FROM card_state s JOIN card c ON c.id = s.card_id "
                "WHERE s.user_id = deck_state_counts.user_id AND c.deck_id = deck_state_counts.deck_id)")
STATE_ADDED = ("INSERT INTO deck_state_counts (user_id, deck_id, states, last_review_us) "
               "SELECT NEW.user_id, card.deck_id, 1, (SELECT last_review_us FROM card_state WHERE id = NEW.id) "
               "FROM card WHERE card.id = NEW.card_id ON CONFLICT (user_id, deck_id) DO UPDATE SET "
               "states = states + 1, last_review_us = max(coalesce(last_review_us, excluded.last_review_us), "
               "coalesce(excluded.last_review_us, last_review_us));")
STATE_GONE = ("UPDATE deck_state_counts SET states = states - 1, last_review_us = CASE "
              f"WHEN OLD.last_review_us < last_review_us THEN last_review_us ELSE {LATEST_AGAIN} END "
              f"WHERE user_id = OLD.user_id AND deck_id = {DECK_OF.format(row='OLD')};")
TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER card_state_last_review_us_insert AFTER INSERT ON card_state "
        f"WHEN NEW.last_review_us IS NOT ({NEW}) "
        f"BEGIN UPDATE card_state SET last_review_us = ({NEW}) WHERE id = NEW.id; END",
        "CREATE TRIGGER card_state_last_review_us_update AFTER UPDATE OF last_review, last_review_us ON card_state "
        f"WHEN NEW.last_review_us IS NOT ({NEW}) "
        f"BEGIN UPDATE card_state SET last_review_us = ({NEW}) WHERE id = NEW.id; END",
        f"CREATE TRIGGER card_review_counts_insert AFTER INSERT ON card_state BEGIN {ADD_NEW} END",
        f"CREATE TRIGGER card_review_counts_delete AFTER DELETE ON card_state BEGIN {TAKE_OLD} END",
        "CREATE TRIGGER card_review_counts_update AFTER UPDATE OF reps, again_count, lapses ON card_state "
        "WHEN OLD.card_id = NEW.card_id BEGIN " + UPSERT.format(
            card="NEW.card_id", reps="NEW.reps - OLD.reps", again="NEW.again_count - OLD.again_count",
            lapses="NEW.lapses - OLD.lapses") + " END",
        "CREATE TRIGGER card_review_counts_move AFTER UPDATE OF card_id ON card_state "
        f"WHEN OLD.card_id IS NOT NEW.card_id BEGIN {TAKE_OLD} {ADD_NEW} END",
        f"CREATE TRIGGER deck_state_counts_insert AFTER INSERT ON card_state BEGIN {STATE_ADDED} END",
        f"CREATE TRIGGER deck_state_counts_delete AFTER DELETE ON card_state BEGIN {STATE_GONE} END",
        "CREATE TRIGGER deck_state_counts_review AFTER UPDATE OF last_review_us ON card_state "
        "WHEN OLD.user_id = NEW.user_id AND OLD.card_id = NEW.card_id "
        "AND OLD.last_review_us IS NOT NEW.last_review_us BEGIN UPDATE deck_state_counts SET last_review_us = CASE "
        "WHEN NEW.last_review_us >= last_review_us THEN NEW.last_review_us "
        f"WHEN OLD.last_review_us < last_review_us THEN last_review_us ELSE {LATEST_AGAIN} END "
        f"WHERE user_id = NEW.user_id AND deck_id = {DECK_OF.format(row='NEW')}; END",
        "CREATE TRIGGER deck_state_counts_move AFTER UPDATE OF user_id, card_id ON card_state "
        f"WHEN OLD.user_id IS NOT NEW.user_id OR OLD.card_id IS NOT NEW.card_id BEGIN {STATE_GONE} {STATE_ADDED} END",
    ],
    "postgresql": [
        "CREATE FUNCTION card_state_last_review_us() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "NEW.last_review_us := (extract(epoch FROM NEW.last_review) * 1000000)::bigint; RETURN NEW; END $$",
        "CREATE TRIGGER card_state_last_review_us BEFORE INSERT OR UPDATE ON card_state "
        "FOR EACH ROW EXECUTE FUNCTION card_state_last_review_us()",
    ],
}
BACKFILL = {
    "sqlite": [
        "UPDATE card_state SET last_review_us = ({}) WHERE last_review IS NOT NULL".format(
            SQLITE_MICROSECONDS.format(row="card_state")),
        "INSERT INTO card_review_counts (card_id, reps, again_count, lapses) "
        "SELECT card_id, sum(reps), sum(again_count), sum(lapses) FROM card_state GROUP BY card_id",
        "INSERT INTO deck_state_counts (user_id, deck_id, states, last_review_us) "
        "SELECT s.user_id, c.deck_id, count(*), max(s.last_review_us) FROM card_state s "
        "JOIN card c ON c.id = s.card_id GROUP BY s.user_id, c.deck_id",
    ],
    "postgresql": [
        "UPDATE card_state SET last_review_us = (extract(epoch FROM last_review) * 1000000)::bigint "
        "WHERE last_review IS NOT NULL",
    ],
}
DROP = {
    "sqlite": ["DROP TRIGGER card_state_last_review_us_insert", "DROP TRIGGER card_state_last_review_us_update",
               "DROP TRIGGER card_review_counts_insert", "DROP TRIGGER card_review_counts_delete",
               "DROP TRIGGER card_review_counts_update", "DROP TRIGGER card_review_counts_move",
               "DROP TRIGGER deck_state_counts_insert", "DROP TRIGGER deck_state_counts_delete",
               "DROP TRIGGER deck_state_counts_review", "DROP TRIGGER deck_state_counts_move"],
    "postgresql": ["DROP TRIGGER card_state_last_review_us ON card_state", "DROP FUNCTION card_state_last_review_us()"],
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        'card_review_counts',
        sa.Column('card_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('reps', sa.Integer(), server_default='0', nullable=False),
        sa.Column('again_count', sa.Integer(), server_default='0', nullable=False),
        sa.Column('lapses', sa.Integer(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('card_id', name=op.f('pk_card_review_counts')),
    )
    op.create_table(
        'deck_state_counts',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('deck_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('states', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_review_us', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_deck_state_counts_user_id_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'deck_id', name=op.f('pk_deck_state_counts')),
    )
    with op.batch_alter_table('card_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_review_us', sa.BigInteger(), nullable=True))
        batch_op.drop_index('ix_card_state_user_due_cover')
        batch_op.drop_index('ix_card_state_card_cover')
    for statement in BACKFILL[dialect]:
        op.execute(statement)
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
    op.drop_table('deck_state_counts')
    op.drop_table('card_review_counts')
