"""What an index holds, readable without opening the store: a manifest per index fingerprint and a catalogue of
its articles, in one small SQLite file beside the Chroma database (``index.sqlite3``).

The manifest records the roots ingested (so a damaged store can be rebuilt from them, and an index that held
articles is never mistaken for "no index yet"), the article and passage counts, the versions that wrote it, where
the store lives, and a generation number bumped (and committed) before every change to the store: the lexical index
is stamped with the generation it was built at, so whether it is current is known without reading the store. The
catalogue has one row per article, for listing thousands of articles page by page.

Every write happens under the index's writer lock (``rag.locking``); SQLite's own locking covers readers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from rag.locking import writable

MANIFEST_FILE = "index.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS manifest (
    fingerprint TEXT PRIMARY KEY, roots TEXT NOT NULL, articles INTEGER NOT NULL, passages INTEGER NOT NULL,
    generation INTEGER NOT NULL, state TEXT NOT NULL, versions TEXT NOT NULL, store TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    fingerprint TEXT NOT NULL, doc_key TEXT NOT NULL, title TEXT NOT NULL, text_path TEXT NOT NULL,
    record_id TEXT NOT NULL, date TEXT NOT NULL, passages INTEGER NOT NULL, content_hash TEXT NOT NULL,
    PRIMARY KEY (fingerprint, doc_key));
CREATE INDEX IF NOT EXISTS articles_by_title ON articles (fingerprint, title COLLATE NOCASE);
"""
# Busy readers or a writer's commit block SQLite for milliseconds; wait for them rather than fail.
BUSY_SECONDS = 30.0


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
class CatalogueEntry:
    doc_key: str
    title: str
    text_path: str
    """The file that the article's offsets index (the original, or the text extracted from a page)."""
    record_id: str
    date: str
    passages: int
    content_hash: str


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
                connection.executescript(SCHEMA)
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
            db.execute(
                "INSERT INTO manifest VALUES (?, ?, 0, 0, ?, 'writing', ?, ?) ON CONFLICT (fingerprint) DO UPDATE SET "
                "roots = excluded.roots, generation = excluded.generation, state = 'writing', "
                "versions = excluded.versions, store = excluded.store",
                (fingerprint, json.dumps(merged), generation, json.dumps(versions), store))
        return generation

    def finish_write(self, fingerprint: str, upserts: Iterable[CatalogueEntry], removed: Iterable[str],
                     passages: int) -> None:
        """Apply an ingest's changes to the catalogue and record the counts; state back to ``ok``."""
        with self._connect() as db:
            db.executemany("DELETE FROM articles WHERE fingerprint = ? AND doc_key = ?",
                           [(fingerprint, key) for key in removed])
            db.executemany("INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [(fingerprint, e.doc_key, e.title, e.text_path, e.record_id, e.date, e.passages,
                             e.content_hash) for e in upserts])
            articles = db.execute("SELECT count(*) FROM articles WHERE fingerprint = ?", (fingerprint,)).fetchone()[0]
            db.execute("UPDATE manifest SET articles = ?, passages = ?, state = 'ok' WHERE fingerprint = ?",
                       (articles, passages, fingerprint))

    def catalogued_keys(self, fingerprint: str) -> set[str]:
        with self._connect() as db:
            rows = db.execute("SELECT doc_key FROM articles WHERE fingerprint = ?", (fingerprint,))
            return {row[0] for row in rows}

    def forget_store(self, fingerprint: str) -> None:
        """Before a rebuild: the catalogue and counts go, the roots stay (they are what is rebuilt from)."""
        with self._connect() as db:
            db.execute("DELETE FROM articles WHERE fingerprint = ?", (fingerprint,))
            db.execute("UPDATE manifest SET articles = 0, passages = 0, generation = generation + 1 "
                       "WHERE fingerprint = ?", (fingerprint,))

    def articles(self, fingerprint: str, offset: int = 0, limit: int = 50, query: str = "") -> list[CatalogueEntry]:
        """A page of the catalogue, by title; ``query`` keeps titles or sources containing it (any case)."""
        if not self.exists():
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT doc_key, title, text_path, record_id, date, passages, content_hash FROM articles "
                "WHERE fingerprint = ? AND (? = '' OR instr(lower(title), lower(?)) OR instr(lower(doc_key), "
                "lower(?))) ORDER BY title COLLATE NOCASE, doc_key LIMIT ? OFFSET ?",
                (fingerprint, query, query, query, max(limit, 0), max(offset, 0))).fetchall()
        return [CatalogueEntry(*row) for row in rows]

    def article_count(self, fingerprint: str, query: str = "") -> int:
        if not self.exists():
            return 0
        with self._connect() as db:
            return int(db.execute(
                "SELECT count(*) FROM articles WHERE fingerprint = ? AND (? = '' OR instr(lower(title), lower(?)) "
                "OR instr(lower(doc_key), lower(?)))", (fingerprint, query, query, query)).fetchone()[0])
