"""The extractive answerer: pick the sentence that answers, quote it, and name the short answer; or refuse.

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

from rag.embedding import Vectors
from rag.questions import QuestionForm, Span, answer_spans, tokens
from rag.retrieval import RetrievedPassage
from rag.store import StoredSentence

# Weights of the sentence score; fixed by hand on the seed questions, then checked on SQuAD (see evals/README.md).
W_DENSE = 1.0
W_TERMS = 0.6
W_CONTEXT = 0.3
W_KIND = 0.35
W_PASSAGE = 0.15


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


def fold(token: str) -> str:
    """A spelling-insensitive key for names: consonants only, doubled letters and a final ``h`` dropped
    (Mayadeen / Mayadin -> ``mydn``, Raqqa / Raqqah -> ``rq``, Ezzor / Zour -> ``zr``)."""
    skeleton = re.sub(r"[aeiou]", "", token.lower())
    skeleton = re.sub(r"(.)\1+", r"\1", skeleton)
    return skeleton[:-1] if skeleton.endswith("h") and len(skeleton) > 2 else skeleton


def term_keys(token: str) -> set[str]:
    keys = {token, token[:5]} if len(token) > 5 else {token}
    if len(token) >= 4 and len(fold(token)) >= 2:
        keys.add("~" + fold(token))
    return keys


def term_coverage(terms: Sequence[str], text: str) -> float:
    """Share of the question's terms found in ``text`` (exact, same five-letter stem, or same folded spelling)."""
    if not terms:
        return 0.0
    present: set[str] = set()
    for token in tokens(text):
        present |= term_keys(token)
    found = sum(1 for term in terms if term_keys(term) & present)
    return found / len(terms)


def choose_sentence(form: QuestionForm, question_vector: Vectors, passages: Sequence[RetrievedPassage],
                    sentences: dict[str, list[StoredSentence]]) -> SentenceChoice | None:
    """The best-scoring sentence of the retrieved passages, or ``None`` if they hold no sentence at all."""
    best: SentenceChoice | None = None
    for rank, passage in enumerate(passages, start=1):
        stored = sentences.get(passage.id, [])
        if not stored:
            continue
        dense = np.vstack([sentence.vector for sentence in stored]) @ question_vector
        texts = [passage.text[s.start - passage.start : s.end - passage.start] for s in stored]
        for index, sentence in enumerate(stored):
            text = texts[index]
            window = " ".join(texts[max(0, index - 1) : index + 2])
            spans = _answer_candidates(text, form)
            score = (W_DENSE * float(dense[index]) + W_TERMS * term_coverage(form.terms, text)
                     + W_CONTEXT * term_coverage(form.terms, window) + W_KIND * bool(spans)
                     + W_PASSAGE / math.sqrt(rank))
            if best is None or score > best.score:
                short = _nearest_to_terms(text, spans, form.terms)
                best = SentenceChoice(passage, sentence.start, sentence.end, text, score,
                                      (sentence.start + short[0], sentence.start + short[1]) if short else None)
    return best


def _answer_candidates(sentence: str, form: QuestionForm) -> list[Span]:
    """Spans of the wanted kind that are not just the question's own words."""
    question_words = {key for term in form.terms for key in term_keys(term)}
    candidates = []
    for start, end in answer_spans(sentence, form.kind):
        words = tokens(sentence[start:end])
        if words and all(term_keys(word) & question_words for word in words):
            continue
        candidates.append((start, end))
    return candidates


def _nearest_to_terms(sentence: str, spans: list[Span], terms: Sequence[str]) -> Span | None:
    """Of several candidate spans, the one closest to where the question's words occur in the sentence."""
    if not spans:
        return None
    wanted = {key for term in terms for key in term_keys(term)}
    anchors = [m.start() for m in re.finditer(r"[A-Za-z0-9]+", sentence) if term_keys(m.group().lower()) & wanted]
    if not anchors:
        return spans[0]
    return min(spans, key=lambda span: min(abs(span[0] - anchor) for anchor in anchors))
