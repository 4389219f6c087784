"""Composing answers from a reading (pure functions): the short answer and its sentence, the same fact in a second
article, differing figures side by side, open answers of several novel sentences, quotes that name their subject."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rag.answering.answerer import (
    Answerer,
    Reading,
    ReadWindow,
    answer_only,
    compose_factoid,
    compose_open,
    window_texts,
)
from rag.answering.questions import AnswerKind, analyse
from rag.answering.reader import SpanScore, Tokenized
from rag.answering.refusal import RefusalSignals
from rag.answering.sentences import CandidateSentence
from rag.retrieval import RetrievedPassage
from rag.settings import Settings

MODEL = Settings().model_path


def article(article_id: str, *sentences: str, offset: int = 100) -> tuple[RetrievedPassage, list[tuple[int, int]]]:
    text = " ".join(sentences)
    spans, cursor = [], offset
    for sentence in sentences:
        spans.append((cursor, cursor + len(sentence)))
        cursor += len(sentence) + 1
    meta = {"start": offset, "end": offset + len(text), "article_id": article_id, "title": article_id}
    return RetrievedPassage(f"p-{article_id}", text, meta, 1.0), spans


def candidates(passage: RetrievedPassage, spans: list[tuple[int, int]], scores: list[float],
               vectors: list[np.ndarray] | None = None) -> list[CandidateSentence]:
    out = []
    for index, ((start, end), score) in enumerate(zip(spans, scores, strict=True)):
        vector = vectors[index] if vectors else np.eye(8, dtype=np.float32)[index % 8]
        out.append(CandidateSentence(passage, 1, index, start, end,
                                     passage.text[start - passage.start : end - passage.start], vector, (), score))
    return out


def reading(question: str, ranked: list[CandidateSentence], windows: list[ReadWindow]) -> Reading:
    """The selector's choice is the window it scores highest (``span_in`` scores by the reader's margin)."""
    best = max((w for w in windows if w.span), key=lambda w: w.selection, default=None)
    return Reading(analyse(question), sorted(ranked, key=lambda c: -c.score), windows, best, RefusalSignals(()), 3.0)


def span_in(candidate: CandidateSentence, text: str, margin: float = 5.0) -> ReadWindow:
    start = candidate.start + candidate.text.index(text)
    return ReadWindow(candidate, candidate.start, candidate.end, SpanScore(start, start + len(text), margin, 0.0),
                      selection=margin)


def test_a_factoid_answer_is_the_span_quoted_in_its_sentence() -> None:
    passage, spans = article("a", "The city fell on July 10.", "Fighting went on for weeks.")
    ranked = candidates(passage, spans, [2.0, 0.5])
    composed = compose_factoid(reading("when did the city fall", ranked, [span_in(ranked[0], "July 10")]))
    assert composed.short_answer == "July 10"
    assert composed.text == "July 10: “The city fell on July 10.” [1]"
    [quote] = composed.quotes
    assert passage.text[quote.start - passage.start : quote.end - passage.start] == "The city fell on July 10."


def test_the_same_answer_in_another_article_is_cited_too() -> None:
    first, first_spans = article("a", "The city fell on July 10.")
    second, second_spans = article("b", "Officials said the city fell on July 10 after months.")
    ranked = candidates(first, first_spans, [2.0]) + candidates(second, second_spans, [1.0])
    composed = compose_factoid(reading("when did the city fall", ranked, [span_in(ranked[0], "July 10")]))
    assert [q.passage.metadata["article_id"] for q in composed.quotes] == ["a", "b"]
    assert composed.text.endswith("[1] “Officials said the city fell on July 10 after months.” [2]")


def test_a_different_figure_in_another_article_is_shown_with_its_source() -> None:
    first, first_spans = article("a", "The group lost 96 percent of its land.")
    second, second_spans = article("b", "The group has lost 95 percent of its territory.")
    ranked = candidates(first, first_spans, [2.0]) + candidates(second, second_spans, [1.8])
    windows = [span_in(ranked[0], "96 percent"), span_in(ranked[1], "95 percent", margin=4.0)]
    composed = compose_factoid(reading("what percentage of its land did the group lose", ranked, windows))
    assert composed.short_answer == "96 percent"
    assert composed.text.startswith("96 percent [1]; another article gives 95 percent [2].")
    assert len(composed.quotes) == 2


def test_an_open_answer_takes_novel_sentences_and_skips_repeats_and_weak_ones() -> None:
    passage, spans = article("a", "Fighters came for the caliphate.", "They came from Europe.",
                             "Unrelated weather report.", "Fighters came for the caliphate!")
    basis = np.eye(8, dtype=np.float32)
    vectors = [basis[0], basis[1], basis[2], basis[0]]  # the last repeats the first
    ranked = candidates(passage, spans, [3.0, 2.5, -5.0, 2.9], vectors)
    composed = compose_open(reading("why did fighters come", ranked, [span_in(ranked[0], "the caliphate")]))
    assert composed.short_answer is None
    # The first two are adjacent in the article: one quote; the repeat and the weak sentence are left out.
    assert composed.text == "“Fighters came for the caliphate. They came from Europe.” [1]"


def test_an_open_answer_starts_at_the_readers_span_even_when_the_reader_prefers_no_answer() -> None:
    passage, spans = article("a", "The swift victory in the town surprised the coalition.",
                             "Rain is expected on Monday.", "Thousands of fighters surrendered as the town fell.")
    ranked = candidates(passage, spans, [3.0, -5.0, -1.0])
    unsure = span_in(ranked[2], "Thousands of fighters surrendered", margin=-2.0)
    composed = compose_open(reading("what was different about the town", ranked, [unsure]))
    # Anchored at the ranker's best sentence instead, the answer would stop before the surrenders.
    assert composed.text == ("“The swift victory in the town surprised the coalition.” [1] “Thousands of fighters "
                             "surrendered as the town fell.” [2]")


def test_an_open_answer_runs_on_past_its_first_sentence_to_the_reply() -> None:
    passage, spans = article("a", "The minister was asked if troops had been in the country.",
                             "He said he never answers such questions.", "He added that this was no denial.",
                             "Rain is expected on Monday.", "Troops were seen near the border.",
                             "Troops also trained in the desert.")
    ranked = candidates(passage, spans, [3.0, 0.5, 0.4, -5.0, 1.0, 0.9])
    composed = compose_open(reading("what did the minister say when asked about the troops", ranked,
                                    [span_in(ranked[0], "asked if troops")]))
    # The reply and what it added come with the first sentence before better-ranked sentences elsewhere.
    assert composed.text == ("“The minister was asked if troops had been in the country. He said he never answers "
                             "such questions. He added that this was no denial.” [1] “Troops were seen near the "
                             "border.” [2]")


def test_an_open_answer_runs_on_into_the_overlapping_passage_when_its_first_sentence_ends_a_passage() -> None:
    sentences = ("Rain is expected on Monday.", "The minister spoke in the morning.",
                 "The minister was asked if troops had been in the country.",
                 "He said he never answers such questions.")
    first, spans = article("a", *sentences[:3])
    ranked = candidates(first, spans, [-5.0, -4.0, 3.0])
    # The next passage of the article starts inside the first (passages overlap) and goes on to the reply.
    following, second_spans = article("a", *sentences[2:], offset=spans[2][0])
    ranked += candidates(dataclasses.replace(following, id="p-a-2"), second_spans, [2.0, 0.5])
    composed = compose_open(reading("what did the minister say when asked about the troops", ranked,
                                    [span_in(ranked[2], "asked if troops")]))
    assert composed.text == ("“The minister was asked if troops had been in the country. He said he never answers "
                             "such questions.” [1]")
    assert [quote.passage.id for quote in composed.quotes] == ["p-a-2"]


def test_a_sentence_that_ends_its_passage_is_read_in_the_overlapping_passage_with_text_on_both_sides() -> None:
    sentences = ("Rain is expected on Monday.", "The town was freed by the army.", "It fell after a short siege.",
                 "That was on Aug. 30.")
    first, spans = article("a", *sentences[:3])
    ranked = candidates(first, spans, [-5.0, 1.0, 3.0])
    following, second_spans = article("a", *sentences[1:], offset=spans[1][0])
    ranked += candidates(dataclasses.replace(following, id="p-a-2"), second_spans, [0.5, 2.0, 0.0])
    answerer = Answerer(MODEL, Path("unused"))
    answerer.__dict__["reader"] = SimpleNamespace(tokenizer=Tokenized(MODEL / "tokenizer.json"))  # windows count tokens
    (read, start, end), *_ = answerer.windows("when was the town freed", sorted(ranked, key=lambda c: -c.score))
    assert read.passage.id == "p-a-2" and read.start == spans[2][0]
    assert window_texts([(read, start, end)]) == [" ".join(sentences[1:])]


def test_a_quote_runs_on_to_the_neighbour_that_names_the_subject() -> None:
    passage, spans = article("a", "The town was freed on Aug. 30.", "It was the swift victory in Tal Afar.")
    ranked = candidates(passage, spans, [2.0, 1.0])
    composed = compose_factoid(reading("When was Tal Afar freed?", ranked, [span_in(ranked[0], "Aug. 30")]))
    assert composed.short_answer == "Aug. 30"
    assert composed.text == "Aug. 30: “The town was freed on Aug. 30. It was the swift victory in Tal Afar.” [1]"


def test_open_questions_are_refused_below_a_threshold_of_their_own() -> None:
    from rag.answering.linear import stored_models

    shipped = Answerer(MODEL, Path("unused"))
    open_form, factoid = analyse("how do i reset my passcode"), analyse("when did the town fall")
    # Their support rests on retrieval alone (the reader's scores are left out), so it sits apart from a factoid's.
    assert shipped.threshold_for(open_form) == stored_models()["open_refusal"]["threshold"] != shipped.threshold
    assert shipped.threshold_for(factoid) == shipped.refusal.threshold
    # A threshold the settings set holds for every question.
    assert {Answerer(MODEL, Path("unused"), -2.5).threshold_for(form) for form in (open_form, factoid)} == {-2.5}



@pytest.mark.parametrize("short,kind,answer", [
    ("Oct. 17, four months", "date", "Oct. 17"),  # the reader ran on past the date
    ("July 10, 2017", "date", "July 10, 2017"),  # the year is part of the date
    ("late 2014", "date", "late 2014"),
    ("40,000, the coalition said", "number", "40,000"),
    ("Brett McGurk, the envoy", "person", "Brett McGurk, the envoy"),  # no pattern says where a name ends
])
def test_a_short_answer_stops_where_the_kind_asked_for_does(short: str, kind: AnswerKind, answer: str) -> None:
    assert answer_only(short, kind) == answer
