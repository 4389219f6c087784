"""Citations a reader can check: article, source to open, exact character span, and the quoted text.

For a file, ``source`` opens it from the current directory and ``open(source, encoding="utf-8",
newline="").read()[start:end] == quote``. For a JSONL record, ``source`` is ``FILE.jsonl#id`` and
``record["text"][start:end] == quote``. For an HTML page the offsets index the text extracted from it, which the
index keeps as a file; ``source`` names that file and ``doc_id`` the page.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from rag.retrieval import RetrievedPassage


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    source: str
    start: int
    end: int
    quote: str
    score: float


@dataclass(frozen=True)
class PassageHit:
    doc_id: str
    title: str
    source: str
    start: int
    end: int
    score: float
    text: str


def source_of(metadata: dict[str, Any]) -> str:
    """The path (relative to the current directory when it is below it) or ``FILE.jsonl#id`` to check a span in."""
    path = str(metadata["text_path"])
    relative = os.path.relpath(path)
    shown = path if relative.startswith("..") else relative
    record_id = metadata.get("record_id") or ""
    return f"{shown}#{record_id}" if record_id else shown


def cite(n: int, passage: RetrievedPassage, start: int, end: int, score: float) -> Citation:
    """A citation of ``article_text[start:end]``, which must lie inside the passage."""
    if not passage.start <= start <= end <= passage.end:
        raise ValueError(f"span {start}:{end} is outside passage {passage.start}:{passage.end}")
    quote = passage.text[start - passage.start : end - passage.start]
    meta = passage.metadata
    return Citation(n, str(meta["article_id"]), str(meta["title"]), source_of(meta), start, end, quote, round(score, 4))


def passage_hit(passage: RetrievedPassage) -> PassageHit:
    meta = passage.metadata
    return PassageHit(str(meta["article_id"]), str(meta["title"]), source_of(meta), passage.start, passage.end,
                      round(passage.score, 4), passage.text)


def as_dict(item: Citation | PassageHit) -> dict[str, Any]:
    return asdict(item)
