"""Follow-up questions: "When did the city fall?" then "And the port?" means "When did the port fall?", and "who
took it" after "when did the city fall" means "who took the city".

A follow-up is a short question that starts with "and" / "what about" / "how about", or has no question word of its
own: its new subject replaces the word of the previous question that is most like it ("and russia" after "how many
pcs will china add by 2010" replaces "china", not the rarer "add"): among the previous question's capitalised names
if it has any, else among its content words, weighed by their rarity in the index so that a common verb is not
taken for a subject (``Words``). A question whose subject is a pronoun (it, they, she...) gets the previous
question's subject in its place (its last capitalised name, or its rarest content word), or the previous answer
when the previous question asked for what the pronoun stands for: "who did he replace" then "why was he sacked"
asks about the man replaced (``ANSWER_PRONOUNS``); "and X, how old is he" asks about X. A count without its noun
("how many were planned originally" after "how many new casinos will the uk allow") counts what the previous
question counted. Anything else is asked as it stands.

A question typed with "how may" or "how man" for "how many" is read as meant, and one that names the articles
themselves ("what do the articles say about the port", "when did the city fall according to the articles") is asked
about its subject alone: no passage holds the words "articles" or "say", and the answerers would count them as
missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from rag.answering.questions import AUXILIARY, COUNTED, AnswerKind, analyse, as_said, content_terms


class Words(Protocol):
    """What the index knows of words (``rag.retrieval.HybridRetriever`` is one)."""

    def rarity(self, word: str) -> float:
        """Inverse document frequency: a place name is rarer than "fall"."""
        ...

    def likeness(self, phrase: str, others: Sequence[str]) -> list[float]:
        """How alike in meaning ``phrase`` is to each of ``others`` (cosine of their vectors)."""
        ...


class PlainWords:
    """``Words`` without an index: longer words count as rarer, and no two words as alike."""

    def rarity(self, word: str) -> float:
        return float(len(word))

    def likeness(self, phrase: str, others: Sequence[str]) -> list[float]:
        return [0.0] * len(others)


FOLLOW_UP = re.compile(
    r"^\s*(?:and what about|and how about|what about|how about|same for|what of|and)\b[\s,]*(.*?)[\s?.!]*$",
    re.IGNORECASE,
)
# Matched against ``as_said`` text, so "whats" and "hows" count too.
QUESTION_WORD = re.compile(r"\b(?:who|whom|whose|what|when|where|which|why|how|did|does|do|is|are|was|were|can)\b")
NAME = re.compile(r"\b[A-Z][\w’'-]*(?:\s+(?:(?:al|el|de|of|the)[\s-]+)?[A-Z][\w’'-]*)*")
NAMED_FOLLOW_UP = re.compile(r"^\s*(?:and|what about|how about)\s+([^,]+?)\s*,\s*(.+)$", re.IGNORECASE)
PREPOSITIONS = (r"(?:in|on|at|near|around|to|from|for|during|after|before|by|inside|outside|across|within|along|"
                r"into|towards?|over|under|among|between|since|until)")
PREPOSITION = re.compile(rf"{PREPOSITIONS}\s+\S", re.IGNORECASE)
"""A follow-up's subject that opens with a preposition ("and in the north") stands for the previous question's phrase
opened by one ("near the port"), not for one of its words."""
# Words are separated by spaces that cannot be empty: a repeated group that may match nothing would try every way of
# splitting a word when the phrase cannot end (a question closing on a preposition).
PHRASE_WORD = rf"(?!{PREPOSITIONS}\b)[^\s?.!,]+"
PHRASE = re.compile(
    rf"(?<!\S)({PREPOSITIONS}\s+{PHRASE_WORD}(?:\s+{PHRASE_WORD})*?)(?=\s+{PREPOSITIONS}\b|\s*[?.!,]|\s*$)",
    re.IGNORECASE,
)
EXISTENTIAL_BEFORE = re.compile(r"\b(?:is|are|was|were|be)\s+$", re.IGNORECASE)
EXISTENTIAL_AFTER = re.compile(r"\s*(?:is|are|was|were|'s|’s|has|have|had|will|would|may|might)\b", re.IGNORECASE)
PRONOUN = re.compile(r"\b(?:it|they|them|he|him|she|her|there)\b", re.IGNORECASE)
MAX_PRONOUN_FOLLOW_UP_WORDS = 7
# "how many were ...": the counted noun left out (unlike "how much", which asks for an amount of its own).
UNCOUNTED = re.compile(rf"^\s*(?:(?:and|so|but)\s+)?how many\s+(?={AUXILIARY})", re.IGNORECASE)
# The articles asked about as such: "the articles", "these stories", "your coverage" (not "the report", "the news",
# which a question may ask about as a subject: "what did the report find").
THE_ARTICLES = r"(?:the|these|this|those|your|my|our)\s+(?:news\s+)?(?:articles?|stor(?:y|ies)|texts?|corpus|coverage)"
"""Not "the files", "the documents", "the sources": in news they are as often what is asked about ("which files were
leaked", "what did the sources say about the deal")."""
SAY_ABOUT = re.compile(
    rf"\bwhat\s+(?:do|does|did|can|could)\s+{THE_ARTICLES}\s+(?:say|tell(?:\s+(?:me|us))?|mention|report|write|"
    r"have|know)\s+(?:about|on|regarding|of)\b",
    re.IGNORECASE,
)
# "according to the articles" anywhere; "in the articles" only opening the question or closing it, where it says
# where to look ("what was found in the story of the raid" asks about the story). One optional comma before it, so
# that no run of spaces is split two ways (a long run would take cubic time).
ACCORDING_TO = re.compile(
    rf",?\s*\b(?:(?:according to|based on)\s+{THE_ARTICLES}\b|(?:in|from)\s+{THE_ARTICLES}(?=\s*[,?.!]*\s*$))"
    rf"|^\s*(?:in|from)\s+{THE_ARTICLES}\s*,",
    re.IGNORECASE,
)
# "how may people", "how man yards": not "how may I help" nor "how may the court rule" (a request, a question of what
# may happen: "may" before its subject).
HOW_MANY_SLIP = re.compile(r"\bhow\s+(?:may|man|mnay|mny|manny)\b(?=\s+(?!(?:i|we|you|he|she|they|it|one|this|that|"
                           r"the|a|an|his|her|its|their|our|your|my|these|those|such)\b)[a-z])", re.IGNORECASE)
WH_CLAUSE = re.compile(r"\s*(?:who|whom|whose|when|where|which|how\s+(?:many|much|long|old|far))\b", re.IGNORECASE)
# The pronouns that stand for the answer to a question asking for a person, a place or an organisation. Not "it":
# after "where is the plant" or "which firm makes the drug", "it" is as likely the plant or the drug.
ANSWER_PRONOUNS: dict[AnswerKind, frozenset[str]] = {
    "person": frozenset({"he", "him", "she", "her", "they", "them"}),
    "place": frozenset({"there"}),
    "organization": frozenset({"they", "them"}),
}


def contextualize(question: str, history: Sequence[str], words: Words | None = None,
                  previous_answer: str | None = None) -> str:
    """The question to retrieve with: a follow-up rewritten against the last full question, else ``question``.
    ``previous_answer``: the short answer given to the last question of ``history``, if it had one."""
    question = restated(question)
    if not history:
        return question
    words = words or PlainWords()
    # The previous question may itself have been a follow-up ("And the port?"): read it in its own context first.
    previous = contextualize(history[-1], history[:-1], words)
    subject = _follow_up_subject(question)
    if subject is not None:
        if PREPOSITION.match(subject):
            replaced = _phrase_like(previous, subject, words)
        else:
            replaced = _subject(previous, words, like=subject)
        return _in_place(previous, replaced, subject) if replaced else f"{previous.rstrip(' ?.')} {subject}?"
    named = NAMED_FOLLOW_UP.match(question)
    if named and (own := PRONOUN.search(named.group(2))):
        # "and tyndall, how old is he": the pronoun stands for the name the question opens with.
        return _in_place(named.group(2), own.span(), named.group(1))
    uncounted = UNCOUNTED.match(question)
    if uncounted and (counted := COUNTED.search(previous)):
        return f"{question[: uncounted.end()]}{counted.group(1)} {question[uncounted.end() :]}"
    pronoun = PRONOUN.search(question)
    if not pronoun or NAME.search(question, 1) or len(question.split()) > MAX_PRONOUN_FOLLOW_UP_WORDS:
        return question
    if previous_answer and pronoun.group().lower() in ANSWER_PRONOUNS.get(analyse(previous).kind, ()):
        return _in_place(question, pronoun.span(), previous_answer)
    subject_span = _subject(previous, words)
    if subject_span:
        return _in_place(question, pronoun.span(), previous[slice(*subject_span)])
    return question


def restated(question: str) -> str:
    """``question`` as meant: "how many" typed as "how may" or "how man" spelled out, and without the words that
    name the articles themselves ("what do the articles say about the port" -> "tell me about the port", "when did
    the city fall according to these stories?" -> "when did the city fall?"), unless nothing else would be left."""
    question = HOW_MANY_SLIP.sub(lambda slip: f"{slip.group()[:3]} many", question)
    said = ACCORDING_TO.sub("", SAY_ABOUT.sub(_told_about, question)).strip(" ,")
    return said if content_terms(said.lower()) else question


def _told_about(say_about: re.Match[str]) -> str:
    """What replaces "what do the articles say about": nothing before a question of its own ("... about when the
    city fell" asks when), else "tell me about" (an account of its subject)."""
    rest = say_about.string[say_about.end():]
    return "" if WH_CLAUSE.match(rest) else "tell me about"


def _phrase_like(question: str, phrase: str, words: Words) -> tuple[int, int] | None:
    """Where ``question`` says what the follow-up ``phrase`` says instead ("and around the port" after "what did
    they shell near the bridge"): its phrase opened by the same preposition, or by any, the one most like ``phrase``
    (the last on a tie); ``None`` when it has none (the phrase is then added). A phrase runs to the next
    preposition."""
    phrases = [match.span(1) for match in PHRASE.finditer(question)]
    if not phrases:
        return None
    opening = phrase.split()[0].lower()
    same = [span for span in phrases if question[span[0] : span[1]].split()[0].lower() == opening]
    candidates = same or phrases
    alike = words.likeness(phrase, [question[start:end] for start, end in candidates])
    return candidates[max(range(len(candidates)), key=lambda i: (alike[i], i))]


def _in_place(text: str, span: tuple[int, int], meant: str) -> str:
    if text[span[0] : span[1]].lower() == "there":
        place = meant if PREPOSITION.match(meant) else f"in {meant}"  # "there" is a place and its preposition
        if EXISTENTIAL_BEFORE.search(text, 0, span[0]) or EXISTENTIAL_AFTER.match(text, span[1]):
            # "were there any survivors" says that something is, not where: the place goes after it.
            said = text.rstrip(" ?.!")
            return f"{said} {place}{text[len(said) :]}"
        meant = place
    return text[: span[0]] + meant + text[span[1] :]


def _subject(question: str, words: Words, like: str | None = None) -> tuple[int, int] | None:
    """Where the question's subject is, among its capitalised names (or, without any, its content words): the one
    most like ``like`` in meaning, weighed by its rarity in the index so that a common verb is not taken for a
    subject (the word a follow-up's new subject takes the place of); without ``like``, or on a tie, its last name or
    its rarest content word (the last on a tie)."""
    names = _names(question)
    candidates = names or _content_words(question)
    if not candidates:
        return None
    texts = [question[start:end] for start, end in candidates]
    rarity = [words.rarity(text.lower()) for text in texts]
    alike = words.likeness(like, texts) if like else [0.0] * len(texts)
    weighed = [max(a, 0.0) * rare for a, rare in zip(alike, rarity, strict=True)]
    return candidates[max(range(len(candidates)), key=lambda i: (weighed[i], 0.0 if names else rarity[i], i))]


def _names(question: str) -> list[tuple[int, int]]:
    """The capitalised names after the question's first word."""
    return [match.span() for match in NAME.finditer(question) if match.start() > 0]


def _content_words(question: str) -> list[tuple[int, int]]:
    return [match.span() for match in re.finditer(r"[\w’'-]+", question) if content_terms(match.group())]


def _follow_up_subject(question: str) -> str | None:
    match = FOLLOW_UP.match(question)
    if match and match.group(1):
        # "And when did the port fall?" is a question of its own.
        return None if QUESTION_WORD.search(as_said(match.group(1))) else match.group(1)
    words = question.strip(" ?.!").split()
    if 0 < len(words) <= 3 and not QUESTION_WORD.search(as_said(question)):
        return question.strip(" ?.!")
    return None


MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|"
         r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
DATE = re.compile(rf"\b{MONTH} \d{{1,2}}(?:, \d{{4}})?\b|\b\d{{1,2}} {MONTH} \d{{4}}\b")
# Capitalised words that open sentences or name no one: never offered as a subject.
NOT_A_NAME = set("""a an and as at but by for from he her his however i if in it its many more most mr mrs ms on
one our she so some that the their there these they this those to two was we what when where which while who why
with you monday tuesday wednesday thursday friday saturday sunday""".split())
MAX_FOLLOW_UPS = 3


def suggest_follow_ups(question: str, cited_texts: Sequence[str], limit: int = MAX_FOLLOW_UPS) -> list[str]:
    """Questions to ask next, made only of names and dates that the cited text mentions and the question does not:
    "And NAME?" (asked as the same question about NAME, see ``contextualize``) when the question has a name of its
    own to replace, else "Who is NAME?"; then "What happened on DATE?". Names mentioned most come first; nothing is
    made up: every suggestion quotes the articles' own words."""
    asked = question.casefold()
    text = "\n".join(cited_texts)
    counts: dict[str, int] = {}
    for match in NAME.finditer(text):
        # A capitalised word opening a sentence or a line is no sign of a name.
        before = text[max(0, match.start() - 4) : match.start()]
        opening = match.start() == 0 or re.search(r"[.!?:;\n“\"]\s*$", before) is not None
        name = re.sub(r"[’']s$", "", match.group().split("\n")[0].strip(" ’'-"))
        words = name.split()
        if opening and len(words) < 2:
            continue
        while words and words[0].casefold() in NOT_A_NAME:
            words = words[1:]
        name = " ".join(words)
        if len(name) < 3 or name.casefold() in asked or re.fullmatch(MONTH, name):
            continue
        counts[name] = counts.get(name, 0) + 1
    has_subject = any(match.start() > 0 for match in NAME.finditer(question))
    names = sorted(counts, key=lambda name: -counts[name])
    suggestions = [f"And {name}?" if has_subject else f"Who or what is {name}?" for name in names[: limit - 1]]
    dates = [date for date in dict.fromkeys(m.group() for m in DATE.finditer(text)) if date.casefold() not in asked]
    suggestions += [f"What happened on {date}?" for date in dates[:1]]
    suggestions += [f"And {name}?" if has_subject else f"Who or what is {name}?" for name in names[limit - 1 :]]
    return suggestions[:limit]
