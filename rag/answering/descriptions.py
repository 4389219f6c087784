"""Questions for what something named is ("who is mara quist", "what is the jrmn", "what does utc stand for"),
answered the way news writing answers them: where a name is introduced, the text says what it is.

- what initials stand for: the name they are the initials of ("the Joint Relief Mission for the North (JRMN)"), or
  the name an alias follows ("the Coastal Workers Union, or the UTC");
- an appositive: "Port Amery, the rebels' last stronghold, fell ...", "Col. Dana Vell, spokeswoman for the northern
  army, called ...", "The country's second-largest port, Doria was ...";
- a copula: "Mara Quist is a senior fellow at ...";
- for a person, a title written before the name: "Northern Governor Alma Reyes";
- asked how old someone is, the age written after the name: "Mara Quist, 45, said ...".

These are the patterns of English apposition and predication, not of any corpus. A span reader trained on SQuAD
rarely meets such questions (asked what a town is, it answers with the participle after the town's name), so the
answerer takes a description found this way as its short answer; whether to answer at all is still the refusal
model's decision.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum

from rag.answering.questions import DESCRIPTION, LEAD_IN, POINTING_WORDS, as_said, written_as_a_name
from rag.spelling import CAPITALISED, FUNCTION_WORDS, NAME_JOINT, NAME_RUN, in_text_spelling

Span = tuple[int, int]

SUBJECT_WORDS = r"[\w.&'-]+(?:\s+[\w.&'-]+){0,3}"
DESCRIBED = re.compile(
    rf"{LEAD_IN}(?P<wh>who|what)\s+(?:is|are|was|were)\s+(?:the\s+)?(?P<subject>{SUBJECT_WORDS})\W*$"
)
STANDS_FOR = re.compile(
    rf"{LEAD_IN}what\s+(?:does|did|do)\s+(?:the\s+)?(?P<subject>{SUBJECT_WORDS})\s+(?:stand\s+for|mean)\W*$"
)
# "how old is mara quist", "whats mara quist's age": a person's age, which news writes after the name.
AGE_FORMS = (
    re.compile(rf"{LEAD_IN}how\s+old\s+(?:is|was|are|were)\s+(?P<subject>{SUBJECT_WORDS})\W*$"),
    re.compile(rf"{LEAD_IN}what\s+(?:is|was)\s+(?P<subject>{SUBJECT_WORDS})'s?\s+age\W*$"),
    re.compile(rf"{LEAD_IN}what\s+age\s+(?:is|was)\s+(?P<subject>{SUBJECT_WORDS})\W*$"),
)
# "Mara Quist, 45, said", "Mara Quist (45)", "Mara Quist, aged 45,".
AGE_AFTER_NAME = re.compile(r",\s*(?:aged\s+)?(?P<d>\d{1,3})\s*[,;.)]|\s*\((?:aged\s+)?(?P<p>\d{1,3})\)")

# What a description never holds or opens with: a finite verb makes it a clause ("After Doria, the next target is
# Kessa"), a conjunction, preposition, relative word or sentence adverb makes it something else than a noun phrase
# ("Doria, however, held out").
VERBS = frozenset("""is are was were be been being has have had will would can could shall should may might must do
does did said says say told tells announced added""".split())
NOT_AN_OPENING = frozenset("""which who whom whose where when while that and but or nor as after before according
including because although though if so then now also not with without for from to in on at by into than he she it
they we i you this these those there here however meanwhile instead therefore moreover furthermore nevertheless still
yet indeed perhaps thus hence too""".split())
# After these, a name is a complement ("the capture of Doria is a blow"), not the subject of a copula.
PREPOSITIONS = frozenset("""of in at on to from for with by after before near over under into against about across
during since until despite following within throughout""".split())
# Before these, a name ends the phrase that opens the sentence ("A day later, ..."), not a description of it.
TIME_WORDS = frozenset("later earlier ago afterwards before after then now today yesterday".split())
MAX_DESCRIPTION_WORDS = 20
QUOTES = "\"“”‘’'"

NAME = rf"{CAPITALISED}(?:{NAME_JOINT}{CAPITALISED})*"
NAME_TAIL = re.compile(rf"(?:{NAME_JOINT}{CAPITALISED})*")
APPOSITIVE = re.compile(r",\s+(?P<d>[^,;:()—–]+)")
COPULA = re.compile(r"\s+(?:is|was|are|were)\s+(?P<d>(?:a|an|the|one)\s[^,;:()—–]*)")
# What initials stand for, written before them: "the Coastal Workers Union, or the UTC", "... for the North (JRMN)".
ALIAS = re.compile(rf"(?P<d>{NAME})\s*(?:,\s*(?:or|also known as|known as)\s+(?:the\s+)?|\(\s*(?:the\s+)?)$")
ALIAS_REACH = 160
"""Characters before initials searched for the name they stand for: the name is written just before them."""
FRONTED = re.compile(r"(?P<d>(?:[A-Z][\w.]*['’]s|[Tt]he|[Aa]n?)\s[^,;:]+),\s+$")
FRONTED_REACH = 200
"""A fronted appositive opens its sentence and is a short phrase: mentions further in are not looked at."""
OF_A_LONGER_NAME = re.compile(rf"{CAPITALISED}[ \t]+(?:of|for|de)[ \t]+(?:the[ \t]+)?$")
# A title is a word or two of capitals before a person's name; "Gen." or "Lord" alone is a rank, not a description.
MIN_TITLE_LETTERS = 5


class Kind(IntEnum):
    """Kinds of description, best first: what initials stand for names the thing; an appositive is how the writer
    identifies it ("The country's second-largest port, Doria was a hub ..."); a copula may say only what it was
    then; a title says only what a person's office is. An age is asked for on its own."""

    EXPANSION = 0
    APPOSITION = 1
    COPULA = 2
    TITLE = 3
    AGE = 4


