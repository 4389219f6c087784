"""The hand-tuned answerer's question forms: what kind of span a question wants (a date, a number, a person, a
place, an organisation) and where such a span stands in a sentence, by patterns and word lists.

Kept for the default answerer's typed factoid questions (``answerer = "hybrid"`` hands ``rules`` the questions whose
kind this module names) until the learned answerer (``rag.answering.answerer``) passes the seed gate on them too; its
word lists were set by hand on the seed articles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from Stemmer import Stemmer

from rag.answering.questions import (
    AREA_UNIT,
    AUXILIARY,
    COUNT_ASKED,
    COUNTED,
    DATE_ASKED,
    DESCRIPTION,
    DURATION_ASKED,
    HOW_MEASURED,
    LOCATION_ASKED,
    PATTERNS,
    PER_CENT,
    STOPWORDS,
    AnswerKind,
    Span,
    _trim,
    capitalised_names,
    content_terms,
    first_asked,
    tokens,
)

# Capitalised runs ("John Smith", "Gen. Ali Hassan", "National Defence Forces") for names of all kinds.
NAME = re.compile(
    r"\b(?:(?:Gen|Lt|Col|Maj|Dr|Mr|Mrs|Ms|Sen|Rep|Gov|Prof|St)\.\s+|(?:al|el|bin|ibn)[\s-](?=[A-Z]))?"
    r"[A-Z][\w'’.-]*(?:\s+(?:(?:of|the|de|for|and|bin|ibn|von|van)\s+|(?:al|el)[\s-])?[A-Z][\w'’.-]*)*"
)
ORGANIZATION_WORDS = re.compile(
    r"\b(?:Forces?|Army|Military|Group|Organi[sz]ation|Party|Division|Council|Ministry|Command|Government|"
    r"Observatory|Journal|News|Agency|Coalition|Committee|Front|Militias?|Union|Company|Corp|Inc|Bank|Task Force|"
    r"Foundation|University|State|Service|Staff|Chiefs|Department|Office|Institute|Cent(?:er|re)|Commission|"
    r"Association|Club|League|Press)\b"
    # An acronym ("UN", "NATO", "A-B"): organisations go by theirs far more often than people or places do.
    r"|\b[A-Z]{2,}(?:-[A-Z]{2,})?\b"
)
PLACE_CUES = re.compile(
    r"\b(?:in|at|from|to|of|near|into|across|toward|towards|outside|inside)\s+(?:[a-z]+-[a-z]+\s+)?$"
)
PLACE_NOUNS = re.compile(r"^\s+(?:province|city|town|village|region|county|district|state|border|river|valley|"
                         r"governorate|country|desert)\b")
GROUP_NOUN = re.compile(r"^\s+(?:forces|militias?|troops|fighters|rebels|government|military|army|group)\b")
# "Government-led forces", "Foreign-backed militias": groups named by a description rather than a name.
GROUP_PHRASE = re.compile(r"\b([A-Z][\w-]*(?:\s+[A-Z][\w-]*)*\s+(?:forces|militias?|troops|fighters|rebels))\b")
PERSON_TITLES = re.compile(r"\b(?:President|Prime Minister|Minister|Gen\.|General|spokesman|spokeswoman|envoy|"
                           r"chairman|chief|leader|commander|said|says|told|reported|wrote|tweeted)\b", re.IGNORECASE)

@dataclass(frozen=True)
class QuestionForm:
    kind: AnswerKind
    terms: tuple[str, ...]
    """Content words of the question, lowercased, in order."""
    names: tuple[str, ...] = ()
    """Words the question capitalises mid-sentence (names: "Springfield", "Tiger", "Forces"), lowercased."""
    counted: tuple[str, ...] = ()
    """The noun a "how many" question counts ("soldiers" in "how many French soldiers were killed"); with no
    auxiliary verb to end it, each content word of the three after "how many", one of which it is ("foreign",
    "fighters", "went" in "how many foreign fighters went to isis")."""
    exact: bool = False
    """The question asks for an exact figure, which "thousands" or "hundreds" does not give."""
    noun: str | None = None
    """The noun the question names its answer by ("province"): a span next to it is the likelier answer."""
    share: bool = False
    """A share answers it: "how much did profits rise?", "by how much" (but not "how much territory")."""


def analyse(question: str) -> QuestionForm:
    """The kind of answer the question wants, its content words and names, and what it counts."""
    text = " ".join(question.lower().replace("’", "'").split())
    # "According to the AP, ..." and "What does the Evening Post say ..." name a source, not something the
    # answer must mention.
    unattributed = re.sub(r"(?i)\baccording to (?:the )?[^,?]+,?", " ", question)
    unattributed = re.sub(r"\b(?:does|did|do) (?:the )?(?:[A-Z][\w.'-]*\s)+(?=(?:say|name|call|report|describe|"
                          r"claim|write|list)\b)", " ", unattributed)
    words = unattributed.replace("’", "'").split()
    names = capitalised_names(words)
    kind, noun = _kind(text)
    return QuestionForm(kind, tuple(content_terms(unattributed)), tuple(dict.fromkeys(names)), _counted(question, text),
                        bool(re.search(r"\b(exactly|exact|precisely|precise)\b", text)), noun,
                        bool(re.search(r"\bby how much\b|\bhow much (?:did|does|do|has|have|had|was|is|were|will)\b",
                                       text)))


def _counted(question: str, text: str) -> tuple[str, ...]:
    """What the question counts (``QuestionForm.counted``): the noun before its verb, the words after "how many"
    or "number of" when no verb ends them, or the unit of an area asked for ("sq km lost": kilometres, not miles).
    ``text``: the question lowercased, as ``analyse`` reads it."""
    # Case matters here: in "how many fighters flowed into IS territory", "IS" is the group, not the verb.
    counted = COUNTED.search(" ".join(question.split()))
    if counted:
        return (counted.group(1).split()[-1].lower(),)
    unended = UNENDED_COUNT.search(text) or NUMBER_OF.search(text)
    if unended:
        return tuple(word for word in tokens(unended.group("counted")) if word not in STOPWORDS)
    area = re.search(AREA_UNIT, text)
    return next((unit for unit in AREA_UNITS if area.group(1) in unit), ()) if area else ()


# The measures "how" asks that the rules' number patterns find ("how many", "how far"); the others are the reader's.
RULES_MEASURED = "(?:many|much|large|big|far)"


def _kind(text: str) -> tuple[AnswerKind, str | None]:
    """The kind of answer, and the noun the question names it by ("province" in "in which province ...")."""
    if DESCRIPTION.match(text):
        return "other", None
    # "What is the name of the border crossing ..." asks what "what border crossing ..." asks.
    text = re.sub(r"\bwhat (?:is|was|are|were) the names? of (?:the |a |an )?", "what ", text)
    # "which French border town", "which U.S. defense secretary", but not "what did the army ...".
    between = r"(?:(?!(?:did|does|do|is|was|were|are|has|have|had)\b)[\w.'-]+\s+){0,3}?"
    rules: list[tuple[str, AnswerKind]] = [
        (r"\b(what|which) (percentage|percent|share|proportion|portion|fraction)\b|\bhow much of\b", "percent"),
        (r"\bhow long\b|\bfor how many (days|weeks|months|years)\b|\bhow many (days|weeks|months|years|hours)\b|"
         rf"{DURATION_ASKED}", "duration"),
        (DATE_ASKED, "date"),
        (rf"\bhow ({RULES_MEASURED})\b|\bwhat (number|amount|total)\b|{COUNT_ASKED}|"
         rf"{AREA_UNIT}|\bwhat (?:is|was|were|are) the (?:\w+ )?(population|price|cost|size|area|length|height|"
         r"weight|age|budget|toll|value|salary|revenue|temperature|distance|speed|rate)\b", "number"),
        (rf"\bwhere\b|{LOCATION_ASKED}|\b(which|what) {between}(city|town|country|province|region|area|place|"
         r"village|border|river|crossing|capital|state|nation)(?![\w-])", "place"),
        (rf"\b(which|what) {between}(group|organi[sz]ation|forces?|militias?|army|party|agency|service|newspaper|"
         r"government|coalition|alliance|company|team|command|movement|division|umbrella)\b", "organization"),
        (r"\bwho (?:is|was|are|were) (?:the |a |an )?(?:[\w.'-]+ )?(leader|head|chief|spokesman|spokeswoman|envoy|"
         r"commander|president|minister|chairman|secretary|author|founder|director|owner|ceo|coach|editor)\b",
         "person"),
        (rf"\bwho\b|\bwhom\b|\bwhose\b|\b(which|what) {between}(person|official|leader|reporter|general|president|"
         r"minister|spokesman|spokeswoman|envoy|commander|author|analyst|secretary|chairman|chief|man|woman|king|"
         r"queen|writer|journalist|player|coach|ceo|founder)\b", "person"),
        # Measures the rules have no pattern for: asked first, they are the reader's, whatever clause follows ("how old
        # was she when she died" asks no date).
        (rf"\bhow (?!{RULES_MEASURED}\b){HOW_MEASURED}\b", "other"),
    ]
    first = first_asked(text, rules)
    if first is None:
        return "other", None
    kind, match = first
    # The last group that matched names the noun; ``at`` only marks where a keyword stands.
    noun = match.group(match.lastindex) if match.lastindex and match.lastgroup != "at" else None
    return kind, noun if noun not in {"what", "which"} else None


# "how many" and up to three words, when no auxiliary verb ends what it counts (``COUNTED``).
UNENDED_COUNT = re.compile(rf"\bhow many (?!{AUXILIARY})(?P<counted>(?:[\w-]+ ?){{1,3}})")
# "number of" and up to three words, where it asks for a count (``COUNT_ASKED``).
NUMBER_OF = re.compile(rf"{COUNT_ASKED} (?!{AUXILIARY})(?P<counted>(?:[\w-]+ ?){{1,3}})")
# One unit of area however it is written: "sq km" asks for the "square kilometres" an article gives.
AREA_UNITS = (("km", "km2", "kilometres", "kilometers"), ("miles",), ("metres", "meters", "m2"), ("feet",))
# The lexical index's stemmer: "fighters" and "fighter" are one word, "fighting" another.
STEMMER = Stemmer("english")
PERCENT_SIGN = re.compile(PER_CENT, re.IGNORECASE)
TIME_UNIT = re.compile(r"^[\s-]+(?:days?|weeks?|months?|years?|hours?|decades?|minutes?)\b", re.IGNORECASE)
VAGUE_QUANTITY = re.compile(r"^(?:(?:tens|hundreds|thousands|millions|dozens) of (?:thousands|millions)?|"
                            r"hundreds|thousands|millions|dozens|several|a few)$", re.IGNORECASE)


def answer_spans_for(sentence: str, form: QuestionForm) -> list[Span]:
    """``answer_spans`` narrowed by what the question says: an exact figure is not "thousands"; a count of
    soldiers is not a count of civilians ("tens of thousands of civilians")."""
    spans = answer_spans(sentence, form.kind)
    if form.kind != "number":
        return spans
    counted = {STEMMER.stemWord(word) for word in form.counted}
    kept = []
    for start, end in spans:
        if not form.share and PERCENT_SIGN.search(sentence[start:end]):
            continue  # a share answers "how much did it rise", not "how many" or "how much territory"
        if form.exact and VAGUE_QUANTITY.match(sentence[start:end]):
            continue
        following = [STEMMER.stemWord(word) for word in tokens(sentence[end:])[:4] if word not in STOPWORDS][:2]
        if counted and following and not counted & set(following):
            continue  # "two fighting positions" does not count fighters
        if TIME_UNIT.match(sentence[end:]):  # "four months" is a duration, not a count
            continue
        kept.append((start, end))
    return kept


def answer_spans(sentence: str, kind: AnswerKind) -> list[Span]:
    """Spans of ``sentence`` that could answer a question of ``kind`` (empty for ``other``)."""
    if kind in PATTERNS:
        spans = [match.span() for match in PATTERNS[kind].finditer(sentence)]
        if kind == "number":
            # A year or a date is not an amount.
            dates = [match.span() for match in PATTERNS["date"].finditer(sentence)]
            spans = [span for span in spans if not any(_overlaps(span, date) for date in dates)]
        return [_trim(sentence, span) for span in spans]
    if kind in {"person", "place", "organization"}:
        spans = [span for span in _names(sentence) if _name_kind_fits(sentence, span, kind)]
        if kind == "organization":
            spans += [m.span(1) for m in GROUP_PHRASE.finditer(sentence)]
        return sorted(set(spans))
    return []


def _names(sentence: str) -> list[Span]:
    spans = []
    for match in NAME.finditer(sentence):
        start, end = match.span()
        for suffix in ("’s", "'s", "’", "'", "."):
            if sentence[start:end].endswith(suffix) and end - len(suffix) > start:
                end -= len(suffix)
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
        cue = PLACE_CUES.search(sentence[max(0, span[0] - 24) : span[0]]) or PLACE_NOUNS.match(sentence[span[1] :])
        return not is_org and bool(cue) and not GROUP_NOUN.match(sentence[span[1] :])
    after = sentence[span[1] :]
    if is_org or GROUP_NOUN.match(after) or PLACE_NOUNS.match(after) or PLACE_CUES.search(sentence[: span[0]]):
        return False
    around = sentence[max(0, span[0] - 40) : span[1] + 40]
    return bool(PERSON_TITLES.search(around)) or len(name.split()) >= 2


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


