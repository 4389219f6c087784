"""Tell reporting from site chrome and reader comments, without ever rewriting the text.

Cleaning returns the spans of the original text that are reporting; everything else (a site banner above the
headline, share widgets, tag lists, "bloggers like this", reader comments and what follows them) is simply not
covered by any span, so it can never be split into a passage or cited. Offsets stay those of the original text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

Span = tuple[int, int]

# A line that marks the end of the article body: what follows is comments, tags or site furniture.
END_OF_ARTICLE = re.compile(
    r"""^\s*(?:
        tags?\s*:                              # tag list
      | share\ (?:your\ thoughts|this)\b       # share widgets
      | %d\ bloggers\ like\ this               # WordPress like widget
      | \S[^\n]{0,60}?\ says:\s*$              # "• Name says:" opens a reader comment
      | (?:\d+\ )?comments?\s*:?\s*$           # "12 comments"
      | leave\ a\ (?:reply|comment)
      | related\ (?:posts|articles|stories)\s*:?\s*$
    )""",
    re.IGNORECASE | re.VERBOSE,
)

# A line of chrome inside the body, excluded on its own.
CHROME_LINE = re.compile(
    r"""^\s*(?:
        advertisement | share | tweet | email | print | subscribe | read\ more\s*:?.*
      | (?:visit\ us\ on\ \w+\s*)+ | follow\ us\b.*
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)

# "\r" too: a file saved with CRLF line ends has "\r\n\r\n" between paragraphs.
PARAGRAPH_BREAK = re.compile(r"\n[ \t\r]*\n")


@dataclass(frozen=True)
class CleanedText:
    title: str
    """The headline: the first line of the article that reads as a title, not a banner in another script."""
    reporting: tuple[Span, ...]
    """Maximal runs of reporting paragraphs, as ``(start, end)`` offsets into the original text."""


TITLE_CHARS = 150
"""A headline is a line: an article that opens with a paragraph gets that paragraph's first words as its title."""


def as_title(text: str) -> str:
    """``text`` as a title: itself up to ``TITLE_CHARS``, else cut at a word before it and ended with "…" (every
    passage carries its article's title, and every answer shows it)."""
    if len(text) <= TITLE_CHARS:
        return text
    line = " ".join(text.split())
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[: TITLE_CHARS - 1]
    if line[TITLE_CHARS - 1] != " " and " " in cut:  # not a word's end: leave the cut word out
        cut = cut.rsplit(" ", 1)[0]
    return (cut.rstrip(" ,;:.-") or cut) + "…"


def clean(text: str) -> CleanedText:
    """Find the headline and the reporting spans of an article given as plain text."""
    paragraphs = paragraph_spans(text)
    first = _headline_index(text, paragraphs)
    title = text[slice(*paragraphs[first])].strip() if paragraphs else ""
    kept: list[Span] = []
    for start, end in paragraphs[first:]:
        line = text[start:end]
        if END_OF_ARTICLE.match(line):
            break
        if not CHROME_LINE.match(line):
            kept.append((start, end))
    return CleanedText(title=title.lstrip("#").strip(), reporting=tuple(_merge_adjacent(text, kept)))


def paragraph_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Spans of the non-blank paragraphs (separated by blank lines) of ``text[start:end]``, trimmed of whitespace."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    cursor = start
    for match in PARAGRAPH_BREAK.finditer(text, start, end):
        spans.extend(_trimmed(text, cursor, match.start()))
        cursor = match.end()
    spans.extend(_trimmed(text, cursor, end))
    return spans


def _trimmed(text: str, start: int, end: int) -> list[Span]:
    # A byte-order mark opening a file is kept in the text (offsets index the file) but is no part of a paragraph.
    while start < end and (text[start].isspace() or text[start] == "\ufeff"):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [(start, end)] if start < end else []


def _headline_index(text: str, paragraphs: list[Span]) -> int:
    """Index of the first paragraph written mostly in Latin letters with at least three words."""
    for index, (start, end) in enumerate(paragraphs):
        candidate = text[start:end]
        if len(candidate.split()) >= 3 and _latin_share(candidate) >= 0.5:
            return index
    return 0


def _latin_share(text: str) -> float:
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return 0.0
    latin = sum(1 for char in letters if "LATIN" in unicodedata.name(char, ""))
    return latin / len(letters)


def _merge_adjacent(text: str, spans: list[Span]) -> list[Span]:
    """Join paragraphs separated only by whitespace into one run, so passages can span paragraph breaks."""
    merged: list[Span] = []
    for start, end in spans:
        if merged and not text[merged[-1][1] : start].strip():
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
