"""The index under a hostile but fair user, with real processes and the real embedded Chroma: damaged and deleted
stores, damaged lexical files, concurrent asks during an ingest, SIGKILL at random moments, a large collection,
a huge file, and the catalogue the UI lists."""

from __future__ import annotations

import codecs
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS, run_module

from rag.manifest import IndexManifest
from rag.pipeline import Assistant
from rag.retrieval import current_lexical_version
from rag.settings import Settings, load_settings
from rag.store import PassageStore

pytestmark = pytest.mark.usefixtures("no_rag_env")

QUESTION = "When did Iraqi forces declare victory in Mosul?"


def settings_for(index: Path) -> Settings:
    return load_settings({"index_dir": str(index)}, environ={})


def passage_ids(index: Path) -> set[str]:
    """The passage ids of the index as it is on disk now (Chroma caches one client per path and process, which
    would still see the store another process replaced)."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    settings = settings_for(index)
    return set(PassageStore(index, settings.fingerprint).passage_ids())


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a failed run: no traceback, no signal death."""
    assert done.returncode > 0, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "Segmentation" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.fixture(scope="module")
def seed_copy_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seed index built once for this module; each damage test copies it."""
    index = tmp_path_factory.mktemp("robust") / "index"
    assert Assistant(settings_for(index)).ingest([SEEDS]).new == 2
    return index


@pytest.fixture
def seed_copy(seed_copy_source: Path, tmp_path: Path) -> Path:
    index = tmp_path / "index"
    shutil.copytree(seed_copy_source, index)
    return index


# --- damage: every case is one line naming the fix, and the fix works -----------------------------------------------


def scribble(path: Path, offset: int, size: int, seed: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(random.Random(seed).randbytes(size))


@pytest.mark.parametrize("damage", ["truncated database", "store deleted", "malformed database header"])
def test_a_damaged_store_is_never_replaced_by_the_seeds_and_rebuild_restores_it(seed_copy: Path,
                                                                              damage: str) -> None:
    before = passage_ids(seed_copy)
    database = seed_copy / "chroma" / "chroma.sqlite3"
    if damage == "truncated database":
        database.write_bytes(b"")
    elif damage == "store deleted":
        shutil.rmtree(seed_copy / "chroma")
    else:
        scribble(database, 0, 16, seed=1)
    asked = run_module("rag.ask", QUESTION, "--index", str(seed_copy))
    error = one_line_error(asked)
    assert str(seed_copy) in error and f"python -m rag.ingest --rebuild --index {seed_copy}" in error
    assert "no index yet" not in asked.stderr and asked.stdout == ""
    checked = run_module("rag.ingest", "--check", "--index", str(seed_copy))
    assert checked.returncode == 1 and "--rebuild" in checked.stdout and "Traceback" not in checked.stderr
    if damage != "store deleted":
        return  # the repair is the same for all three; one shows it (each run costs seconds of start-up)
    ingested = run_module("rag.ingest", str(SEEDS / "000_ddbd021a6e61dfd0.txt"), "--index", str(seed_copy))
    assert "--rebuild" in one_line_error(ingested)

    rebuilt = run_module("rag.ingest", "--rebuild", "--index", str(seed_copy))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "2 new" in rebuilt.stderr
    assert passage_ids(seed_copy) == before
    assert run_module("rag.ingest", "--check", "--index", str(seed_copy)).returncode == 0
    answered = run_module("rag.ask", QUESTION, "--index", str(seed_copy))
    assert answered.returncode == 0 and "July 10" in answered.stdout


def test_a_crash_in_native_code_is_one_line_naming_the_fix(seed_copy: Path) -> None:
    # A real segfault where Chroma's native code would crash on damaged HNSW files: the first touch of the store.
    code = ("import ctypes, runpy, sys, rag.store\n"
            "rag.store.open_client = lambda *args: ctypes.string_at(0)\n"
            f"sys.argv = ['rag.ask', {QUESTION!r}, '--index', {str(seed_copy)!r}]\n"
            "runpy.run_module('rag.ask', run_name='__main__')\n")
    asked = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           check=False)
    error = one_line_error(asked)
    assert "SIGSEGV" in error and "--rebuild" in error and str(seed_copy) in error


def test_damaged_lexical_files_are_rebuilt_by_the_next_ask_and_the_next_ingest(seed_copy: Path) -> None:
    settings = settings_for(seed_copy)
    found = current_lexical_version(settings)
    assert found is not None
    scribble(found[0] / "data.csc.index.npy", 0, 64, seed=2)
    assert current_lexical_version(settings) is None
    checked = run_module("rag.ingest", "--check", "--index", str(seed_copy))
    assert checked.returncode == 1 and "lexical (BM25) index is missing or damaged" in checked.stdout
    asked = run_module("rag.ask", QUESTION, "--index", str(seed_copy))
    assert asked.returncode == 0 and "July 10" in asked.stdout and "rebuilding it" in asked.stderr
    assert current_lexical_version(settings) is not None

    found = current_lexical_version(settings)
    assert found is not None
    (found[0] / "corpus.jsonl").write_text("garbage\n")
    ingested = run_module("rag.ingest", str(SEEDS), "--index", str(seed_copy))
    assert ingested.returncode == 0 and "0 new, 0 changed, 2 unchanged" in ingested.stderr
    assert current_lexical_version(settings) is not None
    assert run_module("rag.ingest", "--check", "--index", str(seed_copy)).returncode == 0


def test_only_an_empty_directory_is_no_index_yet(tmp_path: Path) -> None:
    index = tmp_path / "not-an-index"
    index.mkdir()
    (index / "notes.txt").write_text("mine")
    asked = run_module("rag.ask", QUESTION, "--index", str(index))
    assert "not empty" in one_line_error(asked)
    assert sorted(path.name for path in index.iterdir()) == ["notes.txt"]


def test_an_index_whose_every_file_was_skipped_says_so_and_takes_articles(tmp_path: Path) -> None:
    index, empty = tmp_path / "index", tmp_path / "empty.txt"
    empty.write_text("")
    assert run_module("rag.ingest", str(empty), "--index", str(index)).returncode == 1  # skipped by name
    error = one_line_error(run_module("rag.ask", QUESTION, "--index", str(index)))
    checked = run_module("rag.ingest", "--check", "--index", str(index))
    assert checked.returncode == 1
    for said in (error, checked.stdout + checked.stderr):
        assert "no articles are indexed" in said and "interrupted" not in said and "--rebuild" not in said
    assert run_module("rag.ingest", str(SEEDS), "--index", str(index)).returncode == 0
    asked = run_module("rag.ask", QUESTION, "--index", str(index))
    assert asked.returncode == 0 and "July 10" in asked.stdout, asked.stderr


def test_links_that_lead_to_each_other_are_skipped_by_name_and_the_rest_goes_on(tmp_path: Path) -> None:
    folder, index = tmp_path / "articles", tmp_path / "index"
    folder.mkdir()
    (folder / "a.txt").symlink_to(folder / "b.txt")
    (folder / "b.txt").symlink_to(folder / "a.txt")
    shutil.copy(SEEDS / "000_ddbd021a6e61dfd0.txt", folder / "story.txt")
    for run in range(2):  # the second run finds the article unchanged and the loop still named
        done = run_module("rag.ingest", str(folder), "--index", str(index))
        assert done.returncode == 1 and "Traceback" not in done.stderr and "error:" not in done.stderr, done.stderr
        assert done.stderr.count(": cannot read: a loop of symbolic links") == 2
        assert ("1 new" if run == 0 else "1 unchanged") in done.stderr
    asked = run_module("rag.ask", QUESTION, "--index", str(index))
    assert asked.returncode == 0 and "July 10" in asked.stdout, asked.stderr


def test_a_read_only_index_can_be_asked(seed_copy: Path, tmp_path: Path) -> None:
    # Root ignores file modes, so the index is made read-only by a read-only bind mount in a private namespace.
    script = tmp_path / "ask-read-only.sh"
    script.write_text(f"mount --bind -o ro {seed_copy} {seed_copy} && exec {sys.executable} -m rag.ask '{QUESTION}' "
                      f"--index {seed_copy}\n")
    done = subprocess.run(["unshare", "-m", "sh", str(script)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "July 10" in done.stdout


# --- scale ----------------------------------------------------------------------------------------------------------


def test_more_than_40000_records_are_ingested_and_answered(tmp_path: Path) -> None:
    records = tmp_path / "many.jsonl"
    towns = ["Karsh", "Zarqa", "Tabqa", "Qaim", "Rawa", "Hit", "Ana", "Baiji"]
    with open(records, "w", encoding="utf-8") as handle:
        for n in range(40_500):
            text = f"Depot {n} in {towns[n % len(towns)]} reopened."
            handle.write(json.dumps({"id": f"r{n}", "title": f"Depot {n}", "text": text}) + "\n")
    index = tmp_path / "index"
    started = time.perf_counter()
    # Big model batches: for texts this short, the per-batch overhead is most of the embedding time.
    ingested = run_module("rag.ingest", str(records), "--index", str(index), timeout=1800,
                          env={"RAG_EMBED_BATCH_SIZE": "256"})
    assert ingested.returncode == 0, ingested.stderr
    assert "40500 new" in ingested.stderr
    print(f"40,500 records ingested in {time.perf_counter() - started:.0f} s")
    asked = run_module("rag.ask", "Which depot in Baiji reopened, depot 40495?", "--json", "--index", str(index))
    assert asked.returncode == 0, asked.stderr
    payload = json.loads(asked.stdout)
    assert any(passage["doc_id"] == "r40495" for passage in payload["passages"])
    store = PassageStore(index, settings_for(index).fingerprint)
    assert store.count() == 40_500 and store.article_count() == 40_500
    assert [row.title for row in store.articles(offset=0, limit=2, query="depot 4049")] == ["Depot 4049",
                                                                                          "Depot 40490"]

    # Random bytes in the persisted HNSW files (the seed index is too small to have any: Chroma keeps its log).
    for number, path in enumerate(sorted((index / "chroma").glob("*/data_level0.bin"))):
        scribble(path, 1000, 200_000, seed=number)
    asked = run_module("rag.ask", "Which depot in Baiji reopened?", "--index", str(index))
    assert asked.returncode >= 0 and "Traceback" not in asked.stderr, asked.stderr
    if asked.returncode:
        assert "--rebuild" in one_line_error(asked)
    checked = run_module("rag.ingest", "--check", "--index", str(index))
    assert checked.returncode == 1 and "--rebuild" in checked.stdout, checked.stdout


def test_a_50_mb_file_is_refused_in_under_a_second(tmp_path: Path, seed_copy: Path) -> None:
    big = tmp_path / "big.txt"
    with open(big, "w", encoding="utf-8") as handle:
        sentence = "Troops entered the town on Monday, the governor said. " * 1000
        while handle.tell() < 50_000_000:
            handle.write(sentence + "\n\n")
    started = time.perf_counter()
    loaded = run_module("rag.ingest", str(big), "--index", str(seed_copy))
    assert loaded.returncode == 1 and "over the 4 MB limit (max_article_mb" in loaded.stderr, loaded.stderr
    skipped = [line for line in loaded.stderr.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and "big.txt" in skipped[0]
    assert time.perf_counter() - started < 30  # the process, imports included; the refusal itself is below
    from rag.loading import load_corpus

    started = time.perf_counter()
    assert load_corpus([big]).problems
    assert time.perf_counter() - started < 1.0


def test_a_utf16_article_is_cited_exactly_from_its_decoded_text(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = "Dam reopens in Tabqa\r\n\r\nEngineers reopened the Tabqa dam on May 21 after six months of repairs.\r\n"
    (corpus / "dam.txt").write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    index = tmp_path / "index"
    assert run_module("rag.ingest", str(corpus), "--index", str(index)).returncode == 0
    asked = run_module("rag.ask", "When did the Tabqa dam reopen?", "--json", "--top-k", "41", "--index", str(index))
    assert asked.returncode == 0, asked.stderr
    payload = json.loads(asked.stdout)
    for hit in payload["citations"] + payload["passages"]:
        source = hit["source"] if os.path.isabs(hit["source"]) else str(ROOT / hit["source"])
        with open(source, encoding="utf-8", newline="") as handle:
            decoded = handle.read()
        assert decoded == text
        assert decoded[hit["start"] : hit["end"]] in (hit.get("quote"), hit.get("text"))


# --- the catalogue the UI lists ---------------------------------------------------------------------------------------


def test_the_catalogue_follows_ingests_and_is_mended_after_a_lost_row(seed_copy: Path, tmp_path: Path) -> None:
    settings = settings_for(seed_copy)
    store = PassageStore(seed_copy, settings.fingerprint)
    rows = store.articles()
    assert store.article_count() == 2 and {row.passages for row in rows} == set(
        {key: doc.row.passages for key, doc in store.documents().items()}.values())
    assert [row.title for row in store.articles(query="islamic state suffers")] == [
        "Islamic State suffers defeats in Iraq and Syria"]
    # A run killed between the store and the catalogue: the next ingest puts the row back.
    with IndexManifest(seed_copy)._connect() as db:
        db.execute("DELETE FROM articles WHERE title LIKE 'Territorial%'")
    assert store.article_count() == 1
    records = tmp_path / "news.jsonl"
    records.write_text(json.dumps({"id": "n1", "title": "Dam", "date": "2017-05-21", "text": "The dam reopened."})
                       + "\n", encoding="utf-8")
    assert run_module("rag.ingest", str(records), "--index", str(seed_copy)).returncode == 0
    assert store.article_count() == 3
    [dam] = store.articles(query="dam")
    assert (dam.date, dam.passages, dam.source.endswith("news.jsonl#n1")) == ("2017-05-21", 1, True)


def test_a_catalogue_from_an_earlier_version_is_filled_once_from_the_store(seed_copy: Path) -> None:
    import sqlite3

    from rag.integrity import check_index
    from rag.store import CatalogueOutdated

    settings = settings_for(seed_copy)
    listed = PassageStore(seed_copy, settings.fingerprint).articles()
    lexical = current_lexical_version(settings)
    # The catalogue as the version before the library's columns wrote it.
    with sqlite3.connect(seed_copy / "index.sqlite3") as db:
        db.executescript("".join(f"DROP INDEX articles_by_{name};" for name in ("sort_key", "short_id", "path"))
                         + "".join(f"ALTER TABLE articles DROP COLUMN {column};" for column in
                                   ("path", "source", "topic", "short_id", "sort_key", "searchable"))
                         + "ALTER TABLE manifest DROP COLUMN catalogue;")
    store = PassageStore(seed_copy, settings.fingerprint)
    assert store.article_count() == 2  # the start-up stats still read
    with pytest.raises(CatalogueOutdated, match="earlier version: restart the app"):
        store.articles()
    assert any("catalogue is in an earlier format" in problem for problem in check_index(settings))
    messages: list[str] = []
    assert Assistant(settings).ensure_index(messages.append) is None
    assert any("article catalogue" in message for message in messages)
    assert store.articles() == listed and store.article(listed[0].id) == listed[0]
    # Only the catalogue was written: same generation, same lexical version, nothing to report.
    assert current_lexical_version(settings) == lexical and check_index(settings) == []


def test_a_removal_builds_the_lexical_index_whole_when_its_version_cannot_be_masked(seed_copy: Path,
                                                                                     tmp_path: Path) -> None:
    from rag.retrieval import IDS_FILE, STAMP_FILE, lexical_index_current
    from rag.ui.handlers import ChatHandlers

    settings = settings_for(seed_copy)
    handlers = ChatHandlers(Assistant(settings))
    upload = tmp_path / "dam.txt"
    upload.write_text("Karsh dam reopens\n\nThe Karsh dam reopened on May 21 after the floods.\n", encoding="utf-8")
    handlers.upload([str(upload)])
    [dam] = handlers.assistant.store.articles(query="karsh")
    # A lexical version as the version before passage id lists wrote it (whole, current, but with no ids.json).
    found = current_lexical_version(settings)
    assert found is not None
    (found[0] / IDS_FILE).unlink()
    stamp = json.loads((found[0] / STAMP_FILE).read_text())
    del stamp["files"][IDS_FILE]
    (found[0] / STAMP_FILE).write_text(json.dumps(stamp))
    assert lexical_index_current(settings, handlers.assistant.store)
    assert handlers.remove(dam.id) == ("Removed dam.txt: 1 article and their passages left the index.", False)
    rebuilt = current_lexical_version(settings)
    assert rebuilt is not None and lexical_index_current(settings, handlers.assistant.store)
    assert IDS_FILE in rebuilt[1].files and all((rebuilt[0] / name).stat().st_nlink == 1 for name in rebuilt[1].files)
    answer = handlers.assistant.ask("When did the Karsh dam reopen?")
    assert not answer.answerable and not any(hit.source.endswith("dam.txt") for hit in answer.passages)


def test_a_lexical_index_from_before_initials_is_rebuilt_with_them(seed_copy: Path) -> None:
    from rag.retrieval import INITIALS_FILE, STAMP_FILE, lexical_index_current

    settings = settings_for(seed_copy)
    # A lexical version as a build before names by their initials wrote it: whole and current otherwise.
    found = current_lexical_version(settings)
    assert found is not None
    (found[0] / INITIALS_FILE).unlink()
    stamp = json.loads((found[0] / STAMP_FILE).read_text())
    del stamp["files"][INITIALS_FILE]
    (found[0] / STAMP_FILE).write_text(json.dumps(stamp))
    assistant = Assistant(settings)
    assert current_lexical_version(settings) is not None and not lexical_index_current(settings, assistant.store)
    messages: list[str] = []
    assert assistant.ensure_index(messages.append) is None
    assert messages == ["the lexical index is behind the stored passages, damaged, or from an earlier version: "
                        "rebuilding it"]
    rebuilt = current_lexical_version(settings)
    assert rebuilt is not None and lexical_index_current(settings, assistant.store)
    assert json.loads((rebuilt[0] / INITIALS_FILE).read_text())["sdf"] == ["Syrian Democratic Forces"]
    assert assistant.ask("who dominates the SDF").asked == "who dominates the Syrian Democratic Forces"


def test_a_removal_killed_halfway_is_finished_by_removing_again(seed_copy: Path, tmp_path: Path) -> None:
    from rag.indexing import index_versions
    from rag.integrity import check_index
    from rag.ui.handlers import ChatHandlers

    settings = settings_for(seed_copy)
    handlers = ChatHandlers(Assistant(settings))
    upload = tmp_path / "dam.txt"
    upload.write_text("Karsh dam reopens\n\nThe Karsh dam reopened on May 21 after the floods.\n\nWater levels "
                      "rose by two metres, the authority said.\n", encoding="utf-8")
    handlers.upload([str(upload)])
    store = handlers.assistant.store
    [dam] = store.articles(query="karsh")
    # Killed after taking the file away, bumping the generation and deleting the passages, before the catalogue and
    # the lexical index were written.
    kept = seed_copy / "uploads" / ".removed-killed"
    kept.mkdir()
    Path(dam.path).rename(kept / "dam.txt")
    store.manifest.begin_write(settings.fingerprint, [], str(seed_copy / "chroma"), index_versions())
    assert store.delete_document(dam.key)
    # The next start answers without it (the lexical index is rebuilt), lists it still, and removes it on request.
    restarted = ChatHandlers(Assistant(settings))
    restarted.assistant.ensure_index(lambda message: None)
    assert not restarted.assistant.ask("When did the Karsh dam reopen?").answerable
    assert restarted.assistant.store.article(dam.id) == dam
    message, failed = restarted.remove(dam.id)
    assert (message, failed) == ("Removed dam.txt: 1 article and their passages left the index.", False)
    assert restarted.assistant.store.article_count("karsh") == 0
    assert not store.passages.get(where={"doc_key": dam.key}, include=[])["ids"] and check_index(settings) == []


# --- concurrency and kills ------------------------------------------------------------------------------------------


def make_stale(index: Path) -> None:
    """Bump the store generation, as an ingest killed before its lexical rebuild does."""
    manifest = IndexManifest(index)
    settings = settings_for(index)
    manifest.begin_write(settings.fingerprint, [], str(index / "chroma"), {})
    store = PassageStore(index, settings.fingerprint)
    manifest.finish_write(settings.fingerprint, [], [], store.count())


def test_eight_concurrent_asks_on_a_stale_index_during_an_ingest(seed_copy: Path, tmp_path: Path) -> None:
    make_stale(seed_copy)
    extra = tmp_path / "extra.jsonl"
    extra.write_text("".join(json.dumps({"id": f"e{n}", "text": f"The market in town {n} reopened on Friday."}) + "\n"
                             for n in range(60)), encoding="utf-8")
    with ThreadPoolExecutor(max_workers=9) as pool:
        ingest = pool.submit(run_module, "rag.ingest", str(extra), "--index", str(seed_copy))
        asks = [pool.submit(run_module, "rag.ask", QUESTION, "--json", "--index", str(seed_copy)) for _ in range(8)]
        answers = [future.result() for future in asks]
        ingested = ingest.result()
    assert ingested.returncode == 0, ingested.stderr
    for done in answers:
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["short_answer"] == "July 10"
    checked = run_module("rag.ingest", "--check", "--index", str(seed_copy))
    assert checked.returncode == 0, checked.stdout
    assert len(passage_ids(seed_copy)) > 60


def start_ingest(corpus: Path, index: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "rag.ingest", str(corpus), "--index", str(index)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_line(process: subprocess.Popen[str], text: str) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        if text in line:
            return


def timed_ingest(corpus: Path, index: Path) -> tuple[float, float]:
    """A clean ingest: seconds until it starts writing articles, and seconds from then to its end."""
    started = time.perf_counter()
    process = start_ingest(corpus, index)
    wait_for_line(process, "indexing")
    writing = time.perf_counter()
    assert process.wait() == 0
    return writing - started, time.perf_counter() - writing


def killed(process: subprocess.Popen[str], delay: float) -> bool:
    """SIGKILL ``process`` after ``delay`` s; False if it had ended by then."""
    try:
        process.wait(timeout=delay)
        alive = False
    except subprocess.TimeoutExpired:
        alive = True
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.stderr is not None
    process.stderr.close()
    return alive


def test_ingest_killed_at_random_moments_ends_with_the_clean_run_ids(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus, ignore=shutil.ignore_patterns("README*"))
    (corpus / "wire.jsonl").write_text("".join(
        json.dumps({"id": f"w{n}", "title": f"Wire {n}", "text": f"Convoy {n} reached Raqqa. Aid was delivered."})
        + "\n" for n in range(150)), encoding="utf-8")
    clean = tmp_path / "clean"
    before_writing, writing = timed_ingest(corpus, clean)
    expected = passage_ids(clean)

    rng = random.Random(11)
    kills, rebuilds = 0, 0
    for round_ in range(100):
        if kills >= 30:
            break
        # Each round starts afresh: once an ingest completes there is nothing left to interrupt.
        index = tmp_path / f"killed-{round_}"
        for _ in range(10):
            process = start_ingest(corpus, index)
            if rng.random() < 0.25:  # anywhere in the run
                alive = killed(process, rng.uniform(0, before_writing + writing))
            else:  # while articles are embedded and written, the moments that matter
                wait_for_line(process, "indexing")
                alive = killed(process, rng.uniform(0, writing))
            if not alive:  # it completed: nothing is left to interrupt in this round
                break
            kills += 1
        finished = run_module("rag.ingest", str(corpus), "--index", str(index))
        assert "Traceback" not in finished.stderr
        if finished.returncode:
            assert "--rebuild" in one_line_error(finished)
            finished = run_module("rag.ingest", "--rebuild", "--index", str(index))
            rebuilds += 1
        assert finished.returncode == 0, finished.stderr
        assert passage_ids(index) == expected
    asked = run_module("rag.ask", QUESTION, "--index", str(index))
    assert asked.returncode == 0 and "July 10" in asked.stdout and "no index yet" not in asked.stderr
    assert run_module("rag.ingest", "--check", "--index", str(index)).returncode == 0
    assert kills >= 30
    print(f"{kills} kills, {rebuilds} rebuilds needed")
