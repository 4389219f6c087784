"""Spelling variants: the same name typed or transliterated differently (Mohammed / Muhammad, a doubled letter typed
once, a final h dropped).

BM25 matches exact tokens, so a question that misspells a name finds nothing lexically; the words of the index's
vocabulary with the same consonant skeleton and a small edit distance are added to its lexical query.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Collection
from functools import cached_property

VOWELS = str.maketrans("", "", "aeiou")


def fold(token: str) -> str:
    """A spelling-insensitive key for names: consonants only, doubled letters and a final ``h`` dropped
    (Mohammed / Muhammad -> ``mhmd``, Hannah / Hana -> ``hn``, Bennett / Benet -> ``bnt``)."""
    # Run over every word of the index's vocabulary (36,000 for Reuters): a loop over characters is about twice as
    # fast as regular expressions here.
    letters: list[str] = []
    for letter in token.lower().translate(VOWELS):
        if not letters or letters[-1] != letter:
            letters.append(letter)
    skeleton = "".join(letters)
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
    """Words of a vocabulary that a word absent from it may be a spelling of.

    The vocabulary is kept as given (the lexical index's own dictionary, not a copy), and the words are grouped by
    skeleton on the first word that needs it: its cost grows with the vocabulary (about 80 ms for BBC News' 20,000
    words), and a question whose words are all in the vocabulary never pays it.
    """

    def __init__(self, vocabulary: Collection[str]) -> None:
        self.vocabulary = vocabulary

    @cached_property
    def _by_skeleton(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = defaultdict(list)
        for word in self.vocabulary:
            if len(word) >= 4 and word.isalpha():
                groups[fold(word)].append(word)
        return groups

    def of(self, word: str) -> list[str]:
        if word in self.vocabulary or len(word) < 4 or not word.isalpha():
            return []
        limit = max(1, len(word) // 3)
        return sorted(w for w in self._by_skeleton.get(fold(word), []) if edit_distance(w, word) <= limit)

    def expand(self, query: str, stem: Callable[[str], str] = lambda word: word) -> str:
        """``query`` with the variants of each of its words the vocabulary lacks appended."""
        added = [variant for word in re.findall(r"\w\w+", query.lower()) for variant in self.of(stem(word))]
        return " ".join([query, *dict.fromkeys(added)])


WORD = re.compile(r"[^\W\d_]+")


def in_text_spelling(question: str, text: str, known: Callable[[str], bool] = lambda word: False) -> str:
    """``question`` with each word that ``text`` lacks but holds in another spelling written as ``text`` writes it
    (lowercased): "who took raqa" against a text on Raqqa reads "who took raqqa". A reader compares word pieces,
    and to it a name typed another way is a name the text never mentions. A word that is ``known`` (the reader has
    it whole) is taken as meant: "fall" is not a misspelling of "fell"."""
    variants = SpellingVariants({word.lower() for word in WORD.findall(text)})

    def respelled(match: re.Match[str]) -> str:
        word = match.group().lower()
        found = [] if known(word) else variants.of(word)
        if not found:
            return match.group()
        # The nearest spelling; between equally near ones, a name the reader does not know ("thanu": "thanou",
        # not "than").
        return min(found, key=lambda variant: (edit_distance(variant, word), known(variant)))

    return WORD.sub(respelled, question)
