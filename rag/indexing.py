"""Ingest: load, split, embed and store articles incrementally, then refresh the lexical index.

Re-ingest is idempotent: an article whose text hash and passage count are already in the store is not embedded
again; a changed article gets its new passages written before its old ones are removed; an article that disappeared
from a re-ingested directory or JSONL file loses its passages. A file that cannot be read keeps what it had.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rag.embedding import PassageEmbedder
from rag.loading import Article, Problem, load_corpus
from rag.locking import writer_lock
from rag.manifest import ArticleRow
from rag.retrieval import build_lexical_index, lexical_index_current, remove_from_lexical_index, store_generation
from rag.settings import Settings
from rag.splitting import Passage, PassageSplitter
from rag.store import PassageStore, StoreDamaged, StoredDocument, StoredSentence, open_store, passage_id

# Articles are embedded together until this many passages are pending: sentence-transformers sorts a call's texts
# by length, so large groups waste less on padding; a killed run redoes at most one group.
EMBED_GROUP = 1024
# Metadata stored with each passage; everything but the title is kept out of the text the lexical index sees.
SYSTEM_KEYS = ("doc_key", "article_id", "path", "text_path", "record_id", "origin", "start", "end", "doc_hash",
               "doc_passages")


@dataclass
class IngestReport:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    passages_added: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        line = (f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged, {self.removed} removed; "
                f"{self.passages_added} passages embedded in {self.seconds:.1f}s")
        if self.problems:
            line += f"; {len(self.problems)} problem(s)"
        return line


class Progress:
    """Counts on stderr: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, label: str, total: int, stream: TextIO = sys.stderr, every: float = 5.0) -> None:
        self.label, self.total, self.stream, self.every = label, total, stream, every
        self.done = 0
        self.started = self.shown = time.perf_counter()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if self.stream.isatty() or now - self.shown >= self.every or self.done >= self.total:
            self.shown = now
            rate = self.done / max(now - self.started, 1e-9)
            end = "\r" if self.stream.isatty() and self.done < self.total else "\n"
            print(f"{self.label}: {self.done}/{self.total} ({rate:.0f}/s)", end=end, file=self.stream, flush=True)


def ingest(paths: Sequence[Path], settings: Settings, store: PassageStore | None = None,
           log: Callable[[str], None] = lambda message: print(message, file=sys.stderr)) -> IngestReport:
    """Ingest ``paths`` into the index, as its only writer (waits for another ingest into it to finish)."""
    with writer_lock(settings.index_dir):
        return ingest_locked(paths, settings, store or open_store(settings), log)


