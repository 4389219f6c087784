"""The training data's pure parts: trap questions (a name swapped for one the paragraph never mentions) and questions
as people type them."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from rag.training.answerer import typed
from rag.training.traps import article_names, question_names, swap_name

if TYPE_CHECKING:
    from rag.answering.reader import SpanScore
    from rag.training.reader import WindowGroup

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


def test_answer_places_are_every_whole_occurrence_of_any_answer_in_the_window() -> None:
    from rag.answering.reader import Tokenized, reader_inputs
    from rag.settings import Settings
    from rag.training.reader import answer_places, window_group

    tokenizer = Tokenized(Settings().model_path / "tokenizer.json")
    text = "Denver won in 2016. Denver lost in 2015, and the Broncos won again."
    window, = reader_inputs(tokenizer, "who won", text)
    places = answer_places(window, text, ("Denver", "the Broncos"))
    assert [tokenizer.tokenizer.decode(window.ids[start : end + 1]) for start, end in places] == [
        "denver", "denver", "the broncos"]
    assert answer_places(window, text, ("Carolina",)) == []
    # A window cut short of the answer does not hold it.
    short, *rest = reader_inputs(tokenizer, "who won", text, max_length=12, stride=4)
    assert rest and answer_places(short, text, ("the Broncos",)) == []
    group = window_group(tokenizer, "who won", [text, "Nothing here."], ("Denver",))
    assert len(group.windows) == len(group.places) == 2 and len(group.places[0]) == 2 and group.places[1] == []


def test_the_shared_loss_compares_windows_of_one_question_and_skips_questions_without_the_answer() -> None:
    import torch

    from rag.training.reader import group_loss

    context = torch.tensor([[False, True, True, True], [False, True, True, True]])
    gold = torch.tensor([[False, False, True, False], [False, False, False, False]])

    def loss(start: list[list[float]]) -> float:
        logits = torch.tensor(start)
        return float(group_loss(logits, logits, context, gold, gold, [[0, 1]]))

    answer_high = loss([[0.0, 0.0, 9.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    other_window_high = loss([[0.0, 0.0, 9.0, 0.0], [0.0, 9.0, 0.0, 0.0]])
    assert answer_high < 0.01 < 0.5 < other_window_high
    # [CLS] (position 0) is outside the shared normalisation: a window's own loss trains it.
    assert loss([[50.0, 0.0, 9.0, 0.0], [0.0, 0.0, 0.0, 0.0]]) == answer_high
    no_answer = torch.zeros_like(gold)
    logits = torch.ones((2, 4), requires_grad=True)
    assert float(group_loss(logits, logits, context, no_answer, no_answer, [[0, 1]])) == 0.0


def test_a_few_steps_on_a_question_over_its_windows_raise_the_answer_in_the_window_that_holds_it() -> None:
    import torch
    from transformers import AutoModelForQuestionAnswering

    from rag.answering.reader import Tokenized
    from rag.settings import Settings
    from rag.training.reader import group_batch_loss, window_group

    torch.manual_seed(0)
    tokenizer = Tokenized(Settings().model_path / "tokenizer.json")
    model = AutoModelForQuestionAnswering.from_pretrained(str(Settings().model_path))
    texts = ["The Broncos played the Carolina Panthers in Santa Clara.", "The Broncos won the game in February."]
    group = window_group(tokenizer, "who won the game", texts, ("The Broncos won",))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = group_batch_loss(model, [group])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2
    spans = window_spans(model, group)
    assert spans[0] and spans[1] and spans[1].score > spans[0].score
    assert texts[1][spans[1].start : spans[1].end] == "The Broncos won"


def test_a_few_steps_on_a_question_whose_windows_hold_no_answer_lower_every_span_against_no_answer() -> None:
    import torch
    from transformers import AutoModelForQuestionAnswering

    from rag.answering.reader import Tokenized
    from rag.settings import Settings
    from rag.training.reader import group_batch_loss, window_group

    torch.manual_seed(0)
    tokenizer = Tokenized(Settings().model_path / "tokenizer.json")
    model = AutoModelForQuestionAnswering.from_pretrained(str(Settings().model_path))
    texts = ["The Broncos played the Carolina Panthers in Santa Clara.", "The Broncos won the game in February."]
    # A trap: the windows are about the game, but name no one who lost it.
    group = window_group(tokenizer, "who lost the game", texts, ())
    assert group.places == [[], []]

    def margins() -> list[float]:
        return [span.margin if span else float("-inf") for span in window_spans(model, group)]

    before = margins()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(6):
        group_batch_loss(model, [group]).backward()
        optimizer.step()
        optimizer.zero_grad()
    after = margins()
    assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)


def window_spans(model: Any, group: WindowGroup) -> list[SpanScore | None]:
    """The reader's best span in each window of ``group`` (evaluation mode, then back to training)."""
    import torch

    from rag.answering.reader import best_span
    from rag.training.reader import Example, tensors

    model.eval()
    with torch.no_grad():
        inputs = tensors([Example(window, 0, 0, "") for window in group.windows])
        inputs.pop("start_positions"), inputs.pop("end_positions")
        output = model(**inputs)
    model.train()
    return [best_span(output.start_logits[row].numpy(), output.end_logits[row].numpy(), window)
            for row, window in enumerate(group.windows)]
