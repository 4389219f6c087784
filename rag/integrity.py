"""What state an index directory is in, what is wrong with it, and the rebuild from its recorded sources.

"No index yet" is said only of a missing or empty directory: an index whose manifest says it held articles is never
re-created from the default corpus, whatever happened to its store. Problems with derived parts (the lexical index)
are repaired by the next ask or ingest; a damaged store is rebuilt by ``python -m rag.ingest --rebuild``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.indexing import IngestReport, ingest_locked
from rag.locking import STORE_LOCK, WRITER_LOCK, writer_busy, writer_lock
from rag.manifest import MANIFEST_FILE, IndexManifest, Manifest
from rag.settings import Settings
from rag.store import (
    CHROMA_DIR,
    PassageStore,
    StoreDamaged,
    StoreUnreachable,
    open_store,
    rebuild_command,
    store_file_problem,
)

# Opening the store in a child process: a native crash there is a message here, not a dead CLI.
PROBE_SECONDS = 120.0
PROBE = """
import sys, chromadb, numpy as np
client = chromadb.PersistentClient(path=sys.argv[1], settings=chromadb.Settings(anonymized_telemetry=False))
names = {collection.name for collection in client.list_collections()}
name = f"passages-{sys.argv[2]}"
if name not in names:
    print(f"collection {name} is missing"); sys.exit(3)
collection = client.get_collection(name, embedding_function=None)
count = collection.count()
if count:
    vector = collection.get(limit=1, include=["metadatas", "embeddings"])["embeddings"][0]
    collection.query(query_embeddings=[np.ones(len(vector))], n_results=min(count, 10), include=["distances"])
