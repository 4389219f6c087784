"""The training data's pure parts: trap questions (a name swapped for one the paragraph never mentions) and questions
as people type them."""

from __future__ import annotations

import random

from rag.training.answerer import typed
from rag.training.traps import article_names, question_names, swap_name

ARTICLE = {
    "paragraphs": [
        {"context": "The Broncos beat the Carolina Panthers in Santa Clara.",
         "qas": [{"question": "Who did the Broncos beat in Santa Clara?"}]},
        {"context": "Peyton Manning retired after the game.",
         "qas": [{"question": "When did Peyton Manning retire?"}]},
    ]
}


def test_question_names_skip_the_first_word_and_keep_runs_whole() -> None:
    assert [run.group() for run in question_names("When did Peyton Manning retire from the Denver Broncos?")] == [
        "Peyton Manning", "Denver Broncos"]
    assert question_names("when did he retire?") == []


def test_article_names_are_the_names_its_questions_ask_about_sorted() -> None:
    assert article_names(ARTICLE) == ["Broncos", "Peyton Manning", "Santa Clara"]


def test_a_trap_swaps_a_name_for_one_the_paragraph_never_mentions() -> None:
    context = ARTICLE["paragraphs"][0]["context"]
    for seed in range(20):
        trap = swap_name("Who did the Broncos beat in Santa Clara?", context, article_names(ARTICLE),
                         random.Random(seed))
        assert trap is not None
        question, name = trap
        assert name == "Peyton Manning"
        assert question in {"Who did the Peyton Manning beat in Santa Clara?",
                            "Who did the Broncos beat in Peyton Manning?"}


def test_no_trap_without_a_name_or_without_a_name_to_swap_in() -> None:
    assert swap_name("who won?", "The Broncos won.", ["Denver"], random.Random(0)) is None
    assert swap_name("Who beat the Broncos?", "The Broncos lost to Denver.", ["Denver"], random.Random(0)) is None


def test_typed_questions_are_lowercase_without_a_question_mark() -> None:
    assert typed("When did Peyton Manning retire? ") == "when did peyton manning retire"


def test_trap_examples_read_the_answer_sentences_under_a_swapped_question_and_target_no_answer() -> None:
    from rag.answering.reader import Tokenized
    from rag.settings import Settings
    from rag.training.reader import trap_examples

    tokenizer = Tokenized(Settings().model_path / "tokenizer.json")
    article = {"paragraphs": [
        {"context": "The Broncos beat the Carolina Panthers in Santa Clara. The game was close.",
         "qas": [{"question": "Who did the Broncos beat in Santa Clara?",
                  "answers": [{"text": "the Carolina Panthers", "answer_start": 17}]}]},
        {"context": "Peyton Manning retired after the game.",
         "qas": [{"question": "When did Peyton Manning retire?", "answers": [{"text": "after the game",
                                                                              "answer_start": 23}]}]},
    ]}
    examples = trap_examples([article], tokenizer, share=1.0, seed=0)
    assert examples and all((e.start, e.end, e.kind) == (0, 0, "trap") for e in examples)
    words = [tokenizer.tokenizer.decode(e.window.ids) for e in examples]
    assert any("peyton manning" in text and "carolina panthers" in text for text in words)
    assert trap_examples([article], tokenizer, share=0.0, seed=0) == []
