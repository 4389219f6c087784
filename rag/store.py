"""Passages and their sentence vectors in Chroma, one pair of collections per index fingerprint.

Passages go through llama-index's ``ChromaVectorStore`` (so llama-index retrievers read them back as nodes); the
sentence vectors of each passage live in a sibling collection, keyed by passage id. Every passage carries its
article's content hash and passage count, so the store itself says which articles are complete: an article whose
stored passages do not add up (a run killed halfway) is simply ingested again.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding import Vectors

# Chroma caps one call's batch size (5,461 here); stay well under it.
WRITE_BATCH = 2000


@dataclass(frozen=True)
class StoredDocument:
    key: str
    path: str
    """Absolute path of the file the article came from."""
    content_hash: str
    complete: bool
    """All passages of exactly one version of the article are stored (not a run killed halfway)."""

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
        import chromadb
        from llama_index.vector_stores.chroma import ChromaVectorStore

        index_dir.mkdir(parents=True, exist_ok=True)
        self.client = chromadb.PersistentClient(
            path=str(index_dir / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False)
        )
        space = {"hnsw:space": "cosine"}
        # embedding_function=None on create and on get: Chroma must never embed text itself (it would download).
        self.passages = self.client.get_or_create_collection(
            f"passages-{fingerprint}", embedding_function=None, metadata=space
        )
        self.sentences = self.client.get_or_create_collection(
            f"sentences-{fingerprint}", embedding_function=None, metadata=space
        )
        self.vector_store = ChromaVectorStore(chroma_collection=self.passages)

    def count(self) -> int:
        return int(self.passages.count())

    def documents(self) -> dict[str, StoredDocument]:
        """Every stored article, with whether all of its passages (of one version) made it in."""
        metadatas = self._all_metadatas()
        stored = Counter((str(meta["doc_key"]), str(meta["doc_hash"])) for meta in metadatas)
        versions = Counter(key for key, _ in stored)
        documents: dict[str, StoredDocument] = {}
        for meta in metadatas:
            key, content_hash = str(meta["doc_key"]), str(meta["doc_hash"])
            complete = versions[key] == 1 and stored[key, content_hash] == int(meta["doc_passages"])
            documents[key] = StoredDocument(key, str(meta["path"]), content_hash, complete)
        return documents

    def add(self, nodes: Sequence[Any], sentences: Sequence[StoredSentence]) -> None:
        """Sentences first, passages last: a passage present means its sentences are too."""
        for batch in _batches(sentences):
            self.sentences.upsert(
                ids=[sentence_id(s.passage_id, s.start, s.end) for s in batch],
                embeddings=np.vstack([s.vector for s in batch]),
                metadatas=[{"passage_id": s.passage_id, "start": s.start, "end": s.end} for s in batch],
            )
        for batch in _batches(nodes):
            self.passages.upsert(
                ids=[node.node_id for node in batch],
                embeddings=[node.embedding for node in batch],
                metadatas=[_node_metadata(node) for node in batch],
                documents=[node.text for node in batch],
            )

    def delete_document(self, doc_key: str, keep: Iterable[str] = ()) -> None:
        """Remove an article's passages (except the ids in ``keep``) and their sentences."""
        keep_ids = set(keep)
        ids = [i for i in self.passages.get(where={"doc_key": doc_key}, include=[])["ids"] if i not in keep_ids]
        for batch in _batches(ids):
            self.sentences.delete(where=_any_passage(batch))
            self.passages.delete(ids=list(batch))

    def sentences_of(self, passage_ids: Sequence[str]) -> dict[str, list[StoredSentence]]:
        """Sentence spans and vectors of the given passages, in text order."""
        if not passage_ids:
            return {}
        found = self.sentences.get(
            where=_any_passage(passage_ids), include=["metadatas", "embeddings"]
        )
        vectors = found["embeddings"] if found["embeddings"] is not None else []
        by_passage: dict[str, list[StoredSentence]] = {pid: [] for pid in passage_ids}
        for meta, vector in zip(found["metadatas"] or [], vectors, strict=True):
            pid = str(meta["passage_id"])
            start, end = int(meta["start"]), int(meta["end"])  # type: ignore[arg-type]
            sentence = StoredSentence(pid, start, end, np.asarray(vector, np.float32))
            by_passage[pid].append(sentence)
        for sentences in by_passage.values():
            sentences.sort(key=lambda sentence: sentence.start)
        return by_passage

    def all_nodes(self) -> list[Any]:
        """Every passage as a llama-index node (for building the lexical index)."""
        return list(self.vector_store.get_nodes(None))

    def passage_ids(self) -> list[str]:
        return list(self.passages.get(include=[])["ids"])

    def _all_metadatas(self) -> list[dict[str, Any]]:
        metadatas: list[dict[str, Any]] = []
        total = self.count()
        for offset in range(0, total, WRITE_BATCH):
            page = self.passages.get(include=["metadatas"], limit=WRITE_BATCH, offset=offset)
            metadatas.extend(dict(meta) for meta in page["metadatas"] or [])
        return metadatas

    # -----------------------------------------------------------------------------------------------------------------
    # Article library (the chat UI's listing). One block, with ArticleRow at the end of the module: the article
    # catalogue (a table kept by ingest) replaces these bodies behind the same names. Here the rows come from one
    # paged read of every passage's metadata, cached until the passage count changes or ``forget_articles`` is called.

    def articles(self, offset: int = 0, limit: int = 50, query: str = "") -> list[ArticleRow]:
        """Articles by title (then key), ``limit`` of them from ``offset``; ``query``: titles or sources holding
        all its words."""
        return self._matching_articles(query)[offset : offset + limit]

    def article_count(self, query: str = "") -> int:
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
            last = self.__dict__["_last_search"] = (count, words, matching)
        return list(last[2])

    def _article_rows(self) -> tuple[int, dict[str, ArticleRow]]:
        count = self.count()
        cached: tuple[int, dict[str, ArticleRow]] | None = self.__dict__.get("_listing")
        if cached is None or cached[0] != count:
            rows: dict[str, ArticleRow] = {}
            for meta in self._all_metadatas():
                rows.setdefault(str(meta["doc_key"]), ArticleRow.from_metadata(meta))
            ordered = dict(sorted(rows.items(), key=lambda item: (item[1].title.casefold(), item[0])))
            cached = (count, ordered)
            self.__dict__["_listing"] = cached
        return cached


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
