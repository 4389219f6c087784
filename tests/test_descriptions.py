"""Descriptions: "who is X" / "what is X" answered by what the text says X is."""

from __future__ import annotations

import pytest

from rag.answering.descriptions import Kind, Subject, describe, described_subject, descriptions_in

SENTENCES = [
    "Port Amery, the rebels' last stronghold, fell to government troops on Monday.",
    "Col. Dana Vell, spokeswoman for the northern army, called it a turning point.",
    "Mara Quist is a senior fellow at the Institute for Coastal Studies and the editor of its review.",
    "Troops are now focused on Selvin, the last rebel-held town in the north.",
    "The country's second-largest port, Doria was a hub for the rebel leadership.",
    "Northern Governor Alma Reyes said the ceasefire would hold.",
    "It took ten days to retake Kessa, depriving the rebels of their last airfield.",
    "Aid was delivered by the Joint Relief Mission for the North (JRMN) on Sunday.",
    "The talks were brokered by the Coastal Workers Union, or the UTC, which has long opposed the war.",
    "Near Selvin, four patrols engaged rebel units and destroyed two depots.",
    "After Doria, the next target is Kessa.",
    "Lord Brask, who leaves two daughters, was the longest-serving envoy.",
]


@pytest.mark.parametrize(
    ("subject", "person", "expected"),
    [
        ("port amery", False, "the rebels' last stronghold"),  # appositive
        ("dana vell", True, "spokeswoman for the northern army"),  # appositive without an article
        ("mara quist", True, "a senior fellow at the Institute for Coastal Studies and the editor of its review"),
        ("selvin", False, "the last rebel-held town in the north"),  # not "four patrols ...": an opening phrase
        ("doria", False, "The country's second-largest port"),  # fronted appositive
        ("alma reyes", True, "Northern Governor"),  # a title, for a person
        ("jrmn", False, "Joint Relief Mission for the North"),  # initials in capitals
        ("utc", False, "Coastal Workers Union"),  # an alias after "or the"
    ],
)
def test_the_description_a_text_gives(subject: str, person: bool, expected: str) -> None:
    found = describe(Subject(subject, person), SENTENCES)
    assert found is not None
    assert SENTENCES[found.sentence][found.start : found.end] == expected


@pytest.mark.parametrize(
    "subject",
    [
        "kessa",  # "depriving the rebels ...": a participle clause, not a description
        "brask",  # "Lord" is a rank, and "who leaves ..." a relative clause
    ],
)
def test_clauses_and_ranks_are_not_descriptions(subject: str) -> None:
    assert describe(Subject(subject, person=True), SENTENCES) is None


def test_a_title_describes_only_a_person() -> None:
    assert describe(Subject("alma reyes", person=False), SENTENCES) is None


def test_a_clause_after_a_comma_is_not_an_appositive() -> None:
    assert descriptions_in("doria", "After Doria, the next target is Kessa.") == []
    assert descriptions_in("kessa", "In Kessa, the army said it would push on.") == []


def test_initials_stand_for_a_name_only_when_written_in_capitals() -> None:
    texts = ["The Joint Relief Mission met on Sunday.", "A jrm of sorts."]
    assert describe(Subject("jrm", person=False), texts) is None
    assert describe(Subject("jrm", person=False), [*texts, "The JRM said so."]) is not None


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("who is mara quist", Subject("mara quist", person=True)),
        ("what's the jrmn", Subject("jrmn", person=False)),
        ("what does utc stand for", Subject("utc", person=False)),
        ("who are the utc", Subject("utc", person=True)),
        ("what was selvin?", Subject("selvin", person=False)),
        ("what is the ceasefire", None),  # written in small letters: not a name
        ("who is the spokeswoman", None),  # asks for a name
        ("what is it", None),
        ("what is the population of selvin", None),
        ("when did selvin fall", None),
    ],
)
def test_which_questions_ask_for_a_description(question: str, expected: Subject | None) -> None:
    texts = [*SENTENCES, "The UTC and the JRMN signed; the ceasefire holds."]
    assert described_subject(question, texts) == expected


def test_the_subject_is_read_in_the_texts_spelling() -> None:
    assert described_subject("who is mara quisst", SENTENCES) == Subject("mara quist", person=True)


