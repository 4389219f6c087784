"""What an index holds, readable without opening the store: a manifest per index fingerprint and a catalogue of
its articles, in one small SQLite file beside the Chroma database (``index.sqlite3``).

The manifest records the roots ingested (so a damaged store can be rebuilt from them, and an index that held
articles is never mistaken for "no index yet"), the article and passage counts, the versions that wrote it, where
the store lives, and a generation number bumped (and committed) before every change to the store: the lexical index
is stamped with the generation it was built at, so whether it is current is known without reading the store. The
catalogue has one row per article, for listing thousands of articles page by page. With a Chroma server as the
store, the manifest also records the server store's stamp that this client's catalogue and counts reflect
(``rag.store.PassageStore.behind``).

Every write happens under the index's writer lock (``rag.locking``); SQLite's own locking covers readers.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.locking import writable

MANIFEST_FILE = "index.sqlite3"
CATALOGUE_VERSION = 2
"""What a catalogue row holds. 1: title, text path, record id, date, passage count and content hash; 2: also the
article's file, source, topic, short id and search text, so the library is listed and searched from the catalogue
alone. An index whose catalogue is older is filled again from its store once (``IndexManifest.catalogue_current``)."""
TABLES = """
CREATE TABLE IF NOT EXISTS manifest (
    fingerprint TEXT PRIMARY KEY, roots TEXT NOT NULL, articles INTEGER NOT NULL, passages INTEGER NOT NULL,
    generation INTEGER NOT NULL, state TEXT NOT NULL, versions TEXT NOT NULL, store TEXT NOT NULL,
    catalogue INTEGER NOT NULL DEFAULT 0, stamp TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS articles (
    fingerprint TEXT NOT NULL, doc_key TEXT NOT NULL, title TEXT NOT NULL, text_path TEXT NOT NULL,
    record_id TEXT NOT NULL, date TEXT NOT NULL, passages INTEGER NOT NULL, content_hash TEXT NOT NULL,
    path TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '', topic TEXT NOT NULL DEFAULT '',
    short_id TEXT NOT NULL DEFAULT '', sort_key TEXT NOT NULL DEFAULT '', searchable TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (fingerprint, doc_key));
"""
# Columns added since the first catalogue: an index made before them gets them (empty) when first opened for writing.
ADDED_COLUMNS = {
    "manifest": ("catalogue INTEGER NOT NULL DEFAULT 0", "stamp TEXT NOT NULL DEFAULT ''"),
    "articles": tuple(f"{name} TEXT NOT NULL DEFAULT ''"
                      for name in ("path", "source", "topic", "short_id", "sort_key", "searchable")),
}
INDEXES = """
DROP INDEX IF EXISTS articles_by_title;
CREATE INDEX IF NOT EXISTS articles_by_sort_key ON articles (fingerprint, sort_key, doc_key);
CREATE INDEX IF NOT EXISTS articles_by_short_id ON articles (fingerprint, short_id);
CREATE INDEX IF NOT EXISTS articles_by_path ON articles (fingerprint, path);
"""
ROW_COLUMNS = "doc_key, title, source, date, passages, topic, path, text_path, record_id, content_hash"
# Busy readers or a writer's commit block SQLite for milliseconds; wait for them rather than fail.
BUSY_SECONDS = 30.0
DATE_KEYS = ("date", "published", "pubdate")
TOPIC_KEYS = ("category", "topics", "topic", "section")


@dataclass(frozen=True)
class Manifest:
    fingerprint: str
    roots: tuple[str, ...]
    """Absolute paths ingested (directories and files), in the order first ingested."""
    articles: int
    passages: int
    generation: int
    state: str
    """``ok``, or ``writing`` while an ingest runs (still ``writing`` after a killed one)."""
    versions: dict[str, str]
    store: str
    """Where the passages live (the Chroma directory)."""

    @property
    def held_articles(self) -> bool:
        """Whether this index ever held articles, or was being given some (a first ingest killed early)."""
        return self.articles > 0 or bool(self.roots)


@dataclass(frozen=True)
class ArticleRow:
    """One article as the catalogue (and the chat page's library) has it."""

    key: str
    title: str
    source: str
    """Where it came from as a reader names it: its path relative to what was ingested, or ``FILE.jsonl#id`` with
    the JSONL file's name only (never a server path)."""
    date: str
    passages: int
    topic: str = ""
    path: str = ""
    """The file it came from (absolute): for the server's own use (reading it, removing an upload), never shown."""
    text_path: str = ""
    """The file that the article's offsets index (the original, or the text extracted from a page)."""
    record_id: str = ""
    content_hash: str = ""

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> ArticleRow:
        """The row of the article a passage's metadata (``rag.indexing.passage_node``) belongs to."""
        record_id = str(meta.get("record_id") or "")
        path = str(meta["path"])
        source = f"{Path(path).name}#{record_id}" if record_id else str(meta.get("article_id") or Path(path).name)
        date = next((str(meta[name]) for name in DATE_KEYS if meta.get(name)), "")
        topic = next((str(meta[name]) for name in TOPIC_KEYS if meta.get(name)), "")
        return cls(str(meta["doc_key"]), str(meta.get("title") or ""), source, date, int(meta["doc_passages"]),
                   topic, path, str(meta.get("text_path") or path), record_id, str(meta.get("doc_hash") or ""))

    @property
    def id(self) -> str:
        """A short opaque name for the article (the key is a server path, which pages never show)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]

    @property
    def sort_key(self) -> str:
        """The library lists by title in any case, then by key."""
        return self.title.casefold()

    @property
    def searchable(self) -> str:
        """What a library search looks in."""
        return f"{self.title} {self.source} {self.topic}".casefold()


def search_terms(query: str) -> tuple[str, list[str]]:
    """A library search as SQL over the catalogue: (a condition, its parameters) keeping the rows whose title,
    source or topic hold every word of ``query`` in any case (Python's casefold, which SQLite's ``lower`` lacks)."""
    words = query.casefold().split()
    return " AND ".join(["instr(searchable, ?) > 0"] * len(words)) or "1", words


class IndexManifest:
    def __init__(self, index_dir: Path) -> None:
        self.path = index_dir / MANIFEST_FILE

    def exists(self) -> bool:
        return self.path.is_file()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if writable(self.path.parent):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=BUSY_SECONDS)
            with closing(connection):
                connection.executescript(TABLES)
                _add_missing_columns(connection)
                connection.executescript(INDEXES)
                with connection:
                    yield connection
        else:
            # A read-only index: open without creating or journaling anything.
            connection = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS)
            with closing(connection):
                yield connection

    def read(self, fingerprint: str) -> Manifest | None:
        if not self.exists():
            return None
        with self._connect() as db:
            row = db.execute("SELECT fingerprint, roots, articles, passages, generation, state, versions, store "
                             "FROM manifest WHERE fingerprint = ?", (fingerprint,)).fetchone()
        if row is None:
            return None
        return Manifest(row[0], tuple(json.loads(row[1])), row[2], row[3], row[4], row[5], json.loads(row[6]), row[7])

    def fingerprints(self) -> list[str]:
        """Every index fingerprint recorded in this directory (other models or chunkings)."""
        if not self.exists():
            return []
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT fingerprint FROM manifest ORDER BY fingerprint")]

    def begin_write(self, fingerprint: str, roots: Iterable[str], store: str, versions: dict[str, str],
                    changes: bool = True) -> int:
        """Record that the store is about to change: new roots, state ``writing``, and (when the store's content
        will change) the next generation."""
        with self._connect() as db:
            row = db.execute("SELECT roots, generation FROM manifest WHERE fingerprint = ?", (fingerprint,)).fetchone()
            known = json.loads(row[0]) if row else []
            merged = known + [root for root in dict.fromkeys(roots) if root not in known]
            generation = (row[1] if row else 0) + changes
            # A new index's catalogue starts empty, and so current; an existing one keeps its version.
            db.execute(
                "INSERT INTO manifest (fingerprint, roots, articles, passages, generation, state, versions, store, "
                "catalogue) VALUES (?, ?, 0, 0, ?, 'writing', ?, ?, ?) ON CONFLICT (fingerprint) DO UPDATE SET "
                "roots = excluded.roots, generation = excluded.generation, state = 'writing', "
                "versions = excluded.versions, store = excluded.store",
                (fingerprint, json.dumps(merged), generation, json.dumps(versions), store, CATALOGUE_VERSION))
        return generation

    def finish_write(self, fingerprint: str, upserts: Iterable[ArticleRow], removed: Iterable[str],
                     passages: int) -> None:
        """Apply a write's changes to the catalogue, which then lists exactly the stored articles in the current
        format (the caller rewrote every row of an older catalogue), and record the counts; state back to ``ok``."""
        with self._connect() as db:
            db.executemany("DELETE FROM articles WHERE fingerprint = ? AND doc_key = ?",
                           [(fingerprint, key) for key in removed])
            db.executemany(
                "INSERT OR REPLACE INTO articles (fingerprint, doc_key, title, text_path, record_id, date, passages, "
                "content_hash, path, source, topic, short_id, sort_key, searchable) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(fingerprint, row.key, row.title, row.text_path, row.record_id, row.date, row.passages,
                  row.content_hash, row.path, row.source, row.topic, row.id, row.sort_key, row.searchable)
                 for row in upserts])
            articles = db.execute("SELECT count(*) FROM articles WHERE fingerprint = ?", (fingerprint,)).fetchone()[0]
            db.execute("UPDATE manifest SET articles = ?, passages = ?, state = 'ok', catalogue = ? "
                       "WHERE fingerprint = ?", (articles, passages, CATALOGUE_VERSION, fingerprint))

    def synced_stamp(self, fingerprint: str) -> str:
        """The server store's stamp (``PassageStore.stamp``) that the catalogue and counts were last brought up to
        date with ("" never)."""
        if not self.exists():
            return ""
        with self._connect() as db:
            if "stamp" not in _columns(db, "manifest"):  # a read-only index from before server stores
                return ""
            row = db.execute("SELECT stamp FROM manifest WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return str(row[0]) if row else ""

    def record_stamp(self, fingerprint: str, stamp: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE manifest SET stamp = ? WHERE fingerprint = ?", (stamp, fingerprint))

    def catalogue_current(self, fingerprint: str) -> bool:
        """Whether the catalogue rows are in the current format (``CATALOGUE_VERSION``); an index with no manifest
        yet has nothing to bring up to date."""
        if not self.exists():
            return True
        with self._connect() as db:
            if "catalogue" not in _columns(db, "manifest"):  # a read-only index from before catalogue versions
                return False
            row = db.execute("SELECT catalogue FROM manifest WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return row is None or row[0] >= CATALOGUE_VERSION

    def catalogued_keys(self, fingerprint: str) -> set[str]:
        with self._connect() as db:
            rows = db.execute("SELECT doc_key FROM articles WHERE fingerprint = ?", (fingerprint,))
            return {row[0] for row in rows}

    def forget_store(self, fingerprint: str) -> None:
        """Before a rebuild: the catalogue and counts go, the roots stay (they are what is rebuilt from)."""
        with self._connect() as db:
            db.execute("DELETE FROM articles WHERE fingerprint = ?", (fingerprint,))
            db.execute("UPDATE manifest SET articles = 0, passages = 0, generation = generation + 1, catalogue = ? "
                       "WHERE fingerprint = ?", (CATALOGUE_VERSION, fingerprint))

    def articles(self, fingerprint: str, offset: int = 0, limit: int = 50, query: str = "") -> list[ArticleRow]:
        """A page of the catalogue by title (any case), then key; ``query`` keeps the articles whose title, source
        or topic hold all its words, titles holding it as typed first ("depot 4049": Depot 4049 before Depot
        14049)."""
        if not self.exists():
            return []
        condition, words = search_terms(query)
        # Without a query the order is the index's (a page at offset 10,000 reads 10,000 index entries, sorts none).
        first, phrase = ("instr(sort_key, ?) = 0, ", [" ".join(words)]) if words else ("", [])
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {ROW_COLUMNS} FROM articles WHERE fingerprint = ? AND {condition} "
                f"ORDER BY {first}sort_key, doc_key LIMIT ? OFFSET ?",
                (fingerprint, *words, *phrase, max(limit, 0), max(offset, 0))).fetchall()
        return [ArticleRow(*row) for row in rows]

    def article_count(self, fingerprint: str, query: str = "") -> int:
        if not self.exists():
            return 0
        condition, words = search_terms(query)
        with self._connect() as db:
            return int(db.execute(f"SELECT count(*) FROM articles WHERE fingerprint = ? AND {condition}",
                                  (fingerprint, *words)).fetchone()[0])

    def article(self, fingerprint: str, ref: str) -> ArticleRow | None:
        """One article by its key or its ``ArticleRow.id``."""
        if not self.exists():
            return None
        with self._connect() as db:
            row = next((found for column in ("doc_key", "short_id") for found in db.execute(
                f"SELECT {ROW_COLUMNS} FROM articles WHERE fingerprint = ? AND {column} = ? LIMIT 1",
                (fingerprint, ref))), None)
        return ArticleRow(*row) if row else None

    def articles_of_file(self, fingerprint: str, path: str) -> list[ArticleRow]:
        """The articles that came from the file ``path`` (one, or a JSONL file's records)."""
        if not self.exists():
            return []
        with self._connect() as db:
            rows = db.execute(f"SELECT {ROW_COLUMNS} FROM articles WHERE fingerprint = ? AND path = ? ORDER BY doc_key",
                              (fingerprint, path)).fetchall()
        return [ArticleRow(*row) for row in rows]


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Give a manifest file made before ``ADDED_COLUMNS`` their columns (in one transaction: two processes may open
    it at once)."""
    missing = [(table, column) for table, columns in ADDED_COLUMNS.items() for column in columns
               if column.split()[0] not in _columns(db, table)]
    if not missing:
        return
    with db:
        db.execute("BEGIN IMMEDIATE")
        for table, column in missing:
            if column.split()[0] not in _columns(db, table):  # another process may have added it meanwhile
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
