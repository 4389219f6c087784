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
from rag.settings import Settings
from rag.splitting import Passage, PassageSplitter
from rag.store import PassageStore, StoredSentence, passage_id

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
    started = time.perf_counter()
    store = store or PassageStore(settings.index_dir, settings.fingerprint)
    loaded = load_corpus(paths)
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
    for document in stored.values():
        gone = document.key not in present and document.path not in protected
        if gone and any(document.under(origin) for origin in loaded.origins):
            store.delete_document(document.key)
            report.removed += 1

    if pending:
        report.passages_added = _embed_and_store(pending, settings, store)
    if pending or report.removed or not lexical_index_current(settings, store):
        from rag.retrieval import build_lexical_index

        build_lexical_index(settings, store)
    report.seconds = time.perf_counter() - started
    return report


def lexical_index_current(settings: Settings, store: PassageStore) -> bool:
    from rag.retrieval import lexical_index_fingerprint, stored_lexical_fingerprint

    return stored_lexical_fingerprint(settings) == lexical_index_fingerprint(store)


def _embed_and_store(pending: list[tuple[Article, str | None]], settings: Settings, store: PassageStore) -> int:
    embedder = PassageEmbedder(settings.model_path, settings.embed_batch_size)
    splitter = PassageSplitter(settings.chunk_size, settings.chunk_overlap, embedder.count_tokens)
    split = [(article, replaces, splitter.split(article)) for article, replaces in pending]
    progress = Progress("embedding passages", sum(len(passages) for _, _, passages in split))
    group: list[tuple[Article, str | None, list[Passage]]] = []
    for item in split:
        group.append(item)
        if sum(len(passages) for _, _, passages in group) >= EMBED_GROUP:
            _store_group(group, settings, embedder, store, progress)
            group = []
    if group:
        _store_group(group, settings, embedder, store, progress)
    return progress.done


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


def passage_node(article: Article, passage: Passage, doc_passages: int, text_path: str) -> Any:
    from llama_index.core.schema import TextNode

    metadata = {name: value for name, value in article.metadata.items() if name not in SYSTEM_KEYS}
    metadata.update(
        title=article.title,
        doc_key=article.key,
        article_id=article.doc_id,
        path=article.path,
        text_path=text_path,
        record_id=article.record_id or "",
        origin=article.origin,
        start=passage.start,
        end=passage.end,
        doc_hash=article.content_hash,
        doc_passages=doc_passages,
    )
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