def test_a_long_question_and_sentence_are_read_in_one_pass() -> None:
    # Like the question typer's patterns, these run on questions of up to 2,000 characters and on long sentences.
    question = "what is " + "a." * 995 + " b c d e"
    assert described_subject(question, [question]) is None
    sentence = "Doria, " + "the port " * 200 + "a" * 1000
    assert descriptions_in("doria", sentence) == []  # too long to be a description


@pytest.mark.parametrize(
    ("question", "sentence", "age"),
    [
        ("how old is mara quist", "Mara Quist, 45, said the talks would go on.", "45"),
        ("whats mara quist's age", "The editor, Mara Quist (45), said so.", "45"),
        ("what age was mara quist", "Mara Quist, aged 45, said so.", "45"),
        # Not an age given after the name: the age at which she did something else.
        ("how old is mara quist", "Mara Quist gave up ballet at the age of 10.", None),
    ],
)
def test_how_old_someone_is_is_the_age_written_after_the_name(question: str, sentence: str, age: str | None) -> None:
    subject = described_subject(question, [sentence])
    assert subject is not None and subject.age and subject.words == "mara quist"
    found = describe(subject, [sentence])
    assert (sentence[found.start : found.end] if found else None) == age


def test_an_age_question_about_something_else_than_a_name_is_not_one() -> None:
    assert described_subject("how old was he when he won", ["He won at 45."]) is None
    assert described_subject("how old is the bridge", ["The bridge is old."]) is None


@pytest.mark.parametrize(
    ("subject", "sentence"),
    [
        ("doria", "Doria, however, held out for a week."),  # a sentence adverb
        ("doria", "Asked about Doria, the spokesman declined to comment."),  # the clause after an opening phrase
        ("doria", "The army retook Port Amery, Doria and Kessa."),  # a list, not a fronted appositive
        ("mara quist", "A day later, Mara Quist told reporters."),  # a time phrase
        ("selvin", "The rebels hold Doria, Kessa, or Selvin."),  # "or" in a list is no alias: not initials
        ("northland", "Rain fell on Doria (Northland) all week."),
        ("doria", "The University of Doria, the country's oldest, closed."),  # the end of a longer name
        ("reyes", "Northern Governor Alma Reyes said so."),  # a title before a first name, asked by surname
    ],
)
def test_what_is_not_a_description(subject: str, sentence: str) -> None:
    assert describe(Subject(subject, person=True), [sentence]) is None


def test_initials_are_not_spelt_by_a_word_that_opens_the_sentence() -> None:
    texts = ["Under Nasser, the country grew.", "The UN met."]
    assert describe(Subject("un", person=False), texts) is None


def test_a_quoted_description_is_given_without_its_quotes() -> None:
    sentence = "Doria, “the pearl of the coast,” fell on Monday."
    found = describe(Subject("doria", person=False), [sentence])
    assert found is not None and sentence[found.start : found.end] == "the pearl of the coast"


@pytest.mark.parametrize("question", ["what is 2017", "how old is he", "what is ...", "who is this"])
def test_no_subject_without_a_name(question: str) -> None:
    assert described_subject(question, ["He was 45 in 2017. This is it."]) is None


@pytest.mark.parametrize(
    ("sentence", "kinds"),
    [
        ("Doria, a" + " " * 3000 + "x", [Kind.APPOSITION]),
        ("Doria is a" + " " * 3000 + "x", [Kind.COPULA]),
        ("The x" + " " * 3000 + ", Doria", []),  # too far into the sentence for a fronted appositive
        ("A B C D E F G H " * 150, []),
    ],
)
def test_long_sentences_are_read_in_one_pass(sentence: str, kinds: list[Kind]) -> None:
    # Each pattern is matched once per mention, from where the mention ends or within a bounded reach before it: a
    # lazy pattern once retried every run of spaces (21 s on 3,000 of them).
    assert [kind for kind, _ in descriptions_in("doria", sentence, initialism=True)] == kinds


def test_a_description_may_run_on_with_a_participle() -> None:
    sentence = "Kessanet was a public data network operated by the northern post office."
    found = describe(Subject("kessanet", person=False), [sentence])
    assert found is not None
    assert sentence[found.start : found.end] == "a public data network operated by the northern post office"