def ingest_locked(paths: Sequence[Path], settings: Settings, store: PassageStore,
                  log: Callable[[str], None]) -> IngestReport:
    """``ingest`` for a caller that holds the writer lock."""
    started = time.perf_counter()
    recorded = store.manifest.read(settings.fingerprint)
    if recorded is not None and recorded.articles and store.count() == 0:
        # The store was deleted or replaced by an empty one: adding to it would silently drop every article it held.
        raise StoreDamaged(settings.index_dir, f"it held {recorded.articles} articles but the store is empty")
    # A server store another client changed: its stamp, read before the store so that a change made after this is
    # seen by the next run.
    behind = store.behind()
    loaded = load_corpus(paths, settings.max_article_bytes)
    report = IngestReport(problems=loaded.problems)
    for problem in loaded.problems:
        log(f"skipped {problem}")

    stored = store.documents()
    pending: list[tuple[Article, str | None]] = []  # (article, key whose old passages to replace)
    for article in loaded.articles:
        before = stored.get(article.key)
        if before is None:
            report.new += 1
            pending.append((article, None))
        elif before.content_hash == article.content_hash and before.complete:
            report.unchanged += 1
        else:
            report.changed += before.content_hash != article.content_hash
            report.new += before.content_hash == article.content_hash  # an interrupted article, written anew
            pending.append((article, article.key))

    # A file that could not be read, or a JSONL file with a bad line (whose record is unknown), keeps what it had.
    protected = {str(Path(problem.path).resolve()) for problem in loaded.problems} | loaded.unreadable_keys
    present = {article.key for article in loaded.articles}
    gone = [document.key for document in stored.values()
            if document.key not in present and document.path not in protected
            and any(document.under(origin) for origin in loaded.origins)]

    changes = bool(pending or gone)
    # A catalogue in an earlier format, or behind a server store another client changed, is rewritten whole from
    # what the store holds (read above anyway), and the lexical index built again.
    rewrite = not store.manifest.catalogue_current(settings.fingerprint) or behind is not None
    if (changes or rewrite or recorded is None or recorded.state != "ok"
            or not set(loaded.origins) <= set(recorded.roots)):
        # Committed before the store changes: a run killed after this leaves the lexical index visibly behind.
        # An index from before manifests has its roots recorded from what its passages say they came from.
        roots = [*loaded.origins, *(document.origin for document in stored.values() if document.origin)]
        store.manifest.begin_write(settings.fingerprint, roots, store.location, index_versions(),
                                   changes or behind is not None)
        if changes:
            # Other clients of a server store see a change under way (and still see one if this run is killed).
            store.restamp()
        for key in gone:
            store.delete_document(key)
        report.removed = len(gone)
        counts = {}
        if pending:
            log(f"indexing {len(pending)} article(s) into {settings.index_dir}")
            counts = _embed_and_store(pending, settings, store)
            report.passages_added = sum(counts.values())
        written = {article.key: catalogue_entry(article, settings, counts[article.key]) for article, _ in pending}
        upserts, removed = catalogue_changes(stored, written, set(gone), store.manifest.catalogued_keys(
            settings.fingerprint), rewrite)
        store.manifest.finish_write(settings.fingerprint, upserts, removed, store.count())
        if store.shared and (changes or behind is not None):
            store.manifest.record_stamp(settings.fingerprint, store.restamp() if changes else str(behind))
    if changes or behind is not None or not lexical_index_current(settings, store):
        build_lexical_index(settings, store)
    report.seconds = time.perf_counter() - started
    return report


def catalogue_changes(stored: dict[str, StoredDocument], written: dict[str, ArticleRow], gone: set[str],
                      catalogued: set[str], rewrite: bool = False) -> tuple[list[ArticleRow], set[str]]:
    """Rows to write and keys to drop so that the catalogue lists exactly the store's articles after an ingest;
    ``rewrite``: every row is written again (a catalogue in an earlier format).

    Also mends what a killed run left: articles stored but never catalogued, rows of articles no longer stored.
    """
    final = (set(stored) - gone) | set(written)
    missing = final - set(written) - (set() if rewrite else catalogued)
    upserts = list(written.values()) + [stored[key].row for key in sorted(missing)]
    return upserts, catalogued - final


def catalogue_entry(article: Article, settings: Settings, passages: int) -> ArticleRow:
    text_path = extracted_text_path(article, settings) if article.extracted else article.path
    return ArticleRow.from_metadata(article_metadata(article, passages, text_path))


def index_versions() -> dict[str, str]:
    import chromadb

    from rag.settings import PIPELINE_VERSION

    return {"pipeline": PIPELINE_VERSION, "chromadb": chromadb.__version__, "manifest": "1"}


def remove_file(path: str, settings: Settings, store: PassageStore) -> IngestReport:
    """Remove the articles of one ingested file (an upload) from the index, as its only writer.

    Costs what those articles cost: their passages and sentences are deleted by key, their catalogue rows by key,
    and the lexical index gets a version that leaves their passages out (``remove_from_lexical_index``). Ingesting the
    file's folder again would do the same but read every stored article and rebuild the lexical index (32 s on
    21,000 articles). The same order as an ingest: the generation is bumped before the store changes, so a run killed
    halfway leaves the lexical index visibly behind (the next ask or ingest rebuilds it) and the next ingest of the
    folder removes what is left of the file's articles.
    """
    started = time.perf_counter()
    with writer_lock(settings.index_dir):
        if store.behind() is not None:  # another client changed the server store: catch up first
            ingest_locked([], settings, store, lambda message: None)
        rows = store.catalogue().articles_of_file(settings.fingerprint, path)
        if not rows:
            return IngestReport()
        before = (store_generation(store), store.count())
        generation = store.manifest.begin_write(settings.fingerprint, [], store.location, index_versions())
        store.restamp()
        removed = [passage for row in rows for passage in store.delete_document(row.key)]
        store.manifest.finish_write(settings.fingerprint, [], [row.key for row in rows], store.count())
        if store.shared:
            store.manifest.record_stamp(settings.fingerprint, store.restamp())
        if not remove_from_lexical_index(settings, removed, before, generation):
            build_lexical_index(settings, store)
    return IngestReport(removed=len(rows), seconds=time.perf_counter() - started)


