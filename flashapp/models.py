"""Typed SQLAlchemy models: persistence only, no behaviour beyond small conveniences."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from fsrs import Rating, State
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, WriteOnlyMapped, column_property, mapped_column, relationship
from sqlalchemy.sql import false
from sqlalchemy.sql.elements import BindParameter, ColumnElement

IE = TypeVar("IE", bound=enum.IntEnum)
SE = TypeVar("SE", bound=enum.StrEnum)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite hands datetimes back naive and `fsrs` refuses naive datetimes, so the
    value is normalised to `timezone.utc` on the way in and on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; all datetimes must be timezone-aware UTC")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # On SQLite, the text SQLAlchemy's DATETIME writes ('YYYY-MM-DD HH:MM:SS.ffffff', UTC) in one step
        # rather than two: the study page binds a dozen datetimes per card.
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given; all datetimes must be timezone-aware UTC")
            if value.tzinfo is not timezone.utc:
                value = value.astimezone(timezone.utc)
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | str | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite aggregates such as max() come back as text
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class IntEnumColumn(TypeDecorator[IE]):
    """An IntEnum stored as its plain integer value."""

    impl = Integer
    cache_ok = True

    def __init__(self, enum_type: type[IE]) -> None:
        super().__init__()
        self.enum_type = enum_type

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> IE | None:
        return None if value is None else self.enum_type(value)


class StrEnumColumn(TypeDecorator[SE]):
    """A StrEnum stored as its plain text value."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum_type: type[SE]) -> None:
        super().__init__()
        self.enum_type = enum_type

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(self.enum_type(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> SE | None:
        return None if value is None else self.enum_type(value)


class Base(DeclarativeBase):
    # Named constraints, so migrations can alter them on every backend (SQLite batch mode included).
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class Role(enum.StrEnum):
    TEACHER = "teacher"
    STUDENT = "student"


class ReviewState(enum.IntEnum):
    """A card's state when it was answered, numbered as the FSRS optimisers' `review_state`."""

    NEW = 0
    LEARNING = int(State.Learning)
    REVIEW = int(State.Review)
    RELEARNING = int(State.Relearning)


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(StrEnumColumn(Role), default=Role.STUDENT)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Part of every login session; replacing it ends all of the user's sessions at once.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)
    # Set when a teacher resets the password: the user must choose a new one at the next log-in.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # The student's own desired retention (None: their class's default, else the install's).
    desired_retention: Mapped[float | None] = mapped_column(Float, deferred=True)
    if TYPE_CHECKING:
        class_retention: Mapped[float | None]  # a column property, set below once Classroom and Enrollment exist

    reviews: WriteOnlyMapped[ReviewLog] = relationship(back_populates="user", passive_deletes=True)
    # The login loader reads it in the user's own query (`accounts.session_user`), so a request's
    # scheduler needs no query of its own.
    personal: Mapped[PersonalParameters | None] = relationship(passive_deletes=True)

    @property
    def is_teacher(self) -> bool:
        return self.role == Role.TEACHER

    @property
    def own_parameters(self) -> str | None:
        """The student's own FSRS parameters (JSON), None while the defaults are in use."""
        return None if self.personal is None else self.personal.parameters

    # The four members Flask-Login asks of a user, without importing it here.
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"


class Deck(Base):
    __tablename__ = "deck"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text, default="")
    source_path: Mapped[str] = mapped_column(String(500), default="")
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # How many of its cards are not retired; set by every build, so the study page need not count them.
    active_cards: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The teacher who wrote the deck in the browser; None for a bundled deck built from a facts file.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)

    notes: Mapped[list[Note]] = relationship(back_populates="deck", order_by="Note.position")
    cards: Mapped[list[Card]] = relationship(back_populates="deck", order_by="Card.position")


