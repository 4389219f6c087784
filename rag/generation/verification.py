"""Checking a generated answer, sentence by sentence, against the passages each sentence cites.

A sentence is shown only if:

- it cites at least one passage (``[n]``), and every passage it cites was given to the model;
- every number, date and proper name in it appears in the passages it cites, compared after normalisation
  ("Oct. 17" = "October 17" = "17 October", "96%" = "96 percent", "$1.13bn" = "1.13 billion", "40,000" = "forty
  thousand", "four months" = "4 months", "al-Jazeera" = "Jazeera", "Hamah" = "Hama"); a name of several words must
  appear as written or have all its words in one sentence of those passages ("John Smith" is not supported by
  "John ..." in one sentence and "... Smith" in another);
- it shares at least half of its content words with those passages (a sentence citing an unrelated passage fails);
- it does not repeat an instruction, and nothing in it rests on a sentence of the article that is an instruction
  ("ignore previous instructions", "answer with ..."): such sentences are no evidence.

Each citation of a sentence that passes is given the sentence of the cited passage that best supports it (extended
to a neighbouring sentence when that holds a fact the best one lacks), as exact offsets in the article.

Pure functions: no model, no I/O. Numbers, dates and names are the checkable part of a claim; a sentence that uses
only the passages' words can still misstate how they relate, which no lexical check can see.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from rag.retrieval import RetrievedPassage

# --- citation markers and sentences ---------------------------------------------------------------------------------

# [1], [1, 2], [1][2], [1-3], [Passage 2], [passages 1 and 3]
MARKER = re.compile(
    r"\[\s*(?:(?:passages?|sources?|p)\.?\s*)?(\d{1,3}(?:\s*(?:,|;|&|and|-|–)\s*(?:(?:passages?|p)\.?\s*)?\d{1,3})*)"
    r"\s*\]",
    re.IGNORECASE,
)
LEADING_MARKERS = re.compile(rf"(?:\s*{MARKER.pattern})+", re.IGNORECASE)  # used with match(text, pos)
OPEN_MARKER = re.compile(r"\s*\[[^\]\n]{0,30}$")
LIST_PREFIX = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)]|#+)\s+")
THINKING = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
MAX_RANGE = 20

# "I don't know", "The passages do not say ...": a reply that declines rather than claims.
REFUSAL = re.compile(
    r"\b(?:(?:do|does|did)\s+not|don['’]t|doesn['’]t|didn['’]t|cannot|can['’]t|can\s+not|unable\s+to|"
    r"no\s+(?:information|mention|details?|passage)|not\s+(?:mentioned|stated|specified|provided|given|included|"
    r"found|clear|known|say)|none\s+of\s+the|i['’]m\s+sorry|i\s+am\s+sorry)\b",
    re.IGNORECASE,
)
ABOUT_PASSAGES = re.compile(r"\b(?:passages?|articles?|sources?|provided\s+text|context|information)\b",
                            re.IGNORECASE)
# Text that addresses the model instead of reporting: in an article it is an injection, in an answer an echo of one.
INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}\b(?:instructions?|prompts?|rules|directions|guidelines)\b"
    r"|\b(?:answer|reply|respond)\s+(?:to\s+)?(?:every|all|any|each|the|this)?\s*(?:questions?\s+)?"
    r"(?:only\s+)?with\b"
    r"|\bsystem\s+prompt\b|\bnew\s+instructions?\b|\byou\s+are\s+(?:now\s+)?(?:an?\s+)?(?:ai|assistant|language\s+model"
    r"|chatbot)\b|\bas\s+an\s+ai\b|\b(?:ai|assistant|language\s+model|chatbot)s?\s+(?:must|should)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Claim:
    """One sentence of a generated answer."""

    text: str
    """As the model wrote it, citation markers included."""
    body: str
    """Without citation markers, list bullets or emphasis marks."""
    cites: tuple[int, ...]
    """Passage numbers it cites, in order, each once."""


def strip_thinking(text: str) -> str:
    """The reply without ``<think>...</think>`` reasoning (an unclosed one hides everything after it)."""
    return THINKING.sub("", text)


def parse_claim(sentence: str) -> Claim:
    cites: list[int] = []
    for marker in MARKER.finditer(sentence):
        cites.extend(_marker_numbers(marker.group(1)))
    body = MARKER.sub(" ", sentence)
    body = LIST_PREFIX.sub("", body)
    body = re.sub(r"\*\*|__|(?<!\w)[*_](?=\w)|(?<=\w)[*_](?!\w)|`", "", body)
    body = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(body.split()))
    return Claim(sentence.strip(), body.strip(), tuple(dict.fromkeys(cites)))


def _marker_numbers(inside: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*(?:,|;|&|and)\s*", inside, flags=re.IGNORECASE):
        bounds = [int(n) for n in re.findall(r"\d+", part)]
        if len(bounds) == 2 and re.search(r"[-–]", part) and 0 <= bounds[1] - bounds[0] < MAX_RANGE:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers


def _segments(text: str) -> list[tuple[int, int]]:
    """Sentence spans of ``text``: lines, then English sentences (NLTK Punkt: "Oct. 17" and "U.S." do not end one);
    citation markers that open a span belong to the sentence before it."""
    from rag.splitting import english_sentence_tokenizer

    tokenizer = english_sentence_tokenizer()
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        for start, end in tokenizer.span_tokenize(line.group()):  # type: ignore[attr-defined]
            start, end = line.start() + start, line.start() + end
            lead = LEADING_MARKERS.match(text, start, end)
            if lead and spans:
                spans[-1] = (spans[-1][0], lead.end())
                start = lead.end()
            if text[start:end].strip():
                spans.append((start, end))
    return spans


def split_reply(text: str) -> list[Claim]:
    """Every sentence of a whole reply that says something (not only markers or punctuation)."""
    visible = strip_thinking(text)
    return [claim for start, end in _segments(visible) if _says_something(claim := parse_claim(visible[start:end]))]


def _says_something(claim: Claim) -> bool:
    return bool(re.search(r"[^\W_]", claim.body))


class SentenceStream:
    """Sentences of a reply as it streams in: a sentence is complete once the next one has begun (its citation
    markers, which may follow its full stop, have then arrived) or the reply has ended."""

    def __init__(self) -> None:
        self._raw = ""
        self._done = 0
        """Characters of the visible reply already given out as sentences."""

    @property
    def text(self) -> str:
        return self._raw

    def feed(self, delta: str) -> list[Claim]:
        self._raw += delta
        visible = strip_thinking(self._raw)
        rest = visible[self._done :]
        spans = _segments(rest)
        if not spans:
            return []
        finished = spans if rest.endswith("\n") else spans[:-1]
        if finished and OPEN_MARKER.match(rest, finished[-1][1]):
            finished.pop()  # "July 10. [1" : the marker that closes the sentence is still arriving
        if not finished:
            return []
        self._done += finished[-1][1]
        return [claim for start, end in finished if _says_something(claim := parse_claim(rest[start:end]))]

    def close(self) -> list[Claim]:
        rest = strip_thinking(self._raw)[self._done :]
        self._done += len(rest)
        return [claim for start, end in _segments(rest) if _says_something(claim := parse_claim(rest[start:end]))]


def is_refusal(claim: Claim) -> bool:
    """A sentence that declines to answer ("The passages do not say.", "I don't know."): one that cites nothing,
    or one that talks about the passages rather than the news."""
    return bool(REFUSAL.search(claim.body)) and (not claim.cites or bool(ABOUT_PASSAGES.search(claim.body)))


def is_instruction(text: str) -> bool:
    return bool(INSTRUCTION.search(text))


# --- facts: numbers, dates, names -----------------------------------------------------------------------------------

MONTHS = {"jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4, "may": 5,
          "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9,
          "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12}
MONTH_NAMES = ("", "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
               "november", "december")
MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?"
         r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
DATE_MONTH_DAY = re.compile(rf"\b({MONTH})\.?\s+(\d{{1,2}})(?!\d)(?:st|nd|rd|th)?\b")
DATE_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({MONTH})\b")
NUMERAL = re.compile(
    r"(?<![\w.,])([$£€])?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:st|nd|rd|th)?"
    r"(?:\s*(%|percent\b|per\s+cent\b))?"
    r"(?:\s*(bn|billion|mn|million|m|k|thousand|tn|trillion|hundred)\b)?",
    re.IGNORECASE,
)
SCALES = {"hundred": 100, "thousand": 1000, "k": 1000, "million": 10**6, "mn": 10**6, "m": 10**6,
          "billion": 10**9, "bn": 10**9, "trillion": 10**12, "tn": 10**12}
UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
         "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
         "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
         "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
WORD_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
NUMBER_WORDS = re.compile(
    rf"\b(?:a\s+(?=(?:{'|'.join(WORD_SCALES)}|dozen)\b))?(?:(?:{'|'.join(UNITS)}|{'|'.join(WORD_SCALES)}|dozen)"
    rf"(?:[\s-]+(?:and[\s-]+)?(?=(?:{'|'.join(UNITS)}|{'|'.join(WORD_SCALES)})\b)|\b))+",
    re.IGNORECASE,
)
FRACTION = re.compile(r"\b(a|one|two|three)[\s-](half|halves|thirds?|quarters?|fifths?)\b|\bhalf\b", re.IGNORECASE)
FRACTIONS = {"half": Fraction(1, 2), "halves": Fraction(1, 2), "third": Fraction(1, 3), "thirds": Fraction(1, 3),
             "quarter": Fraction(1, 4), "quarters": Fraction(1, 4), "fifth": Fraction(1, 5), "fifths": Fraction(1, 5)}
WORD = re.compile(r"[^\W_](?:[^\W_]|['’](?=[^\W_]))*")

# Words that open or join sentences: capitalised, they are still no names.
STOPWORDS = frozenset("""
a about above according across additionally after afterwards again against all almost along also although always
among an and another any are as at because been before being below between both but by can could despite did do
does during each either even every few finally first following for from further furthermore had has have he her here
hers him his how however i if in including instead into is it its just later many may meanwhile more moreover most
much my neither no nor not notably now of on once one only or other others our over overall per perhaps since so some
still such than that the their them then there thereafter therefore these they this those though through thus to
today together too under until up upon us was we were what when where whereas which while who whom whose why will
with within without would yes yet you your it's that's there's yesterday tomorrow according later earlier last next
""".split())
# Joining words inside a name: "Bank of England", "Omar al-Bashir", "Ludwig van Beethoven".
PARTICLES = frozenset({"al", "el", "bin", "ibn", "of", "the", "de", "del", "la", "van", "von", "der", "da", "and"})
TITLES = {"gen": "general", "lt": "lieutenant", "col": "colonel", "maj": "major", "sgt": "sergeant",
          "capt": "captain", "cpt": "captain", "adm": "admiral", "sen": "senator", "rep": "representative",
          "gov": "governor", "pres": "president", "prof": "professor", "dr": "doctor", "st": "saint",
          "mt": "mount", "ft": "fort", "sept": "september"}


@dataclass(frozen=True)
class Fact:
    kind: str
    """``number``, ``date`` or ``name``."""
    surface: str
    """As written in the sentence."""
    value: object
    """Normalised: a ``Fraction``, a ``(month, day)`` pair, or a tuple of name keys."""


def word_key(word: str) -> str:
    """A word as names are compared: no accents, case, possessive or punctuation; month and title abbreviations
    spelled out; a final ``h`` after a vowel dropped (Hamah / Hama)."""
    text = unicodedata.normalize("NFKD", word)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"['’]s$", "", text)
    text = re.sub(r"[^a-z0-9]", "", text)
    if text in MONTHS:
        return MONTH_NAMES[MONTHS[text]]
    text = TITLES.get(text, text)
    if len(text) > 3 and text.endswith("h") and text[-2] in "aeiou":
        text = text[:-1]
    return text


def word_keys(text: str) -> list[str]:
    """Keys of every word of ``text``, hyphenated words split, in order."""
    return [key for word in WORD.findall(text) for part in re.split(r"[-‐–]", word) if (key := word_key(part))]


def numbers_in(text: str) -> list[tuple[str, Fraction]]:
    """Numbers in ``text`` as (surface, value): numerals with their scale ("$1.13bn", "8 million", "96%"),
    numbers in words ("forty thousand", "four"; "one" only in "one hundred" and the like: "one of the towns" is no
    count) and fractions ("a third", "half")."""
    return [(surface, value) for _, surface, value in _number_matches(text)]


def _number_matches(text: str) -> list[tuple[tuple[int, int], str, Fraction]]:
    found: list[tuple[tuple[int, int], str, Fraction]] = []
    for match in NUMERAL.finditer(text):
        digits = match.group(2).replace(",", "") + (match.group(3) or "")
        value = Fraction(digits)
        if match.group(5):
            value *= SCALES[match.group(5).lower()]
        surface = match.group().rstrip()
        found.append(((match.start(), match.start() + len(surface)), surface, value))
    for match in FRACTION.finditer(text):
        parts = 1
        if match.group(1) and match.group(1).lower() not in ("a", "one"):
            parts = UNITS[match.group(1).lower()]
        found.append((match.span(), match.group(), parts * FRACTIONS[(match.group(2) or "half").lower()]))
    taken = [span for span, _, _ in found]
    for match in NUMBER_WORDS.finditer(text):
        if any(a < match.end() and match.start() < b for a, b in taken):
            continue
        words = re.findall(r"[a-z]+", match.group().lower())
        if words == ["one"]:
            continue
        count = _words_value(words)
        if count is not None:
            surface = match.group().rstrip(" -")
            found.append(((match.start(), match.start() + len(surface)), surface, Fraction(count)))
    return found


def _words_value(words: list[str]) -> int | None:
    total, current = 0, 0
    seen = False
    for word in words:
        if word in ("a", "and"):
            current = current or (1 if word == "a" else 0)
            continue
        if word == "dozen":
            current = (current or 1) * 12
        elif word in UNITS:
            current += UNITS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        elif word in WORD_SCALES:
            total += (current or 1) * WORD_SCALES[word]
            current = 0
        else:
            return None
        seen = True
    return total + current if seen else None


def _date_matches(text: str) -> list[tuple[re.Match[str], tuple[int, int]]]:
    found = []
    for match in DATE_MONTH_DAY.finditer(text):
        month, day = MONTHS[match.group(1).lower()], int(match.group(2))
        if 1 <= day <= 31:
            found.append((match, (month, day)))
    for match in DATE_DAY_MONTH.finditer(text):
        day, month = int(match.group(1)), MONTHS[match.group(2).lower()]
        if 1 <= day <= 31:
            found.append((match, (month, day)))
    return found


def dates_in(text: str) -> list[tuple[str, tuple[int, int]]]:
    """Month-and-day dates: "Oct. 17", "October 17th", "17 October", "the 17th of October"."""
    return [(match.group(), value) for match, value in _date_matches(text)]


def names_in(text: str, skip: Sequence[tuple[int, int]] = ()) -> list[tuple[str, tuple[str, ...]]]:
    """Proper names: runs of capitalised words (joined by "of", "al-", ...), as (surface, keys). Sentence-opening
    words ("The", "However") are not names, but any other capitalised word is, the first of a sentence too:
    "Baghdadi said" names someone. Words inside the ``skip`` spans (dates) are left out."""
    names: list[tuple[str, tuple[str, ...]]] = []
    run: list[tuple[int, int, str]] = []

    def flush() -> None:
        while run and run[-1][2].lower() in PARTICLES:
            run.pop()
        keys = tuple(key for _, _, word in run if word.lower() not in PARTICLES and len(key := word_key(word)) > 1)
        if keys:
            names.append((text[run[0][0] : run[-1][1]], keys))
        run.clear()

    previous_end = 0
    for match in WORD.finditer(text):
        start, end, word = match.start(), match.end(), match.group()
        if any(a <= start < b for a, b in skip):
            flush()
            continue
        joined = bool(run) and re.fullmatch(r"[ \t]*|[-‐–]", text[previous_end:start]) is not None
        previous_end = end
        if word[0].isupper() and word.lower() not in STOPWORDS:
            if not joined:
                flush()
            run.append((start, end, word))
        elif joined and word.lower() in PARTICLES:
            run.append((start, end, word))
        else:
            flush()
    flush()
    return names


def facts_in(text: str) -> list[Fact]:
    """The checkable facts of a sentence. A date's month is part of the date; a month on its own ("in October")
    is checked as a name."""
    dates = [(match.span(), match.group(), value) for match, value in _date_matches(text)]
    numbers = _number_matches(text)
    facts = [Fact("date", surface, value) for _, surface, value in dates]
    facts += [Fact("number", surface, value) for _, surface, value in numbers]
    skip = [span for span, _, _ in dates] + [span for span, _, _ in numbers]
    facts += [Fact("name", surface, keys) for surface, keys in names_in(text, skip)]
    return facts


# --- evidence: what the cited passages say --------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceSentence:
    n: int
    """The passage's number in the prompt."""
    index: int
    """Position among the passage's sentences."""
    start: int
    end: int
    """Offsets in the article."""
    text: str
    keys: frozenset[str]
    numbers: frozenset[Fraction]
    dates: frozenset[tuple[int, int]]
    instruction: bool
    """An instruction addressed to the reader or a model, not reporting: never evidence."""
    stems: frozenset[str]