def _embed_and_store(pending: list[tuple[Article, str | None]], settings: Settings,
                     store: PassageStore) -> dict[str, int]:
    """Split, embed and store the pending articles; returns each one's passage count."""
    embedder = PassageEmbedder(settings.model_path, settings.embed_batch_size)
    splitter = PassageSplitter(settings.chunk_size, settings.chunk_overlap, embedder.count_tokens)
    splitting = Progress("splitting articles", len(pending))
    split = []
    for article, replaces in pending:
        split.append((article, replaces, splitter.split(article)))
        splitting.advance(1)
    progress = Progress("embedding passages", sum(len(passages) for _, _, passages in split))
    group: list[tuple[Article, str | None, list[Passage]]] = []
    for item in split:
        group.append(item)
        if sum(len(passages) for _, _, passages in group) >= EMBED_GROUP:
            _store_group(group, settings, embedder, store, progress)
            group = []
    if group:
        _store_group(group, settings, embedder, store, progress)
    return {article.key: len(passages) for article, _, passages in split}


def _store_group(group: list[tuple[Article, str | None, list[Passage]]], settings: Settings,
                 embedder: PassageEmbedder, store: PassageStore, progress: Progress) -> None:
    nodes = []
    for article, _, passages in group:
        # An extracted page's text is written once per article, not once per passage.
        text_path = extracted_text_path(article, settings) if article.extracted else article.path
        nodes += [passage_node(article, passage, len(passages), text_path) for passage in passages]
    all_passages = [passage for _, _, passages in group for passage in passages]
    vectors = embedder.embed_passages(
        [passage.text for passage in all_passages],
        [[(s - passage.start, e - passage.start) for s, e in passage.sentences] for passage in all_passages],
    )
    sentences: list[StoredSentence] = []
    for row, (node, passage) in enumerate(zip(nodes, all_passages, strict=True)):
        node.embedding = vectors.passage[row].tolist()
        sentences.extend(StoredSentence(node.node_id, start, end, vector)
                         for (start, end), vector in zip(passage.sentences, vectors.sentences[row], strict=True))
    store.add(nodes, sentences)
    for article, replaces, passages in group:
        if replaces is not None:
            store.delete_document(replaces, keep=[_passage_id(article, p) for p in passages])
    progress.advance(len(all_passages))


def _passage_id(article: Article, passage: Passage) -> str:
    return passage_id(article.key, article.content_hash, passage.start, passage.end)


def article_metadata(article: Article, doc_passages: int, text_path: str) -> dict[str, Any]:
    """What every passage of the article carries, besides its offsets."""
    metadata: dict[str, Any] = {name: value for name, value in article.metadata.items() if name not in SYSTEM_KEYS}
    metadata.update(
        title=article.title,
        doc_key=article.key,
        article_id=article.doc_id,
        path=article.path,
        text_path=text_path,
        record_id=article.record_id or "",
        origin=article.origin,
        doc_hash=article.content_hash,
        doc_passages=doc_passages,
    )
    return metadata


def passage_node(article: Article, passage: Passage, doc_passages: int, text_path: str) -> Any:
    from llama_index.core.schema import TextNode

    metadata = article_metadata(article, doc_passages, text_path) | {"start": passage.start, "end": passage.end}
    hidden = [name for name in metadata if name != "title"]
    return TextNode(
        id_=_passage_id(article, passage),
        text=passage.text,
        metadata=metadata,
        excluded_embed_metadata_keys=hidden,
        excluded_llm_metadata_keys=hidden,
    )


def extracted_text_path(article: Article, settings: Settings) -> str:
    """Where the text extracted from a page is kept, so that citation offsets can be checked against a file."""
    name = hashlib.sha256(article.key.encode()).hexdigest()[:16] + ".txt"
    path = settings.index_dir / "extracted" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != article.text:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(article.text)
    return str(path.resolve())
