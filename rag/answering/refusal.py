"""Whether to answer at all: a logistic regression over what the reader and the retrieved text say.

Signals: how much the reader prefers its best span to "no answer here" (its margin), the span's and the no-answer
scores, the ranker's best sentence, the closest sentence vector, the share of the question's names and words the
retrieved text never holds (plain, and weighted by their rarity in the index) and the share the text around the
chosen span does not hold, whether the span is of the kind asked for (a date for "when", a name for "who") or only
an order of magnitude for "how many" (unless asked "roughly"), and whether the question is open (why/how/tell
me...), whose answers read differently.
Fitted by ``rag.training.answerer`` on the train half of SQuAD in the open setting (the question with its gold
paragraph retrieved, and again with every passage holding the answer removed: near-topic questions with no
answer) together with the development questions (``evals/dev.jsonl``, ``evals/seeds.jsonl``: typed as people type,
with off-topic, near-topic and trap questions), its threshold set on them to keep false refusals few.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answering.questions import QuestionForm, fits_kind
from rag.answering.reader import SpanScore
from rag.answering.sentences import CandidateSentence, Evidence
from rag.answering.terms import missing_share, text_keys

REFUSAL_SIGNS = {"margin": 1, "span_score": 0, "null": 0, "best_sentence": 1, "best_dense": 1, "names_missing": -1,
                 "terms_missing": -1, "rare_missing": -1, "answer_names_missing": -1, "typed_match": 1, "vague": -1,
                 "open": 0}
"""The signals, in order, and which way each may push: words of the question the articles lack only ever speak
against answering, a surer reader or a closer sentence only for it; the reader's two raw scores and "open" are
left free."""
REFUSAL_FEATURES = tuple(REFUSAL_SIGNS)
# A quantity that does not answer "how many": an answer by order of magnitude.
VAGUE_QUANTITY = re.compile(r"^(?:(?:tens|hundreds|thousands|millions|dozens|scores)(?: of (?:thousands|millions))?|"
                            r"several|a few|many|some|numerous)$", re.IGNORECASE)


@dataclass(frozen=True)
class RefusalSignals:
    values: tuple[float, ...]

    @staticmethod
    def of(form: QuestionForm, best: SpanScore | None, best_text: str, window_text: str,
           ranked: list[CandidateSentence], evidence: Evidence) -> RefusalSignals:
        """``best`` is the chosen span, ``best_text`` its text, ``window_text`` the text the reader found it in."""
        if form.open:
            # Sentences answer an open question, not a span: the reader's scores say nothing about whether the
            # articles do, so an open question is judged by the retrieved text alone (and the "open" weight).
            reader = (0.0, 0.0, 0.0)
        elif best is not None:
            reader = (max(best.margin, -20.0), best.score, best.null)
        else:
            reader = (-20.0, -10.0, 10.0)
        return RefusalSignals((
            *reader,
            ranked[0].score if ranked else -10.0,
            evidence.best_dense,
            evidence.names_missing,
            evidence.terms_missing,
            evidence.rare_missing,
            # A date for another town: the question's names are in the articles, but not around the answer.
            missing_share(form.names or form.terms, text_keys(window_text)),
            float(fits_kind(best_text, form.kind)),
            float(form.kind == "number" and not form.rough and bool(VAGUE_QUANTITY.match(best_text.strip()))),
            float(form.open),
        ))