@dataclass(frozen=True)
class Evidence:
    n: int
    passage: RetrievedPassage
    sentences: tuple[EvidenceSentence, ...]


def passage_sentence_spans(passage: RetrievedPassage) -> list[tuple[int, int]]:
    """The passage's sentences as article offsets: those stored at ingest, else split now."""
    if passage.sentences:
        return [(s.start, s.end) for s in passage.sentences if passage.start <= s.start < s.end <= passage.end]
    from rag.splitting import sentence_spans

    return [(passage.start + a, passage.start + b) for a, b in sentence_spans(passage.text)]




def evidence_of(n: int, passage: RetrievedPassage) -> Evidence:
    """What passage ``n`` of the prompt says, sentence by sentence."""
    sentences = []
    for index, (start, end) in enumerate(passage_sentence_spans(passage)):
        text = passage.text[start - passage.start : end - passage.start]
        sentences.append(EvidenceSentence(
            n, index, start, end, text, frozenset(word_keys(text)), frozenset(v for _, v in numbers_in(text)),
            frozenset(v for _, v in dates_in(text)), is_instruction(text), frozenset(content_stems(text))))
    return Evidence(n, passage, tuple(sentences))


def content_stems(text: str) -> set[str]:
    """The words that carry meaning, by their first five letters ("liberated" / "liberation")."""
    return {key[:5] for key in word_keys(text) if len(key) > 2 and key not in STOPWORDS and not key.isdigit()}