print(count)
"""


class IndexProblem(RuntimeError):
    """The index cannot be used as it is; the message says what to run."""


@dataclass(frozen=True)
class IndexState:
    manifest: Manifest | None
    empty: bool
    """The directory is missing or holds nothing but lock files: the only case that is "no index yet"."""


def index_state(settings: Settings) -> IndexState:
    directory = settings.index_dir
    manifest = IndexManifest(directory).read(settings.fingerprint)
    names = {path.name for path in directory.iterdir()} if directory.is_dir() else set()
    return IndexState(manifest, not names - {WRITER_LOCK, STORE_LOCK})


def unusable_reason(settings: Settings, manifest: Manifest | None, stored_passages: int) -> str | None:
    """Why an opened index with this manifest and this many stored passages cannot be asked, with the fix."""
    directory = settings.index_dir
    rebuild = rebuild_command(directory)
    if manifest is None:
        if stored_passages:
            return None
        others = IndexManifest(directory).fingerprints()
        held = (" it holds an index built with other settings (model or chunking) or by an earlier version of "
                "this program" if others else
                " it holds no index")
        return (f"{directory} is not empty and{held}: ingest into it with python -m rag.ingest PATH --index "
                f"{directory}, or choose an empty directory")
    if stored_passages:
        return None
    if manifest.articles:
        return (f"the index in {directory} held {manifest.articles} articles but its store is empty; rebuild it: "
                f"{rebuild}")
    if manifest.roots and writer_busy(directory):
        return f"the first ingest into {directory} is under way: ask again when it has stored its articles"
    if manifest.roots and manifest.state == "ok":
        # Every ingest finished, and each file was skipped (empty, not text...): nothing was interrupted.
        return (f"no articles are indexed in {directory}: every file ingested into it was skipped; ingest articles: "
                f"python -m rag.ingest PATH --index {directory}")
    if manifest.roots:
        return (f"the first ingest into {directory} was interrupted before it stored an article; finish it: "
                f"{rebuild}")
    return None


def probe_store(index_dir: Path, fingerprint: str) -> tuple[int | None, str | None]:
    """Open the store and read its collection in a child process: (passages, None) or (None, what failed)."""
    command = [sys.executable, "-c", PROBE, str(index_dir / CHROMA_DIR), fingerprint]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return None, f"reading the store took over {PROBE_SECONDS:.0f} s"
    if done.returncode < 0:
        return None, f"reading the store crashed ({signal.Signals(-done.returncode).name})"
    if done.returncode:
        lines = (done.stdout + done.stderr).strip().splitlines()
        return None, lines[-1] if lines else f"reading the store failed (exit {done.returncode})"
    return int(done.stdout.split()[-1]), None


def check_index(settings: Settings) -> list[str]:
    """Every problem of the index, one line each, with what fixes it; empty when it is whole."""
    from rag.retrieval import current_lexical_version, lexical_index_current

    directory, fingerprint = settings.index_dir, settings.fingerprint
    rebuild = rebuild_command(directory)
    state = index_state(settings)
    if state.empty and not settings.chroma_url:
        return [f"{directory}: no index yet (python -m rag.ingest PATH --index {directory} makes one)"]
    problems = []
    if not (directory / MANIFEST_FILE).is_file():
        problems.append(f"{directory / MANIFEST_FILE} is missing (an index from before manifests, or a client that "
                        f"has not read its server store yet): python -m rag.ingest --index {directory} records one")
    if settings.chroma_url:
        try:
            passages, probe_problem = open_store(settings).count(), None
        except StoreUnreachable as error:
            passages, probe_problem = None, str(error)
    elif (directory / CHROMA_DIR).exists():
        file_problem = store_file_problem(directory)
        passages, probe_problem = (None, file_problem) if file_problem else probe_store(directory, fingerprint)
    else:
        passages, probe_problem = None, f"{directory / CHROMA_DIR} is missing"
    if probe_problem:
        return [*problems, f"the store is damaged: {probe_problem}; rebuild it: {rebuild}"]
    manifest = state.manifest
    reason = unusable_reason(settings, manifest, passages or 0)
    if reason:
        return [*problems, reason]
    store = open_store(settings)
    if store.behind() is not None:
        problems.append(f"another client changed the store on {settings.chroma_url}: the next ask or ingest brings "
                        "this client's article catalogue and lexical index up to date")
    if manifest is not None and manifest.state != "ok":
        problems.append(f"an ingest into {directory} was interrupted: run it again (python -m rag.ingest PATH "
                        f"--index {directory}) or rebuild: {rebuild}")
    documents = store.documents()
    incomplete = sorted(key for key, document in documents.items() if not document.complete)
    if incomplete:
        problems.append(f"{len(incomplete)} article(s) are stored incompletely (first: {incomplete[0]}): the next "
                        "ingest of their files completes them")
    if manifest is not None and not store.manifest.catalogue_current(fingerprint):
        problems.append("the article catalogue is in an earlier format (the library lists from it): the next ask or "
                        "ingest writes it again from the store")
    elif manifest is not None and manifest.state == "ok":
        catalogued = store.manifest.catalogued_keys(fingerprint)
        if catalogued != set(documents):
            problems.append(f"the article catalogue lists {len(catalogued)} articles, the store holds "
                            f"{len(documents)}: the next ingest mends it")
    if current_lexical_version(settings) is None:
        problems.append("the lexical (BM25) index is missing or damaged: the next ask or ingest rebuilds it")
    elif not lexical_index_current(settings, store):
        problems.append("the lexical (BM25) index is behind the store: the next ask or ingest rebuilds it")
    return problems


def rebuild_index(settings: Settings, log: Callable[[str], None]) -> IngestReport:
    """Set the store aside and ingest every recorded root again; returns the ingest report."""
    from rag.retrieval import lexical_index_dir

    directory = settings.index_dir
    if settings.chroma_url:
        # Other clients share that store: setting it aside is for whoever runs the server (chroma run --path DIR).
        raise IndexProblem(f"--rebuild sets aside an embedded store; the store on {settings.chroma_url} is the "
                           "server's: ingest into it again, or start the server on an empty --path")
    with writer_lock(directory):
        manifest = IndexManifest(directory).read(settings.fingerprint)
        roots = [Path(root) for root in manifest.roots] if manifest else []
        if not roots:
            raise IndexProblem(f"{directory} records no sources to rebuild from: ingest them with python -m "
                               f"rag.ingest PATH --index {directory}")
        chroma = directory / CHROMA_DIR
        if chroma.exists():
            # Kept, not deleted: it may hold articles whose files are gone.
            aside = directory / f"{CHROMA_DIR}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
            chroma.rename(aside)
            log(f"the old store was moved to {aside}; delete it once the rebuilt index is good")
        shutil.rmtree(lexical_index_dir(settings), ignore_errors=True)
        IndexManifest(directory).forget_store(settings.fingerprint)
        log(f"rebuilding {directory} from {', '.join(str(root) for root in roots)}")
        try:
            store = PassageStore(directory, settings.fingerprint)
        except StoreDamaged as error:
            raise IndexProblem(str(error)) from error
        return ingest_locked(roots, settings, store, log)
