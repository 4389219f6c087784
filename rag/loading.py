"""Load articles from files and JSONL collections, reporting every bad input by name and going on.

An ``Article`` keeps its original text untouched: every offset the project ever reports indexes into ``text``.
For ``.txt``/``.md`` files that is the file's content; for a JSONL record it is the record's ``text`` field; for an
``.html`` page it is the main text extracted from the page (see ``Article.extracted``). A file is UTF-8 unless it
starts with a UTF-16 or UTF-32 byte-order mark; such a text is decoded, and its offsets index the decoded text, which
the index keeps as a UTF-8 file (like a page's extracted text).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from html.parser import HTMLParser
from pathlib import Path

from rag.cleaning import Span, as_title, clean

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSONL_SUFFIXES = {".jsonl"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES
# A page may be this many times the article limit: markup, scripts and inline images are not article text.
HTML_SIZE_FACTOR = 10
# UTF-32 marks first: the UTF-32-LE mark begins with the UTF-16-LE one.
BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
DEFAULT_MAX_ARTICLE_BYTES = 4_000_000
READ_CHUNK = 1 << 20
MetadataValue = str | int | float | bool


@dataclass(frozen=True)
class Article:
    key: str
    """Unique across corpora: the absolute file path, or ``FILE.jsonl#id`` with an absolute path."""
    doc_id: str
    """The file's path relative to the ingested directory, or the JSONL record's ``id``."""
    title: str
    text: str
    path: str
    """Absolute path of the file the article came from."""
    origin: str
    """Absolute path that was ingested (a directory or a file): re-ingesting it removes what it no longer holds."""
    reporting: tuple[Span, ...]
    """Spans of ``text`` that are reporting, not chrome or comments."""
    record_id: str | None = None
    extracted: bool = False
    """True when ``text`` was extracted from markup and is not the file's bytes (HTML)."""
    metadata: dict[str, MetadataValue] = field(default_factory=dict)

    @cached_property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unreadable_keys: set[str] = field(default_factory=set)
    """Files (absolute paths) that could not be read: what they held before stays indexed."""
    origins: list[str] = field(default_factory=list)
    max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES


def decode_text(data: bytes) -> tuple[str, str]:
    """The text of a file's bytes and the encoding read: UTF-16 or UTF-32 when a byte-order mark says so (the mark is
    dropped), else UTF-8 (a UTF-8 mark is kept, so offsets index what ``open(path, encoding="utf-8")`` reads).
    Raises ``UnicodeDecodeError``."""
    for mark, encoding in BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return data.decode(encoding), encoding
    return data.decode("utf-8"), "utf-8"


def load_corpus(paths: Sequence[Path], max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES) -> LoadResult:
    """Read every supported file under ``paths`` (directories are walked; README files in them are skipped).
    Articles over ``max_article_bytes`` of text are refused by name (``Settings.max_article_mb``)."""
    result, articles = stream_corpus(paths, max_article_bytes)
    result.articles.extend(articles)
    return result


def stream_corpus(paths: Sequence[Path], max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES
                  ) -> tuple[LoadResult, Iterator[Article]]:
    """``load_corpus`` one article at a time, for corpora larger than memory should hold: the result has the
    origins at once, and the problems and unreadable keys as far as the articles have been read (all of them once
    the iterator is exhausted); its ``articles`` stay empty."""
    result = LoadResult(max_article_bytes=max_article_bytes,
                        origins=[str(root.resolve()) for root in paths if root.exists()])
    return result, _stream(paths, result)


def _stream(paths: Sequence[Path], result: LoadResult) -> Iterator[Article]:
    loaded: set[Path] = set()  # a file named twice (overlapping paths, a symlink) is one article, loaded once
    for root in paths:
        if not root.exists():
            result.problems.append(Problem(str(root), "no such file or directory"))
            continue
        origin = str(root.resolve())
        if root.is_dir():
            files = sorted(_corpus_files(root))
            if not files:
                result.problems.append(Problem(str(root), "no .txt, .md, .html or .jsonl files in this directory"))
            base = root
        else:
            files = [root]
            base = root.parent
        for path in files:
            resolved = Path(path_key(path))
            if resolved.is_symlink():  # still a link once resolved: links that lead to each other
                result.problems.append(Problem(str(path), "cannot read: a loop of symbolic links"))
                continue
            if resolved not in loaded:
                loaded.add(resolved)
                yield from _load_file(path, base, origin, result)


