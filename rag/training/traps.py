"""Trap questions for training: a question with one of its names swapped for another name of the same article that
its paragraph never mentions ("when did the other town fall" while the text dates this one's fall).

The reader learns to say "no answer here" to them, and the refusal model to refuse them: the articles discuss the
subject and hold an answer of the right kind, but not for what was asked.
"""

from __future__ import annotations

import random
import re
from typing import Any

# A run of capitalised words ("Super Bowl", "Denver Broncos", "Genghis Khan"): the names a question asks about.
NAME_RUN = re.compile(r"\b[A-Z][\w'.-]*(?:\s+(?:of\s+|the\s+|de\s+|von\s+)?[A-Z][\w'.-]*)*")


def article_names(article: dict[str, Any]) -> list[str]:
    """Every name the questions of a SQuAD article ask about, sorted (a seeded choice among them is reproducible)."""
    return sorted({run.group() for paragraph in article["paragraphs"] for qa in paragraph["qas"]
                   for run in question_names(qa["question"])})


def question_names(question: str) -> list[re.Match[str]]:
    """The capitalised runs of a question after its first word (which is capitalised anyway)."""
    return [run for run in NAME_RUN.finditer(question) if run.start() > 0]


def swap_name(question: str, context: str, names: list[str], rng: random.Random) -> tuple[str, str] | None:
    """``question`` with one of its names replaced by one of ``names`` that ``context`` (its paragraph) never
    mentions, word for word, and that name; None when it has no name or there is none to swap in."""
    runs = question_names(question)
    mentioned = set(re.findall(r"\w+", context.lower()))
    others = [name for name in names if not set(re.findall(r"\w+", name.lower())) & mentioned]
    if not runs or not others:
        return None
    run, name = rng.choice(runs), rng.choice(others)
    return question[: run.start()] + name + question[run.end():], name
