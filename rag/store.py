"""Passages and their sentence vectors in Chroma, one collection per index fingerprint.

Passages go through llama-index's ``ChromaVectorStore`` (so llama-index retrievers read them back as nodes). Each
passage record also carries its sentences' spans and vectors (float16, in two metadata strings beside the node's
own): they are only ever read by passage id, so they stay out of any vector index, and a passage and its sentences
are written and deleted together. (In a collection of their own they were a second vector index of four times the
passages' size, which Chroma loads on the first touch: 0.44-0.51 s of every cold start at 19,043 articles.) Every
passage carries its article's content hash and passage count, so the store itself says which articles are complete:
an article whose stored passages do not add up (a run killed halfway) is simply ingested again.

Every read is paged (Chroma 1.5.9 fails a ``get()`` of 32,767 items or more with "too many SQL variables"), and
every write holds the store lock (``rag.locking``). Opening checks what can be checked before Chroma's native code
reads the files, and any failure to open is a ``StoreDamaged`` that names the index and the command that rebuilds it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from rag.embedding import Vectors
from rag.locking import store_lock, writable
from rag.manifest import ArticleRow, IndexManifest
from rag.settings import Settings

# Chroma caps one call's batch size (5,461 here); stay well under it. Reads are paged by the same amount.
WRITE_BATCH = 2000
CHROMA_DIR = "chroma"
# The server store's version stamp, in the passage collection's metadata (``PassageStore.stamp``).
STAMP_KEY = "rag_stamp"
CHROMA_DB = "chroma.sqlite3"
SQLITE_MAGIC = b"SQLite format 3\x00"
# A passage record's sentences: "start:end start:end ..." and their vectors, float16 bytes in base64, in that order.
SENTENCE_SPANS = "sentence_spans"
SENTENCE_VECTORS = "sentence_vectors"
SENTENCE_FIELDS = (SENTENCE_SPANS, SENTENCE_VECTORS)


class CatalogueOutdated(RuntimeError):
    """The article catalogue predates the columns the library reads; the message says what fills it."""


class StoreUnreachable(RuntimeError):
    """The Chroma server named by ``chroma_url`` does not answer."""


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


def open_client(index_dir: Path, chroma_url: str = "") -> Any:
    """The one place a Chroma client is made: for the server at ``chroma_url``, else for the embedded store in
    ``index_dir``.

    Chroma rewrites its HNSW files on first use even when only reading, so an embedded index the process may not
    write is opened from a private copy (the copy goes when the process ends).
    """
    import chromadb

    if chroma_url:
        url = urlsplit(chroma_url)
        https = url.scheme.lower() == "https"
        try:
            return chromadb.HttpClient(host=url.hostname or "", port=url.port or (443 if https else 80), ssl=https,
                                       settings=chromadb.Settings(anonymized_telemetry=False))
        except Exception as error:  # Chroma says "Could not connect..." as a ValueError, other failures otherwise
            raise StoreUnreachable(f"cannot reach the Chroma server at {chroma_url} ({error}); start one with: "
                                   "chroma run --path DIR --host HOST --port PORT") from None
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


def open_store(settings: Settings) -> PassageStore:
    """The store the settings name: on the Chroma server ``chroma_url``, else embedded in ``index_dir``."""
    return PassageStore(settings.index_dir, settings.fingerprint, settings.chroma_url)


@dataclass(frozen=True)
class StoredDocument:
    key: str
    path: str
    """Absolute path of the file the article came from."""
    content_hash: str
    complete: bool
    """All passages of exactly one version of the article are stored (not a run killed halfway)."""
    row: ArticleRow
    """The article as the catalogue lists it."""
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


def sentence_fields(sentences: Sequence[StoredSentence]) -> dict[str, str]:
    """A passage's sentences as the two metadata strings its record carries (``sentences_from_fields`` reads them).

    float16 halves what every read of all passages' metadata (ingest, the lexical index's build) carries; it moves
    a cosine between unit vectors by about 1e-4."""
    vectors = np.vstack([s.vector for s in sentences]).astype("<f2") if sentences else np.zeros(0, "<f2")
    return {SENTENCE_SPANS: " ".join(f"{s.start}:{s.end}" for s in sentences),
            SENTENCE_VECTORS: base64.b64encode(vectors.tobytes()).decode("ascii")}


def sentences_from_fields(passage: str, metadata: Any) -> list[StoredSentence]:
    spans = [tuple(int(n) for n in span.split(":")) for span in str(metadata.get(SENTENCE_SPANS) or "").split()]
    if not spans:
        return []
    vectors = np.frombuffer(base64.b64decode(str(metadata[SENTENCE_VECTORS])), "<f2").reshape(len(spans), -1)
    return [StoredSentence(passage, start, end, vector.astype(np.float32))
            for (start, end), vector in zip(spans, vectors, strict=True)]


class PassageStore:
    def __init__(self, index_dir: Path, fingerprint: str, chroma_url: str = "") -> None:
        from llama_index.vector_stores.chroma import ChromaVectorStore

        self.index_dir, self.fingerprint, self.chroma_url = index_dir, fingerprint, chroma_url
        self.manifest = IndexManifest(index_dir)
        if not chroma_url and (index_dir / CHROMA_DIR).exists():
            problem = store_file_problem(index_dir)
            if problem:
                raise StoreDamaged(index_dir, problem)
        index_dir.mkdir(parents=True, exist_ok=True)
        space = {"hnsw:space": "cosine"}
        try:
            # Chroma's first touch of a collection rewrites its files: one process at a time (rag.locking).
            with store_lock(index_dir):
                self.client = open_client(index_dir, chroma_url)
                # embedding_function=None on create and on get: Chroma must never embed text (it would download).
                self.passages = self.client.get_or_create_collection(
                    f"passages-{fingerprint}", embedding_function=None, metadata=space
                )
                self.passages.count()
        except StoreUnreachable:
            raise
        except Exception as error:
            if chroma_url:
                raise StoreUnreachable(f"the Chroma server at {chroma_url} failed: {type(error).__name__}: "
                                       f"{error}") from error
            raise StoreDamaged(index_dir, f"{type(error).__name__}: {error}") from error
        self.vector_store = ChromaVectorStore(chroma_collection=self.passages)
        # A server caps a call's batch (5,461 for chromadb 1.5.9's); the embedded store's cap is the same or more.
        self.batch = min(WRITE_BATCH, int(self.client.get_max_batch_size())) if chroma_url else WRITE_BATCH

    @property
    def shared(self) -> bool:
        """The passages are on a server that other clients may change."""
        return bool(self.chroma_url)

    def stamp(self) -> str:
        """The server store's version stamp, changed by every write of any client (before and after it); "" for
        the embedded store, whose writes are counted by the manifest's generation instead."""
        if not self.shared:
            return ""
        collection = self.client.get_collection(self.passages.name, embedding_function=None)
        return str((collection.metadata or {}).get(STAMP_KEY, ""))

    def behind(self) -> str | None:
        """For a server store another client changed since this client's catalogue and counts were brought up to
        date: its current stamp (to record once they are); else None."""
        if not self.shared:
            return None
        stamp = self.stamp()
        return stamp if stamp != self.manifest.synced_stamp(self.fingerprint) else None

    @property
    def location(self) -> str:
        """Where the passages live, as the manifest records it: the server's URL or the embedded store's folder."""
        return self.chroma_url or str(self.index_dir / CHROMA_DIR)

    def restamp(self) -> str:
        """Give the server store a new version stamp (a writer does before and after changing it); returns it."""
        stamp = uuid.uuid4().hex
        if self.shared:
            # The metadata is replaced whole; the distance function lives in the collection's configuration.
            self.passages.modify(metadata={STAMP_KEY: stamp})
        return stamp

    def count(self) -> int:
        return int(self.passages.count())

    def documents(self) -> dict[str, StoredDocument]:
        """Every stored article, with whether all of its passages (of one version) made it in. Read page by page,
        keeping one passage's metadata per article: the store may hold far more passages than memory should."""
        stored: Counter[tuple[str, str]] = Counter()
        latest: dict[str, Any] = {}
        for page in paged_get(self.passages, ["metadatas"]):
            for meta in page["metadatas"] or []:
                key = str(meta["doc_key"])
                stored[key, str(meta["doc_hash"])] += 1
                # One passage's metadata per article is kept: without its sentence strings (about 4 KB a passage).
                latest[key] = {name: value for name, value in meta.items() if name not in SENTENCE_FIELDS}
        versions = Counter(key for key, _ in stored)
        documents: dict[str, StoredDocument] = {}
        for key, meta in latest.items():
            content_hash = str(meta["doc_hash"])
            complete = versions[key] == 1 and stored[key, content_hash] == int(meta["doc_passages"])
            documents[key] = StoredDocument(key, str(meta["path"]), content_hash, complete,
                                            ArticleRow.from_metadata(meta), str(meta.get("origin") or ""))
        return documents

    def add(self, nodes: Sequence[Any], sentences: Sequence[Sequence[StoredSentence]]) -> None:
        """Store passages (llama-index nodes with their embeddings), each with its sentences (``sentences[i]`` are
        ``nodes[i]``'s)."""
        rows = list(zip(nodes, sentences, strict=True))
        for batch in _batches(rows, self.batch):
            with store_lock(self.index_dir):
                self.passages.upsert(
                    ids=[node.node_id for node, _ in batch],
                    embeddings=[node.embedding for node, _ in batch],
                    metadatas=[_node_metadata(node) | sentence_fields(stored) for node, stored in batch],
                    documents=[node.text for node, _ in batch],
                )

    def delete_document(self, doc_key: str, keep: Iterable[str] = ()) -> list[str]:
        """Remove an article's passages (except the ids in ``keep``); returns the passage ids removed."""
        keep_ids = set(keep)
        found = paged_get(self.passages, [], where={"doc_key": doc_key})
        ids = [i for page in found for i in page["ids"] if i not in keep_ids]
        for batch in _batches(ids, self.batch):
            with store_lock(self.index_dir):
                self.passages.delete(ids=list(batch))
        return ids

    def sentences_of(self, passage_ids: Sequence[str]) -> dict[str, list[StoredSentence]]:
        """Sentence spans and vectors of the given passages, in text order."""
        by_passage: dict[str, list[StoredSentence]] = {pid: [] for pid in passage_ids}
        for batch in _batches(passage_ids):
            found = self.passages.get(ids=list(batch), include=["metadatas"])
            for pid, meta in zip(found["ids"], found["metadatas"] or [], strict=True):
                by_passage[pid] = sentences_from_fields(pid, meta)
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
    # Article library (the chat UI's listing): served from the catalogue (rag.manifest), never from the passages.

    def articles(self, offset: int = 0, limit: int = 50, query: str = "") -> list[ArticleRow]:
        """Articles by title (then key), ``limit`` of them from ``offset``; ``query``: titles, sources or topics
        holding all its words."""
        return self.catalogue().articles(self.fingerprint, offset, limit, query)

    def article_count(self, query: str = "") -> int:
        # All of them: any catalogue has the count (the index's stats at start-up, before an older one is filled).
        if not query:
            return self.manifest.article_count(self.fingerprint)
        return self.catalogue().article_count(self.fingerprint, query)

    def article(self, ref: str) -> ArticleRow | None:
        """One article by its key or its ``ArticleRow.id``."""
        return self.catalogue().article(self.fingerprint, ref)

    def catalogue(self) -> IndexManifest:
        """The catalogue, if its rows are in the current format (``CatalogueOutdated`` says what fills it)."""
        if self.manifest.catalogue_current(self.fingerprint):
            return self.manifest
        if not writable(self.index_dir):
            raise CatalogueOutdated(
                f"the article catalogue of {self.index_dir} is from an earlier version and the index is read-only: "
                f"ask one question where it can be written (python -m rag.ask QUESTION --index {self.index_dir}) "
                "to fill it")
        raise CatalogueOutdated(
            f"the article catalogue of {self.index_dir} is from an earlier version: restart the app, or ask one "
            f"question (python -m rag.ask QUESTION --index {self.index_dir}), to fill it from the store (once)")


def paged_get(collection: Any, include: list[str], where: Any = None) -> Iterable[Any]:
    """``collection.get`` page by page: Chroma fails one ``get`` of 32,767 items or more.

    A short page is the last: asking for the next would cost another read (Chroma's metadata filter reads in
    proportion to the collection)."""
    offset = 0
    while True:
        page = collection.get(where=where, include=include, limit=WRITE_BATCH, offset=offset)
        if page["ids"]:
            yield page
        if len(page["ids"]) < WRITE_BATCH:
            return
        offset += len(page["ids"])


def _node_metadata(node: Any) -> dict[str, Any]:
    from llama_index.core.vector_stores.utils import node_to_metadata_dict

    flat = node_to_metadata_dict(node, remove_text=True, flat_metadata=True)
    return {key: "" if value is None else value for key, value in flat.items()}


def _batches(items: Sequence[Any], size: int = WRITE_BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