@dataclass(frozen=True)
class Subject:
    words: str
    """As the texts spell it."""
    person: bool
    """Asked with "who": a title before the name describes it."""
    age: bool = False
    """Asked how old the person is, not what they are."""


@dataclass(frozen=True)
class Description:
    sentence: int
    """Index of the sentence (in the order given) that holds the description."""
    start: int
    end: int
    """Offsets of the description in that sentence."""
    kind: Kind


def described_subject(question: str, texts: Sequence[str]) -> Subject | None:
    """What ``question`` asks to be described, if it asks what something named is: "who is mara quist" (any "who
    is X" that ``DESCRIPTION`` takes for a name), "what is the jrmn" or "who are the utc" when ``texts`` write it as
    a name (so "what is the population of doria" is not one), "what does utc stand for"; or how old someone named
    is. In the spelling ``texts`` use."""
    said = as_said(question)
    aged = next((found for form in AGE_FORMS if (found := form.match(said))), None)
    match = aged or DESCRIBED.match(said) or STANDS_FOR.match(said)
    if match is None or match.group("subject").split()[0] in POINTING_WORDS:
        return None
    subject = in_text_spelling(match.group("subject"), "\n".join(texts))
    if aged:
        return Subject(subject, person=True, age=True) if _a_name(subject, texts) else None
    who = match.re is DESCRIBED and match.group("wh") == "who"
    if who and DESCRIPTION.match(said):
        return Subject(subject, person=True)
    return Subject(subject, who) if _a_name(subject, texts) else None


def _a_name(words: str, texts: Sequence[str]) -> bool:
    """Whether ``texts`` write ``words`` as a name: it has letters, each of its words (but the small words names
    keep) is mostly written with a capital, and none has a possessive ("doria's mayor" asks for someone else)."""
    letters = re.findall(r"[^\W\d_]+", words)
    if not letters or re.search(r"'s?\b", words):
        return False
    return all(written_as_a_name(word, texts) for word in letters if word not in FUNCTION_WORDS and word != "de")


def describe(subject: Subject, texts: Sequence[str]) -> Description | None:
    """The best description of ``subject`` in ``texts`` (sentences, best-ranked first): the best kind, then the
    first sentence; or, asked its age, the first age. A title counts only for a person named in full; a subject
    stands for the names it is the initials of only when the texts write it in capitals ("JRMN", "UTC")."""
    words = subject.words.strip()
    if subject.age:
        return next((Description(index, start, end, Kind.AGE) for index, text in enumerate(texts)
                     for start, end in ages_in(words, text)), None)
    capitals = re.compile(rf"(?<![\w-]){re.escape(words.upper())}(?![\w-])")
    initialism = " " not in words and any(capitals.search(text) for text in texts)
    titled = subject.person and " " in words
    found = [Description(index, start, end, kind) for index, text in enumerate(texts)
             for kind, (start, end) in descriptions_in(words, text, initialism) if titled or kind != Kind.TITLE]
    return min(found, key=lambda d: (d.kind, d.sentence), default=None)


def descriptions_in(subject: str, text: str, initialism: bool = False) -> list[tuple[Kind, Span]]:
    """(kind, span) of every description of ``subject`` in one sentence ``text``; what it stands for too when it is
    an ``initialism``."""
    found = [(Kind.EXPANSION, span) for span in _expansions(subject, text)] if initialism else []
    opening = re.match(r"\W*(\w+)", text)
    runs = [run.span() for run in NAME_RUN.finditer(text)]
    for start, end in _mentions(subject, text):
        before = text[:start]
        if initialism:
            reach = max(0, start - ALIAS_REACH)
            alias = ALIAS.search(text, reach, start)
            if alias:
                found.append((Kind.EXPANSION, alias.span("d")))
        after_word = re.search(r"(\w+)\W*$", before)
        copula = COPULA.match(text, end)
        if copula and not (after_word and after_word.group(1).lower() in PREPOSITIONS):
            found += [(Kind.COPULA, span) for span in [_trimmed(text, copula.span("d"))] if _a_noun_phrase(
                text[slice(*span)], opening_checked=True)]
        # "Near Doria, four patrols ...", "Asked about Doria, the spokesman declined ...": the first comma after an
        # opening prepositional or participial phrase ends it.
        introduced = opening is not None and "," not in before and (
            opening.group(1).lower() in PREPOSITIONS or re.fullmatch(r"[A-Z][a-z]+(?:ed|ing)", opening.group(1)))
        appositive = APPOSITIVE.match(text, end)
        if appositive and not introduced:
            found += [(Kind.APPOSITION, span) for span in [_trimmed(text, appositive.span("d"))]
                      if _a_noun_phrase(text[slice(*span)])]
        fronted = FRONTED.fullmatch(before) if start <= FRONTED_REACH else None
        if fronted and _fronts(fronted.group("d")):
            found.append((Kind.APPOSITION, _trimmed(text, fronted.span("d"))))
        title = _title(text, start, runs)
        if title:
            found.append((Kind.TITLE, title))
    return found


