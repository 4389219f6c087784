"""What a question asks for, and where in a sentence an answer of that kind can stand.

Similarity finds the topic, not the answer: "When did Mosul fall?" is closest to sentences about Mosul, not to the
one holding the date. The question's form says what kind of span answers it (when -> a date, how many -> a number,
who -> a person or organisation, where -> a place), and these patterns find such spans in a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

AnswerKind = Literal["date", "number", "percent", "duration", "person", "place", "organization", "other"]
Span = tuple[int, int]

MONTH = (r"(?:Jan(?:uary|\.)?|Feb(?:ruary|\.)?|Mar(?:ch|\.)?|Apr(?:il|\.)?|May|June?|July?|Aug(?:ust|\.)?|"
         r"Sep(?:t(?:ember|\.)?|\.)?|Oct(?:ober|\.)?|Nov(?:ember|\.)?|Dec(?:ember|\.)?)")
WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
NUMBER_WORD = (r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
               r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
               r"hundreds?|thousands?|millions?|dozens?|several|a few|tens of thousands)")
NUMERAL = rf"(?:\$?\d[\d,]*(?:\.\d+)?(?:\s+(?:million|billion|trillion|thousand|hundred))?|{NUMBER_WORD})"
QUALIFIER = r"(?:(?:more than|over|nearly|about|almost|around|some|at least|up to|roughly|approximately)\s+)?"

PATTERNS: dict[str, re.Pattern[str]] = {
    "date": re.compile(
        rf"\b(?:{MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}\s+{MONTH}(?:\s+\d{{4}})?"
        rf"|(?:early |mid-|late )?{MONTH}\s+(?:of\s+)?\d{{4}}|{WEEKDAY}|(?:the\s+)?(?:last|first|second|third)\s+week"
        rf"\s+of\s+{MONTH}|(?:in|since|by|from|until)\s+\d{{4}}|\b(?:1[5-9]|20)\d{{2}}\b)",
    ),
    "percent": re.compile(rf"\b{QUALIFIER}\d+(?:\.\d+)?\s?(?:%|percent\b|per cent\b)", re.IGNORECASE),
    "duration": re.compile(
        rf"\b{QUALIFIER}{NUMERAL}[\s-]+(?:days?|weeks?|months?|years?|hours?|decades?)\b", re.IGNORECASE
    ),
    "number": re.compile(rf"\b{QUALIFIER}{NUMERAL}\b(?:\s+(?:percent|%))?", re.IGNORECASE),
}

# Capitalised runs ("Brett McGurk", "Gen. Ali Mayhoub", "Popular Mobilization Forces") for names of all kinds.
NAME = re.compile(
    r"\b(?:(?:Gen|Lt|Col|Maj|Dr|Mr|Mrs|Ms|Sen|Rep|Gov|Prof|St)\.\s+)?"
    r"[A-Z][\w'’.-]*(?:\s+(?:(?:of|the|al|el|de|for|and|bin|ibn|von|van)\s+)?[A-Z][\w'’.-]*)*"
)
ORGANIZATION_WORDS = re.compile(
    r"\b(?:Forces?|Army|Military|Group|Organi[sz]ation|Party|Division|Council|Ministry|Command|Government|"
    r"Observatory|Journal|News|Agency|Coalition|Committee|Front|Militias?|Union|Company|Corp|Inc|Bank|Task Force|"
    r"Foundation|University|State|Service|SANA|PKK|CJTF-OIR|UN|NATO|AP|Reuters|BBC)\b"
)
PLACE_CUES = re.compile(r"\b(?:in|at|from|to|of|near|into|across|toward|towards|outside|inside)\s+$", re.IGNORECASE)
PERSON_TITLES = re.compile(r"\b(?:President|Prime Minister|Minister|Gen\.|General|spokesman|spokeswoman|envoy|"
                           r"chairman|chief|leader|commander|said|says|told|reported|wrote|tweeted)\b", re.IGNORECASE)

STOPWORDS = frozenset(
    "a an the of in on at to for from by with about as into over after before and or but is are was were be been "
    "being do does did done has have had having it its it's this that these those there their they them what which "
    "who whom whose when where why how many much long did does according than then so such also still any all "
    "some most more other not no can could would should will may might must i we you he she his her our your "
    "said say says tell told name named called".split()
)


@dataclass(frozen=True)
class QuestionForm:
    kind: AnswerKind
    terms: tuple[str, ...]
    """Content words of the question, lowercased, in order."""


def analyse(question: str) -> QuestionForm:
    """The kind of answer the question wants and its content words."""
    text = " ".join(question.lower().replace("’", "'").split())
    return QuestionForm(_kind(text), tuple(content_terms(question)))


def _kind(text: str) -> AnswerKind:
    rules: list[tuple[str, AnswerKind]] = [
        (r"\b(what|which) (percentage|percent|share|proportion|portion|fraction)\b|\bhow much of\b", "percent"),
        (r"\bhow long\b|\bfor how many (days|weeks|months|years)\b|\bhow many (days|weeks|months|years|hours)\b",
         "duration"),
        (r"\bwhen\b|\bwhat (date|day|year|month|time)\b|\b(which|what) (day|date|year|month)\b|\bsince when\b", "date"),
        (r"\bhow (many|much)\b|\bwhat (number|amount|total)\b|\bhow (large|big|far)\b", "number"),
        (r"\bwhere\b|\b(which|what) (city|town|country|province|region|area|place|village|border|river|crossing|"
         r"capital|state)\b", "place"),
        (r"\b(which|what) (group|organi[sz]ation|forces?|militias?|army|party|agency|news service|newspaper|"
         r"government|coalition|alliance|company|team)\b", "organization"),
        (r"\bwho\b|\bwhom\b|\bwhose\b|\b(which|what) (person|official|leader|reporter|general|president|minister|"
         r"spokesman|envoy|commander|author|analyst)\b", "person"),
    ]
    for pattern, kind in rules:
        if re.search(pattern, text):
            return kind
    return "other"


def content_terms(text: str) -> list[str]:
    return [token for token in tokens(text) if token not in STOPWORDS and len(token) > 1]


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("’", "'").replace("'s", ""))


def answer_spans(sentence: str, kind: AnswerKind) -> list[Span]:
    """Spans of ``sentence`` that could answer a question of ``kind`` (empty for ``other``)."""
    if kind in PATTERNS:
        spans = [match.span() for match in PATTERNS[kind].finditer(sentence)]
        if kind == "number":
            # A year or a date is not a count.
            dates = [match.span() for match in PATTERNS["date"].finditer(sentence)]
            spans = [span for span in spans if not any(_overlaps(span, date) for date in dates)]
        return [_trim(sentence, span) for span in spans]
    if kind in {"person", "place", "organization"}:
        return [span for span in _names(sentence) if _name_kind_fits(sentence, span, kind)]
    return []


def _names(sentence: str) -> list[Span]:
    spans = []
    for match in NAME.finditer(sentence):
        start, end = match.span()
        while end > start and sentence[end - 1] in ".’'":
            end -= 1
        words = sentence[start:end].split()
        # A lone capitalised first word of a sentence is usually just a sentence start.
        if start == 0 and len(words) == 1 and words[0].lower() in STOPWORDS | {"while", "unlike", "since", "just"}:
            continue
        spans.append((start, end))
    return spans


def _name_kind_fits(sentence: str, span: Span, kind: AnswerKind) -> bool:
    name = sentence[span[0] : span[1]]
    is_org = bool(ORGANIZATION_WORDS.search(name))
    if kind == "organization":
        return is_org
    if kind == "place":
        return not is_org and bool(PLACE_CUES.search(sentence[max(0, span[0] - 12) : span[0]]))
    around = sentence[max(0, span[0] - 40) : span[1] + 40]
    return not is_org and (bool(PERSON_TITLES.search(around)) or len(name.split()) >= 2)


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _trim(sentence: str, span: Span) -> Span:
    start, end = span
    while end > start and sentence[end - 1] in " ,.;:":
        end -= 1
    while start < end and sentence[start] == " ":
        start += 1
    return start, end
