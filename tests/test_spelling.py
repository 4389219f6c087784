"""Spelling variants added to the lexical query: a misspelt or differently transliterated name still matches."""

from __future__ import annotations

import pytest

from rag.spelling import SpellingVariants, edit_distance


@pytest.mark.parametrize("a,b,distance", [("kitten", "sitting", 3), ("raqa", "raqqa", 1), ("", "abc", 3),
                                          ("same", "same", 0)])
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b) == distance == edit_distance(b, a)


VOCABULARY = ["raqqa", "raqqah", "ezzor", "zero", "mcgurk", "mosul", "muhammad", "the", "fell", "fall", "when", "did"]


@pytest.mark.parametrize("typed,meant", [("raqa", ["raqqa"]), ("raqqha", ["raqqa", "raqqah"]), ("ezor", ["ezzor"]),
                                         ("mohammed", ["muhammad"]), ("mcgirk", ["mcgurk"])])
def test_a_misspelt_name_finds_its_spellings(typed: str, meant: list[str]) -> None:
    assert SpellingVariants(VOCABULARY).of(typed) == meant


def test_known_short_and_unrelated_words_get_no_variants() -> None:
    variants = SpellingVariants(VOCABULARY)
    assert variants.of("mosul") == []  # in the vocabulary
    assert variants.of("rq") == []  # too short to guess
    assert variants.of("ezzzzzzzzor") == []  # same skeleton as "ezzor" but too far from it
    assert variants.of("table") == []


def test_expand_appends_variants_once_and_keeps_the_query() -> None:
    variants = SpellingVariants(VOCABULARY)
    assert variants.expand("when did raqa fall, raqa?") == "when did raqa fall, raqa? raqqa"
    assert variants.expand("When did Mosul fall?") == "When did Mosul fall?"
    assert variants.expand("RAQA", stem=lambda word: word) == "RAQA raqqa"
