"""Measurement: how many candidate facts found in a document are right, and how many of a deck's facts they find.

Reads a document (plain text or markdown), splits it into sections and sentences
(`document_sentences`: markdown headings, or heading-like lines when it has none), finds
candidates (`flashapp.candidates.find_candidates`) and compares them with the facts of a
deck (by default the bundled `decks/back-muscles.yaml`, whose article is the document to
give it):

- A candidate is **right** when some fact of the deck has the candidate's kind (see
  `KIND_OF_RELATION`: a deck relation's kind, as a teacher would map it to a preset), the
  candidate's subject holds every word of the fact's subject, and the candidate's object
  and one of the fact's objects (a list's item, or the whole list) match by `same_words`.
  Words are compared by `word_set`: lower case, without punctuation, filler words
  (articles, possessives, common prepositions), plurals and -ing/-ed endings;
  `same_words` matches when one text's words are all among the other's. So the candidate
  subject "superficial (extrinsic) back muscles" is the fact subject "superficial", while
  a candidate subject "inferior" is not "serratus posterior inferior".
- **Subject only**: kind and subject match a fact but the object is worded otherwise;
  printed beside the fact's object for a person to judge.
- Every other candidate **matches nothing**; printed for a person to judge.
- A fact the document states is one not marked `supplemented`. It is **found** when a right
  candidate matches it. Facts of a relation without a kind (one-off questions such as
  `general`) cannot be found by these rules and are counted apart.

    .venv/bin/python bench/candidates.py /path/to/article.txt [--deck decks/back-muscles.yaml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flashapp.candidates import Candidate, document_sentences, find_candidates, same_words, word_set
from flashapp.decksource import FactSpec, load_deck

REPO = Path(__file__).resolve().parent.parent

# The bundled deck's relations by the preset each is an instance of.
KIND_OF_RELATION = {
    "layer": "item-category",
    "region": "item-category",
    "layer-role": "item-function",
    "function": "item-function",
    "therapy": "item-function",
    "layer-name": "term-definition",
    "action": "situation-action",
    "prevention": "situation-action",
}


def fact_matches(candidate: Candidate, fact: FactSpec, *, objects: bool) -> bool:
    if KIND_OF_RELATION.get(fact.relation) != candidate.relation:
        return False
    if not word_set(candidate.subject) >= word_set(fact.subject):
        return False
    if not objects:
        return True
    return any(same_words(candidate.object, text) for text in (*fact.objects, fact.object_text))


def describe(candidate: Candidate) -> str:
    return f"[{candidate.relation}] {candidate.subject} -> {candidate.object}   ({candidate.reason})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("document", type=Path)
    parser.add_argument("--deck", type=Path, default=REPO / "decks" / "back-muscles.yaml")
    args = parser.parse_args()

    text = args.document.read_text(encoding="utf-8")
    pairs = document_sentences(text)
    candidates = find_candidates(pairs)
    deck = load_deck(args.deck)
    stated = [fact for fact in deck.facts if not fact.supplemented]
    with_kind = [fact for fact in stated if fact.relation in KIND_OF_RELATION]

    right: list[tuple[Candidate, list[FactSpec]]] = []
    subject_only: list[tuple[Candidate, list[FactSpec]]] = []
    nothing: list[Candidate] = []
    for candidate in candidates:
        full = [fact for fact in deck.facts if fact_matches(candidate, fact, objects=True)]
        partial = [fact for fact in deck.facts if fact_matches(candidate, fact, objects=False)]
        if full:
            right.append((candidate, full))
        elif partial:
            subject_only.append((candidate, partial))
        else:
            nothing.append(candidate)
    found = {id(fact) for _, facts in right for fact in facts if not fact.supplemented}
    found_subject = {id(fact) for _, facts in subject_only for fact in facts if not fact.supplemented} - found

    print(f"document: {args.document.name}: {len({title for title, _ in pairs})} section(s) with sentences, "
          f"{len(pairs)} sentences")
    print(f"deck: {args.deck.name}: {len(deck.facts)} facts, {len(stated)} stated by the document "
          f"(not supplemented), {len(with_kind)} of them in relations with a preset kind")
    print(f"candidates: {len(candidates)}")
    print(f"  right (kind, subject and object match a fact): {len(right)}")
    print(f"  subject only (kind and subject match, object worded otherwise): {len(subject_only)}")
    print(f"  match nothing: {len(nothing)}")
    print(f"stated facts found by a right candidate: {len(found)} of {len(stated)} "
          f"({len(found)} of {len(with_kind)} with a preset kind)")
    print(f"stated facts matched by subject only: {len(found_subject)} more")

    print("\nright candidates:")
    for candidate, facts in right:
        print(f"  {describe(candidate)}\n      = {facts[0].relation}/{facts[0].id}"
              + (" (supplemented)" if all(f.supplemented for f in facts) else ""))
    print("\nsubject only (judge these):")
    for candidate, facts in subject_only:
        print(f"  {describe(candidate)}\n      fact {facts[0].relation}/{facts[0].id}: {facts[0].object_text}")
    print("\nmatch nothing (judge these):")
    for candidate in nothing:
        print(f"  {describe(candidate)}")
    print("\nstated facts with a preset kind not found:")
    for fact in with_kind:
        if id(fact) not in found:
            print(f"  {fact.relation}/{fact.id}: {fact.subject} -> {fact.object_text}")


if __name__ == "__main__":
    main()