class Note(Base):
    """One fact: subject, relation, object. Grouped notes gather the facts sharing an object."""

    __tablename__ = "note"

    id: Mapped[int] = mapped_column(primary_key=True)
    deck_id: Mapped[int] = mapped_column(ForeignKey("deck.id"), index=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    relation: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(Text)
    object: Mapped[str] = mapped_column(Text)
    section: Mapped[str] = mapped_column(String(80))
    # The section's title as the facts file declares it (`section` is its name, used in keys and tags).
    section_title: Mapped[str] = mapped_column(Text, default="", server_default="")
    supplemented: Mapped[bool] = mapped_column(Boolean, default=False)
    explanation: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The sentence of the document the fact was written from (browser-written decks only).
    sentence_id: Mapped[int | None] = mapped_column(ForeignKey("document_sentence.id"), index=True)

    deck: Mapped[Deck] = relationship(back_populates="notes")
    sentence: Mapped[DocumentSentence | None] = relationship()
    cards: Mapped[list[Card]] = relationship(back_populates="note", order_by="Card.position")


class Card(Base):
    """One question made from a note by a template."""

    __tablename__ = "card"
    __table_args__ = (
        # A deck's active cards in deck order: counting them, and finding a user's next new card, read
        # only the index.
        Index("ix_card_deck_queue", "deck_id", "retired", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deck_id: Mapped[int] = mapped_column(ForeignKey("deck.id"), index=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("note.id"), index=True)
    key: Mapped[str] = mapped_column(String(320), unique=True)
    template: Mapped[str] = mapped_column(String(40))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    deck: Mapped[Deck] = relationship(back_populates="cards")
    note: Mapped[Note] = relationship(back_populates="cards")


class CardState(Base):
    """A user's FSRS memory state of one card; field names follow `fsrs.Card`."""

    __tablename__ = "card_state"
    __table_args__ = (
        UniqueConstraint("user_id", "card_id"),
        # A user's states by due date (the study queue), carrying every column the teacher's pages read:
        # a class's roster and card list read this index alone, never the table. An answer rewrites this
        # entry anyway (its due date changes), so the extra columns cost it nothing more.
        Index("ix_card_state_user_due_cover", "user_id", "due", "card_id", "state", "last_review", "stability",
              "reps", "again_count", "lapses", "last_review_us"),
        # The states of each card in card order, with what a class's card list reads: a class holding most of
        # the school has its card list summed card by card from this index, with nothing to sort.
        Index("ix_card_state_card_cover", "card_id", "user_id", "last_review_us", "stability", "reps",
              "again_count", "lapses"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"))
    state: Mapped[State] = mapped_column(IntEnumColumn(State))
    step: Mapped[int | None] = mapped_column(Integer)
    stability: Mapped[float | None] = mapped_column(Float)
    difficulty: Mapped[float | None] = mapped_column(Float)
    due: Mapped[datetime] = mapped_column(UTCDateTime)
    last_review: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # `last_review` as whole microseconds since 1970, written by the database itself on every insert and
    # update (`LAST_REVIEW_US_TRIGGERS`), whoever writes the row. The class's predicted recall reads it from
    # the covering indexes: subtracting integers costs SQLite a fraction of parsing each stored time.
    last_review_us: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue(),
                                                       server_onupdate=FetchedValue())
    # Counts of the card's reviews, kept so that the class's numbers per card and per student
    # are read from its states, never from the whole review log; `flashapp check` replays them.
    reps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lapses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # Again on a review-state card
    again_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CardReviewCounts(Base):
    """Every account's review counts of one card, summed: the reps, again_count and lapses of its card states.

    SQLite keeps it itself (`CARD_REVIEW_COUNTS_TRIGGERS`), in the transaction of every write to a card state,
    whoever writes it: the card list of a class holding most of the school takes its sums from here,
    less the few accounts outside the class, rather than adding them up state by state. PostgreSQL
    sums a class's states in its own plan and leaves this table empty: there, writers run side by side, and
    a row per card, written by every student answering that card, would make a class that learns a deck
    in the same order queue behind each other's commits.
    """

    __tablename__ = "card_review_counts"

    card_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    reps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    again_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lapses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class DeckStateCounts(Base):
    """How many card states an account has on one deck (retired cards included), and the latest review among them.

    Both databases keep it themselves (`DECK_STATE_COUNTS_TRIGGERS`), in the transaction of every write to a
    card state, whoever writes it: the roster and the home page read each student's cards started and last
    answer from here rather than from every state of theirs. A row is only ever written by its own student's
    answers (and by bulk changes such as removing an account), so students answering side by side on
    PostgreSQL never wait for one another here. A card never moves to another deck.
    """

    __tablename__ = "deck_state_counts"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    deck_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    states: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_review_us: Mapped[int | None] = mapped_column(BigInteger)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def review_microseconds(last_review: datetime | None) -> int | None:
    """`CardState.last_review_us` for a last review: whole microseconds since 1970, as the database works it out.

    A writer that gives it with the state spares SQLite's trigger its second update of the row.
    """
    return None if last_review is None else (last_review - _EPOCH) // _MICROSECOND


def microseconds_sql(dialect: str, column: str) -> str:
    """SQL giving a stored time `column` (such as 'card_state.last_review') as whole microseconds since 1970.

    What the triggers write into `card_state.last_review_us`; `flashapp check` compares with it. SQLite's
    stored 'YYYY-MM-DD HH:MM:SS.ffffff' exactly: julianday() of the whole seconds (which its double holds
    well within half a second) plus the fraction's digits.
    """
    if dialect == "sqlite":
        return (f"CAST(round((julianday(substr({column}, 1, 19)) - 2440587.5) * 86400) AS INTEGER) "
                f"* 1000000 + CAST(substr({column} || '000000', 21, 6) AS INTEGER)")
    return f"(extract(epoch FROM {column}) * 1000000)::bigint"


_SQLITE_MICROSECONDS = microseconds_sql("sqlite", "NEW.last_review")


def _add_counts(card: str, sign: str) -> str:
    """An upsert adding (or, with sign '-', taking away) a card state's counts to its card's sums."""
    row = "NEW" if sign == "+" else "OLD"
    return (f"INSERT INTO card_review_counts (card_id, reps, again_count, lapses) VALUES ({card}, "
            f"{sign}{row}.reps, {sign}{row}.again_count, {sign}{row}.lapses) ON CONFLICT (card_id) DO UPDATE SET "
            "reps = reps + excluded.reps, again_count = again_count + excluded.again_count, "
            "lapses = lapses + excluded.lapses;")


# The statements that make the database keep what it keeps for the class's numbers, per dialect: created
# with the tables, and by the migrations that added them (each with its own copy). SQLite rebuilds a
# table to change some of its columns, which drops the table's triggers: a migration doing that to
# card_state must create these again (tests/test_migrations.py checks a migrated database keeps them).
# `card_state.last_review_us`: SQLite's triggers run after the write and only when it disagrees with
# `last_review` (so their own update does not run them again); PostgreSQL's sets it on the row written.
LAST_REVIEW_US_TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER card_state_last_review_us_insert AFTER INSERT ON card_state "
        f"WHEN NEW.last_review_us IS NOT ({_SQLITE_MICROSECONDS}) "
        f"BEGIN UPDATE card_state SET last_review_us = ({_SQLITE_MICROSECONDS}) WHERE id = NEW.id; END",
        "CREATE TRIGGER card_state_last_review_us_update AFTER UPDATE OF last_review, last_review_us ON card_state "
        f"WHEN NEW.last_review_us IS NOT ({_SQLITE_MICROSECONDS}) "
        f"BEGIN UPDATE card_state SET last_review_us = ({_SQLITE_MICROSECONDS}) WHERE id = NEW.id; END",
    ],
    "postgresql": [
        "CREATE FUNCTION card_state_last_review_us() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"NEW.last_review_us := {microseconds_sql('postgresql', 'NEW.last_review')}; RETURN NEW; END $$",
        "CREATE TRIGGER card_state_last_review_us BEFORE INSERT OR UPDATE ON card_state "
        "FOR EACH ROW EXECUTE FUNCTION card_state_last_review_us()",
    ],
}
# `card_review_counts`, on SQLite only (see `CardReviewCounts`).
CARD_REVIEW_COUNTS_TRIGGERS = [
    f"CREATE TRIGGER card_review_counts_insert AFTER INSERT ON card_state BEGIN {_add_counts('NEW.card_id', '+')} END",
    f"CREATE TRIGGER card_review_counts_delete AFTER DELETE ON card_state BEGIN {_add_counts('OLD.card_id', '-')} END",
    "CREATE TRIGGER card_review_counts_update AFTER UPDATE OF reps, again_count, lapses ON card_state "
    "WHEN OLD.card_id = NEW.card_id BEGIN INSERT INTO card_review_counts (card_id, reps, again_count, lapses) "
    "VALUES (NEW.card_id, NEW.reps - OLD.reps, NEW.again_count - OLD.again_count, NEW.lapses - OLD.lapses) "
    "ON CONFLICT (card_id) DO UPDATE SET reps = reps + excluded.reps, again_count = again_count + "
    "excluded.again_count, lapses = lapses + excluded.lapses; END",
    "CREATE TRIGGER card_review_counts_move AFTER UPDATE OF card_id ON card_state "
    f"WHEN OLD.card_id IS NOT NEW.card_id BEGIN {_add_counts('OLD.card_id', '-')} "
    f"{_add_counts('NEW.card_id', '+')} END",
]
# `deck_state_counts`, on both databases (see `DeckStateCounts`). On SQLite a state's own last review is read
# from its row: SQLite's triggers on one write run in no set order, and the one filling in `last_review_us` may
# come later (its own update then brings the latest review up to date); PostgreSQL's runs after the row is
# written, whose `last_review_us` its BEFORE trigger has set. The latest review is looked for again among the
# account's states of the deck only when the state that held it goes back or goes away.
_DECK_OF = "(SELECT deck_id FROM card WHERE id = {row}.card_id)"
_LATEST_AGAIN = ("(SELECT max(s.last_review_us) FROM card_state s JOIN card c ON c.id = s.card_id "
                 "WHERE s.user_id = deck_state_counts.user_id AND c.deck_id = deck_state_counts.deck_id)")
_STATE_ADDED = ("INSERT INTO deck_state_counts (user_id, deck_id, states, last_review_us) "
                "SELECT NEW.user_id, card.deck_id, 1, (SELECT last_review_us FROM card_state WHERE id = NEW.id) "
                "FROM card WHERE card.id = NEW.card_id ON CONFLICT (user_id, deck_id) DO UPDATE SET "
                "states = states + 1, last_review_us = max(coalesce(last_review_us, excluded.last_review_us), "
                "coalesce(excluded.last_review_us, last_review_us));")
_STATE_GONE = ("UPDATE deck_state_counts SET states = states - 1, last_review_us = CASE "
               f"WHEN OLD.last_review_us < last_review_us THEN last_review_us ELSE {_LATEST_AGAIN} END "
               f"WHERE user_id = OLD.user_id AND deck_id = {_DECK_OF.format(row='OLD')};")
_SQLITE_DECK_STATE_COUNTS = [
    f"CREATE TRIGGER deck_state_counts_insert AFTER INSERT ON card_state BEGIN {_STATE_ADDED} END",
    f"CREATE TRIGGER deck_state_counts_delete AFTER DELETE ON card_state BEGIN {_STATE_GONE} END",
    "CREATE TRIGGER deck_state_counts_review AFTER UPDATE OF last_review_us ON card_state "
    "WHEN OLD.user_id = NEW.user_id AND OLD.card_id = NEW.card_id "
    "AND OLD.last_review_us IS NOT NEW.last_review_us BEGIN UPDATE deck_state_counts SET last_review_us = CASE "
    "WHEN NEW.last_review_us >= last_review_us THEN NEW.last_review_us "
    f"WHEN OLD.last_review_us < last_review_us THEN last_review_us ELSE {_LATEST_AGAIN} END "
    f"WHERE user_id = NEW.user_id AND deck_id = {_DECK_OF.format(row='NEW')}; END",
    "CREATE TRIGGER deck_state_counts_move AFTER UPDATE OF user_id, card_id ON card_state "
    f"WHEN OLD.user_id IS NOT NEW.user_id OR OLD.card_id IS NOT NEW.card_id BEGIN {_STATE_GONE} {_STATE_ADDED} END",
]
# PostgreSQL: one function for the three kinds of write, run after each row's own BEFORE trigger; an update only
# when the row's account, card or last review changed (a WHEN clause sees the row as written, which an
# `UPDATE OF` column list would not: the answer sets `last_review`, and the BEFORE trigger `last_review_us`).
_PG_LATEST_AGAIN = ("(SELECT max(s.last_review_us) FROM card_state s JOIN card c ON c.id = s.card_id "
                    "WHERE s.user_id = kept.user_id AND c.deck_id = kept.deck_id)")
_PG_DECK_STATE_COUNTS = [
    "CREATE FUNCTION deck_state_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (OLD.user_id, OLD.card_id) IS DISTINCT FROM "
    "(NEW.user_id, NEW.card_id)) THEN "
    "UPDATE deck_state_counts AS kept SET states = kept.states - 1, last_review_us = CASE "
    "WHEN OLD.last_review_us IS NULL OR OLD.last_review_us < kept.last_review_us THEN kept.last_review_us "
    f"ELSE {_PG_LATEST_AGAIN} END "
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
    f"ELSE {_PG_LATEST_AGAIN} END "
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
DECK_STATE_COUNTS_TRIGGERS = {"sqlite": _SQLITE_DECK_STATE_COUNTS, "postgresql": _PG_DECK_STATE_COUNTS}
DATABASE_KEPT = {"sqlite": LAST_REVIEW_US_TRIGGERS["sqlite"] + CARD_REVIEW_COUNTS_TRIGGERS + _SQLITE_DECK_STATE_COUNTS,
                 "postgresql": LAST_REVIEW_US_TRIGGERS["postgresql"] + _PG_DECK_STATE_COUNTS}


@event.listens_for(Base.metadata, "after_create")
def _create_triggers(_metadata: Any, connection: Connection, **_: Any) -> None:
    for statement in DATABASE_KEPT.get(connection.dialect.name, []):
        connection.exec_driver_sql(statement)


class ReviewOrigin(enum.StrEnum):
    """Where an answer was given: in the app, or in Anki and brought back from an Anki export."""

    APP = "app"
    ANKI = "anki"


class ReviewLog(Base):
    """One answer. The source of truth: replaying a card's logs reproduces its state."""

    __tablename__ = "review_log"
    __table_args__ = (
        # Also covers a student's answers in a time window (the teacher's 7- and 30-day numbers) and, with
        # the last interval, every answer the statistics page counts; with the origin, the new cards the
        # student was given in the app today (where the study page's walk for the next new card may start).
        Index("ix_review_log_user_time", "user_id", "reviewed_at", "card_id", "state_before", "rating",
              "last_interval", "origin"),
        # One user's reviews of one card in order: replaying a card, undo, `flashapp check`.
        Index("ix_review_log_class_stats", "user_id", "card_id", "reviewed_at", "state_before", "rating"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), index=True)
    rating: Mapped[Rating] = mapped_column(IntEnumColumn(Rating))
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    state_before: Mapped[ReviewState] = mapped_column(IntEnumColumn(ReviewState))
    # When this answer left the card due: as scheduled, or as the student later chose to reschedule it
    # (replaying the log takes each card's due from its last answer, so a reschedule replays too).
    due: Mapped[datetime] = mapped_column(UTCDateTime)
    # The due this answer scheduled, kept when a reschedule moved `due` (None: never moved).
    due_as_answered: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    origin: Mapped[ReviewOrigin] = mapped_column(StrEnumColumn(ReviewOrigin), default=ReviewOrigin.APP,
                                                 server_default=ReviewOrigin.APP.value)
    # The interval the card had when this answer was given, as Anki's review log keeps it (`lastIvl`): what
    # the card's previous answer scheduled, in whole study days of the student's when it fell due on a later
    # study day, else as minus its seconds (a learning step); 0 for the card's first answer. Written with the
    # answer (`scheduling.anki_interval`), so that the statistics tell young from mature reviews without
    # pairing answers; `flashapp check` compares it with the log.
    last_interval: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    user: Mapped[User] = relationship(back_populates="reviews")
    card: Mapped[Card] = relationship()

    @property
    def interval(self) -> timedelta:
        """The interval this answer scheduled."""
        return (self.due_as_answered or self.due) - self.reviewed_at


class PersonalParameters(Base):
    """A student's own FSRS parameters, fitted from their review history, and the latest fit tried.

    `parameters` is None while the defaults are in use. The scores are those of the time-series
    split the parameters in use won: `before` the parameters they replaced, `after` their own.
    """

    __tablename__ = "personal_parameters"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    parameters: Mapped[str | None] = mapped_column(Text)  # JSON list of the 21 weights
    fitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_count: Mapped[int | None] = mapped_column(Integer)
    log_loss_before: Mapped[float | None] = mapped_column(Float)
    rmse_before: Mapped[float | None] = mapped_column(Float)
    log_loss_after: Mapped[float | None] = mapped_column(Float)
    rmse_after: Mapped[float | None] = mapped_column(Float)
    # The latest fit, kept or not: the next one waits until the history has grown from this count.
    tried_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tried_review_count: Mapped[int] = mapped_column(Integer)
    tried_outcome: Mapped[str] = mapped_column(String(200), default="")


class FailedAttempt(Base):
    """A failed try at a guessable form (log-in, a join code, the current password), kept in the database
    so that throttling holds across worker processes. `name` is the account tried, lower-cased."""

    __tablename__ = "failed_attempt"
    __table_args__ = (
        Index("ix_failed_attempt_pair", "action", "name", "address", "attempted_at"),
        Index("ix_failed_attempt_address", "action", "address", "attempted_at"),
        Index("ix_failed_attempt_time", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Classroom(Base):
    """A teacher's class: students join it with its code; decks are assigned to it."""

    __tablename__ = "classroom"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    teacher_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    join_code: Mapped[str] = mapped_column(String(12), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The class's default desired retention for its students (None: the install's).
    desired_retention: Mapped[float | None] = mapped_column(Float)

    teacher: Mapped[User] = relationship()
    enrollments: Mapped[list[Enrollment]] = relationship(back_populates="classroom", cascade="all, delete-orphan")
    assignments: Mapped[list[Assignment]] = relationship(back_populates="classroom", cascade="all, delete-orphan",
                                                         order_by="Assignment.id")


class Enrollment(Base):
    """A student's membership of a class. Leaving a class keeps the student's history."""

    __tablename__ = "enrollment"
    __table_args__ = (UniqueConstraint("classroom_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    classroom_id: Mapped[int] = mapped_column(ForeignKey("classroom.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    classroom: Mapped[Classroom] = relationship(back_populates="enrollments")
    user: Mapped[User] = relationship()


# A student's class default desired retention (the highest of their classes'). Deferred: the login
# loader asks for it in the user's own query (`accounts.session_user`).
User.class_retention = column_property(
    select(func.max(Classroom.desired_retention))
    .join(Enrollment, Enrollment.classroom_id == Classroom.id)
    .where(Enrollment.user_id == User.id)
    .correlate_except(Classroom, Enrollment)
    .scalar_subquery(), deferred=True)


class Assignment(Base):
    """A deck assigned to a class, optionally with a date by which every card should be introduced."""

    __tablename__ = "assignment"
    __table_args__ = (UniqueConstraint("classroom_id", "deck_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    classroom_id: Mapped[int] = mapped_column(ForeignKey("classroom.id", ondelete="CASCADE"))
    deck_id: Mapped[int] = mapped_column(ForeignKey("deck.id"), index=True)
    target_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    classroom: Mapped[Classroom] = relationship(back_populates="assignments")
    deck: Mapped[Deck] = relationship()


class ReviewAhead(Base):
    """A student's choice to review ahead in one deck: review cards due before `until` are open today.

    Each request is a row; it counts for the study day `granted_at` falls in (Anki's "review ahead").
    """

    __tablename__ = "review_ahead"
    __table_args__ = (Index("ix_review_ahead_user_deck_time", "user_id", "deck_id", "granted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    deck_id: Mapped[int] = mapped_column(ForeignKey("deck.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime)


class ExtraNewCards(Base):
    """More new cards a student asked for in one deck, on top of the daily limit, for the study day it was asked.

    Each request is a row; the study day it counts for is the one `granted_at` falls in.
    """

    __tablename__ = "extra_new_cards"
    __table_args__ = (Index("ix_extra_new_cards_user_deck_time", "user_id", "deck_id", "granted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    deck_id: Mapped[int] = mapped_column(ForeignKey("deck.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)


class Document(Base):
    """A teacher's document (pasted or uploaded), the source of a deck written in the browser."""

    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    # The deck's slug, chosen when the document is stored and kept (it is part of every card's key).
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    citation: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(String(200), default="")
    # The relations the teacher writes facts with: JSON {name: {"label", "forward", "reverse", "answer", ...}}.
    relations: Mapped[str] = mapped_column(Text)
    # The suggested facts the teacher dropped, by their keys: JSON list.
    dropped_suggestions: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the deck is first published.
    deck_id: Mapped[int | None] = mapped_column(ForeignKey("deck.id"), unique=True)

    deck: Mapped[Deck | None] = relationship()
    sections: Mapped[list[DocumentSection]] = relationship(back_populates="document",
                                                          order_by="DocumentSection.position")
    sentences: Mapped[list[DocumentSentence]] = relationship(back_populates="document",
                                                            order_by="DocumentSentence.position")
    facts: Mapped[list[AuthoredFact]] = relationship(back_populates="document", order_by="AuthoredFact.id")
    revisions: Mapped[list[DeckRevision]] = relationship(back_populates="document", order_by="DeckRevision.number")


class DocumentSection(Base):
    """A part of a document under one heading."""

    __tablename__ = "document_section"
    __table_args__ = (UniqueConstraint("document_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(80))  # the section's key part in the deck
    title: Mapped[str] = mapped_column(String(200))

    document: Mapped[Document] = relationship(back_populates="sections")


class DocumentSentence(Base):
    """One sentence of a document; its anchor (s1, s2, ...) addresses it on the document's page."""

    __tablename__ = "document_sentence"
    __table_args__ = (UniqueConstraint("document_id", "anchor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id", ondelete="CASCADE"))
    section_id: Mapped[int] = mapped_column(ForeignKey("document_section.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    # Sentences of one paragraph share its number, so the page can show them as the paragraph they were.
    paragraph: Mapped[int] = mapped_column(Integer)
    anchor: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)

    document: Mapped[Document] = relationship(back_populates="sentences")
    section: Mapped[DocumentSection] = relationship()


class AuthoredFact(Base):
    """A fact a teacher wrote against a document; published into the deck as a FactSpec."""

    __tablename__ = "authored_fact"
    __table_args__ = (UniqueConstraint("document_id", "relation", "fact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id", ondelete="CASCADE"), index=True)
    sentence_id: Mapped[int | None] = mapped_column(ForeignKey("document_sentence.id"), index=True)
    relation: Mapped[str] = mapped_column(String(80))
    # The fact's identity in its key, chosen when it is first written and never changed.
    fact_id: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(Text)
    object: Mapped[str] = mapped_column(Text)
    explanation: Mapped[str] = mapped_column(Text, default="")
    supplemented: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    document: Mapped[Document] = relationship(back_populates="facts")
    sentence: Mapped[DocumentSentence | None] = relationship()


class DeckRevision(Base):
    """One publication of a browser-written deck and what it changed."""

    __tablename__ = "deck_revision"
    __table_args__ = (UniqueConstraint("document_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    facts: Mapped[int] = mapped_column(Integer)
    cards_added: Mapped[int] = mapped_column(Integer)
    cards_updated: Mapped[int] = mapped_column(Integer)
    cards_retired: Mapped[int] = mapped_column(Integer)

    document: Mapped[Document] = relationship(back_populates="revisions")


def deck_visible_to(user_id: int | BindParameter[int]) -> ColumnElement[bool]:
    """Whether a deck is one this user may see and study: a bundled deck (no owner), their own, or one
    assigned to a class they are in. `user_id` may be a bound parameter, for a statement built once."""
    assigned = (select(Assignment.deck_id).join(Enrollment, Enrollment.classroom_id == Assignment.classroom_id)
                .where(Enrollment.user_id == user_id))
    return or_(Deck.owner_id.is_(None), Deck.owner_id == user_id, Deck.id.in_(assigned))
