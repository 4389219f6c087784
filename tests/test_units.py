"""Small pure functions: rank fusion, passage ids, citation sources, follow-up questions, question checks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from rag.citing import in_quotes, source_of
from rag.conversation import contextualize
from rag.embedding import pool_spans
from rag.pipeline import MAX_QUESTION_CHARS, QuestionError, check_question, narrows
from rag.retrieval import reciprocal_rank_fusion
from rag.store import passage_id

# --- reciprocal_rank_fusion -----------------------------------------------------------------------------------------


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "a"]], k=60)
    assert [item for item, _ in fused] == ["b", "a", "c"]
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 62)


def test_rrf_rewards_agreement_over_one_top_rank() -> None:
    # "x" is first in one list only; "y" is second in both.
    fused = reciprocal_rank_fusion([["x", "y"], ["z", "y"]], k=60)
    assert fused[0][0] == "y"


def test_rrf_k_controls_how_much_the_top_rank_counts() -> None:
    # "a" is first in one list; "b" is second and third. A small k favours the single top rank.
    rankings = [["a", "b"], ["c", "d", "b"]]
    assert [item for item, _ in reciprocal_rank_fusion(rankings, k=0)] == ["a", "c", "b", "d"]
    assert reciprocal_rank_fusion(rankings, k=60)[0][0] == "b"


def test_rrf_ties_keep_first_seen_order_and_empty_input() -> None:
    assert [item for item, _ in reciprocal_rank_fusion([["a"], ["b"]], k=60)] == ["a", "b"]
    assert [item for item, _ in reciprocal_rank_fusion([["b", "a"], ["a", "b"]], k=60)] == ["b", "a"]
    assert reciprocal_rank_fusion([], k=60) == []
    assert reciprocal_rank_fusion([[], []], k=60) == []


# --- passage ids ----------------------------------------------------------------------------------------------------


def test_passage_id_is_deterministic_and_content_derived() -> None:
    first = passage_id("/corpus/a.txt", "abc123", 0, 100)
    assert first == passage_id("/corpus/a.txt", "abc123", 0, 100)
    assert len(first) == 32 and all(char in "0123456789abcdef" for char in first)
    others = {
        passage_id("/corpus/b.txt", "abc123", 0, 100),
        passage_id("/corpus/a.txt", "abc124", 0, 100),
        passage_id("/corpus/a.txt", "abc123", 1, 100),
        passage_id("/corpus/a.txt", "abc123", 0, 101),
        passage_id("/corpus/a.txt#1", "abc123", 0, 100),
    }
    assert first not in others and len(others) == 5


def test_passage_id_fields_cannot_run_together() -> None:
    assert passage_id("a", "bc", 1, 2) != passage_id("ab", "c", 1, 2)
    assert passage_id("a", "b", 1, 23) != passage_id("a", "b", 12, 3)


# --- in_quotes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,shown", [
    ("Iraqi forces declared victory\n in Mosul.", "“Iraqi forces declared victory in Mosul.”"),
    ("“Very soon we will declare full victory in Iraq.”", "“Very soon we will declare full victory in Iraq.”"),
    ('"We will stay."', '"We will stay."'),
    # Marks inside: not one quotation, so the sentence is quoted as a whole.
    ("“We won,” he said, “and we stay.”", "““We won,” he said, “and we stay.””"),
    ("He said “no” twice.", "“He said “no” twice.”"),
])
def test_a_quoted_sentence_is_not_quoted_twice(text: str, shown: str) -> None:
    assert in_quotes(text) == shown


# --- source_of ------------------------------------------------------------------------------------------------------


def test_source_of_a_file_below_the_current_directory_is_relative(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "corpus" / "a.txt"
    assert source_of({"text_path": str(path), "record_id": ""}) == os.path.join("corpus", "a.txt")
    assert source_of({"text_path": str(path)}) == os.path.join("corpus", "a.txt")


def test_source_of_a_file_elsewhere_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    path = str(tmp_path / "there" / "a.txt")
    assert source_of({"text_path": path, "record_id": ""}) == path


def test_source_of_a_jsonl_record_names_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "news.jsonl"
    assert source_of({"text_path": str(path), "record_id": "r-7"}) == "news.jsonl#r-7"


# --- contextualize --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "follow_up,previous,expected",
    [
        ("And Raqqa?", "When did Mosul fall?", "When did Raqqa fall?"),
        ("and Raqqa", "When did Mosul fall?", "When did Raqqa fall?"),
        ("What about Hawija?", "When did Mosul fall?", "When did Hawija fall?"),
        ("How about Tal Afar?", "When was Hawija liberated?", "When was Tal Afar liberated?"),
        ("Raqqa?", "When did Mosul fall?", "When did Raqqa fall?"),
        ("And Deir el-Zour?", "When did the Syrian army seize Mayadeen?",
         "When did the Syrian army seize Deir el-Zour?"),
        ("And Raqqa?", "When did Deir el-Zour fall?", "When did Raqqa fall?"),
        ("And what about Raqqa?", "When did Mosul fall?", "When did Raqqa fall?"),
    ],
)
def test_follow_up_takes_the_previous_question_with_a_new_subject(follow_up: str, previous: str,
                                                                 expected: str) -> None:
    assert contextualize(follow_up, ["Who is Brett McGurk?", previous]) == expected


@pytest.mark.parametrize(
    "question",
    ["Who is Brett McGurk?", "When was Tal Afar liberated?", "How many days did it take to liberate Hawija?",
     "And when did the Syrian government seize Mayadin?", "Which city fell first?",
     "and whats the forecast for next year"],
)
def test_a_full_question_is_left_alone(question: str) -> None:
    assert contextualize(question, ["When did Mosul fall?"]) == question


@pytest.mark.parametrize(
    "follow_up,previous,answer,expected",
    [
        ("why was he sacked", "who did the club replace", "Dave Jones", "why was Dave Jones sacked"),
        ("how long was she there", "who chairs the committee now", "Ann Smith", "how long was Ann Smith there"),
        ("what happened there", "where did the army cross", "Al Qaim", "what happened in Al Qaim"),
        # The place asked for may close the question: "there" is its answer, not its rarest word.
        ("what was made there", "whats doria's second biggest city", "Harlow", "what was made in Harlow"),
        ("how much did they pay", "which company bought the firm", "Acme", "how much did Acme pay"),
        # "it" may as well be the plant as the town it is in.
        ("when did it open", "where is the plant", "Leeds", "when did plant open"),
        # A date or a figure is not what "it" or "he" stands for: the previous question's subject is.
        ("who took it", "when did raqqa fall", "Oct. 17", "who took raqqa"),
        ("how old is he", "how many votes did Galloway get", "4,000", "how old is Galloway"),
    ],
)
def test_a_pronoun_stands_for_the_previous_answer_when_the_previous_question_asked_for_its_like(
        follow_up: str, previous: str, answer: str, expected: str) -> None:
    assert contextualize(follow_up, [previous], previous_answer=answer) == expected


@pytest.mark.parametrize(
    "follow_up,previous,expected",
    [
        ("and around the port?", "what did the army shell near the bridge", "what did the army shell around the port"),
        ("and in 2005?", "how many jobs were lost in 2004", "how many jobs were lost in 2005"),
        ("and to the south", "how many troops were sent to the north", "how many troops were sent to the south"),
        # The phrase opened by the same preposition, the last on a tie.
        ("and in 2003", "how much did sales rise at ruvia in 2004", "how much did sales rise at ruvia in 2003"),
        ("what about in harlow", "when did the plant close", "when did the plant close in harlow?"),
    ],
)
def test_a_follow_up_phrase_takes_the_place_of_the_previous_questions_phrase(follow_up: str, previous: str,
                                                                            expected: str) -> None:
    # Before, "and around the port" replaced one word: "what did the army shell around the port the bridge".
    assert contextualize(follow_up, [previous]) == expected


def test_a_follow_up_phrase_is_found_in_one_pass() -> None:
    # The phrase pattern once tried every way of splitting a word when the phrase could not end (a question closing
    # on a preposition): 37 s for this question, doubling with each letter of a long word.
    previous = "which group are the fighters inside the eastern neighbourhoods loyal to?"
    assert contextualize("and around the port?", [previous]).startswith("which group are the fighters around the port")
    long_word = "what happened in " + "a" * 1990 + " in?"
    assert contextualize("and near the port", [long_word]).startswith("what happened near the port")


@pytest.mark.parametrize("follow_up,answer,expected", [
    ("what happened there", "Harlow", "what happened in Harlow"),
    ("what happened there", "near the bridge", "what happened near the bridge"),
    # "There" that says something is, not where: the place goes after it.
    ("were there any survivors?", "Harlow", "were there any survivors in Harlow?"),
    ("is there a curfew", "near the bridge", "is there a curfew near the bridge"),
])
def test_there_stands_for_the_place_with_its_preposition(follow_up: str, answer: str, expected: str) -> None:
    assert contextualize(follow_up, ["where did the army cross"], previous_answer=answer) == expected


def test_a_pronoun_after_a_name_of_its_own_stands_for_that_name() -> None:
    assert contextualize("and tyndall, how old is he", ["how old is nick griffin"]) == "how old is tyndall"
    assert contextualize("What about Raqqa, who took it?", ["When did Mosul fall?"]) == "who took Raqqa?"


@pytest.mark.parametrize(
    "follow_up,previous,expected",
    [
        ("how many were planned originally", "how many new casinos is the uk going to allow",
         "how many new casinos were planned originally"),
        ("And how many were wounded?", "How many French soldiers were killed in the attack?",
         "And how many French soldiers were wounded?"),
        # Nothing counted before: asked as it stands.
        ("how many were killed", "when did the attack happen", "how many were killed"),
        # A count with its own noun is a question of its own.
        ("how many people were killed", "how many soldiers died", "how many people were killed"),
    ],
)
def test_a_count_without_its_noun_counts_what_the_previous_question_counted(follow_up: str, previous: str,
                                                                           expected: str) -> None:
    assert contextualize(follow_up, [previous]) == expected


def test_without_history_the_question_is_asked_as_it_stands() -> None:
    assert contextualize("And Raqqa?", []) == "And Raqqa?"


@pytest.mark.parametrize(
    "question,meant",
    [
        # The articles named as such: no passage says "articles" or "say", and the answerers count missing words.
        ("what do the articles say about the port", "tell me about the port"),
        ("What does the story say about Doria?", "tell me about Doria?"),
        ("what do these stories tell us about the rebels", "tell me about the rebels"),
        ("when did the city fall according to the articles", "when did the city fall"),
        ("in the articles, who is the envoy", "who is the envoy"),
        # A report or the news may be the subject itself; and nothing is left without the articles.
        ("what did the report find", "what did the report find"),
        ("who was in the news for fraud", "who was in the news for fraud"),
        ("what do the articles say", "what do the articles say"),
        ("summarise the articles", "summarise the articles"),
        # A question of its own about the articles' subject keeps its kind; files, documents and sources are subjects.
        ("what do the articles say about when the city fell", "when the city fell"),
        ("what do the files say about the payments", "what do the files say about the payments"),
        ("what was found in the files", "what was found in the files"),
        ("what was hidden in the story of the raid", "what was hidden in the story of the raid"),
        ("who was quoted in the story?", "who was quoted?"),
    ],
)
def test_a_question_naming_the_articles_is_asked_about_its_subject(question: str, meant: str) -> None:
    assert contextualize(question, []) == meant
    if meant != question:  # a question of its own, not a follow-up ("what about the port")
        assert contextualize(question, ["when did the strike end"]) == meant


def test_a_run_of_spaces_is_restated_at_once() -> None:
    started = time.perf_counter()
    assert contextualize(" " * 2000 + "x", []) == " " * 2000 + "x"
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize("question,meant", [
    ("How man people gather at the festival", "How many people gather at the festival"),
    ("how may yards did he throw", "how many yards did he throw"),
    ("how may I help you", "how may I help you"),  # a request, not a count
    ("how may the court rule", "how may the court rule"),  # what may happen
])
def test_how_many_mistyped_is_read_as_meant(question: str, meant: str) -> None:
    assert contextualize(question, []) == meant


# --- check_question -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   ", "\n\t ", "x" * (MAX_QUESTION_CHARS + 1), "???", " ?! 🙂 ", "___"])
def test_unaskable_questions(question: str) -> None:
    with pytest.raises(QuestionError):
        check_question(question)


def test_questions_are_normalised_and_the_limit_is_inclusive() -> None:
    assert check_question("  when did\n Mosul   fall? ") == "when did Mosul fall?"
    assert check_question("x" * MAX_QUESTION_CHARS) == "x" * MAX_QUESTION_CHARS
    assert check_question("¿cuándo cayó?") == "¿cuándo cayó?"  # words of any script


# --- narrows --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tighter", "wider", "expected"), [
    ("Oct. 17", "Oct. 17, four months", True),
    ("Popular Mobilization Forces", "Iranian-backed Shia militias from the Popular Mobilization Forces", True),
    ("is", "Kurdish peshmerga", False),  # letters inside a word are not the word
    ("three", "all three", True),
    ("10", "110 stations", False),
    ("10", "100 stations", False),
    ("2", "2.5 million", False),  # nor a number's first digits
    ("10", "10,000 troops", False),
    ("july 10", "July 10, 2017", False),  # both are spans of the articles' text: case is kept
    ("July 10", "July 10", False),  # the same answer: nothing to narrow
    (None, "July 10", False),
    ("July 10", None, False),
])
def test_narrows_finds_a_shorter_answer_inside_a_longer_one_as_whole_words(tighter: str | None, wider: str | None,
                                                                          expected: bool) -> None:
    assert narrows(tighter, wider) is expected


# --- pool_spans -----------------------------------------------------------------------------------------------------


def test_pool_spans_averages_the_tokens_of_each_span() -> None:
    tokens = np.array([[9, 9], [1, 0], [0, 1], [3, 4], [9, 9], [7, 7]], dtype=np.float32)
    offsets = [(0, 0), (0, 5), (6, 10), (11, 15), (0, 0)]  # special tokens are (0, 0); the last row is padding
    pooled = pool_spans(tokens, offsets, [(0, 10), (11, 15), (20, 30)])
    assert pooled.shape == (3, 2)
    np.testing.assert_allclose(pooled[0], np.array([1, 1]) / np.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(pooled[1], [0.6, 0.8], rtol=1e-6)
    # A span with no tokens (cut off by the model's window) falls back to the mean of all tokens.
    np.testing.assert_allclose(pooled[2], np.array([22, 23]) / np.linalg.norm([22, 23]), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, rtol=1e-6)
