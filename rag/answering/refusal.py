"""Whether to answer at all: a logistic regression over what the reader and the retrieved text say.

Signals: how much the reader prefers its best span to "no answer here" (its margin), the span's and the no-answer
scores, the ranker's best sentence, the closest sentence vector, the share of the question's names and words the
retrieved text never holds (plain, and weighted by their rarity in the index), whether the span is of the kind asked
for (a date for "when") or only an order of magnitude for "how many", and whether the question is open
(why/how/tell me...), whose answers read differently.
Fitted by ``rag.training.answerer`` on the train half of SQuAD in the open setting (the question with its gold
paragraph retrieved, and again with every passage holding the answer removed: near-topic questions with no
answer) together with the development questions (``evals/dev.jsonl``, ``evals/seeds.jsonl``: typed as people type,
with off-topic, near-topic and trap questions), its threshold set on them to keep false refusals few.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answering.questions import PATTERNS, QuestionForm, typed_spans
from rag.answering.reader import SpanScore
from rag.answering.sentences import CandidateSentence, Evidence

REFUSAL_FEATURES = ("margin", "span_score", "null", "best_sentence", "best_dense", "names_missing",
                    "terms_missing", "rare_missing", "typed_match", "vague", "open")
# A quantity that does not answer "how many": an answer by order of magnitude.
VAGUE_QUANTITY = re.compile(r"^(?:(?:tens|hundreds|thousands|millions|dozens|scores)(?: of (?:thousands|millions))?|"
                            r"several|a few|many|some|numerous)$", re.IGNORECASE)


@dataclass(frozen=True)
class RefusalSignals:
    values: tuple[float, ...]

    @staticmethod
    def of(form: QuestionForm, best: SpanScore | None, best_text: str, ranked: list[CandidateSentence],
           evidence: Evidence) -> RefusalSignals:
        margin = best.margin if best else -20.0
        typed = form.kind in PATTERNS
        return RefusalSignals((
            max(margin, -20.0),
            best.score if best else -10.0,
            best.null if best else 10.0,
            ranked[0].score if ranked else -10.0,
            evidence.best_dense,
            evidence.names_missing,
            evidence.terms_missing,
            evidence.rare_missing,
            float(bool(typed_spans(best_text, form.kind))) if typed else 1.0,
            float(form.kind == "number" and bool(VAGUE_QUANTITY.match(best_text.strip()))),
            float(form.open),
        ))
