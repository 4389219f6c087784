"""Passages and their sentence vectors in Chroma, one pair of collections per index fingerprint.

Passages go through llama-index's ``ChromaVectorStore`` (so llama-index retrievers read them back as nodes); the
sentence vectors of each passage live in a sibling collection, keyed by passage id. Every passage carries its
article's content hash and passage count, so the store itself says which articles are complete: an article whose
stored passages do not add up (a run killed halfway) is simply ingested again.

Every read is paged (Chroma 1.5.9 fails a ``get()`` of 32,767 items or more with "too many SQL variables"), and
every write holds the store lock (``rag.locking``). Opening checks what can be checked before Chroma's native code
reads the files, and any failure to open is a ``StoreDamaged`` that names the index and the command that rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding import Vectors
from rag.locking import store_lock, writable
from rag.manifest import IndexManifest

# Chroma caps one call's batch size (5,461 here); stay well under it. Reads are paged by the same amount.
WRITE_BATCH = 2000
CHROMA_DIR = "chroma"
CHROMA_DB = "chroma.sqlite3"
SQLITE_MAGIC = b"SQLite format 3\x00"


class StoreDamaged(RuntimeError):
    """The Chroma store of an index cannot be opened or read; the message says how to rebuild it."""

    def __init__(self, index_dir: Path, problem: str) -> None:
        super().__init__(f"the index store in {index_dir} is damaged ({problem}); rebuild it from the articles it "
                         f"was built from with: {rebuild_command(index_dir)}")
        self.problem = problem


def rebuild_command(index_dir: Path) -> str:
    return f"python -m rag.ingest --rebuild --index {index_dir}"


def store_file_problem(index_dir: Path) -> str | None:
    """What is wrong with the store's database file that would make Chroma fail or crash, checked without it."""
    database = index_dir / CHROMA_DIR / CHROMA_DB
    if not database.is_file():
        return f"{database} is missing"
    with open(database, "rb") as handle:
        header = handle.read(len(SQLITE_MAGIC))
    if not header:
        return f"{database} is empty"
    if header != SQLITE_MAGIC:
        return f"{database} is not an SQLite database"
    return None


def open_client(index_dir: Path) -> Any:
    """The one place a Chroma client is made for an index directory.

    Chroma rewrites its HNSW files on first use even when only reading, so an index the process may not write is
    opened from a private copy (the copy goes when the process ends).
    """
    import chromadb

    path = index_dir / CHROMA_DIR
    if path.is_dir() and not writable(path):
        copy = Path(tempfile.mkdtemp(prefix="rag-readonly-")) / CHROMA_DIR
        shutil.copytree(path, copy)
        _remove_at_exit(copy.parent)
        path = copy
    return chromadb.PersistentClient(path=str(path), settings=chromadb.Settings(anonymized_telemetry=False))


def _remove_at_exit(directory: Path) -> None:
    import atexit

    atexit.register(shutil.rmtree, directory, True)


@dataclass(frozen=True)
class StoredDocument:
    key: str
    path: str
    """Absolute path of the file the article came from."""
    content_hash: str
    complete: bool
    """All passages of exactly one version of the article are stored (not a run killed halfway)."""
    title: str = ""
    text_path: str = ""
    record_id: str = ""
    date: str = ""
    passages: int = 0
    origin: str = ""
    """The path that was ingested to get it (a directory or the file itself)."""

    def under(self, root: str) -> bool:
        """Whether the article came from ``root`` (a file) or from a file below it (a directory)."""
        return self.path == root or self.path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class StoredSentence:
    passage_id: str
    start: int
    end: int
    vector: Vectors


def passage_id(doc_key: str, content_hash: str, start: int, end: int) -> str:
    """Content-derived id: the same passage of the same article text always gets the same id."""
    return hashlib.sha256(f"{doc_key}\0{content_hash}\0{start}:{end}".encode()).hexdigest()[:32]


def sentence_id(passage: str, start: int, end: int) -> str:
    return f"{passage}:{start}:{end}"


