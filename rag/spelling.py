"""Spelling variants: the same name typed or transliterated differently (Mohammed / Muhammad, a doubled letter typed
once, a final h dropped).

BM25 matches exact tokens, so a question that misspells a name finds nothing lexically; the words of the index's
vocabulary with the same consonant skeleton and a small edit distance are added to its lexical query.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable


def fold(token: str) -> str:
    """A spelling-insensitive key for names: consonants only, doubled letters and a final ``h`` dropped
    (Mohammed / Muhammad -> ``mhmd``, Hannah / Hana -> ``hn``, Bennett / Benet -> ``bnt``)."""
    skeleton = re.sub(r"[aeiou]", "", token.lower())
    skeleton = re.sub(r"(.)\1+", r"\1", skeleton)
    return skeleton[:-1] if skeleton.endswith("h") and len(skeleton) > 2 else skeleton


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


class SpellingVariants:
    """Words of a vocabulary that a word absent from it may be a spelling of."""

    def __init__(self, vocabulary: Iterable[str]) -> None:
        self.vocabulary = set(vocabulary)
        self._by_skeleton: dict[str, list[str]] = defaultdict(list)
        for word in self.vocabulary:
            if len(word) >= 4 and word.isalpha():
                self._by_skeleton[fold(word)].append(word)

    def of(self, word: str) -> list[str]:
        if word in self.vocabulary or len(word) < 4 or not word.isalpha():
            return []
        limit = max(1, len(word) // 3)
        return sorted(w for w in self._by_skeleton.get(fold(word), []) if edit_distance(w, word) <= limit)

    def expand(self, query: str, stem: Callable[[str], str] = lambda word: word) -> str:
        """``query`` with the variants of each of its words the vocabulary lacks appended."""
        added = [variant for word in re.findall(r"\w\w+", query.lower()) for variant in self.of(stem(word))]
        return " ".join([query, *dict.fromkeys(added)])
