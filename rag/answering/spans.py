"""Which of the reader's spans is the answer: each window the reader read proposes its best span, and a learned
linear model chooses among them.

The reader's own margin (span score minus no-answer score) is computed window by window, so it does not compare
well across windows: a confident span in a sentence the ranker thought unlikely, or a span that only repeats the
question's words ("the company" for "what did the company lose"), often wins on margin alone. The
selector weighs the margin with the ranker's score of the sentence, the window's place in reading order, whether
the span is of the kind asked for, and how much of it the question already says. Fitted by
``rag.training.answerer`` on the SQuAD train half (label: the span matches the gold answer).
"""

from __future__ import annotations

from rag.answering.linear import LinearModel
from rag.answering.questions import QuestionForm, content_terms, fits_kind, tokens
from rag.answering.terms import term_keys

SPAN_FEATURES = ("margin", "span_score", "null", "sentence_score", "read_rank", "typed_match", "in_question",
                 "span_words")
MARGIN_ONLY = LinearModel(SPAN_FEATURES, (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 0.0)
"""Until the selector is fitted: the reader's margin alone, as SQuAD 2.0 decodes."""


def span_features(form: QuestionForm, question_keys: frozenset[str], margin: float, score: float, null: float,
                  sentence_score: float, read_rank: int, text: str) -> tuple[float, ...]:
    """The selector's signals for one window's span (``text``), read ``read_rank``-th, in a sentence the ranker
    scored ``sentence_score``; ``question_keys`` are the question's words as ``rag.answering.terms`` matches them."""
    words, content = tokens(text), content_terms(text)
    repeated = sum(1 for word in content if term_keys(word) & question_keys) / len(content) if content else 1.0
    return (max(margin, -20.0), score, null, sentence_score, float(read_rank), float(fits_kind(text, form.kind)),
            repeated, float(min(len(words), 12)))