class PassageStore:
    def __init__(self, index_dir: Path, fingerprint: str) -> None:
        from llama_index.vector_stores.chroma import ChromaVectorStore

        self.index_dir, self.fingerprint = index_dir, fingerprint
        self.manifest = IndexManifest(index_dir)
        if (index_dir / CHROMA_DIR).exists():
            problem = store_file_problem(index_dir)
            if problem:
                raise StoreDamaged(index_dir, problem)
        index_dir.mkdir(parents=True, exist_ok=True)
        space = {"hnsw:space": "cosine"}
        try:
            # Chroma's first touch of a collection rewrites its files: one process at a time (rag.locking).
            with store_lock(index_dir):
                self.client = open_client(index_dir)
                # embedding_function=None on create and on get: Chroma must never embed text (it would download).
                self.passages = self.client.get_or_create_collection(
                    f"passages-{fingerprint}", embedding_function=None, metadata=space
                )
                self.sentences = self.client.get_or_create_collection(
                    f"sentences-{fingerprint}", embedding_function=None, metadata=space
                )
                self.passages.count()
                self.sentences.count()
        except Exception as error:
            raise StoreDamaged(index_dir, f"{type(error).__name__}: {error}") from error
        self.vector_store = ChromaVectorStore(chroma_collection=self.passages)

    def count(self) -> int:
        return int(self.passages.count())

    def documents(self) -> dict[str, StoredDocument]:
        """Every stored article, with whether all of its passages (of one version) made it in."""
        metadatas = [dict(meta) for page in paged_get(self.passages, ["metadatas"]) for meta in page["metadatas"] or []]
        stored = Counter((str(meta["doc_key"]), str(meta["doc_hash"])) for meta in metadatas)
        versions = Counter(key for key, _ in stored)
        documents: dict[str, StoredDocument] = {}
        for meta in metadatas:
            key, content_hash = str(meta["doc_key"]), str(meta["doc_hash"])
            complete = versions[key] == 1 and stored[key, content_hash] == int(meta["doc_passages"])
            documents[key] = StoredDocument(
                key, str(meta["path"]), content_hash, complete, str(meta.get("title") or ""),
                str(meta.get("text_path") or meta["path"]), str(meta.get("record_id") or ""), article_date(meta),
                int(meta["doc_passages"]), str(meta.get("origin") or ""))
        return documents

    def add(self, nodes: Sequence[Any], sentences: Sequence[StoredSentence]) -> None:
        """Sentences first, passages last: a passage present means its sentences are too."""
        for batch in _batches(sentences):
            with store_lock(self.index_dir):
                self.sentences.upsert(
                    ids=[sentence_id(s.passage_id, s.start, s.end) for s in batch],
                    embeddings=np.vstack([s.vector for s in batch]),
                    metadatas=[{"passage_id": s.passage_id, "start": s.start, "end": s.end} for s in batch],
                )
        for batch in _batches(nodes):
            with store_lock(self.index_dir):
                self.passages.upsert(
                    ids=[node.node_id for node in batch],
                    embeddings=[node.embedding for node in batch],
                    metadatas=[_node_metadata(node) for node in batch],
                    documents=[node.text for node in batch],
                )

    def delete_document(self, doc_key: str, keep: Iterable[str] = ()) -> None:
        """Remove an article's passages (except the ids in ``keep``) and their sentences."""
        keep_ids = set(keep)
        found = paged_get(self.passages, [], where={"doc_key": doc_key})
        ids = [i for page in found for i in page["ids"] if i not in keep_ids]
        for batch in _batches(ids):
            with store_lock(self.index_dir):
                self.sentences.delete(where=_any_passage(batch))
                self.passages.delete(ids=list(batch))

    def sentences_of(self, passage_ids: Sequence[str]) -> dict[str, list[StoredSentence]]:
        """Sentence spans and vectors of the given passages, in text order."""
        by_passage: dict[str, list[StoredSentence]] = {pid: [] for pid in passage_ids}
        for batch in _batches(passage_ids):
            for found in paged_get(self.sentences, ["metadatas", "embeddings"], where=_any_passage(batch)):
                vectors = found["embeddings"] if found["embeddings"] is not None else []
                for meta, vector in zip(found["metadatas"] or [], vectors, strict=True):
                    pid = str(meta["passage_id"])
                    start, end = int(str(meta["start"])), int(str(meta["end"]))
                    by_passage[pid].append(StoredSentence(pid, start, end, np.asarray(vector, np.float32)))
        for sentences in by_passage.values():
            sentences.sort(key=lambda sentence: sentence.start)
        return by_passage

    def all_nodes(self) -> list[Any]:
        """Every passage as a llama-index node (for building the lexical index), read page by page."""
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        return [metadata_dict_to_node(dict(meta), text=text)
                for page in paged_get(self.passages, ["metadatas", "documents"])
                for meta, text in zip(page["metadatas"] or [], page["documents"] or [], strict=True)]

    def passage_ids(self) -> list[str]:
        return [i for page in paged_get(self.passages, []) for i in page["ids"]]

    # -----------------------------------------------------------------------------------------------------------------
    # Article library (the chat UI's listing), with ArticleRow at the end of the module. The count of all articles
    # comes from the catalogue (rag.manifest); the rows (with the source file and topic the catalogue does not keep)
    # from one paged read of every passage's metadata, cached until the passage count changes or
    # ``forget_articles`` is called.

    def articles(self, offset: int = 0, limit: int = 50, query: str = "") -> list[ArticleRow]:
        """Articles by title (then key), ``limit`` of them from ``offset``; ``query``: titles or sources holding
        all its words."""
        return self._matching_articles(query)[offset : offset + limit]

    def article_count(self, query: str = "") -> int:
        # All of them: from the catalogue, without reading the store (the index's stats at start-up).
        if not query:
            return self.manifest.article_count(self.fingerprint)
        return len(self._matching_articles(query))

    def article(self, key: str) -> ArticleRow | None:
        """One article by its key or its ``ArticleRow.id``."""
        rows = self._article_rows()[1]
        return rows.get(key) or next((row for row in rows.values() if row.id == key), None)

    def forget_articles(self) -> None:
        self.__dict__.pop("_listing", None)
        self.__dict__.pop("_last_search", None)

    def _matching_articles(self, query: str) -> list[ArticleRow]:
        count, rows = self._article_rows()
        words = query.casefold().split()
        if not words:
            return list(rows.values())
        # A page asks for the count and then the rows of one search: the last search's result is kept.
        last = self.__dict__.get("_last_search")
        if last is None or last[:2] != (count, words):
            matching = [row for row in rows.values() if all(word in row.searchable for word in words)]
            # Titles holding the query as typed come first ("depot 4049": Depot 4049 before Depot 14049).
            phrase = " ".join(words)
            matching.sort(key=lambda row: phrase not in row.title.casefold())
            last = self.__dict__["_last_search"] = (count, words, matching)
        return list(last[2])

    def _article_rows(self) -> tuple[int, dict[str, ArticleRow]]:
        count = self.count()
        cached: tuple[int, dict[str, ArticleRow]] | None = self.__dict__.get("_listing")
        if cached is None or cached[0] != count:
            rows: dict[str, ArticleRow] = {}
            for meta in (meta for page in paged_get(self.passages, ["metadatas"]) for meta in page["metadatas"] or []):
                rows.setdefault(str(meta["doc_key"]), ArticleRow.from_metadata(meta))
            ordered = dict(sorted(rows.items(), key=lambda item: (item[1].title.casefold(), item[0])))
            cached = (count, ordered)
            self.__dict__["_listing"] = cached
        return cached



