"""Decks written in the browser, as domain use cases: one build path with facts files, keys from a fact's identity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from flashapp import authoring
from flashapp.authoring import FactInput
from flashapp.database import write_transaction
from flashapp.decks import build_decks
from flashapp.decksource import DeckSourceError, parse_deck_text
from flashapp.errors import Invalid, NotFound
from flashapp.generation import build_deck, plan_notes
from flashapp.models import Card, DeckRevision, Role, User
from tests.helpers import T0, deck_text

TEXT = b"# Layers\n\nThe trapezius is a superficial muscle. It moves the shoulder blade.\n"


@pytest.fixture
def teacher(session) -> int:
    with write_transaction(session):
        user = User(username="mrs-k", password_hash="x", role=Role.TEACHER)
        session.add(user)
        session.flush()
        return user.id


def new_document(session, teacher: int):
    return authoring.create_document(session, owner_id=teacher, title="Back layers", citation="Notes",
                                     kind="markdown", data=TEXT, now=T0)


def test_a_published_deck_has_the_keys_its_facts_file_would_have(session, teacher):
    document = new_document(session, teacher)
    first = document.sentences[0]
    authoring.write_fact(session, teacher_id=teacher, document_id=document.id, now=T0,
                         fact=FactInput("item-category", "trapezius", "superficial", sentence_id=first.id))
    authoring.write_fact(session, teacher_id=teacher, document_id=document.id, now=T0,
                         fact=FactInput("cloze", "", "superficial", sentence_id=first.id))
    revision, report = authoring.publish(session, teacher_id=teacher, document_id=document.id, now=T0)
    assert revision is not None and revision.number == 1
    # The same facts written as a facts file plan the same notes and cards.
    facts_file = deck_text(
        slug="back-layers", title="Back layers", source="Notes", sections={"layers": "Layers"},
        relations={name: {k: v for k, v in fields.items() if k != "label"}
                   for name, fields in authoring.PRESET_RELATIONS.items()},
        facts=[{"relation": "item-category", "subject": "trapezius", "object": "superficial", "section": "layers"},
               {"relation": "cloze", "id": "s1-superficial", "subject": first.text, "object": "superficial",
                "section": "layers"}])
    planned = {card.key: card.question for plan in plan_notes(parse_deck_text(facts_file)) for card in plan.cards}
    stored = dict(session.execute(select(Card.key, Card.question)).all())
    assert stored == planned == {
        "back-layers/item-category/trapezius/forward": "Which category does trapezius belong to?",
        "back-layers/cloze/s1-superficial/cloze": "The trapezius is a [...] muscle.",
        "back-layers/item-category/members-of-superficial/grouped": "Which of these belong to superficial?"}
    assert sorted(report.cards_added) == sorted(planned)
    # Building the facts file over the published deck changes nothing: one path, one set of keys.
    assert not build_deck(session, parse_deck_text(facts_file, "documents/1"), now=T0).cards_updated


def test_a_fact_keeps_its_key_when_its_words_change_and_nothing_new_makes_no_revision(session, teacher):
    document = new_document(session, teacher)
    fact = authoring.write_fact(session, teacher_id=teacher, document_id=document.id, now=T0,
                                fact=FactInput("item-function", "trapezuis", "moves the shoulder blade",
                                               sentence_id=document.sentences[1].id))
    authoring.publish(session, teacher_id=teacher, document_id=document.id, now=T0)
    authoring.edit_fact(session, teacher_id=teacher, document_id=document.id, fact_row_id=fact.id, now=T0,
                        fact=FactInput("item-function", "trapezius", "moves the shoulder blade",
                                       sentence_id=document.sentences[1].id))
    later = T0 + timedelta(hours=1)
    revision, report = authoring.publish(session, teacher_id=teacher, document_id=document.id, now=later)
    assert revision is not None and revision.number == 2
    assert report.cards_updated == ["back-layers/item-function/trapezuis/forward"] and not report.cards_added
    assert session.scalar(select(Card.question)) == "What does trapezius do?"
    again, _ = authoring.publish(session, teacher_id=teacher, document_id=document.id, now=later)
    assert again is None
    assert session.scalar(select(DeckRevision.number).order_by(DeckRevision.number.desc())) == 2


def test_another_teachers_document_is_not_found_and_refusals_change_nothing(session, teacher):
    document = new_document(session, teacher)
    with pytest.raises(NotFound):
        authoring.publish(session, teacher_id=teacher + 1, document_id=document.id, now=T0)
    with pytest.raises(Invalid) as refused:
        authoring.publish(session, teacher_id=teacher, document_id=document.id, now=T0)
    assert "at least one fact" in refused.value.message
    with pytest.raises(Invalid) as refused:
        authoring.set_relation_questions(session, teacher_id=teacher, document_id=document.id,
                                         relation="item-function",
                                         questions={"forward": "What does {subject} do to {thing}?"})
    assert refused.value.field == "forward"
    assert "{subject} do?" in authoring.relations_of(document)["item-function"]["forward"]
    with pytest.raises(Invalid) as refused:
        authoring.create_document(session, owner_id=teacher, title="Empty", citation="x", kind="markdown",
                                  data=b"# Heading only\n", now=T0)
    assert refused.value.field == "document"


def test_a_reverse_question_with_two_answers_is_refused_at_the_fact_and_at_publishing(session, teacher):
    document = new_document(session, teacher)
    first, second = (s.id for s in document.sentences)
    authoring.write_fact(session, teacher_id=teacher, document_id=document.id, now=T0,
                         fact=FactInput("term-definition", "trapezius", "a back muscle", sentence_id=first))
    with pytest.raises(Invalid) as refused:
        authoring.write_fact(session, teacher_id=teacher, document_id=document.id, now=T0,
                             fact=FactInput("term-definition", "rhomboid", "A back muscle", sentence_id=second))
    assert refused.value.field == "object" and "would have two answers" in refused.value.message
    # A relation given a reverse question after its facts were written: publishing says which facts clash.
    authoring.write_fact(session, teacher_id=teacher, document_id=document.id, now=T0,
                         fact=FactInput("item-function", "trapezius", "moves the shoulder", sentence_id=second))
    authoring.write_fact(session, teacher_id=teacher, document_id=document.id, now=T0,
                         fact=FactInput("item-function", "rhomboid", "moves the shoulder", sentence_id=second))
    authoring.set_relation_questions(session, teacher_id=teacher, document_id=document.id, relation="item-function",
                                     questions={"forward": "What does {subject} do?",
                                                "reverse": "Which muscle {object}?"})
    with pytest.raises(Invalid) as refused:
        authoring.publish(session, teacher_id=teacher, document_id=document.id, now=T0)
    assert refused.value.message.startswith("The fact “rhomboid”: ")
    assert "is also the object of the fact “trapezius”" in refused.value.message
    assert session.scalar(select(DeckRevision.id)) is None


def test_a_facts_file_may_not_take_over_a_deck_written_in_the_browser(session, teacher, tmp_path):
    document = new_document(session, teacher)
    authoring.write_fact(session, teacher_id=teacher, document_id=document.id, now=T0,
                         fact=FactInput("item-category", "trapezius", "superficial",
                                        sentence_id=document.sentences[0].id))
    authoring.publish(session, teacher_id=teacher, document_id=document.id, now=T0)
    before = dict(session.execute(select(Card.key, Card.question)).all())
    path = tmp_path / "back-layers.yaml"
    path.write_text(deck_text(slug="back-layers", title="Mine now", source="A file", sections={"layers": "Layers"},
                              relations={"general": {"forward": "What about {subject}?"}},
                              facts=[{"relation": "general", "subject": "x", "object": "y", "section": "layers"}]))
    with pytest.raises(DeckSourceError, match="belongs to a deck a teacher writes in the browser"):
        build_decks(session, [path], now=T0 + timedelta(days=1))
    session.rollback()
    assert dict(session.execute(select(Card.key, Card.question)).all()) == before
