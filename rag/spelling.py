"""Spelling variants: the same name typed or transliterated differently (Mohammed / Muhammad, a doubled letter typed
once, a final h dropped), or typed as its initials ("jrmn" for the Joint Relief Mission for the North).

BM25 matches exact tokens, so a question that misspells a name finds nothing lexically; the words of the index's
vocabulary with the same consonant skeleton and a small edit distance are added to its lexical query. A word the
vocabulary lacks that is the initials of a name its articles write out gets that name added instead: people type
"imf" or "nato" where the articles write "International Monetary Fund" and "North Atlantic Treaty Organization".
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
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


# A capitalised word: a hyphen or an apostrophe stays inside it only before a small letter ("Kurdish-led",
# "O'neill"), a full stop only before a capital ("U.S"), so a run of them stops at a sentence's end and at a
# possessive, and "Force-Operation" is two words.
CAPITALISED = r"[A-Z](?:\w|-(?=[a-z])|['’.](?=[A-Z]))*"
# Capitalised words in a row, with the small words names keep between them ("Organization of Petroleum Exporting
# Countries"; not "and", which mostly joins two names).
NAME_JOINT = r"(?:[ \t]+(?:(?:of|the|for|de)[ \t]+)*|-)"
NAME_RUN = re.compile(rf"{CAPITALISED}(?:{NAME_JOINT}{CAPITALISED})+")
CAPITALISED_WORD = re.compile(CAPITALISED)
# Capitalised because they open a sentence ("The Prime Minister said"), not because they are part of a name.
FUNCTION_WORDS = frozenset("a an and as at but by for from in it its of on or the this that these to with".split())
MAX_INITIALS = 6
NAMES_PER_INITIALS = 3


def initialisms(text: str) -> Iterator[tuple[str, str, str | None, str | None]]:
    """(initials, name, the capitalised word before it, the one after it) for every run of two to ``MAX_INITIALS``
    capitalised words in ``text``, and every shorter run inside a longer one ("Prime Minister" in "Iraqi Prime
    Minister Haider"): ("pm", "Prime Minister", "Iraqi", "Haider")."""
    for run in NAME_RUN.finditer(text):
        words = [word for word in CAPITALISED_WORD.finditer(run.group()) if word.group().lower() not in FUNCTION_WORDS]
        for first in range(len(words)):
            for last in range(first + 1, min(len(words), first + MAX_INITIALS)):
                name = run.group()[words[first].start() : words[last].end()]
                initials = "".join(word.group()[0] for word in words[first : last + 1]).lower()
                yield (initials, name, words[first - 1].group() if first else None,
                       words[last + 1].group() if last + 1 < len(words) else None)


def names_by_initials(texts: Iterable[str]) -> dict[str, list[str]]:
    """The names ``texts`` write out, by their initials, most frequent first (at most ``NAMES_PER_INITIALS``).

    A name seen twice or more, always beside the same capitalised word, is part of a longer name, not a name:
    "Popular Mobilization" of "Popular Mobilization Forces" does not stand for "pm".
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    neighbours: dict[str, tuple[Counter[str | None], Counter[str | None]]] = defaultdict(lambda: (Counter(), Counter()))
    for text in texts:
        for initials, name, before, after in initialisms(text):
            counts[initials][name] += 1
            neighbours[name][0][before] += 1
            neighbours[name][1][after] += 1

    def part_of_a_longer_name(name: str, seen: int) -> bool:
        return seen >= 2 and any(len(side) == 1 and None not in side for side in neighbours[name])

    table = {}
    for initials, names in counts.items():
        kept = [name for name, seen in names.most_common() if not part_of_a_longer_name(name, seen)]
        if kept:
            table[initials] = kept[:NAMES_PER_INITIALS]
    return table


class SpellingVariants:
    """Words of a vocabulary that a word absent from it may be a spelling of, or the initials of.

    The vocabulary is kept as given (the lexical index's own dictionary, not a copy), and the words are grouped by
    skeleton on the first word that needs it: its cost grows with the vocabulary (about 80 ms for BBC News' 20,000
    words), and a question whose words are all in the vocabulary never pays it. So are the names by their initials
    (``names_by_initials``), which ``read_initials`` gives; ``stopwords`` are words the vocabulary lacks because
    they are left out, not because they are misspelt.
    """

    def __init__(self, vocabulary: Collection[str],
                 read_initials: Callable[[], Mapping[str, Sequence[str]]] = dict,
                 stopwords: Collection[str] = ()) -> None:
        self.vocabulary = vocabulary
        self.read_initials = read_initials
        self.stopwords = stopwords

    @cached_property
    def initials(self) -> Mapping[str, Sequence[str]]:
        return self.read_initials()

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
        """``query`` with the variants of each of its words the vocabulary lacks appended: its spellings, else the
        names it is the initials of."""
        added: list[str] = []
        for word in re.findall(r"\w\w+", query.lower()):
            spellings = self.of(stem(word))
            added += spellings or (self.initials.get(word, ()) if self.lacks(word, stem) else ())
        return " ".join([query, *dict.fromkeys(added)])

    def lacks(self, word: str, stem: Callable[[str], str] = lambda word: word) -> bool:
        """Whether ``word`` (lowercase) is a word the vocabulary lacks: not in it, and not a stopword left out."""
        return word.isalpha() and word not in self.stopwords and stem(word) not in self.vocabulary


WORD = re.compile(r"[^\W\d_]+")


def in_text_spelling(question: str, text: str, known: Callable[[str], bool] = lambda word: False) -> str:
    """``question`` with each word that ``text`` lacks but holds in another spelling written as ``text`` writes it
    (lowercased): "who took doriah" against a text on Doria reads "who took doria". A reader compares word pieces,
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


# A word of consonants only, as people shorten words in a hurry ("ppl", "msg"); "y" only opening it ("yrs"): at its
# end it is a vowel ("fly", "try").
VOWELLESS = re.compile(r"[b-df-hj-np-tv-z][b-df-hj-np-tv-xz]{2,4}")


def shorthand_written_out(question: str, text: str, unknown: Callable[[str], bool]) -> str:
    """``question`` with each ``unknown`` word that is shorthand for words of ``text`` written as ``text`` writes
    them:

    - initials of a name ``text`` writes out (the most frequent there): "who leads the jrmn" against a text on the
      Joint Relief Mission for the North reads "who leads the joint relief mission for the north", and "JRMN" reads
      "Joint Relief Mission for the North". In the case typed: a question's capitals mark the names it asks about,
      and a name that is not in the sentence holding the answer is evidence against that sentence.
    - a word typed in small letters without its vowels, as the word of ``text`` with the same first letter and the
      same consonant skeleton (``fold``) that ``text`` writes most often, and more often than any other such word:
      "how many ppl" reads "how many people", "yrs" reads "years". A name typed in small letters that ``text`` lacks
      may be read as a word it happens to share consonants with ("cnn" as "cannon"); only the first passages found
      are looked at, so that takes a question about a name the index does not hold."""
    names: dict[str, list[str]] | None = None  # read from the text only when a question word needs them
    spelled: Counter[str] | None = None

    def written(match: re.Match[str]) -> str:
        nonlocal names, spelled
        typed, word = match.group(), match.group().lower()
        if len(word) < 2 or not unknown(word):
            return typed
        if names is None:
            names = names_by_initials([text])
        found = names.get(word)
        if found:
            return found[0].lower() if typed.islower() else found[0]
        if typed.islower() and VOWELLESS.fullmatch(word):
            if spelled is None:
                spelled = Counter(w.lower() for w in WORD.findall(text))
            skeleton = fold(word)
            alike = [(w, seen) for w, seen in spelled.most_common()
                     if w[0] == word[0] and len(w) > len(word) and fold(w) == skeleton]
            if alike and (len(alike) == 1 or alike[0][1] > alike[1][1]):
                return alike[0][0]
        return typed

    return WORD.sub(written, question)
