"""PostgreSQL keeps each account's card states per deck counted, as SQLite already does

Revision ID: deck_counts_on_postgresql
Revises: day_index_with_origin
Create Date: 2026-11-28 03:00:00.000000

The roster counted every card state of a class's students on PostgreSQL to give each student's
cards started and last answer: its cost grew with the states of the class. A trigger now keeps
`deck_state_counts` there as SQLite's do, and the roster and the home page read it on both
databases. The counts of the states there are are filled in here. Each review's sums per card
(`card_review_counts`) stay SQLite's alone (see `flashapp.models.CardReviewCounts`).
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'deck_counts_on_postgresql'
down_revision = 'day_index_with_origin'
branch_labels = None
depends_on = None

# A copy of the statements in `flashapp.models` as they were when this revision was written.
LATEST_AGAIN = ("(SELECT max(s.last_review_us) FROM card_state s JOIN card c ON c.id = s.card_id "
                "WHERE s.user_id = kept.user_id AND c.deck_id = kept.deck_id)")
TRIGGERS = [
    "CREATE FUNCTION deck_state_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (OLD.user_id, OLD.card_id) IS DISTINCT FROM "
    "(NEW.user_id, NEW.card_id)) THEN "
    "UPDATE deck_state_counts AS kept SET states = kept.states - 1, last_review_us = CASE "
    "WHEN OLD.last_review_us IS NULL OR OLD.last_review_us < kept.last_review_us THEN kept.last_review_us "
    f"ELSE {LATEST_AGAIN} END "
    "WHERE kept.user_id = OLD.user_id AND kept.deck_id = (SELECT deck_id FROM card WHERE id = OLD.card_id); "
    "END IF; "
    "IF TG_OP = 'DELETE' THEN RETURN NULL; END IF; "
    "IF TG_OP = 'INSERT' OR (OLD.user_id, OLD.card_id) IS DISTINCT FROM (NEW.user_id, NEW.card_id) THEN "
    "INSERT INTO deck_state_counts (user_id, deck_id, states, last_review_us) "
    "SELECT NEW.user_id, card.deck_id, 1, NEW.last_review_us FROM card WHERE card.id = NEW.card_id "
    "ON CONFLICT (user_id, deck_id) DO UPDATE SET states = deck_state_counts.states + 1, "
    "last_review_us = greatest(deck_state_counts.last_review_us, excluded.last_review_us); "
    "ELSE "
    "UPDATE deck_state_counts AS kept SET last_review_us = CASE "
    "WHEN kept.last_review_us IS NULL OR NEW.last_review_us >= kept.last_review_us THEN NEW.last_review_us "
    "WHEN OLD.last_review_us IS NULL OR OLD.last_review_us < kept.last_review_us THEN kept.last_review_us "
    f"ELSE {LATEST_AGAIN} END "
    "WHERE kept.user_id = NEW.user_id AND kept.deck_id = (SELECT deck_id FROM card WHERE id = NEW.card_id); "
    "END IF; RETURN NULL; END $$",
    "CREATE TRIGGER deck_state_counts_insert AFTER INSERT ON card_state FOR EACH ROW "
    "EXECUTE FUNCTION deck_state_counts_keep()",
    "CREATE TRIGGER deck_state_counts_delete AFTER DELETE ON card_state FOR EACH ROW "
    "EXECUTE FUNCTION deck_state_counts_keep()",
    "CREATE TRIGGER deck_state_counts_update AFTER UPDATE ON card_state FOR EACH ROW "
    "WHEN ((OLD.user_id, OLD.card_id, OLD.last_review_us) IS DISTINCT FROM "
    "(NEW.user_id, NEW.card_id, NEW.last_review_us)) EXECUTE FUNCTION deck_state_counts_keep()",
]
BACKFILL = ("INSERT INTO deck_state_counts (user_id, deck_id, states, last_review_us) "
            "SELECT s.user_id, c.deck_id, count(*), max(s.last_review_us) FROM card_state s "
            "JOIN card c ON c.id = s.card_id GROUP BY s.user_id, c.deck_id")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The table is empty here (nothing wrote it on PostgreSQL); the lock keeps any write to a card state
    # out between the count and the triggers.
    op.execute("LOCK TABLE card_state IN SHARE ROW EXCLUSIVE MODE")
    op.execute("DELETE FROM deck_state_counts")
    op.execute(BACKFILL)
    for statement in TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER deck_state_counts_{name} ON card_state")
    op.execute("DROP FUNCTION deck_state_counts_keep()")
    op.execute("DELETE FROM deck_state_counts")
