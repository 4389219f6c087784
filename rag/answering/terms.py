"""Matching a question's words in article text: spelling variants folded, rare words weighted more.

Names are spelled differently across articles and by people typing them (Mohammed / Muhammad, a transliterated
place with or without its final h, a doubled letter typed once); a word matches another by itself, its five-letter
stem or its consonant skeleton.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

from rag.answering.questions import tokens
from rag.spelling import fold


@lru_cache(maxsize=65536)
def term_keys(token: str) -> frozenset[str]:
    """Keys under which a word matches another: itself, its five-letter stem, its folded spelling."""
    keys = {token, token[:5]} if len(token) > 5 else {token}
    if len(token) >= 4 and len(fold(token)) >= 2:
        keys.add("~" + fold(token))
    return frozenset(keys)


# Where a name in the text run together from two words ("KarshWorks", "DoriaNet") splits, so that it matches them
# typed apart; not after a prefix of one name ("McDonald", "MacLeod", "LeBlanc", "DeVito").
RUN_TOGETHER = re.compile(r"(?<=[a-z]{3})(?=[A-Z][a-z]{2})")


def text_keys(text: str) -> frozenset[str]:
    words = tokens(text)
    if RUN_TOGETHER.search(text):
        words += tokens(RUN_TOGETHER.sub(" ", text))
    return frozenset(key for token in words for key in term_keys(token))


def term_weights(terms: Sequence[str], texts: Sequence[frozenset[str]]) -> dict[str, float]:
    """BM25's inverse document frequency of each question term over the candidate sentences: a word most have
    says little about which one answers; a rare one says much. A term no candidate holds weighs nothing: it
    cannot tell candidates apart."""
    total = len(texts)
    weights = {}
    for term in dict.fromkeys(terms):
        found = sum(1 for keys in texts if term_keys(term) & keys)
        weights[term] = max(math.log((total - found + 0.5) / (found + 0.5)), 0.05) if found else 0.0
    return weights


def term_coverage(weights: dict[str, float], keys: frozenset[str]) -> float:
    """Weighted share of the question's terms found among ``keys``."""
    total = sum(weights.values())
    if not total:
        return 0.0
    return sum(weight for term, weight in weights.items() if term_keys(term) & keys) / total


def missing_share(names: Sequence[str], keys: frozenset[str]) -> float:
    """Share of ``names`` (question words) absent from ``keys``: a sentence about one town does not answer a
    question about another."""
    if not names:
        return 0.0
    return sum(1 for name in names if not term_keys(name) & keys) / len(names)
