"""Whether to answer at all: a logistic regression over what the reader and the retrieved text say.

Signals: how much the reader prefers its best span to "no answer here" (its margin), the span's and the no-answer
scores, the ranker's best sentence, the closest sentence vector, the share of the question's names and words the
retrieved text never holds, and whether the question is open (why/how/tell me...), whose answers read differently.
Fitted by ``rag.training.answerer`` on the train half of SQuAD in the open setting (the question with its gold
paragraph retrieved, and again with every passage holding the answer removed: near-topic questions with no
answer), its threshold then set on the development questions (``evals/seeds.jsonl``: off-topic, near-topic and
trap questions beside answerable ones) to keep false refusals few.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.answering.questions import QuestionForm
from rag.answering.reader import SpanScore
from rag.answering.sentences import CandidateSentence, Evidence

REFUSAL_FEATURES = ("margin", "span_score", "null", "best_sentence", "best_dense", "names_missing",
                    "terms_missing", "open")


@dataclass(frozen=True)
class RefusalSignals:
    values: tuple[float, ...]

    @staticmethod
    def of(form: QuestionForm, best: SpanScore | None, ranked: list[CandidateSentence],
           evidence: Evidence) -> RefusalSignals:
        margin = best.margin if best else -20.0
        return RefusalSignals((
            max(margin, -20.0),
            best.score if best else -10.0,
            best.null if best else 10.0,
            ranked[0].score if ranked else -10.0,
            evidence.best_dense,
            evidence.names_missing,
            evidence.terms_missing,
            float(form.open),
        ))