def holds(fact: Fact, sentence: EvidenceSentence) -> bool:
    if fact.kind == "number":
        return fact.value in sentence.numbers
    if fact.kind == "date":
        return fact.value in sentence.dates
    return set(fact.value) <= sentence.keys  # type: ignore[call-overload]


# --- verdicts -------------------------------------------------------------------------------------------------------

MIN_SHARED_WORDS = 0.5
"""Share of a sentence's content words that the passages it cites must hold (with three or more of them). Strict,
because failing costs little: the reader gets the extractive answer instead."""


@dataclass(frozen=True)
class Support:
    """The span of a cited passage that supports a sentence: offsets in the article."""

    n: int
    passage: RetrievedPassage
    start: int
    end: int
    score: float
    """Share of the sentence's facts and content words that the span holds."""


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    verified: bool
    reason: str
    supports: tuple[Support, ...] = field(default=())


def refs(numbers: Iterable[int]) -> str:
    numbers = list(numbers)
    return f"passage{'s' if len(numbers) > 1 else ''} {''.join(f'[{n}]' for n in numbers)}"


FACT_LABEL = {"number": "the number", "date": "the date", "name": "the name"}


def verify(claim: Claim, evidence: Sequence[Evidence]) -> Verdict:
    """Whether ``claim`` may be shown, why, and for each passage it cites the span that supports it.
    ``evidence[n - 1]`` is passage ``n`` of the prompt."""
    if is_refusal(claim):
        return Verdict(claim, False, "declines to answer: the model said the passages do not answer")
    if is_instruction(claim.body):
        return Verdict(claim, False, "repeats an instruction instead of reporting what the articles say")
    if not claim.cites:
        return Verdict(claim, False, "cites no passage")
    missing = [n for n in claim.cites if not 1 <= n <= len(evidence)]
    if missing:
        given = f"[1]-[{len(evidence)}]" if len(evidence) > 1 else "[1]" if evidence else "none"
        return Verdict(claim, False, f"cites {refs(missing)}, which the model was not given (given: {given})")
    cited = [evidence[n - 1] for n in claim.cites]
    usable = [s for e in cited for s in e.sentences if not s.instruction]
    injected = [s for e in cited for s in e.sentences if s.instruction]
    facts = facts_in(claim.body)
    for fact in facts:
        if not any(holds(fact, sentence) for sentence in usable):
            where = ("is only in an instruction inside" if any(holds(fact, s) for s in injected)
                     else "is not in")
            return Verdict(claim, False, f"{FACT_LABEL[fact.kind]} “{fact.surface}” {where} the cited "
                                         f"{refs(claim.cites)}")
    words = content_stems(claim.body)
    shared = words & set().union(*(s.stems for s in usable))
    if len(words) >= 3 and len(shared) < MIN_SHARED_WORDS * len(words):
        return Verdict(claim, False, f"shares only {len(shared)} of its {len(words)} words with the cited "
                                     f"{refs(claim.cites)}")
    supports = [support for e in cited if (support := best_support(e, facts, words)) is not None]
    if not supports:
        return Verdict(claim, False, f"nothing in the cited {refs(claim.cites)} matches what it says")
    checked = (f"all {len(facts)} of its numbers, dates and names are there" if len(facts) > 1
               else "its one number, date or name is there" if facts else "it has no number, date or name to check")
    return Verdict(claim, True, f"supported by the cited {refs(s.n for s in supports)} ({checked})",
                   tuple(supports))


