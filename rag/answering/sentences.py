"""Candidate sentences: every sentence of the best passages, described by a few signals and ranked by a learned
linear model, so the reader reads only the few sentences most likely to hold the answer.

Signals: the sentence's contextual vector against the question's; the share of the question's words it and its
neighbours hold (rare words weighing more, spellings folded); whether it holds a span of the kind asked for (a date
for "when"); whether the question's names appear around it; how well its passage was retrieved. Their weights are
fitted on the train half of SQuAD by ``rag.training.answerer`` (label: the sentence holds the answer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.answering.linear import LinearModel
from rag.answering.questions import QuestionForm, typed_spans
from rag.answering.terms import missing_share, term_coverage, term_keys, term_weights, text_keys
from rag.embedding import Vectors
from rag.retrieval import RetrievedPassage

SENTENCE_FEATURES = ("dense", "terms", "context", "typed", "names_missing", "passage_rank", "passage_score")


@dataclass(frozen=True)
class CandidateSentence:
    passage: RetrievedPassage
    passage_rank: int
    index: int
    """Position among the passage's stored sentences."""
    start: int
    end: int
    """Offsets in the article text."""
    text: str
    vector: Vectors
    features: tuple[float, ...]
    score: float = 0.0
    """The ranker's log-odds that this sentence holds the answer."""

    @property
    def article(self) -> str:
        return str(self.passage.metadata.get("article_id", self.passage.id))


@dataclass(frozen=True)
class Evidence:
    """What the retrieved text holds of the question, for the refusal decision."""

    names_missing: float
    """Share of the question's names that no candidate sentence or title holds."""
    terms_missing: float
    """Share of the question's other content words that none holds."""
    rare_missing: float
    """Share of the question's content words that none holds, each weighted by its rarity in the index."""
    best_dense: float


def candidate_sentences(form: QuestionForm, question_vector: Vectors, passages: Sequence[RetrievedPassage],
                        ranker: LinearModel, rarity: Callable[[str], float] = len
                        ) -> tuple[list[CandidateSentence], Evidence]:
    """Every stored sentence of ``passages`` with its signals, best first by ``ranker``."""
    rows = []
    for rank, passage in enumerate(passages, start=1):
        texts = [passage.text[s.start - passage.start : s.end - passage.start] for s in passage.sentences]
        rows.append((rank, passage, texts, [text_keys(text) for text in texts],
                     text_keys(str(passage.metadata.get("title", "")))))
    all_keys = [keys for _, _, _, keys_list, _ in rows for keys in keys_list]
    weights = term_weights(form.terms, all_keys)
    best_score = max((passage.score for passage in passages), default=0.0) or 1.0
    everything = frozenset().union(*all_keys, *(title for *_, title in rows))
    candidates, best_dense = [], -1.0
    for rank, passage, texts, keys_list, title in rows:
        if not texts:
            continue
        dense = np.vstack([s.vector for s in passage.sentences]) @ question_vector
        for index, stored in enumerate(passage.sentences):
            window = frozenset().union(*keys_list[max(0, index - 1) : index + 3])
            features = (
                float(dense[index]),
                term_coverage(weights, keys_list[index]),
                term_coverage(weights, window),
                float(bool(typed_spans(texts[index], form.kind))),
                missing_share(form.names, window | title),
                1.0 / math.sqrt(rank),
                passage.score / best_score,
            )
            best_dense = max(best_dense, float(dense[index]))
            candidates.append(CandidateSentence(passage, rank, index, stored.start, stored.end, texts[index],
                                                stored.vector, features, ranker.score(features)))
    other_terms = [term for term in form.terms if term not in form.names]
    rarities = {term: rarity(term) for term in form.terms}
    total = sum(rarities.values())
    rare_missing = sum(r for term, r in rarities.items() if not term_keys(term) & everything) / total if total else 0.0
    evidence = Evidence(missing_share(form.names, everything), missing_share(other_terms, everything), rare_missing,
                        best_dense)
    return sorted(candidates, key=lambda c: -c.score), evidence


def neighbours(candidates: Sequence[CandidateSentence], of: CandidateSentence,
               reach: int = 1) -> list[CandidateSentence]:
    """``of`` with the sentences up to ``reach`` before and after it in its passage, in text order."""
    same = {c.index: c for c in candidates if c.passage.id == of.passage.id}
    return [same[i] for i in range(of.index - reach, of.index + reach + 1) if i in same]


def matches_question(candidate: CandidateSentence, form: QuestionForm) -> bool:
    """Whether the sentence holds any of the question's words (spellings folded)."""
    keys = text_keys(candidate.text)
    return any(term_keys(term) & keys for term in form.terms)
