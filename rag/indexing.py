"""Ingest: load, split, embed and store articles incrementally, a group at a time, then refresh the lexical index.

Re-ingest is idempotent: an article whose text hash and passage count are already in the store is not embedded
again; a changed article gets its new passages written before its old ones are removed; an article that disappeared
from a re-ingested directory or JSONL file loses its passages. A file that cannot be read keeps what it had. An
article with the same text as an earlier one of the same ingest is not indexed (each distinct text once).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rag.embedding import PassageEmbedder, make_passage_embedder
from rag.loading import Article, Problem, estimate_articles, path_key, stream_corpus
from rag.locking import writer_lock
from rag.manifest import ArticleRow
from rag.retrieval import build_lexical_index, lexical_index_current, remove_from_lexical_index, store_generation
from rag.settings import Settings
from rag.splitting import Passage, PassageSplitter
from rag.store import (
    SENTENCE_SPANS,
    SENTENCE_VECTORS,
    PassageStore,
    StoreDamaged,
    StoredDocument,
    StoredSentence,
    open_store,
    passage_id,
)

# Articles are embedded and stored together until this many passages are pending: a killed run redoes at most one
# group, and it is what an ingest holds in memory besides the keys and content hashes of the whole corpus.
EMBED_GROUP = 1024
# Metadata stored with each passage; everything but the title is kept out of the text the lexical index sees.
SYSTEM_KEYS = ("doc_key", "article_id", "path", "text_path", "record_id", "origin", "start", "end", "doc_hash",
               "doc_passages", SENTENCE_SPANS, SENTENCE_VECTORS)
# Duplicate texts named on the ingest's log line; the rest are counted.
DUPLICATES_NAMED = 10
# Seconds between progress lines when stderr is not a terminal (a log file): about one line per group stored.
PROGRESS_EVERY = 5.0


@dataclass
class IngestReport:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    passages_added: int = 0
    problems: list[Problem] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """(article, the earlier article with the same text) for each article not indexed because its text was."""
    seconds: float = 0.0

    def summary(self) -> str:
        line = (f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged, {self.removed} removed; "
                f"{self.passages_added} passages embedded in {self.seconds:.1f}s")
        if self.duplicates:
            texts = "text" if len(self.duplicates) == 1 else "texts"
            line += f"; {len(self.duplicates)} duplicate {texts} skipped (same text as an earlier article)"
        if self.problems:
            line += f"; {len(self.problems)} problem(s)"
        return line


def duplicates_line(duplicates: Sequence[tuple[str, str]], named: int = DUPLICATES_NAMED) -> str:
    """One log line for the articles skipped as duplicates, naming the first ``named`` and counting the rest."""
    shown = ", ".join(f"{article} (= {first})" for article, first in duplicates[:named])
    more = f" and {len(duplicates) - named} more" if len(duplicates) > named else ""
    return f"not indexed, same text as an earlier article: {shown}{more}"


def time_left(samples: Sequence[tuple[float, int]], total: int) -> float | None:
    """Seconds until ``total`` at the rate between the first and the last of ``samples`` ((time, done) pairs);
    None while there is no rate to go by."""
    if len(samples) < 2:
        return None
    (first_time, first_done), (last_time, last_done) = samples[0], samples[-1]
    if last_done <= first_done or last_time <= first_time:
        return None
    return max(total - last_done, 0) * (last_time - first_time) / (last_done - first_done)


def format_duration(seconds: float) -> str:
    whole = round(seconds)
    if whole >= 3600:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    if whole >= 60:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole}s"


class Progress:
    """Counts on stderr with the rate and the time left: redrawn in place on a terminal, a line every few seconds
    otherwise.

    The time left goes by the rate over the last ``window`` seconds, not the whole run's: a resumed ingest passes
    over what it already stored at thousands of articles a second, then embeds the rest at a few dozen.
    """

    def __init__(self, label: str, total: int, stream: TextIO = sys.stderr, every: float = 5.0,
                 window: float = 60.0) -> None:
        self.label, self.total, self.stream, self.every, self.window = label, total, stream, every, window
        self.done = self.shown_done = 0
        self.open_line = False  # the last count shown is still being redrawn (a terminal)
        self.started = self.shown = time.perf_counter()
        # From the first step on: what comes before it (loading a model) says nothing about the rate of steps.
        self.samples: deque[tuple[float, int]] = deque()

    def advance(self, count: int, note: str = "") -> None:
        self.done += count
        now = time.perf_counter()
        self.samples.append((now, self.done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        if self.stream.isatty() or now - self.shown >= self.every or self.done >= self.total:
            self._show(now, note)

    def finish(self, note: str = "") -> None:
        """The last count, unless it was just shown (the total was an estimate, or the last step was quiet)."""
        if self.done != self.shown_done or self.open_line:
            self._show(time.perf_counter(), note, last=True)

    def _show(self, now: float, note: str, last: bool = False) -> None:
        self.shown, self.shown_done = now, self.done
        rate = self.done / max(now - self.started, 1e-9)
        left = time_left(self.samples, self.total) if self.done < self.total else None
        eta = f", {format_duration(left)} left" if left is not None and not last else ""
        self.open_line = self.stream.isatty() and self.done < self.total and not last
        end = "\r" if self.open_line else "\n"
        print(f"{self.label}: {self.done}/{self.total} ({rate:.0f}/s{eta}){note}", end=end, file=self.stream,
              flush=True)


def ingest(paths: Sequence[Path], settings: Settings, store: PassageStore | None = None,
           log: Callable[[str], None] = lambda message: print(message, file=sys.stderr)) -> IngestReport:
    """Ingest ``paths`` into the index, as its only writer (waits for another ingest into it to finish)."""
    with writer_lock(settings.index_dir):
        return ingest_locked(paths, settings, store or open_store(settings), log)


def ingest_locked(paths: Sequence[Path], settings: Settings, store: PassageStore,
                  log: Callable[[str], None]) -> IngestReport:
    """``ingest`` for a caller that holds the writer lock.

    Articles are read, compared with the store, split, embedded and stored a group at a time (``EMBED_GROUP``);
    what stays in memory for the whole corpus is each article's key and content hash (and its catalogue row). An
    article whose text an earlier article of the same ingest had (in the order the paths and files are read) is
    not indexed: each distinct text once, decided the same way by every run over the same input.
    """
    started = time.perf_counter()
    recorded = store.manifest.read(settings.fingerprint)
    if recorded is not None and recorded.articles and store.count() == 0:
        # The store was deleted or replaced by an empty one: adding to it would silently drop every article it held.
        raise StoreDamaged(settings.index_dir, f"it held {recorded.articles} articles but the store is empty")
    # A server store another client changed: its stamp, read before the store so that a change made after this is
    # seen by the next run.
    behind = store.behind()
    loaded, articles = stream_corpus(paths, settings.max_article_bytes)
    report = IngestReport(problems=loaded.problems)
    stored = store.documents()
    # A catalogue in an earlier format, or behind a server store another client changed, is rewritten whole from
    # what the store holds (read above anyway), and the lexical index built again.
    rewrite = not store.manifest.catalogue_current(settings.fingerprint) or behind is not None
    # An index from before manifests has its roots recorded from what its passages say they came from.
    roots = [*loaded.origins, *(document.origin for document in stored.values() if document.origin)]
    began = changes = False

    def begin_write(store_changes: bool) -> None:
        # Committed before the store changes: a run killed after this leaves the lexical index visibly behind.
        nonlocal began, changes
        if not began:
            store.manifest.begin_write(settings.fingerprint, roots, store.location, index_versions(),
                                       store_changes or behind is not None)
            began, changes = True, store_changes
            if store_changes:
                # Other clients of a server store see a change under way (and still see one if this run is killed).
                store.restamp()

    progress = Progress("indexing articles", estimate_articles(paths), every=PROGRESS_EVERY)
    writer = _GroupWriter(settings, store, progress, lambda: begin_write(True), log)
    first_with_text: dict[str, tuple[str, str]] = {}  # content hash -> (key, doc id) of the first article with it
    present: set[str] = set()
    for article in _logging_problems(articles, loaded.problems, log):
        first_key, first_id = first_with_text.setdefault(article.content_hash, (article.key, article.doc_id))
        if first_key != article.key:
            report.duplicates.append((article.doc_id, first_id))
            writer.skip()
        else:
            present.add(article.key)
            before = stored.get(article.key)
            if before is None:
                report.new += 1
                writer.add(article, None)
            elif before.content_hash == article.content_hash and before.complete:
                report.unchanged += 1
                writer.skip()
            else:
                report.changed += before.content_hash != article.content_hash
                report.new += before.content_hash == article.content_hash  # an interrupted article, written anew
                writer.add(article, article.key)
    writer.finish()
    if report.duplicates:
        log(duplicates_line(report.duplicates))
    report.passages_added = writer.passages

    # A file that could not be read, or a JSONL file with a bad line (whose record is unknown), keeps what it had.
    protected = {path_key(problem.path) for problem in loaded.problems} | loaded.unreadable_keys
    gone = [document.key for document in stored.values()
            if document.key not in present and document.path not in protected
            and any(document.under(origin) for origin in loaded.origins)]
    if gone:
        begin_write(True)
    for key in gone:
        store.delete_document(key)
    report.removed = len(gone)
    if (began or rewrite or recorded is None or recorded.state != "ok"
            or not set(loaded.origins) <= set(recorded.roots)):
        begin_write(False)
        upserts, removed = catalogue_changes(stored, writer.written, set(gone), store.manifest.catalogued_keys(
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


def _logging_problems(articles: Iterator[Article], problems: list[Problem],
                      log: Callable[[str], None]) -> Iterator[Article]:
    """``articles``, logging each problem that reading them adds to ``problems`` when it is met, not at the end."""
    logged = 0
    for article in articles:
        for problem in problems[logged:]:
            log(f"skipped {problem}")
        logged = len(problems)
        yield article
    for problem in problems[logged:]:
        log(f"skipped {problem}")


class _GroupWriter:
    """Splits the articles given, and embeds and stores them a group at a time (the model is loaded for the first)."""

    def __init__(self, settings: Settings, store: PassageStore, progress: Progress, before_writing: Callable[[], None],
                 log: Callable[[str], None]) -> None:
        self.settings, self.store, self.progress, self.before_writing, self.log = (
            settings, store, progress, before_writing, log)
        self.embedder: PassageEmbedder | None = None
        self.splitter: PassageSplitter | None = None
        self.group: list[tuple[Article, str | None, list[Passage]]] = []
        self.pending = self.passages = 0
        self.written: dict[str, ArticleRow] = {}

    def add(self, article: Article, replaces: str | None) -> None:
        """Queue ``article`` (replacing the stored passages of the key ``replaces``); a full group is stored."""
        if self.splitter is None:
            self.log(f"indexing new and changed articles into {self.settings.index_dir}")
            self.embedder = make_passage_embedder(self.settings)
            self.splitter = PassageSplitter(self.settings.chunk_size, self.settings.chunk_overlap,
                                            self.embedder.count_tokens)
        passages = self.splitter.split(article)
        self.group.append((article, replaces, passages))
        self.pending += len(passages)
        if self.pending >= EMBED_GROUP:
            self.flush()

    def flush(self) -> None:
        if not self.group:
            return
        assert self.embedder is not None
        self.before_writing()
        _store_group(self.group, self.settings, self.embedder, self.store, self.written)
        self.passages += self.pending
        self.progress.advance(len(self.group), self.note())
        self.group, self.pending = [], 0

    def finish(self) -> None:
        """Store the last group and let the model go: the lexical index, built next, needs the memory."""
        self.flush()
        self.progress.finish(self.note())
        self.embedder = self.splitter = None

    def skip(self) -> None:
        """Count an article that needs no writing."""
        self.progress.advance(1, self.note())

    def note(self) -> str:
        return f"; {self.passages} passages stored"


def _store_group(group: list[tuple[Article, str | None, list[Passage]]], settings: Settings,
                 embedder: PassageEmbedder, store: PassageStore, written: dict[str, ArticleRow]) -> None:
    nodes = []
    for article, _, passages in group:
        # An extracted page's text is written once per article, not once per passage.
        text_path = extracted_text_path(article, settings) if article.extracted else article.path
        nodes += [passage_node(article, passage, len(passages), text_path) for passage in passages]
        written[article.key] = ArticleRow.from_metadata(article_metadata(article, len(passages), text_path))
    all_passages = [passage for _, _, passages in group for passage in passages]
    vectors = embedder.embed_passages(
        [passage.text for passage in all_passages],
        [[(s - passage.start, e - passage.start) for s, e in passage.sentences] for passage in all_passages],
    )
    sentences: list[list[StoredSentence]] = []
    for row, (node, passage) in enumerate(zip(nodes, all_passages, strict=True)):
        node.embedding = vectors.passage[row].tolist()
        sentences.append([StoredSentence(node.node_id, start, end, vector)
                          for (start, end), vector in zip(passage.sentences, vectors.sentences[row], strict=True)])
    store.add(nodes, sentences)
    for article, replaces, passages in group:
        if replaces is not None:
            store.delete_document(replaces, keep=[_passage_id(article, p) for p in passages])


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