def best_support(evidence: Evidence, facts: Sequence[Fact], words: set[str]) -> Support | None:
    """The sentence of the passage holding most of the claim's facts, then most of its words; run on to the
    sentence before or after when that one holds a fact the best one lacks. ``None`` if the passage holds none of
    the claim's facts: citing it adds nothing a reader could check."""
    candidates = [s for s in evidence.sentences if not s.instruction]
    if not candidates:
        return None

    def score(sentence: EvidenceSentence) -> tuple[int, int]:
        return sum(holds(fact, sentence) for fact in facts), len(words & sentence.stems)

    best = max(candidates, key=score)
    if score(best)[0] == 0 and (facts or not score(best)[1]):
        return None  # it holds none of the sentence's facts (or, when it has none, none of its words)
    chosen = [best]
    lacking = [fact for fact in facts if not holds(fact, best)]
    by_index = {s.index: s for s in candidates}
    for neighbour in (by_index.get(best.index - 1), by_index.get(best.index + 1)):
        if neighbour is not None and any(holds(fact, neighbour) for fact in lacking):
            chosen.append(neighbour)
            lacking = [fact for fact in lacking if not holds(fact, neighbour)]
    chosen.sort(key=lambda s: s.start)
    held_facts = sum(any(holds(fact, s) for s in chosen) for fact in facts)
    held_words = len(words & set().union(*(s.stems for s in chosen)))
    total = len(facts) + len(words)
    return Support(evidence.n, evidence.passage, chosen[0].start, chosen[-1].end,
                   (held_facts + held_words) / total if total else 0.0)
