"""Spelling variants added to the lexical query: a misspelt or differently transliterated name, or a name typed as
its initials, still matches."""

from __future__ import annotations

import pytest

from rag.spelling import (
    SpellingVariants,
    edit_distance,
    fold,
    in_text_spelling,
    initialisms,
    names_by_initials,
    shorthand_written_out,
)


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


ARTICLE = ("Iranian-backed militias from the Popular Mobilization Forces supported the offensive. Iraqi Prime Minister "
           "Haider al-Abadi visited. The Popular Mobilization Forces, the Long War Journal's editor wrote, answer to "
           "Baghdad.\nBank of England rates rose; the Bank of England said so.")


def test_runs_of_capitalised_words_give_their_initials_and_every_run_inside_them() -> None:
    found = {(initials, name) for initials, name, _, _ in initialisms(ARTICLE)}
    assert {("pmf", "Popular Mobilization Forces"), ("pm", "Prime Minister"), ("ipmh", "Iraqi Prime Minister Haider"),
            ("lwj", "Long War Journal"), ("be", "Bank of England")} <= found
    # Runs stop at a sentence's end and at a possessive; a small word inside a name is not one of its initials.
    assert not any(name.endswith(("Forces supported", "Journal's editor")) or "visited" in name for _, name in found)
    assert not any("Haider Iraqi" in name or "Forces Iraqi" in name for _, name in found)
    assert ("fi", "Forces Iraqi") not in found


def test_names_by_initials_leave_out_parts_of_a_longer_name() -> None:
    table = names_by_initials([ARTICLE])
    assert table["pmf"] == ["Popular Mobilization Forces"]
    assert table["lwj"] == ["Long War Journal"]
    # "Popular Mobilization" is seen twice, both times before "Forces": it is part of that name, not "pm".
    assert table["pm"] == ["Prime Minister"]
    assert "mf" not in table  # "Mobilization Forces", both times after "Popular"
    assert table["be"] == ["Bank of England"]


def test_names_by_initials_keep_the_most_frequent_names_first() -> None:
    texts = ["The Prime Minister spoke.", "Paul McCartney sang.", "In Prime Minister Blair's view, Peter Mandelson "
             "won.", "Paul McCartney and The Prime Minister met."]
    # "The" opens a sentence or stands before a title: it is no part of the name.
    assert names_by_initials(texts)["pm"] == ["Prime Minister", "Paul McCartney", "Peter Mandelson"]


def test_a_word_the_vocabulary_lacks_adds_the_names_it_is_the_initials_of() -> None:
    variants = SpellingVariants([*VOCABULARY, "dominates"], lambda: names_by_initials([ARTICLE]), stopwords={"is"})
    assert variants.expand("who dominates the pmf") == "who dominates the pmf Popular Mobilization Forces"
    assert variants.expand("who is the pm") == "who is the pm Prime Minister"
    # A stopword the lexical index leaves out, and a misspelling, are not initials.
    assert SpellingVariants(VOCABULARY, lambda: {"is": ["Islamic State"], "raqa": ["R A Q A"]},
                            stopwords={"is"}).expand("is raqa") == "is raqa raqqa"


def test_initials_are_read_only_when_a_question_needs_them() -> None:
    def unread() -> dict[str, list[str]]:
        raise AssertionError("read")

    variants = SpellingVariants(VOCABULARY, unread)
    assert variants.expand("when did raqa fall") == "when did raqa fall raqqa"
    assert "initials" not in vars(variants)


def test_a_question_reads_initials_as_the_names_the_text_writes_out() -> None:
    unknown = {"pmf", "lwj", "pm", "kgs"}.__contains__
    assert (shorthand_written_out("what does the lwj say about the pmf", ARTICLE, unknown)
            == "what does the long war journal say about the popular mobilization forces")
    # In the case typed: capitals mark the names a question asks about.
    assert shorthand_written_out("Who is the Iraqi PM?", ARTICLE, unknown) == "Who is the Iraqi Prime Minister?"
    # Words that are not unknown, and initials the text has no name for, stay as typed.
    assert shorthand_written_out("how many kgs did the boe weigh", ARTICLE,
                                 unknown) == "how many kgs did the boe weigh"


def test_a_word_typed_without_its_vowels_reads_as_the_text_writes_it() -> None:
    text = ("Six million people were freed. People came home after years away, and years later the pool reopened. "
            "Ask Ppl Corp. The flat was a flit.")
    unknown = {"ppl", "yrs", "pls", "zzq", "fly", "flt"}.__contains__
    # The word of the text with the same first letter and consonants that it writes most ("people", not "pool").
    assert shorthand_written_out("how many ppl were freed after 3 yrs", text, unknown) == (
        "how many people were freed after 3 years")
    # Typed with capitals it is a name; without a word the text writes more than any other ("flat" and "flit"
    # once each), or ending in a "y" (a vowel there), it stays as typed.
    assert shorthand_written_out("is PPL open pls zzq fly flt", text, unknown) == "is PPL open pls zzq fly flt"
