"""Citations a reader can check: article, source to open, exact character span, and the quoted text.

For a file, ``source`` opens it from the current directory and ``open(source, encoding="utf-8",
newline="").read()[start:end] == quote``. For a JSONL record, ``source`` is ``FILE.jsonl#id`` and
``record["text"][start:end] == quote``. For an HTML page the offsets index the text extracted from it, which the
index keeps as a file; ``source`` names that file and ``doc_id`` the page.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.loading import decode_text
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


# Double quotation marks, straight or curly, that may open or close a quotation in an article.
QUOTE_MARKS = "\"“”„"


def in_quotes(text: str) -> str:
    """``text`` on one line, in quotation marks unless it is one quotation already (a sentence that is all a
    speaker's words): marks of its own are the article's and stay, and a second pair around them reads as a typo."""
    line = " ".join(text.split())
    inner = line[1:-1]
    if len(line) > 1 and line[0] in QUOTE_MARKS and line[-1] in QUOTE_MARKS and not any(
            mark in inner for mark in QUOTE_MARKS):
        return line
    return f"“{line}”"


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


def article_text(source: str) -> str:
    """The text a citation's ``start:end`` index into: a file's content, or a JSONL record's ``text``.

    ``source`` is ``Citation.source``: a path (relative to the current directory, or absolute), or ``FILE.jsonl#id``.
    Raises ``OSError`` or ``ValueError`` when the file or record cannot be read.
    """
    if not Path(source).is_file():
        record = jsonl_record_source(source)
        if record:
            return _jsonl_record_text(*record)
    with open(source, encoding="utf-8", newline="") as handle:
        return handle.read()


def jsonl_record_source(source: str) -> tuple[Path, str] | None:
    """``(FILE.jsonl, id)`` for a ``FILE.jsonl#id`` source, else ``None``."""
    match = re.match(r"(?is)^(.*?\.jsonl)#(.*)$", source)
    return (Path(match.group(1)), match.group(2)) if match else None


def _jsonl_record_text(path: Path, record_id: str) -> str:
    content = decode_text(path.read_bytes())[0].removeprefix("\ufeff")
    for line in content.split("\n"):  # as rag.loading reads it: the first record with the id is the one indexed
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and str(record.get("id")) == record_id and isinstance(record.get("text"), str):
            return str(record["text"])
    raise ValueError(f"{path}: no record with id {record_id!r}")
