"""``python -m benchmarks.library``: the chat page's article library on a large index (``make bench``).

Builds an index of every article in the given JSONL files (by default the Reuters-21578 and BBC collections in
``../shared/data``, 21,268 articles) into a temporary directory, with the real loader, the real passage metadata and
Chroma, but with passages cut every ``PASSAGE_CHARS`` characters and random unit vectors instead of the model's
(embedding 20,000 articles takes hours on two cores, and listing never reads a vector); the manifest and article
catalogue are written as an ingest writes them. Then times, through the same ``ChatHandlers`` the page calls, what a
reader does in the library: the first listing, paging, searching by title, opening an article in the reader, and
removing an uploaded article, then listing again. Prints one JSON object and writes ``evals/LIBRARY.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.speed import DEFAULT_OUT, ROOT, machine_info
from rag.cli import log, run
from rag.indexing import article_metadata, index_versions, passage_node
from rag.loading import load_corpus
from rag.manifest import ArticleRow
from rag.pipeline import Assistant
from rag.retrieval import build_lexical_index
from rag.settings import load_settings
from rag.splitting import Passage
from rag.store import CHROMA_DIR
from rag.ui.handlers import ChatHandlers

DATA = ROOT.parent / "shared" / "data"
DEFAULT_CORPORA = (DATA / "reuters21578.jsonl", DATA / "bbc-news.jsonl")
# Under 32,766 passages in all: reading every passage at once (PassageStore.all_nodes, for the lexical index) passes
# one SQLite variable per passage, and SQLite refuses more ("too many SQL variables"); 2,000 characters gives ~22,000.
PASSAGE_CHARS = 2000
# Nodes per write: Reuters records carry a dozen metadata fields, and store.add's batches of 2,000 then pass more
# variables than SQLite allows in one statement ("too many SQL variables").
WRITE_NODES = 500
GOAL_MS = 500.0
DIMENSIONS = 384


def build(index_dir: Path, corpora: Sequence[Path], limit: int | None) -> tuple[Assistant, int]:
    """A library-sized index in ``index_dir``; returns its assistant and the number of articles."""
    assistant = Assistant(load_settings({"index_dir": str(index_dir)}, environ={}))
    settings, store = assistant.settings, assistant.store
    loaded = load_corpus(list(corpora))
    articles = loaded.articles[:limit]
    store.manifest.begin_write(settings.fingerprint, loaded.origins, str(index_dir / CHROMA_DIR), index_versions())
    random = np.random.default_rng(0)
    nodes, rows = [], []
    for article in articles:
        starts = range(0, len(article.text), PASSAGE_CHARS)
        rows.append(ArticleRow.from_metadata(article_metadata(article, len(starts), article.path)))
        for start in starts:
            end = min(len(article.text), start + PASSAGE_CHARS)
            node = passage_node(article, Passage(start, end, article.text[start:end], ()), len(starts), article.path)
            vector = random.standard_normal(DIMENSIONS)
            node.embedding = (vector / np.linalg.norm(vector)).tolist()
            nodes.append(node)
    for start in range(0, len(nodes), WRITE_NODES):
        batch = nodes[start : start + WRITE_NODES]
        store.add(batch, [[] for _ in batch])
    store.manifest.finish_write(settings.fingerprint, rows, [], store.count())
    build_lexical_index(settings, store)
    return assistant, len(articles)


def timed(action: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Median milliseconds over ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def bench(index_dir: Path, corpora: Sequence[Path], limit: int | None, query: str, repeat: int) -> dict[str, Any]:
    started = time.perf_counter()
    assistant, articles = build(index_dir, corpora, limit)
    built = time.perf_counter() - started
    handlers = ChatHandlers(assistant)
    store = assistant.store
    results: dict[str, float] = {}
    results["first listing"], _ = timed(handlers.library)
    results["list page 1"], _ = timed(handlers.library, repeat)
    results["list page at offset 10,000"], _ = timed(lambda: handlers.library("", 10_000), repeat)
    results[f"search “{query}”"], _ = timed(lambda: handlers.library(query), repeat)
    middle = store.articles(articles // 2, 1)[0]
    results["open an article in the reader"], _ = timed(lambda: handlers.read(middle.id), repeat)
    upload = index_dir / "incoming" / "bench-upload.txt"
    upload.parent.mkdir()
    upload.write_text("Benchmark harbour reopens\n\nThe harbour reopened on March 3 after two years of works.\n",
                      encoding="utf-8")
    handlers.upload([str(upload)])
    uploaded = store.articles(0, 5, "benchmark harbour")[0]
    results["remove an upload"], message = timed(lambda: handlers.remove(uploaded.id))
    results["first listing after the removal"], _ = timed(handlers.library)
    assert not message[1] and store.article(uploaded.id) is None, message[0]
    return {"articles": articles, "passages": store.count(), "build_seconds": round(built, 1),
            "ms": {name: round(value, 1) for name, value in results.items()}, "goal_ms": GOAL_MS,
            "load_average": [round(load, 2) for load in os.getloadavg()], "machine": machine_info()}


def report(result: dict[str, Any]) -> str:
    rows = "\n".join(f"| {name} | {value:,.1f} | {'yes' if value < GOAL_MS else 'no'} |"
                     for name, value in result["ms"].items())
    rows += ("\n\nEvery listing, page and search reads the article catalogue (SQLite, `index.sqlite3`), never the "
             "passages; a removal deletes the upload's passages by key and publishes a lexical index version that "
             "leaves them out (its files hard-linked from the previous version, the removed passages weighted 0).")
    return (f"# Article library on a large index\n\n`python -m benchmarks.library` (`make bench`): "
            f"{result['articles']:,} articles, {result['passages']:,} passages (built in {result['build_seconds']} s, "
            f"random vectors), through the handlers the page calls. Machine: {result['machine'].get('cpu', '?')}, "
            f"{result['machine'].get('nproc', '?')} cores, load average at the end "
            f"{' / '.join(map(str, result.get('load_average', [])))} (1 / 5 / 15 min).\n\n"
            f"| action | ms (median) | under {GOAL_MS:.0f} ms |\n|---|---|---|\n{rows}\n")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.library", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", nargs="*", type=Path, default=list(DEFAULT_CORPORA), help="JSONL collections")
    parser.add_argument("--limit", type=int, help="at most this many articles")
    parser.add_argument("--query", default="oil prices", help="the title search to time")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each repeatable action")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where LIBRARY.md goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rag-library-") as directory:
        result = bench(Path(directory), args.corpora, args.limit, args.query, args.repeat)
    print(json.dumps(result, indent=1))
    (args.out / "LIBRARY.md").write_text(report(result))
    log(f"wrote {args.out / 'LIBRARY.md'}")
    return 0


if __name__ == "__main__":
    run(main)
