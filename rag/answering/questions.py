"""What a question asks for: a short answer of some kind (a date, a number, a name...) or a few sentences.

The trained reader finds the answer span; the question's form decides how the answer is composed. A factoid
("when did ... fall", "who leads ...") gets a short answer and the sentence holding it; an open question ("why ...",
"how did ...", "what happened ...", "tell me about ...", a list or a comparison) gets the few sentences that answer
it. Dates, numbers, shares and durations have generic patterns: whether a sentence holds a span of the kind asked
for is one of the signals the learned sentence ranker and refusal weigh.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

AnswerKind = Literal["date", "number", "percent", "duration", "person", "place", "organization", "other", "open"]
Span = tuple[int, int]

MONTH = (r"(?:Jan(?:uary|\.)?|Feb(?:ruary|\.)?|Mar(?:ch|\.)?|Apr(?:il|\.)?|May|June?|July?|Aug(?:ust|\.)?|"
         r"Sep(?:t(?:ember|\.)?|\.)?|Oct(?:ober|\.)?|Nov(?:ember|\.)?|Dec(?:ember|\.)?)")
WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
NUMBER_WORD = (r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
               r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
               r"hundreds?|thousands?|millions?|dozens?|several|a few|tens of thousands)")
# Wire copy abbreviates: "4.5 bln dlrs", "17 mln marks", "7.3 pct".
DIGITS = (r"(?:[$£€]?\d[\d,]*(?:\.\d+)?(?:bn|m|tn|k)?"
          r"(?:\s+(?:million|billion|trillion|thousand|hundred|mln|bln))?)")
NUMERAL = rf"(?:{DIGITS}|{NUMBER_WORD})"
YEAR_DIGITS = r"(?:1[5-9]|20)\d{2}"
QUALIFIER = r"(?:(?:more than|over|nearly|about|almost|around|some|at least|up to|roughly|approximately)\s+)?"
PER_CENT = r"(?:%|percent\b|per cent\b|pct\b)"
# "sq km lost": a unit of area asks for an amount of it.
AREA_UNIT = r"\b(?:sq|square) (miles|km|kilomet(?:re|er)s|met(?:re|er)s|feet)\b"

# Dates that name no day: a decade ("in the late 1960s") and a century ("the 18th century"), after "the" or standing
# alone (a short answer); not "a 1980s police drama" or "18th-century houses", which name a thing. Not a month alone
# ("next July") nor a date counted from the day of writing ("last month", "a week ago"): as patterns of a date they
# drew the rules away from the sentence that gives the day (`evals/holdout.jsonl`, `evals/quiz.jsonl`, seeds).
DECADE_OR_CENTURY = (
    r"(?:(?:early|mid|late)[\s-]+)?(?:(?:1[5-9]|20)\d0s\b"
    r"|(?:\d{1,2}(?:st|nd|rd|th)|(?:twenty-)?(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|"
    r"eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth))"
    r"\s+centur(?:y|ies)\b)"
)
DATE_WITHOUT_DAY = rf"(?:(?<=\b[Tt]he\s)|\A){DECADE_OR_CENTURY}"

PATTERNS: dict[str, re.Pattern[str]] = {
    "date": re.compile(
        rf"\b(?:{MONTH}\s+\d{{1,2}}(?!\d)(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}\s+{MONTH}(?:\s+\d{{4}})?"
        rf"|(?:early |mid-|late )?{MONTH}\s+(?:of\s+)?\d{{4}}|{WEEKDAY}|(?:the\s+)?(?:last|first|second|third)\s+week"
        rf"\s+of\s+{MONTH}|(?:in|since|by|from|until)\s+\d{{4}}|\b{YEAR_DIGITS}\b|{DATE_WITHOUT_DAY})",
    ),
    "percent": re.compile(
        rf"\b{QUALIFIER}(?:\d+(?:\.\d+)?\s?{PER_CENT}"
        rf"|(?:a|one|two)[\s-](?:half|third|quarter|fifth|tenth)s?\b|half\b|two-thirds|three-quarters)",
        re.IGNORECASE,
    ),
    # Not an age: "the 25-year-old" has been alive that long, not banned or in office.
    "duration": re.compile(
        rf"\b{QUALIFIER}{NUMERAL}[\s-]+(?:days?|weeks?|months?|years?|hours?|decades?)\b(?!-old)", re.IGNORECASE
    ),
    # A number word that opens a compound ("a one-off gain", "a thirty-five-year lease") counts nothing.
    "number": re.compile(rf"(?:\b|(?=[$£€])){QUALIFIER}"
                         rf"(?:{DIGITS}|{NUMBER_WORD}(?!(?:-{NUMBER_WORD}\b)*-(?!{NUMBER_WORD}\b)[a-z]))"
                         rf"(?:\b|(?<=[$£€\d]))(?:\s?{PER_CENT})?", re.IGNORECASE),
}

STOPWORDS = frozenset(
    "a an the of in on at to for from by with about as into over after before and or but is are was were be been "
    "being do does did done has have had having it its it's this that these those there their they them what which "
    "who whom whose when where why how many much long did does according than then so such also still any all "
    "some most more other not no can could would should will may might must i we you he she his her our your "
    "said say says tell told name named called date day year number me about list please al el".split()
)




@dataclass(frozen=True)
class QuestionForm:
    kind: AnswerKind
    terms: tuple[str, ...]
    """Content words of the question, lowercased, in order."""
    names: tuple[str, ...] = ()
    """Words the question capitalises mid-sentence (likely names), lowercased; empty for an all-lowercase question."""
    rough: bool = False
    """The question asks for an estimate ("roughly how many"): an order of magnitude answers it."""

    @property
    def open(self) -> bool:
        """Answered by a few sentences, not by a short span."""
        return self.kind == "open"


# What "how" asks a figure of ("how old", "how far"; "how long" and "how soon" ask a time): any other "how" asks
# how something came about.
HOW_MEASURED = r"(?:many|much|old|far|big|large|often|tall|high|fast|quickly|heavy|deep|wide)"
# Asked for an explanation, an account, a list or a comparison: several sentences answer it, not one span.
OPEN_FORMS = re.compile(
    r"^(?:(?:and|so|but|ok|okay|please|can you|could you|would you)\s+)*"
    # "could the group come back", "is the plant still open": a yes or no is told in sentences, not a span; not "is it
    # high or low" (a choice, which a span answers; "or more", "or not" offer none), nor "did they say who won".
    r"(?:(?:is|are|was|were|does|do|did|has|have|had|will|would|could|can|should)\s+(?!you\b)"
    r"(?!.*\bor\b(?!\s+(?:not|more|less|so)\b))(?!.*\b(?:who|whom|whose|when|where|which|what|why|how)\b)|"
    rf"why\b|how\s+(?!(?:{HOW_MEASURED}|long|soon)\b)|"
    r"(?:^|.*\s)what (?:happened|happens|is happening|went on)\b|"
    # "doria vs ruvia, which fell first": a comparison, told by what each side's sentences say; not when a question
    # word of its own clause asks something else of the pair ("who won the doria vs ruvia final").
    r"(?:.*,\s*)?(?:(?!\b(?:who|whom|whose|when|where|what|how)\b)[^,])*\s(?:vs\.?|versus)(?!\S)|"
    r"what\s+(?:led|caused|are the (?:reasons|causes|effects|consequences)|"
    r"were the (?:reasons|causes|effects|consequences)|did (?:.+\s)?(?:say|said|do|announce|warn|claim|argue)\b|"
    r"does (?:.+\s)?(?:say|do|mean)\b|is (?:the )?(?:significance|impact|role|story|background|situation)|"
    r"was (?:the )?(?:significance|impact|role|story|background|situation|reaction|response))|"
    r"tell me\b|describe\b|explain\b|summari[sz]e\b|summary\b|overview\b|list\b|compare\b|"
    r"give me\b|what about\b|anything (?:on|about)\b|info(?:rmation)? (?:on|about)\b|"
    # Not "what are the two ...": things counted, named in a few words, which a span answers (but "the three reasons").
    r"(?:what|which) (?:are|were) (?:the(?!\s+(?:two|three|four|five|six|\d+)\s+(?!(?:main\s+)?(?:reasons|causes|"
    r"effects|consequences|ways|steps)\b))|all|some)\b|"
    r"what(?:'?s| is| was| are| were) (?:.+\s)?about\W*$|what (?:is|was) (?:so )?(?:different|special|new) about\b)"
)
# "who is bill roggio": asked what someone is (a description), not who holds some role ("who is the envoy", "who is
# snow patrol's bassist", "who is directing the film"), which a name answers.
NAME_WORD = r"(?![\w.-]*(?:ing|'s?)\b)[\w.-]+"
LEAD_WORDS = r"(?:and|so|but|ok|okay)"
LEAD_IN = rf"^(?:{LEAD_WORDS}\s+)?"
"""What a question may open with before its question word, as typed in a conversation."""
POINTING_WORDS = frozenset("the a an this that these those his her its their our your my he she it they him them you "
                           "we i".split())
"""Words that point to something rather than name it: "who is he", "what is this" ask for no description."""
DESCRIPTION = re.compile(
    rf"{LEAD_IN}who(?:'s|\s+is|\s+are|\s+was|\s+were)\s+"
    rf"(?!(?:{'|'.join(sorted(POINTING_WORDS))}|in|on|at|behind|responsible|now|still|currently|going|being)\b)"
    rf"{NAME_WORD}(?:\s+{NAME_WORD}){{0,3}}\W*$"
)
"""Matched against ``as_said`` text."""
# "who are the pkk" asks what a group is, "who are the winners" who won: the articles tell them apart
# (``describes_a_name``).
DESCRIPTION_OF_THE = re.compile(
    rf"{LEAD_IN}who(?:'s|\s+is|\s+are|\s+was|\s+were)\s+the\s+([\w.-]+)(?:\s+[\w.-]+){{0,3}}\W*$"
)
AUXILIARY = r"(?:were|are|was|is|did|do|does|had|have|has|will|would|could|can)\b"
COUNTED = re.compile(rf"\b[Hh]ow many ((?:[\w-]+ ){{0,3}}?[\w-]+) (?={AUXILIARY})")
"""What a "how many" question counts: the words between "how many" and its verb ("new casinos", "French soldiers")."""
# Typed as keywords ("doria siege duration", "harlow location province", "number of troops who crossed"), a question
# names what it asks for by a noun; not after a question word that asks something else ("who chose the location",
# "which party won the largest number of seats"), nor as "a number of".
# These patterns read the whole question up to their word, which the empty group ``at`` marks (``first_asked``).
UNASKED = r"^(?:(?!\b(?:who|whom|whose|which|when|where)\b).)*?(?P<at>)"
# "when" asks a date only as the question's first question word: "what was he on his way to do when he was struck"
# asks what, with "when" opening a clause.
WHEN_ASKED = r"^(?:(?!\b(?:what|which|who|whom|whose|how|where|why)\b).)*?(?P<at>)\bwhen\b"
DURATION_ASKED = rf"{UNASKED}\bduration\b"
# The noun a date is asked by is captured: the rules favour a date next to it ("in which year").
DATE_ASKED = (r"\b(?:which|what) (day|date|year|month|decade|century)\b|\bwhat (time)\b"
              rf"|{WHEN_ASKED}|\bdate\b|\b(?:year|day|month) (?:when|in which)\b|\bsince when\b")
LOCATION_ASKED = rf"{UNASKED}\blocation\b"
COUNT_ASKED = rf"{UNASKED}(?<!\ba )\bnumber of\b"
ROUGH = re.compile(r"\b(?:roughly|approximately|approx|about|around|estimated?|more or less)\b")
KINDS: list[tuple[str, AnswerKind]] = [
    (r"\b(what|which) (percentage|percent|share|proportion|portion|fraction)\b|\bhow much of\b|%", "percent"),
    (r"\bhow long\b|\bfor how many (days|weeks|months|years)\b|\bhow many (days|weeks|months|years|hours)\b|"
     rf"{DURATION_ASKED}", "duration"),
    (rf"{DATE_ASKED}|\bhow soon\b", "date"),
    (rf"\bhow {HOW_MEASURED}\b|\bwhat (number|amount|total|price|cost|speed|size)\b|{COUNT_ASKED}|{AREA_UNIT}",
     "number"),
    # "what is the region's biggest city": the place noun asked for may close the question (not "the population of
    # the city", where it only says whose).
    (rf"\bwhere\b|{LOCATION_ASKED}|\b(which|what) (city|town|country|province|region|area|place|village|state|"
     r"nation)\b|^(?:which|what)\b(?:(?!\b(?:of|in|for|from|to|by|near)\b).)*\b(?:city|town|country|province|"
     r"region|village|state|nation|capital)\W*$", "place"),
    (r"\bwho\b|\bwhom\b|\bwhose\b", "person"),
    (r"\b(which|what) (group|organi[sz]ation|company|firm|team|party|agency|club|band|network)\b", "organization"),
]


# "whats", "how's": a question word run together with "is" or "has", as typed.
CONTRACTED = re.compile(r"\b(what|how|who|where|when)'?s\b")


def as_said(question: str) -> str:
    """``question`` lowercased, its apostrophes straight, its spaces single, and a question word typed together with
    "is" spelled out ("whats" -> "what is")."""
    return CONTRACTED.sub(r"\1 is", " ".join(question.lower().replace("’", "'").split()))


def describes_a_name(question: str, texts: Sequence[str]) -> bool:
    """Whether ``question`` asks what someone or something named is: "who is bill roggio" (``DESCRIPTION``), or
    "who are the pkk" when ``texts`` mostly write its first word with a capital ("PKK"; "who are the winners"
    asks for names)."""
    said = as_said(question)
    if DESCRIPTION.match(said):
        return True
    group = DESCRIPTION_OF_THE.match(said)
    return group is not None and written_as_a_name(group.group(1), texts)


def written_as_a_name(word: str, texts: Sequence[str]) -> bool:
    """Whether ``texts`` write ``word`` mostly with a capital (and write it at all)."""
    found = [match.group() for text in texts for match in re.finditer(rf"\b{re.escape(word)}\b", text, re.IGNORECASE)]
    return sum(form[0].isupper() for form in found) * 2 > len(found)


# Small words a title leaves in small letters ("Rise of the Robots").
TITLE_SMALL_WORDS = frozenset("a an the of in on at to for and or but nor by from with as vs".split())
# Words that only a title capitalises inside a question ("When Did ..."): no name is made of them.
TITLE_ONLY_CAPITALS = frozenset(
    "did does do is was were are has have had when where what who whom how why which".split())


def capitalised_names(words: Sequence[str]) -> list[str]:
    """The names a question's words mark with capitals: the words after the first that open with one (lowercased,
    stopwords left out). None where the capitals mark nothing: a question typed in capitals ("WHEN DID THE CITY
    FALL"), or written as a title, every word capitalised but the small ones, its verbs too ("When Did the City
    Fall?", where "Fall" is no name; a keyword query such as "Doria Works Chief" still names Doria Works)."""
    later = [word for word in words[1:] if any(letter.isalpha() for letter in word)]
    letters = [letter for word in words for letter in word if letter.isalpha()]
    bare = [word.strip("?,.!:;'\"()“”‘’").lower() for word in later]
    big = [word for word, plain in zip(later, bare, strict=True) if plain not in TITLE_SMALL_WORDS]
    titled = (any(plain in TITLE_ONLY_CAPITALS for plain in bare)
              and all(next(letter for letter in word if letter.isalpha()).isupper() for word in big))
    if titled or all(letter.isupper() for letter in letters):
        return []
    return [token for word in later if word[:1].isupper() for token in tokens(word) if token not in STOPWORDS]


def analyse(question: str) -> QuestionForm:
    """The kind of answer the question wants, its content words and its names."""
    text = as_said(question)
    names = capitalised_names(question.replace("’", "'").split())
    return QuestionForm(_kind(text), tuple(content_terms(text)), tuple(dict.fromkeys(names)),
                        bool(ROUGH.search(text)))


def _kind(text: str) -> AnswerKind:
    if OPEN_FORMS.search(text):
        return "open"
    if DESCRIPTION.match(text):
        return "other"
    first = first_asked(text, KINDS)
    return first[0] if first else "other"


# What may come before the question word that opens a question: lead-in words (``LEAD_IN``) and "then", and one
# preposition ("in what year").
OPENING = re.compile(rf"(?:(?:{LEAD_WORDS}|then)\s+)*(?:(?:in|on|at|from|to|by|for|during|since|until|after|before|of|"
                     r"with|under|around)\s+)?")


def first_asked(text: str, kinds: Sequence[tuple[str, AnswerKind]]) -> tuple[AnswerKind, re.Match[str]] | None:
    """The kind ``text`` asks for, with its pattern's match: the one whose word opens the question, if one does ("how
    old was he when he died" asks an age, "how much did the firm pay when it bought the mill" an amount, "who led the
    party when it won" a name: a later question word opens a clause); else the first of ``kinds`` that matches
    ("the man who found it was born in what year" asks a year)."""
    opening = OPENING.match(text)
    opens_at = opening.end() if opening else 0
    found = []
    for order, (pattern, kind) in enumerate(kinds):
        match = re.search(pattern, text)
        if match:
            at = match.start("at") if "at" in match.re.groupindex and match.start("at") >= 0 else match.start()
            found.append(((0, at, order) if at <= opens_at else (1, 0, order), kind, match))
    if not found:
        return None
    _, kind, match = min(found, key=lambda item: item[0])
    return kind, match


def content_terms(text: str) -> list[str]:
    return [token for token in tokens(text) if token not in STOPWORDS and len(token) > 1]


POSSESSIVE = re.compile(r"'s\b")


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", POSSESSIVE.sub("", text.lower().replace("’", "'")))


NAME_KINDS = frozenset({"person", "place", "organization"})


def fits_kind(answer: str, kind: AnswerKind) -> bool:
    """Whether a short answer is of the kind asked for: a date for "when", a number for "how many", a name (a
    capitalised word that is not a function word) for "who", "where" or "which group"; any answer for the rest."""
    if kind in PATTERNS:
        return bool(typed_spans(answer, kind))
    if kind in NAME_KINDS:
        return any(word[:1].isupper() and word.lower() not in STOPWORDS for word in re.findall(r"[\w'’-]+", answer))
    return True


# An amount of money asked for: "how much did the firm pay", "what price did the shares sell at", "visa cost" (not
# "by how much did prices fall", a change, nor "how much territory", an amount of something else). A verb that also
# moves ground, goals or points is not money with its particle ("how much did they give up", "get to", "put on"); "which
# fee" asks which one, and "what price index" names a thing the price word only qualifies.
MONEY_VERB = (r"(?:cost|costs|pay|paid|pays|paying|spend|spent|spends|spending|invest|invests|invested|investing|"
              r"worth|earn|earns|earned|earning|charge|charges|charged|charging|sell|sells|sold|selling|buy|buys|"
              r"bought|offer|offers|offered|offering|bid|receive|receives|received|"
              r"(?:give|gives|giving|gave|get|gets|got|getting|put|puts|putting)\b"
              r"(?!\s+(?:up|away|back|to|on|off|over|through|out|ahead|behind)\b))")
MONEY_ASKED = re.compile(
    rf"^(?!.*\bby how much\b)(?:.*\bhow much(?:\s+(?:money|cash|funding|compensation))?\s+{AUXILIARY}.*\b{MONEY_VERB}\b"
    rf"|.*\bwhat\b(?:\s+[\w-]+){{0,3}}\s+(?:price|fee|salary)\b(?=\W*$|\s+(?:of|for|per|at|paid|{AUXILIARY}))"
    r"|(?!.*\b(?:who|whom|whose|what|when|where|which|why|how)\b).*\b(?:price|fee|salary|cost)\W*$)",
    re.IGNORECASE,
)
FEE = re.compile(r"\bfees?\b", re.IGNORECASE)
"""A fee asked: lenders and managers quote theirs as a share ("an early participation fee of 3/8 pct")."""
# A currency named after a figure ("17 mln marks", "10 mln Swiss francs", "a dollar", "half a million pounds", "twenty
# pence"), not a word that is also a name or a verb ("the marks on the wall", "Rand Paul", "the party won").
CURRENCY_NAME = (r"(?:dollars?|dlrs?|cts|cents?|pounds?|quid|grand|euros?|yen|yuan|renminbi|francs?|marks|rupees?|"
                 r"rupiah|pence|crowns?|kron(?:or|er|a|e)|lire|lira|pesos?|pesetas?|rand|stg|sterling|roubles?|"
                 r"rubles?|won|riy?als?|dirhams?|dinars?|shekels?|baht|ringgit|naira|guilders?|schillings?|"
                 r"shillings?|escudos?|drachmas?|zlotys?|forints?)")
FIGURE = (rf"(?:\d(?:bn|m|k)?|\b(?:a|an|{NUMBER_WORD}|mln|bln|billion|trillion|crore|lakh)\b)"
          r"(?:[\s-]+(?-i:[A-Z])[\w.-]*){0,2}")
MONEY = re.compile(
    r"[$£€¥₹₩₽₺₪₦₱฿₫₴]|(?<!\d)\d+p\b|\d(?:bn|m)\b(?!\s+(?-i:[a-z]))"
    r"|(?-i:\b(?:USD|EUR|GBP|JPY|CHF|CNY|RMB|INR|HKD|AUD|CAD|NZD|SGD|KRW|ZAR|BRL|RUB|SEK|NOK|DKK|NIS|SFr|Sfr|DM|Rs)"
    r"(?![A-Za-z]))"
    rf"|{FIGURE}[\s-]+{CURRENCY_NAME}\b"
    # "free", "free of charge", "free for children"; not "a free vote", "free agent", "Mark Free".
    r"|(?-i:\bfree\b)(?!\s+(?!(?:of|for|to|in|on|at|and|or|from|until|with|if)\b)[a-z])",
    re.IGNORECASE,
)


def asks_for_money(question: str) -> bool:
    """Whether ``question`` asks for an amount of money (not "which year did the price fall", which asks a date)."""
    return analyse(question).kind in ("number", "other") and MONEY_ASKED.search(as_said(question)) is not None


def is_money(answer: str) -> bool:
    """Whether a short answer, as written with the words around it (``as_written``), is an amount of money ("$85",
    "12 mln dlrs", "£1.3bn", "50p", "Rs 500 crore", "free"), not another figure ("17", "5%", "1980", "5m people")."""
    return MONEY.search(answer) is not None


def as_written(short: str, quote: str) -> list[str]:
    """``short`` as ``quote`` writes it, wherever it does, with the word or sign before it and up to three words after
    it in its clause: a span may leave out the currency of a figure ("two" of "two dlrs a warrant", "10" of "10 mln
    Swiss francs", "150" of "$150", "500" of "Rs 500", "50" of "50p"). Every place that starts a word, else every place
    ("17" of "$17", not of "2017"): the span's offsets are not kept, so a short answer counts as money when any place
    writes it as money."""
    places = [found.start() for found in re.finditer(re.escape(short), quote)] if short else []
    starting = [at for at in places if at == 0 or not (short[0].isalnum() and quote[at - 1].isalnum())]
    written = []
    for at in starting or places:
        before = re.search(r"\S*\s*$", quote[max(0, at - 24) : at])
        after = re.match(r"[^\s,;]*(?:\s+[^\s,;]+){0,3}", quote[at + len(short) : at + len(short) + 80])
        written.append((before.group() if before else "") + short + (after.group() if after else ""))
    return written or [short]


def answers_amount(asked: str, short: str | None, quote: str) -> bool:
    """Whether ``short``, as ``quote`` writes it (``as_written``), answers a question asking an amount of money: it is
    one, or a share where a fee is asked."""
    return short is not None and (any(is_money(written) for written in as_written(short, quote))
                                  or (FEE.search(asked) is not None and fits_kind(short, "percent")))


NAME_ASKED = re.compile(r"\bnames?\b", re.IGNORECASE)
"""The question asks for a name ("the name of the official", "forerunner group name", "the names of the dead")."""
NAME_PARTICLES = frozenset("al el de del der da di du la le van von bin ibn abu of the and in on for".split())


def is_proper_name(answer: str) -> bool:
    """Whether every word of ``answer`` is capitalised, but for the particles names hold ("Bank of Doria",
    "Ludwig van Beethoven", "Dan al-Orr"), and one is: a name, not a description ("Ruvian militias")."""
    words = [word.strip("'’") for word in re.findall(r"[\w'’]+(?:-[\w'’]+)*", answer)]
    named = [word for word in words if word and word.lower() not in NAME_PARTICLES]
    return bool(named) and all(any(part[:1].isupper() or part[:1].isdigit() for part in word.split("-"))
                               for word in named)


NAMED_TIME = re.compile(rf"\b{DECADE_OR_CENTURY}")
"""A decade or a century however it stands ("1980s police drama"): a time, not an amount."""


def typed_spans(sentence: str, kind: AnswerKind) -> list[Span]:
    """Spans of ``sentence`` matching the generic pattern of ``kind`` (dates, numbers, shares, durations); a year
    or a date is not an amount."""
    if kind not in PATTERNS:
        return []
    spans = [_trim(sentence, match.span()) for match in PATTERNS[kind].finditer(sentence)]
    if kind == "number":
        dates = [match.span() for pattern in (PATTERNS["date"], NAMED_TIME) for match in pattern.finditer(sentence)]
        spans = [(a, b) for a, b in spans if not any(a < d_end and d_start < b for d_start, d_end in dates)]
    return spans


# A year as figures are dated: "in 1996", "FY1996", "mid-1996", not a part of a larger number ("2,004", "12004") nor
# a decade ("1990s").
A_YEAR = rf"(?<![\d,.$£€])(?:FY)?({YEAR_DIGITS})(?![\d,.]\d|\d|s\b)"
# In a text, "1995-96" and "1995/96" give both years.
YEARS_WRITTEN = re.compile(rf"{A_YEAR}(?:[-/](\d{{2}}|{YEAR_DIGITS})(?![\d,.]\d|\d|s\b))?")
# In a question, not a year that names a thing ("the 1996 tax law took effect when?") nor a count ("its 2000 workers").
YEAR_ASKED = re.compile(rf"(?<!\bthe )(?<!\ba )(?<!\ban ){A_YEAR}(?!\s+[a-z]+s\b)", re.IGNORECASE)
RELATIVE_YEAR = re.compile(
    r"\b(?:this|last|next|past|previous|prior|current|coming)[- ]year\b|\byear[- ](?:earlier|ago|before)\b",
    re.IGNORECASE,
)
"""A year named by when the article was written ("this year", "the year-ago quarter"): it may be the one asked about."""


FIGURE_KINDS = frozenset({"date", "number", "percent", "duration"})
"""Answers that are figures or dates."""


def years_written(text: str) -> set[str]:
    """The years ``text`` dates things to, "1995-96" and "1995/96" giving both."""
    years = set()
    for match in YEARS_WRITTEN.finditer(text):
        first, second = match.group(1), match.group(2)
        years.add(first)
        if second:
            years.add(second if len(second) == 4 else first[:2] + second)
    return years


def another_year(question: str, kind: AnswerKind, text: str) -> bool:
    """Whether ``text`` gives the figure or date asked for (``FIGURE_KINDS``) for another year than the one the
    question asks about: the question names a year that ``text`` never does, and ``text`` names another and no year
    relative to its own date ("profit in 1996" against "earned 14 mln dlrs in 1995"). Not for a name: who held a post
    in 1975 may well hold it in 1976."""
    if kind not in FIGURE_KINDS:
        return False
    asked = {match.group(1) for match in YEAR_ASKED.finditer(question)}
    written = years_written(text)
    return bool(asked and written and not asked & written and not RELATIVE_YEAR.search(text))


def _trim(sentence: str, span: Span) -> Span:
    start, end = span
    while end > start and sentence[end - 1] in " ,.;:":
        end -= 1
    while start < end and sentence[start] == " ":
        start += 1
    return start, end
