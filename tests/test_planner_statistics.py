"""`flashapp init` on an existing database leaves the query planner fresh statistics."""

from __future__ import annotations

from sqlalchemy import text

from flashapp import db
from flashapp.accounts import register_user
from flashapp.models import CardState
from tests.helpers import FAST_HASH_METHOD, T0, build_numbers_deck, upgrade_database_in


def _card_state_statistics(connection) -> int:
    if connection.dialect.name == "sqlite":
        tables = {row[0] for row in connection.execute(text("SELECT name FROM sqlite_master"))}
        if "sqlite_stat1" not in tables:
            return 0
        return connection.execute(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'card_state'")).scalar_one()
    return connection.execute(text("SELECT count(*) FROM pg_stats WHERE tablename = 'card_state'")).scalar_one()


def test_upgrading_an_existing_database_analyses_its_tables(app):
    with app.app_context():
        session = db.session()
        deck = build_numbers_deck(session, count=3)
        student = register_user(session, username="ann", password="long enough", password_method=FAST_HASH_METHOD)
        session.flush()
        for card in deck.cards:
            session.add(CardState(user_id=student.id, card_id=card.id, state=2, step=None, stability=3.0,
                                  difficulty=5.0, due=T0, last_review=T0, reps=1))
        session.commit()
        db.session.remove()
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM card_state")).scalar_one() == 3
            assert _card_state_statistics(connection) == 0
    upgrade_database_in(app)
    with app.app_context(), db.engine.connect() as connection:
        assert _card_state_statistics(connection) > 0
