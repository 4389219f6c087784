"""A streaming ingest killed with SIGKILL at chosen points, and run again each time, ends with exactly the passage
and sentence ids and the catalogue of a clean run: real model, real Chroma, real processes, Reuters records
(with two exact duplicate texts among them)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT

from rag.indexing import ingest
from rag.settings import Settings, load_settings
from rag.store import PassageStore

pytestmark = pytest.mark.usefixtures("no_rag_env")

REUTERS = ROOT.parent / "shared" / "data" / "reuters21578.jsonl"
RECORDS = 60  # reuters-16 repeats reuters-4's text and reuters-55 reuters-32's
# The real command line, with groups of 16 passages (the slice is written in several) and a progress line per step,
# so that a kill can be aimed at a count.
INGEST = ("import runpy, rag.indexing\n"
          "rag.indexing.EMBED_GROUP = 16\n"
          "rag.indexing.PROGRESS_EVERY = 0.0\n"
          "runpy.run_module('rag.ingest', run_name='__main__', alter_sys=True)\n")
STORED = re.compile(r"; (\d+) passages stored")


def settings_for(index: Path) -> Settings:
    return load_settings({"index_dir": str(index)}, environ={})


def snapshot(index: Path) -> tuple[set[str], set[tuple[str, int, int]], int]:
    """Passage ids, sentence spans and catalogued articles of the index as it is on disk now (Chroma caches one client
    per path and process, which would still see what another process changed)."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    store = PassageStore(index, settings_for(index).fingerprint)
    passages = store.passage_ids()
    sentences = {(pid, s.start, s.end) for pid, stored in store.sentences_of(passages).items() for s in stored}
    return set(passages), sentences, store.article_count()


def start(corpus: Path, index: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", INGEST, str(corpus), "--index", str(index)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_when(process: subprocess.Popen[str], reached: Callable[[str], bool], delay: float = 0.0) -> list[str]:
    """SIGKILL ``process`` ``delay`` s after a line of its stderr satisfies ``reached``; its lines until then."""
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if reached(line):
            time.sleep(delay)
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL, f"it ended before the kill point: {lines}"
    return lines


def stored_at_least(count: int) -> Callable[[str], bool]:
    def reached(line: str) -> bool:
        found = STORED.search(line)
        return found is not None and int(found.group(1)) >= count

    return reached


# Where each run is killed, in order: each run resumes what the ones before left.
KILL_POINTS: list[tuple[str, Callable[[str], bool], float]] = [
    ("before anything is written (loading the model)", lambda line: line.startswith("indexing new"), 0.0),
    ("right after the first group is stored", stored_at_least(1), 0.0),
    ("while a group is embedded or written", stored_at_least(16), 0.4),
    ("after the last group, while the catalogue and lexical index are written",
     lambda line: line.startswith("not indexed, same text"), 0.0),
]


def test_ingest_killed_at_each_point_and_run_again_ends_as_a_clean_run(tmp_path: Path) -> None:
    corpus = tmp_path / "reuters-slice.jsonl"
    with open(REUTERS, encoding="utf-8") as source:
        corpus.write_text("".join(next(source) for _ in range(RECORDS)), encoding="utf-8")

    clean_settings = settings_for(tmp_path / "clean")
    clean = ingest([corpus], clean_settings, log=lambda message: None)
    assert (clean.new, len(clean.duplicates), clean.problems) == (RECORDS - 2, 2, [])
    assert sorted(clean.duplicates) == [("reuters-16", "reuters-4"), ("reuters-55", "reuters-32")]
    expected = snapshot(tmp_path / "clean")
    assert len(expected[0]) == clean.passages_added > 3 * 16 and expected[2] == RECORDS - 2

    index = tmp_path / "killed"
    for point, reached, delay in KILL_POINTS:
        lines = kill_when(start(corpus, index), reached, delay)
        if (index / "chroma").exists():
            passages, sentences, _ = snapshot(index)
            # Whatever a kill leaves is part of the clean run: no id of another split, no half-written duplicate.
            assert passages <= expected[0] and sentences <= expected[1], point
        assert not any("Traceback" in line for line in lines), lines

    finished = subprocess.run([sys.executable, "-c", INGEST, str(corpus), "--index", str(index)], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stderr
    assert "2 duplicate texts skipped (same text as an earlier article)" in finished.stderr
    assert snapshot(index) == expected

    again = ingest([corpus], settings_for(index), log=lambda message: None)
    assert (again.new, again.changed, again.unchanged, again.removed, again.passages_added) == (0, 0, RECORDS - 2,
                                                                                                 0, 0)
    assert snapshot(index) == expected
