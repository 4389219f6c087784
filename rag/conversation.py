"""Follow-up questions: "When did Mosul fall?" then "And Raqqa?" means "When did Raqqa fall?".

A follow-up is a short question that starts with "and" / "what about" / "how about", or has no question word of its
own. Its new subject replaces the previous question's subject (its last capitalised name, or failing that its last
content word); anything else is asked as it stands.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

FOLLOW_UP = re.compile(
    r"^\s*(?:and what about|and how about|what about|how about|same for|what of|and)\b[\s,]*(.*?)[\s?.!]*$",
    re.IGNORECASE,
)
QUESTION_WORD = re.compile(r"\b(?:who|whom|whose|what|when|where|which|why|how|did|does|do|is|are|was|were|can)\b",
                           re.IGNORECASE)
NAME = re.compile(r"\b[A-Z][\w’'-]*(?:\s+(?:(?:al|el|de|of|the)[\s-]+)?[A-Z][\w’'-]*)*")


def contextualize(question: str, history: Sequence[str]) -> str:
    """The question to retrieve with: a follow-up rewritten against the last full question, else ``question``."""
    if not history:
        return question
    subject = _follow_up_subject(question)
    if subject is None:
        return question
    # The previous question may itself have been a follow-up ("And Raqqa?"): read it in its own context first.
    previous = contextualize(history[-1], history[:-1])
    names = [match for match in NAME.finditer(previous) if match.start() > 0]
    if names:
        last = names[-1]
        return previous[: last.start()] + subject + previous[last.end() :]
    return f"{previous.rstrip(' ?.')} {subject}?"


def _follow_up_subject(question: str) -> str | None:
    match = FOLLOW_UP.match(question)
    if match and match.group(1):
        # "And when did Raqqa fall?" is a question of its own.
        return None if QUESTION_WORD.search(match.group(1)) else match.group(1)
    words = question.strip(" ?.!").split()
    if 0 < len(words) <= 3 and not QUESTION_WORD.search(question):
        return question.strip(" ?.!")
    return None