def ages_in(subject: str, text: str) -> list[Span]:
    """Spans of the age ``text`` gives ``subject`` after the name: "Mara Quist, 45, said", "Mara Quist (45)"."""
    ages = []
    for _, end in _mentions(subject, text):
        age = AGE_AFTER_NAME.match(text, end)
        if age:
            ages.append(age.span("d") if age.group("d") else age.span("p"))
    return ages


def _mentions(subject: str, text: str) -> Iterator[Span]:
    """Where ``text`` names ``subject`` (in any case, its words joined by spaces or hyphens), each running on to
    the end of the name it is part of ("Joint Relief" to "Joint Relief Mission for the North"); not where it ends
    a longer name ("University of Doria" is not Doria)."""
    words = [re.escape(word) for word in re.split(r"[\s-]+", subject) if word]
    if not words:
        return
    written = r"[\s-]+".join(words)
    for match in re.finditer(rf"(?<![\w-]){written}(?![\w-])", text, re.IGNORECASE):
        if OF_A_LONGER_NAME.search(text, max(0, match.start() - 60), match.start()):
            continue
        tail = NAME_TAIL.match(text, match.end())
        yield match.start(), tail.end() if tail else match.end()


def _trimmed(text: str, span: Span) -> Span:
    """``span`` without the spaces, quotes and final full stop around it."""
    start, end = span
    while start < end and (text[start].isspace() or text[start] in QUOTES):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in QUOTES + "."):
        end -= 1
    return start, end


def _a_noun_phrase(words: str, opening_checked: bool = False) -> bool:
    """Whether ``words`` read as a noun phrase that describes: no verb in them (in small letters: "US" is a name),
    and (unless the pattern that found them fixed their opening) opening with a determiner, a possessive or a small
    word that is not a participle, an adverb, a conjunction or a preposition ("depriving the rebels of ..." is a
    clause; "spokeswoman for the army" is not)."""
    tokens = words.split()
    if not 0 < len(tokens) <= MAX_DESCRIPTION_WORDS or any(token in VERBS for token in tokens):
        return False
    if opening_checked:
        return True
    first = tokens[0]
    if re.fullmatch(r"[A-Z][\w.]*['’]s", first) or first.lower() in {"a", "an", "the", "one"}:
        return True
    return first.islower() and first not in NOT_AN_OPENING and not re.search(r"(?:ing|ed|ly)$", first)


def _fronts(words: str) -> bool:
    """Whether ``words``, opening the sentence before a name and a comma, describe the name: a noun phrase that
    does not end with a name (a list: "The army retook Doria, Kessa and ...") or a time word ("A day later, ...")."""
    last = words.split()[-1]
    return (_a_noun_phrase(words, opening_checked=True) and last.islower() and last not in TIME_WORDS
            and not last.endswith("ly"))


def _title(text: str, start: int, runs: Sequence[Span]) -> Span | None:
    """The capitalised words written before a name in the same run ("Northern Governor" of "Northern Governor Alma
    Reyes"), when they are more than a rank."""
    run = next((run for run in runs if run[0] < start < run[1]), None)
    if run is None:
        return None
    title = text[run[0] : start].strip()
    words = [w for w in title.split() if w.lower() not in FUNCTION_WORDS]
    if any(w.lower() in NOT_AN_OPENING or w.lower() in PREPOSITIONS for w in words):
        return None
    if len(words) >= 2 or (len(words) == 1 and len(words[0]) >= MIN_TITLE_LETTERS and "." not in words[0]):
        return run[0], run[0] + len(title)
    return None


def _expansions(subject: str, text: str) -> list[Span]:
    """Names in ``text`` whose initials spell ``subject`` ("jrmn": "Joint Relief Mission for the North"), not
    counting a word capitalised because it opens the sentence ("Under Nasser" does not stand for "un")."""
    letters = re.sub(r"[^a-z]", "", subject.lower())
    if len(letters) < 2:
        return []
    spans = []
    for run in NAME_RUN.finditer(text):
        words = [w for w in re.finditer(CAPITALISED, run.group()) if w.group().lower() not in FUNCTION_WORDS]
        for first in range(len(words) - len(letters) + 1):
            chosen = words[first : first + len(letters)]
            if (chosen[0].group().lower() not in NOT_AN_OPENING | PREPOSITIONS
                    and "".join(w.group()[0] for w in chosen).lower() == letters):
                spans.append((run.start() + chosen[0].start(), run.start() + chosen[-1].end()))
    return spans
