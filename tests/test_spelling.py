"""Spelling variants added to the lexical query: a misspelt or differently transliterated name still matches."""

from __future__ import annotations

import pytest

from rag.spelling import SpellingVariants, edit_distance, fold, in_text_spelling


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


@pytest.mark.parametrize("word", ["Mohammed", "muhammad", "Hannah", "hana", "bennett", "raqqah", "rhh", "aaa", "",
                                  "Deir-Ezzor", "llama", "hh", "shahh"])
def test_fold_is_the_consonant_skeleton(word: str) -> None:
    import re

    skeleton = re.sub(r"(.)\1+", r"\1", re.sub(r"[aeiou]", "", word.lower()))
    assert fold(word) == (skeleton[:-1] if skeleton.endswith("h") and len(skeleton) > 2 else skeleton)


def test_words_are_grouped_by_skeleton_only_when_a_word_is_missing_from_the_vocabulary() -> None:
    variants = SpellingVariants(dict.fromkeys(VOCABULARY, 0))  # the lexical index's dictionary, as given
    assert variants.expand("When did Mosul fall?") == "When did Mosul fall?"
    assert "_by_skeleton" not in vars(variants)  # start-up and in-vocabulary questions never pay for it
    assert variants.of("raqa") == ["raqqa"]
    assert "_by_skeleton" in vars(variants)


def test_the_reader_reads_a_misspelt_name_as_the_text_spells_it() -> None:
    text = "Raqqa, the group's de-facto capital, fell to Kurdish-led forces; the city of Deir Ezzor was taken."
    known = {"when", "did", "deir", "fall", "took", "who", "mosul"}.__contains__
    assert in_text_spelling("who took raqa", text, known) == "who took raqqa"
    assert in_text_spelling("When did Deir ezor fall?", text, known) == "When did Deir ezzor fall?"
    # Unless the reader knows it as a word: "fall" is not a misspelling of "fell".
    assert in_text_spelling("When did Deir ezor fall?", text) == "When did Deir ezzor fell?"
    # Words the text holds, short words, and words with no spelling of theirs in the text stay as typed.
    assert in_text_spelling("When did Raqqa fall to the SDF?", text, known) == "When did Raqqa fall to the SDF?"
    assert in_text_spelling("who took mosul", text, known) == "who took mosul"
    # Between equally near spellings, the one the reader does not know as a word: a name.
    only_than = {"than"}.__contains__
    assert in_text_spelling("did thanu answer", "Thanou said more than once", only_than) == "did thanou answer"
