"""The hand-tuned extractive answerer (``answerer = "rules"``): pick the sentence that answers, quote it, and name
the short answer; or refuse.

No language model, so nothing is invented: every answer is a sentence of an article. A sentence is scored by how
close it is to the question (its contextual vector, precomputed at ingest), how many of the question's words it and
its neighbours hold (with spelling variants folded), and whether it holds a span of the kind the question asks for
(a date for "when"...). When even the best sentence scores under the calibrated threshold, the answer is a refusal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.answering.questions import STOPWORDS, Span, tokens
from rag.answering.rule_forms import QuestionForm, answer_spans_for
from rag.answering.terms import missing_share, term_coverage, term_keys, term_weights, text_keys
from rag.embedding import Vectors
from rag.retrieval import RetrievedPassage
from rag.store import StoredSentence

# Weights of the sentence score; fixed by hand on the seed questions, then checked on SQuAD (see evals/README.md).
W_DENSE = 1.0
W_TERMS = 0.6
W_CONTEXT = 0.45
W_KIND = 0.35
W_PASSAGE = 0.15
W_NAMES = 0.5
# Support penalties: a "when" question answered by a sentence with no date; names and words of the question that
# the retrieved text never has.
W_NO_SPAN = 0.4
W_UNKNOWN_NAME = 1.0
W_UNKNOWN_TERM = 0.3


@dataclass(frozen=True)
class SentenceChoice:
    passage: RetrievedPassage
    start: int
    end: int
    """Offsets in the article text."""
    text: str
    score: float
    short_answer: Span | None
    """Offsets in the article text of the short answer, if the question wants a kind of span and one was found."""
    support: float = 0.0
    """How well the articles support answering at all; compared with the refusal threshold."""


@dataclass(frozen=True)
class _Candidate:
    passage: RetrievedPassage
    rank: int
    stored: list[StoredSentence]
    texts: list[str]
    keys: list[frozenset[str]]
    title: frozenset[str]


def choose_sentence(form: QuestionForm, question_vector: Vectors,
                    passages: Sequence[RetrievedPassage]) -> SentenceChoice | None:
    """The best-scoring sentence of the retrieved passages, or ``None`` if they hold no sentence at all.

    A question that wants a kind of span (a date, a number, a name) is answered only by a sentence holding one,
    if any does; the support then drops for a sentence that holds none. When the chosen sentence does not name
    what the question names but a neighbour does ("The town was liberated ... Aug. 30" / "... the swift military
    victory in Springfield"), the quote runs on to that neighbour, so the reader sees what "the town" is.
    """
    candidates = []
    for rank, passage in enumerate(passages, start=1):
        stored = passage.sentences
        texts = [passage.text[s.start - passage.start : s.end - passage.start] for s in stored]
        if stored:
            title = text_keys(str(passage.metadata.get("title", "")))
            candidates.append(_Candidate(passage, rank, stored, texts, [text_keys(text) for text in texts], title))
    weights = term_weights(form.terms, [keys for c in candidates for keys in c.keys])
    question_keys = frozenset(key for term in form.terms for key in term_keys(term))
    scored: list[tuple[float, bool, _Candidate, int, list[Span]]] = []
    for candidate in candidates:
        dense = np.vstack([sentence.vector for sentence in candidate.stored]) @ question_vector
        for index in range(len(candidate.stored)):
            text = candidate.texts[index]
            window = _window_keys(candidate, index)
            spans = _answer_candidates(text, form, question_keys)
            beside_noun = any(_next_to_noun(text, span, form) for span in spans)
            score = (W_DENSE * float(dense[index]) + W_TERMS * term_coverage(weights, candidate.keys[index])
                     + W_CONTEXT * term_coverage(weights, window) + W_KIND * (bool(spans) + beside_noun)
                     + W_PASSAGE / math.sqrt(candidate.rank)
                     - W_NAMES * missing_share(form.names, window | candidate.title))
            scored.append((score, bool(spans), candidate, index, spans))
    if not scored:
        return None
    typed = form.kind != "other" and any(has_span for _, has_span, *_ in scored)
    score, has_span, candidate, index, spans = max(
        (item for item in scored if item[1] or not typed), key=lambda item: item[0]
    )
    everything = frozenset().union(*(keys for c in candidates for keys in c.keys), *(c.title for c in candidates))
    other_terms = [term for term in form.terms if term not in form.names]
    support = (score - W_NO_SPAN * (form.kind != "other" and not has_span)
               - W_UNKNOWN_NAME * missing_share(form.names, everything)
               - W_UNKNOWN_TERM * missing_share(other_terms, everything))
    return _choice(candidate, index, spans, form, question_keys, score, support)


def _window_keys(candidate: _Candidate, index: int) -> frozenset[str]:
    """The sentence before (where "it" and "the city" usually point) and the two after: a paragraph that lost
    its heading may name its subject only in the next paragraph."""
    return frozenset().union(*candidate.keys[max(0, index - 1) : index + 3])


def _choice(candidate: _Candidate, index: int, spans: list[Span], form: QuestionForm,
            question_keys: frozenset[str], score: float, support: float) -> SentenceChoice:
    stored, passage = candidate.stored, candidate.passage
    short = _nearest_to_terms(candidate.texts[index], spans, question_keys)
    first = last = index
    missing = [name for name in form.names if not term_keys(name) & candidate.keys[index]]
    for neighbour in (index - 1, index + 1, index + 2):
        if missing and 0 <= neighbour < len(stored) and missing_share(missing, candidate.keys[neighbour]) < 1:
            first, last = min(first, neighbour), max(last, neighbour)
            break
    start, end, sentence = stored[first].start, stored[last].end, stored[index]
    return SentenceChoice(passage, start, end, passage.text[start - passage.start : end - passage.start], score,
                          (sentence.start + short[0], sentence.start + short[1]) if short else None, support)


def _next_to_noun(sentence: str, span: Span, form: QuestionForm) -> bool:
    """Whether the span stands beside the noun the question named ("Kent county", "the city of Port Said")."""
    if not form.noun:
        return False
    before, after = sentence[max(0, span[0] - 16) : span[0]].lower(), sentence[span[1] : span[1] + 16].lower()
    return bool(re.search(rf"\b{form.noun[:5]}", before) or re.search(rf"\b{form.noun[:5]}", after))


def _answer_candidates(sentence: str, form: QuestionForm, question_keys: frozenset[str]) -> list[Span]:
    """Spans of the wanted kind that are not just the question's own words."""
    candidates = []
    for start, end in answer_spans_for(sentence, form):
        words = [word for word in tokens(sentence[start:end]) if word not in STOPWORDS]
        if words and all(term_keys(word) & question_keys for word in words):
            continue
        candidates.append((start, end))
    return candidates


def _nearest_to_terms(sentence: str, spans: list[Span], question_keys: frozenset[str]) -> Span | None:
    """Of several candidate spans, the one closest to where the question's words occur in the sentence."""
    if not spans:
        return None
    anchors = [m.start() for m in re.finditer(r"[A-Za-z0-9]+", sentence)
               if term_keys(m.group().lower()) & question_keys]
    if not anchors:
        return spans[0]
    return min(spans, key=lambda span: min(abs(span[0] - anchor) for anchor in anchors))
