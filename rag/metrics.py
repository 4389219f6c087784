"""Pure evaluation metrics for the RAG question-answering pipeline.

Everything here is deterministic, side-effect free and uses only the standard
library. The docstrings are the specification of each metric.

Answer metrics (``normalize_answer``, ``token_f1``, ``exact_match``,
``best_f1``, ``best_exact_match``) follow the official SQuAD v1.1 evaluation
script (``evaluate-v1.1.py``), with one documented difference in
``normalize_answer`` (Unicode punctuation is also removed).

Evidence/citation helpers (``normalize_quote``, ``quote_in_passage``,
``overlap_fraction``, ``citation_supports``) compare quoted text with passage
text while tolerating typographic variation (curly quotes, dashes, whitespace).

Ranking metrics (``recall_at_k``, ``reciprocal_rank``) take one ranked list of
booleans per question: ``relevance[i]`` says whether the result at rank
``i + 1`` is relevant.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from difflib import SequenceMatcher

__all__ = [
    "best_exact_match",
    "best_f1",
    "citation_supports",
    "contains_answer",
    "exact_match",
    "mean",
    "normalize_answer",
    "normalize_quote",
    "overlap_fraction",
    "quote_in_passage",
    "recall_at_k",
    "reciprocal_rank",
    "token_f1",
]

_ASCII_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")

# Typographic variants mapped to their ASCII form by ``normalize_quote``.
_QUOTE_TRANSLATION = str.maketrans(
    {
        # single quotes / apostrophes -> '
        "\u2018": "'",  # ‘ left single quotation mark
        "\u2019": "'",  # ’ right single quotation mark
        "\u201a": "'",  # ‚ single low-9 quotation mark
        "\u201b": "'",  # ‛ single high-reversed-9 quotation mark
        "\u2032": "'",  # ′ prime
        # double quotes -> "
        "\u201c": '"',  # “ left double quotation mark
        "\u201d": '"',  # ” right double quotation mark
        "\u201e": '"',  # „ double low-9 quotation mark
        "\u201f": '"',  # ‟ double high-reversed-9 quotation mark
        "\u2033": '"',  # ″ double prime
        # hyphens and dashes -> -
        "\u2010": "-",  # ‐ hyphen
        "\u2011": "-",  # ‑ non-breaking hyphen
        "\u2012": "-",  # ‒ figure dash
        "\u2013": "-",  # – en dash
        "\u2014": "-",  # — em dash
        "\u2015": "-",  # ― horizontal bar
        "\u2212": "-",  # − minus sign
    }
)


# ---------------------------------------------------------------------------
# Answer metrics (SQuAD v1.1)
# ---------------------------------------------------------------------------


def _is_punctuation(ch: str) -> bool:
    return ch in _ASCII_PUNCTUATION or unicodedata.category(ch).startswith("P")


def normalize_answer(s: str) -> str:
    """Normalise an answer string the way SQuAD v1.1 does, plus Unicode punctuation.

    Steps, in this order (the order of the official script):

    1. lowercase (``str.lower``);
    2. delete every punctuation character;
    3. replace the whole words ``a``, ``an`` and ``the`` by a space
       (regex ``\\b(a|an|the)\\b``);
    4. collapse every run of whitespace to one space and strip both ends.

    Difference from the official ``evaluate-v1.1.py``: the official script
    deletes only the ASCII characters in ``string.punctuation``. Here a
    character is also deleted when its Unicode general category starts with
    ``"P"`` (Pc, Pd, Pe, Pf, Pi, Po, Ps), so curly quotes (‘ ’ “ ”), dashes
    (– —), guillemets, ``¿`` and similar are removed too. ASCII symbols that
    the official script removes (e.g. ``$ + < = > ^ ` | ~``, Unicode category
    S*) are still removed. For pure-ASCII input the result is identical to
    the official script.

    Punctuation is *deleted*, not replaced by a space (as in the official
    script): ``"well-known"`` becomes ``"wellknown"``, ``"U.S."`` becomes
    ``"us"`` and ``"Tower—then"`` becomes the single token ``"towerthen"``.

    Example: ``normalize_answer("The  “Big” Apple!") == "big apple"``.
    """
    text = s.lower()
    text = "".join(ch for ch in text if not _is_punctuation(ch))
    text = _ARTICLES_RE.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction: str, ground_truth: str) -> float:
    """SQuAD v1.1 token-level F1 between a prediction and one ground truth.

    Both strings are passed through :func:`normalize_answer` and split on
    whitespace. With ``common`` the multiset intersection of the two token
    bags and ``n = |common|``:

    * if ``n == 0`` the score is ``0.0`` (this includes the case where either
      or both strings normalise to nothing -- SQuAD v1.1 behaviour, unlike
      SQuAD v2.0 which scores two empty answers as 1.0);
    * otherwise ``precision = n / len(prediction_tokens)``,
      ``recall = n / len(ground_truth_tokens)`` and the score is
      ``2 * precision * recall / (precision + recall)``.

    Returns a value in ``[0.0, 1.0]``.
    """
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match(prediction: str, ground_truth: str) -> bool:
    """SQuAD exact match: ``normalize_answer(prediction) == normalize_answer(ground_truth)``.

    Note that two strings that both normalise to ``""`` (e.g. ``"the"`` and
    ``"!"``) are an exact match, as in the official script.
    """
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def best_f1(prediction: str, answers: Sequence[str]) -> float:
    """Maximum of :func:`token_f1` of ``prediction`` over all gold ``answers``.

    This is SQuAD's ``metric_max_over_ground_truths(f1_score, ...)``.

    Raises:
        ValueError: if ``answers`` is empty (a question without gold answers
            is a data error, not a score of 0).
    """
    if not answers:
        raise ValueError("best_f1 needs at least one gold answer")
    return max(token_f1(prediction, answer) for answer in answers)


def best_exact_match(prediction: str, answers: Sequence[str]) -> bool:
    """True if ``prediction`` is an :func:`exact_match` of any gold answer.

    This is SQuAD's ``metric_max_over_ground_truths(exact_match_score, ...)``.

    Raises:
        ValueError: if ``answers`` is empty.
    """
    if not answers:
        raise ValueError("best_exact_match needs at least one gold answer")
    return any(exact_match(prediction, answer) for answer in answers)


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """True if some gold answer occurs in ``text`` as a whole-token sequence.

    Both ``text`` and each answer are passed through :func:`normalize_answer`;
    the answer matches when its token sequence appears as a contiguous run of
    whole tokens of the text (i.e. ``" " + answer + " "`` is a substring of
    ``" " + text + " "``). So ``"10"`` does not match in ``"100"`` or
    ``"10th"``, but does match in ``"10 years"`` and ``"(10)"``. Because
    normalisation deletes punctuation, words joined by punctuation without
    spaces form one token: ``"Eiffel Tower"`` is not found in
    ``"Eiffel Tower—then"`` (normalised ``"eiffel towerthen"``).

    Answers that normalise to the empty string (e.g. ``"the"``) never match.
    Returns False when ``answers`` is empty.
    """
    padded_text = f" {normalize_answer(text)} "
    for answer in answers:
        normalized = normalize_answer(answer)
        if normalized and f" {normalized} " in padded_text:
            return True
    return False


# ---------------------------------------------------------------------------
# Evidence quotes and citations
# ---------------------------------------------------------------------------


def normalize_quote(s: str) -> str:
    """Normalise text for matching evidence quotes against passages.

    * curly/low single quotes and prime (‘ ’ ‚ ‛ ′) become ``'``;
    * curly/low double quotes and double prime (“ ” „ ‟ ″) become ``"``;
    * hyphen and dash variants (‐ ‑ ‒ – — ― and the minus sign −) become ``-``;
    * every run of whitespace (including newlines, tabs and non-breaking
      spaces -- anything ``str.split()`` splits on) becomes one space;
    * leading and trailing whitespace is stripped.

    Case and all other characters (including punctuation) are preserved, so
    matching with the result is case-sensitive.
    """
    return " ".join(s.translate(_QUOTE_TRANSLATION).split())


def quote_in_passage(passage_text: str, evidence: str) -> bool:
    """True if ``normalize_quote(evidence)`` is a substring of ``normalize_quote(passage_text)``.

    An evidence string that normalises to ``""`` is never considered found
    (it would otherwise trivially match every passage).
    """
    needle = normalize_quote(evidence)
    if not needle:
        return False
    return needle in normalize_quote(passage_text)


def overlap_fraction(cited: tuple[int, int], evidence: tuple[int, int]) -> float:
    """Fraction of the evidence span covered by the cited span.

    Spans are half-open character offsets ``(start, end)``, i.e. they cover
    ``text[start:end]``. The result is::

        max(0, min(cited_end, evidence_end) - max(cited_start, evidence_start))
        / (evidence_end - evidence_start)

    so it lies in ``[0.0, 1.0]``: 1.0 when the cited span covers the whole
    evidence span, 0.0 when they are disjoint or merely touch. An empty
    evidence span (``start == end``) gives 0.0.

    Raises:
        ValueError: if either span has ``end < start``.
    """
    cited_start, cited_end = cited
    evidence_start, evidence_end = evidence
    if cited_end < cited_start or evidence_end < evidence_start:
        raise ValueError(f"invalid span(s): cited={cited}, evidence={evidence}")
    evidence_length = evidence_end - evidence_start
    if evidence_length == 0:
        return 0.0
    intersection = min(cited_end, evidence_end) - max(cited_start, evidence_start)
    return max(0, intersection) / evidence_length


def citation_supports(quote: str, evidence_quotes: Sequence[str]) -> bool:
    """True if a cited ``quote`` matches at least one gold evidence quote.

    With ``q = normalize_quote(quote)`` and, for each evidence quote,
    ``e = normalize_quote(evidence)``, the quote is supporting when, for some
    non-empty ``e``, any of these holds:

    1. ``e in q`` -- the quote contains the whole evidence quote;
    2. ``q in e`` -- the quote is a part of the evidence quote;
    3. the longest common substring of ``q`` and ``e`` (found with
       ``difflib.SequenceMatcher(None, q, e, autojunk=False)
       .find_longest_match``) has length ``>= 0.5 * len(e)``.

    Matching is case-sensitive (``normalize_quote`` preserves case). An empty
    ``q`` supports nothing; empty evidence quotes are ignored.
    """
    q = normalize_quote(quote)
    if not q:
        return False
    for evidence in evidence_quotes:
        e = normalize_quote(evidence)
        if not e:
            continue
        if e in q or q in e:
            return True
        matcher = SequenceMatcher(None, q, e, autojunk=False)
        match = matcher.find_longest_match(0, len(q), 0, len(e))
        if match.size >= 0.5 * len(e):
            return True
    return False


# ---------------------------------------------------------------------------
# Ranking metrics
# ---------------------------------------------------------------------------


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def recall_at_k(relevance: Sequence[bool], k: int) -> float:
    """Success@k: 1.0 if any of the first ``k`` results is relevant, else 0.0.

    ``relevance[i]`` is True when the result at rank ``i + 1`` is relevant.
    If fewer than ``k`` results are given, all of them are considered.

    Open-domain QA retrieval papers (e.g. DPR) report this quantity as
    "top-k accuracy" or "recall@k"; it equals classical recall@k only when
    each question has exactly one relevant passage. It is *not* the fraction
    of all relevant passages retrieved. Averaged over questions it matches
    trec_eval's ``success_k``.

    Raises:
        ValueError: if ``k < 1``.
    """
    _check_k(k)
    return 1.0 if any(relevance[:k]) else 0.0


def reciprocal_rank(relevance: Sequence[bool], k: int | None = None) -> float:
    """Reciprocal rank of the first relevant result within the top ``k``.

    Returns ``1 / r`` where ``r`` (1-based) is the rank of the first True in
    ``relevance[:k]``, or 0.0 if there is none. ``k=None`` considers the whole
    list. Averaged over questions this is MRR (MRR@k when ``k`` is given) and
    matches trec_eval's ``recip_rank`` for ``k=None``.

    Raises:
        ValueError: if ``k`` is given and ``k < 1``.
    """
    if k is not None:
        _check_k(k)
    considered = relevance if k is None else relevance[:k]
    for rank, is_relevant in enumerate(considered, start=1):
        if is_relevant:
            return 1.0 / rank
    return 0.0


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean of ``values``; returns 0.0 for an empty sequence.

    Booleans are accepted (True counts as 1.0), so ``mean`` of a list of
    exact-match results is the exact-match rate. The empty case returns 0.0
    rather than raising so that aggregating an empty slice never crashes a
    report; callers that need to distinguish "no data" must check the length.
    """
    if not values:
        return 0.0
    return sum(values) / len(values)