def article_date(metadata: dict[str, Any]) -> str:
    """The article's date as its record gave it (JSONL ``date`` or ``published``), else empty."""
    return next((str(metadata[name]) for name in ("date", "published") if metadata.get(name)), "")


def paged_get(collection: Any, include: list[str], where: Any = None) -> Iterable[Any]:
    """``collection.get`` page by page: Chroma fails one ``get`` of 32,767 items or more."""
    offset = 0
    while True:
        page = collection.get(where=where, include=include, limit=WRITE_BATCH, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])


def _any_passage(passage_ids: Sequence[str]) -> Any:
    """A Chroma filter for sentences of any of these passages."""
    return {"passage_id": {"$in": list(passage_ids)}}


def _node_metadata(node: Any) -> dict[str, Any]:
    from llama_index.core.vector_stores.utils import node_to_metadata_dict

    flat = node_to_metadata_dict(node, remove_text=True, flat_metadata=True)
    return {key: "" if value is None else value for key, value in flat.items()}


def _batches(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), WRITE_BATCH):
        yield items[start : start + WRITE_BATCH]



# Article library rows (see PassageStore.articles).
DATE_KEYS = ("date", "published", "pubdate")
TOPIC_KEYS = ("category", "topics", "topic", "section")


@dataclass(frozen=True)
class ArticleRow:
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
    record_id: str = ""

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> ArticleRow:
        record_id = str(meta.get("record_id") or "")
        path = str(meta["path"])
        source = f"{Path(path).name}#{record_id}" if record_id else str(meta.get("article_id") or Path(path).name)
        date = next((str(meta[name]) for name in DATE_KEYS if meta.get(name)), "")
        topic = next((str(meta[name]) for name in TOPIC_KEYS if meta.get(name)), "")
        return cls(str(meta["doc_key"]), str(meta.get("title") or ""), source, date, int(meta["doc_passages"]),
                   topic, path, str(meta.get("text_path") or path), record_id)

    @property
    def id(self) -> str:
        """A short opaque name for the article (the key is a server path, which pages never show)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]

    @cached_property
    def searchable(self) -> str:
        return f"{self.title} {self.source} {self.topic}".casefold()