def path_key(path: str | Path) -> str:
    """The resolved path an article of ``path`` is stored under; for links that lead to each other, which resolve to
    nothing, the absolute path of the first (Python 3.11 raises ``RuntimeError`` there, later versions ``OSError``)."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):
        return str(Path(path).absolute())


def estimate_articles(paths: Sequence[Path]) -> int:
    """About how many articles ``paths`` hold (a file each, a JSONL file's non-blank lines), for a time-left
    estimate; cheap next to loading them (Reuters' 22 MB counted in about 0.1 s)."""
    count = 0
    for root in paths:
        files = sorted(_corpus_files(root)) if root.is_dir() else [root] if root.is_file() else []
        for path in files:
            if path.suffix.lower() not in JSONL_SUFFIXES or not path.is_file():  # a pipe is not read, only named
                count += 1
                continue
            try:
                with open(path, "rb") as handle:
                    count += sum(1 for line in handle if line.strip())
            except OSError:
                continue
    return count


def _corpus_files(directory: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for name in filenames:
            path = Path(dirpath) / name
            if name.startswith(".") or path.stem.upper() == "README":
                continue
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                yield path


def _load_file(path: Path, base: Path, origin: str, result: LoadResult) -> Iterator[Article]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        result.problems.append(Problem(str(path), f"unsupported file type {suffix or '(none)'}"))
        result.unreadable_keys.add(str(path.resolve()))
        return
    absolute = str(path.resolve())
    try:
        regular = stat.S_ISREG(path.stat().st_mode)
    except OSError as error:  # a link to nothing
        result.problems.append(Problem(str(path), f"cannot read: {error.strerror}"))
        result.unreadable_keys.add(absolute)
        return
    if not regular:
        # A named pipe would block the ingest until something writes to it; a socket or a device is no article.
        result.problems.append(Problem(str(path), "not a regular file (a pipe, socket or device)"))
        result.unreadable_keys.add(absolute)
        return
    if suffix in JSONL_SUFFIXES:
        # Read line by line: a collection can be any size; it is checked whole first, so a file that is not text
        # is refused (keeping what it had) before any of its records is used.
        encoding = _check_text_file(path, result)
        if encoding is None:
            result.unreadable_keys.add(absolute)
            return
        yield from _jsonl_articles(_jsonl_lines(path, encoding, result), path, absolute, origin, result)
        return
    limit = result.max_article_bytes * (HTML_SIZE_FACTOR if suffix in HTML_SUFFIXES else 1)
    read = _read_text(path, result, limit)
    if read is None:
        result.unreadable_keys.add(absolute)
        return
    text, encoding = read
    doc_id = path.relative_to(base).as_posix()
    if suffix in HTML_SUFFIXES:
        title, body = extract_html(text.removeprefix("\ufeff"))
        if _too_long(body, path, result):
            return
        article = _file_article(absolute, doc_id, body, origin, title, extracted=True)
    else:
        # A UTF-16/32 file's offsets index its decoded text, kept as a UTF-8 copy that citations open.
        article = _file_article(absolute, doc_id, text, origin, extracted=encoding != "utf-8")
    if _has_reporting(article, path, result):
        yield article


def _check_text_file(path: Path, result: LoadResult) -> str | None:
    """The codec that reads ``path`` (a byte-order mark dropped), after decoding it all piece by piece; None, with
    the problem recorded as ``_read_text`` would name it, when the file is not readable text."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(READ_CHUNK)
            if b"\x00" in head[:8192] and not any(head.startswith(mark) for mark, _ in BYTE_ORDER_MARKS):
                result.problems.append(Problem(str(path), "binary file, not text"))
                return None
            encoding = next((name for mark, name in BYTE_ORDER_MARKS if head.startswith(mark)), "utf-8-sig")
            decoder = codecs.getincrementaldecoder(encoding)()
            blank = True
            chunk = head
            while True:
                text = decoder.decode(chunk, final=not chunk)
                blank = blank and not text.strip()
                if not chunk:
                    break
                chunk = handle.read(READ_CHUNK)
    except OSError as error:
        result.problems.append(Problem(str(path), f"cannot read: {error.strerror}"))
        return None
    except UnicodeDecodeError:
        _read_text(path, result, None)  # the rare bad file is read whole, for the same message as any other file
        return None
    if blank:
        result.problems.append(Problem(str(path), "empty file"))
        return None
    return encoding


def _jsonl_lines(path: Path, encoding: str, result: LoadResult) -> Iterator[str]:
    try:
        # JSON Lines are separated by "\n" only: universal newlines would also split at a lone "\r".
        with open(path, encoding=encoding, newline="\n") as handle:
            yield from handle
    except (OSError, UnicodeError) as error:  # changed while it was read: what was read so far stands
        result.problems.append(Problem(str(path), f"cannot read to the end: {error}"))
        result.unreadable_keys.add(str(path.resolve()))


def _read_text(path: Path, result: LoadResult, max_bytes: int | None) -> tuple[str, str] | None:
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            # Refused from its size alone, before reading: splitting a 50 MB text whole took 7.3 GB.
            result.problems.append(Problem(str(path), f"{size / 1e6:.1f} MB is over the {max_bytes / 1e6:g} MB limit "
                                           "(max_article_mb, RAG_MAX_ARTICLE_MB)"))
            return None
        data = path.read_bytes()
    except OSError as error:
        result.problems.append(Problem(str(path), f"cannot read: {error.strerror}"))
        return None
    if b"\x00" in data[:8192] and not any(data.startswith(mark) for mark, _ in BYTE_ORDER_MARKS):
        result.problems.append(Problem(str(path), "binary file, not text"))
        return None
    try:
        text, encoding = decode_text(data)
    except UnicodeDecodeError as error:
        marked = "" if error.encoding == "utf-8" else f", nor {error.encoding.upper()} as its byte-order mark says"
        result.problems.append(Problem(str(path), f"not UTF-8{marked} (invalid byte at offset {error.start})"))
        return None
    if not text.removeprefix("\ufeff").strip():
        result.problems.append(Problem(str(path), "empty file"))
        return None
    return text, encoding


def _too_long(text: str, path: Path, result: LoadResult, record: str = "") -> bool:
    size = len(text.encode("utf-8"))
    if size <= result.max_article_bytes:
        return False
    result.problems.append(Problem(str(path), f"{record or 'the text'} is {size / 1e6:.1f} MB, over the "
                                   f"{result.max_article_bytes / 1e6:g} MB limit (max_article_mb, RAG_MAX_ARTICLE_MB)"))
    return True


def _file_article(
    absolute: str, doc_id: str, text: str, origin: str, title: str = "", *, extracted: bool = False
) -> Article:
    cleaned = clean(text)
    return Article(
        key=absolute,
        doc_id=doc_id,
        title=as_title(title or cleaned.title or Path(doc_id).stem),
        text=text,
        path=absolute,
        origin=origin,
        reporting=cleaned.reporting,
        extracted=extracted,
    )


def _has_reporting(article: Article, path: Path, result: LoadResult) -> bool:
    if article.reporting:
        return True
    result.problems.append(Problem(str(path), "no article text found"))
    result.unreadable_keys.add(article.key)
    return False


def _jsonl_articles(lines: Iterable[str], path: Path, absolute: str, origin: str,
                    result: LoadResult) -> Iterator[Article]:
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            result.problems.append(Problem(str(path), f"malformed JSON ({error.msg}: column {error.colno})", number))
            continue
        if not isinstance(record, dict):
            result.problems.append(Problem(str(path), "a line must be a JSON object", number))
            continue
        record_id, body = record.get("id"), record.get("text")
        if not isinstance(record_id, str | int) or isinstance(record_id, bool) or str(record_id) == "":
            result.problems.append(Problem(str(path), "record has no 'id'", number))
            continue
        if not isinstance(body, str) or not body.strip():
            result.problems.append(Problem(str(path), f"record {record_id} has no 'text'", number))
            continue
        record_id = str(record_id)
        if _too_long(body, path, result, f"record {record_id}"):
            continue
        if record_id in seen:
            result.problems.append(Problem(str(path), f"duplicate id {record_id}; the first record was kept", number))
            continue
        seen.add(record_id)
        cleaned = clean(body)
        title = record.get("title")
        yield Article(
            key=f"{absolute}#{record_id}",
            doc_id=record_id,
            title=as_title(title.strip() if isinstance(title, str) and title.strip() else cleaned.title),
            text=body,
            path=absolute,
            origin=origin,
            # A record's text is the article itself; only the end-of-article chrome is cut.
            reporting=cleaned.reporting or ((0, len(body)),),
            record_id=record_id,
            metadata=_scalar_metadata(record),
        )


def _scalar_metadata(record: dict[str, object]) -> dict[str, MetadataValue]:
    metadata: dict[str, MetadataValue] = {}
    for name, value in record.items():
        if name in {"id", "title", "text"} or value is None:
            continue
        if isinstance(value, str | int | float | bool):
            metadata[name] = value
        elif isinstance(value, list) and all(isinstance(item, str | int | float) for item in value):
            metadata[name] = ", ".join(str(item) for item in value)
    return metadata


class _MainTextParser(HTMLParser):
    """Collects the text of content blocks, skipping scripts, navigation and comment sections."""

    SKIPPED = frozenset(
        {"script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe", "svg", "template"}
    )
    BLOCKS = frozenset(
        {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "div", "article", "section", "tr"}
    )
    CHROME_WORDS = ("comment", "share", "social", "sidebar", "related", "newsletter", "advert", "cookie", "menu")
    ARTICLE = frozenset({"article", "main"})
    VOID = frozenset(
        {"br", "img", "hr", "meta", "link", "input", "source", "wbr", "area", "base", "col", "embed", "track"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0
        self.stack: list[tuple[str, bool]] = []
        self.title = ""
        self.h1 = ""
        self.in_title = False
        self.in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            if tag == "br":
                self.current.append("\n")
            return
        marker = " ".join(value or "" for name, value in attrs if name in {"class", "id"}).lower()
        chrome = any(word in marker for word in self.CHROME_WORDS)
        # An <article>'s own <header> holds its headline; only a page-level <header> is the site's banner.
        own_header = tag == "header" and any(name in self.ARTICLE for name, _ in self.stack)
        skipped = chrome or (tag in self.SKIPPED and not own_header)
        self.stack.append((tag, skipped))
        self.skip_depth += skipped
        if tag in self.BLOCKS:
            self._flush()
        # The page's <title>, not an icon's <svg><title>; the first <h1> only, not every one on the page.
        self.in_title = self.in_title or (tag == "title" and not self.skip_depth)
        self.in_h1 = self.in_h1 or (tag == "h1" and not self.skip_depth and not self.h1.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID or tag not in (name for name, _ in self.stack):
            return
        while self.stack:
            name, skipped = self.stack.pop()
            self.skip_depth -= skipped
            if name == tag:
                break
        if tag in self.BLOCKS:
            self._flush()
        self.in_title = self.in_title and tag != "title"
        self.in_h1 = self.in_h1 and tag != "h1"

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
            return
        if self.skip_depth:
            return
        if self.in_h1:
            self.h1 += data
        self.current.append(data)

    def _flush(self) -> None:
        block = " ".join("".join(self.current).split())
        if block:
            self.blocks.append(block)
        self.current = []

    def close(self) -> None:
        super().close()
        self._flush()


def extract_html(markup: str) -> tuple[str, str]:
    """The page's headline (its ``<h1>``, else ``<title>``) and its main text, one block a paragraph."""
    parser = _MainTextParser()
    parser.feed(markup)
    parser.close()
    title = " ".join(parser.h1.split()) or " ".join(parser.title.split())
    return title, "\n\n".join(parser.blocks) + "\n"
