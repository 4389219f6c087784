"""Locks that make one index safe for one writer and many readers, across processes.

Two locks, both files in the index directory:

- ``writer.lock`` is held for a whole ingest or lexical rebuild: one writer at a time. Readers never take it; a reader
  that finds the lexical index behind the store rebuilds it only if it can take this lock at once, and otherwise
  answers from the previous, complete version.
- ``store.lock`` guards the embedded Chroma files. Chroma rewrites its HNSW files the first time a process touches a
  collection (measured: ``count()`` on a fresh client rewrites them, even in a process that only reads), so two
  processes doing that at once, or one doing it while another writes a batch, can leave files that no process can
  load. Readers hold it while they open the store, the writer around each batch it writes, so an ask during a long
  ingest waits for at most one batch.

A read-only index directory cannot hold lock files: there, nothing writes, so readers go without them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

WRITER_LOCK = "writer.lock"
STORE_LOCK = "store.lock"
# How long a writer waits for another writer before saying who holds the index (an ingest can take hours).
WRITER_WAIT_SECONDS = 24 * 3600.0


class IndexBusy(RuntimeError):
    """Another process is writing this index."""


def writable(index_dir: Path) -> bool:
    """Whether this process may write in ``index_dir`` (a directory not yet made counts as writable)."""
    existing = next((path for path in (index_dir, *index_dir.parents) if path.exists()), None)
    return existing is not None and os.access(existing, os.W_OK)


@contextmanager
def writer_lock(index_dir: Path, wait: float = WRITER_WAIT_SECONDS) -> Iterator[None]:
    """Hold the single-writer lock; ``wait=0`` gives up at once (``IndexBusy``) when another process has it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / WRITER_LOCK))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise IndexBusy(f"another process is writing the index in {index_dir}") from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def store_lock(index_dir: Path) -> Iterator[None]:
    """Sole hold on the Chroma files, while a process opens the store or writes a batch."""
    if not writable(index_dir):
        yield
        return
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / STORE_LOCK, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def writer_busy(index_dir: Path) -> bool:
    """Whether another process is writing the index now (an ingest under way)."""
    if not (index_dir / WRITER_LOCK).exists() or not writable(index_dir):
        return False
    try:
        with writer_lock(index_dir, wait=0):
            return False
    except IndexBusy:
        return True
