"""Pure parts of the index's robustness: manifest and catalogue, catalogue reconciliation, lexical stamps, text
decoding, streamed loading, ingest progress and its report, settings edge cases, the login throttle, and the CLI's
index argument."""

from __future__ import annotations

import codecs
import io
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.cleaning import TITLE_CHARS, as_title
from rag.cli import index_dir_from
from rag.indexing import IngestReport, Progress, catalogue_changes, duplicates_line, format_duration, time_left
from rag.loading import decode_text, estimate_articles, load_corpus, stream_corpus
from rag.manifest import CATALOGUE_VERSION, ArticleRow, IndexManifest
from rag.retrieval import VERIFIED_FILE, file_stamps, files_as_stamped, removal_mask
from rag.settings import SettingsError, load_settings
from rag.store import (
    WRITE_BATCH,
    StoredDocument,
    StoredSentence,
    paged_get,
    sentence_fields,
    sentences_from_fields,
    store_file_problem,
)
from rag.throttle import LoginThrottle


def entry(key: str, title: str, passages: int = 1, source: str = "", topic: str = "", path: str = "") -> ArticleRow:
    path = path or f"/corpus/{key}.txt"
    return ArticleRow(key, title, source or Path(path).name, "", passages, topic, path, path, "", "hash")


def test_manifest_records_roots_generations_and_a_paged_catalogue(tmp_path: Path) -> None:
    manifest = IndexManifest(tmp_path)
    assert manifest.read("fp") is None and not manifest.exists()
    assert manifest.begin_write("fp", ["/a", "/b"], "/idx/chroma", {"pipeline": "1"}) == 1
    state = manifest.read("fp")
    assert state is not None and (state.roots, state.state, state.held_articles) == (("/a", "/b"), "writing", True)
    manifest.finish_write("fp", [entry(f"k{n:03}", f"Title {n:03}") for n in range(120)], [], 300)
    assert manifest.begin_write("fp", ["/b", "/c"], "/idx/chroma", {"pipeline": "1"}) == 2
    manifest.finish_write("fp", [entry("k000", "Renamed")], ["k001"], 299)
    state = manifest.read("fp")
    assert state is not None
    assert (state.roots, state.articles, state.passages, state.state) == (("/a", "/b", "/c"), 119, 299, "ok")
    page = manifest.articles("fp", offset=10, limit=5)
    # "Renamed" sorts first and "Title 001" was removed.
    assert [e.title for e in page] == ["Title 011", "Title 012", "Title 013", "Title 014", "Title 015"]
    assert [e.key for e in manifest.articles("fp", query="renamed")] == ["k000"]
    # Each word anywhere in the title or source: Title 009, Title 090 to 099, and Title 109 (its source k109.txt).
    assert manifest.article_count("fp") == 119 and manifest.article_count("fp", "title 09") == 12
    assert manifest.article_count("other") == 0 and manifest.fingerprints() == ["fp"]
    manifest.forget_store("fp")
    forgotten = manifest.read("fp")
    assert forgotten is not None and (forgotten.articles, forgotten.roots) == (0, ("/a", "/b", "/c"))
    assert forgotten.generation == 3


def test_the_library_lists_and_searches_the_catalogue_as_python_would(tmp_path: Path) -> None:
    manifest = IndexManifest(tmp_path)
    manifest.begin_write("fp", ["/c"], "/idx/chroma", {})
    rows = [entry("/c/depot-14049.txt", "Depot 14049 closes", topic="trade"),
            entry("/c/depot-4049.txt", "Depot 4049 closes", topic="trade"),
            entry("/c/b.jsonl#7", "Élan vital", source="b.jsonl#7", topic="ÉCONOMIE", path="/c/b.jsonl"),
            entry("/c/b.jsonl#8", "zebra crossing", source="b.jsonl#8", path="/c/b.jsonl"),
            entry("/c/strasse.txt", "Straße repairs")]
    manifest.finish_write("fp", rows, [], 5)
    # By title in any case (Python's casefold: "é" after "z", as sorted() puts it), then key.
    listed = manifest.articles("fp")
    assert listed == sorted(rows, key=lambda row: (row.title.casefold(), row.key))
    assert [row.title for row in listed] == ["Depot 14049 closes", "Depot 4049 closes", "Straße repairs",
                                             "zebra crossing", "Élan vital"]
    # Every word, in the title, source or topic; the titles holding the query as typed first.
    assert [row.title for row in manifest.articles("fp", query="4049 DEPOT")] == ["Depot 14049 closes",
                                                                                "Depot 4049 closes"]
    assert [row.title for row in manifest.articles("fp", query="depot 4049")] == ["Depot 4049 closes",
                                                                                "Depot 14049 closes"]
    assert [row.title for row in manifest.articles("fp", query="économie")] == ["Élan vital"]
    assert [row.title for row in manifest.articles("fp", query="STRASSE")] == ["Straße repairs"]
    assert [row.title for row in manifest.articles("fp", query="b.jsonl#8")] == ["zebra crossing"]
    assert manifest.article_count("fp", "trade closes") == 2 and manifest.article_count("fp", "trade zebra") == 0
    assert manifest.articles("fp", offset=3, limit=5) == listed[3:]
    # One article by its key or its short id; a file's articles by its path.
    elan = rows[2]
    assert manifest.article("fp", elan.id) == elan == manifest.article("fp", elan.key)
    assert manifest.article("fp", "missing") is None and manifest.article("other", elan.id) is None
    assert manifest.articles_of_file("fp", "/c/b.jsonl") == [rows[2], rows[3]]


OLD_CATALOGUE = """
CREATE TABLE manifest (
    fingerprint TEXT PRIMARY KEY, roots TEXT NOT NULL, articles INTEGER NOT NULL, passages INTEGER NOT NULL,
    generation INTEGER NOT NULL, state TEXT NOT NULL, versions TEXT NOT NULL, store TEXT NOT NULL);
CREATE TABLE articles (
    fingerprint TEXT NOT NULL, doc_key TEXT NOT NULL, title TEXT NOT NULL, text_path TEXT NOT NULL,
    record_id TEXT NOT NULL, date TEXT NOT NULL, passages INTEGER NOT NULL, content_hash TEXT NOT NULL,
    PRIMARY KEY (fingerprint, doc_key));
CREATE INDEX articles_by_title ON articles (fingerprint, title COLLATE NOCASE);
INSERT INTO manifest VALUES ('fp', '["/c"]', 1, 3, 4, 'ok', '{}', '/idx/chroma');
INSERT INTO articles VALUES ('fp', '/c/a.txt', 'Dam reopens', '/c/a.txt', '', '2017-05-21', 3, 'hash');
"""


def test_a_catalogue_from_before_the_library_columns_gets_them_and_asks_to_be_filled(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "index.sqlite3") as db:
        db.executescript(OLD_CATALOGUE)
    manifest = IndexManifest(tmp_path)
    # The count and the manifest read as before; the rows are not in the current format until written again.
    assert manifest.article_count("fp") == 1 and not manifest.catalogue_current("fp")
    state = manifest.read("fp")
    assert state is not None and (state.generation, state.articles) == (4, 1)
    with sqlite3.connect(tmp_path / "index.sqlite3") as db:
        assert {row[1] for row in db.execute("PRAGMA index_list(articles)")} >= {"articles_by_sort_key",
                                                                                  "articles_by_short_id"}
    manifest.begin_write("fp", [], "/idx/chroma", {}, changes=False)
    assert not manifest.catalogue_current("fp")
    dam = entry("/c/a.txt", "Dam reopens", 3)
    manifest.finish_write("fp", [dam], [], 3)
    assert manifest.catalogue_current("fp") and manifest.articles("fp", query="a.txt") == [dam]
    # A new index starts with a current (empty) catalogue.
    manifest.begin_write("new", ["/d"], "/idx/chroma", {})
    assert manifest.catalogue_current("new") and CATALOGUE_VERSION >= 2


def stored(key: str) -> StoredDocument:
    return StoredDocument(key, f"/corpus/{key}", "hash", True, entry(key, key.title()))


def test_catalogue_changes_list_exactly_the_stored_articles_and_mend_a_killed_run() -> None:
    before = {key: stored(key) for key in ("kept", "gone", "missed")}
    written = {"new": entry("new", "New")}
    # "missed" was stored by a run killed before it wrote the catalogue; "stale" is a row of an article not stored.
    upserts, removed = catalogue_changes(before, written, {"gone"}, {"kept", "gone", "stale"})
    assert [e.key for e in upserts] == ["new", "missed"]
    assert removed == {"gone", "stale"}
    # A catalogue in an earlier format: every stored row is written again.
    upserts, removed = catalogue_changes(before, written, {"gone"}, {"kept", "gone", "stale"}, rewrite=True)
    assert [e.key for e in upserts] == ["new", "kept", "missed"] and removed == {"gone", "stale"}


def test_a_removal_masks_its_passages_and_keeps_earlier_removals_masked() -> None:
    corpus = ["p1", "p2", "p3", "p4"]
    assert removal_mask(corpus, None, {"p2"}) == [1, 0, 1, 1]
    assert removal_mask(corpus, [1, 0, 1, 1], {"p4", "elsewhere"}) == [1, 0, 1, 0]
    with pytest.raises(ValueError):  # a mask that does not fit the corpus is never silently cut
        removal_mask(corpus, [1, 1], set())


def test_lexical_file_stamps_see_a_changed_byte(tmp_path: Path) -> None:
    (tmp_path / "a.npy").write_bytes(b"x" * 1000)
    before = file_stamps(tmp_path)
    with open(tmp_path / "a.npy", "r+b") as handle:
        handle.seek(500)
        handle.write(b"y")
    assert file_stamps(tmp_path) != before and file_stamps(tmp_path)["a.npy"][0] == 1000


def lexical_version(directory: Path) -> dict[str, tuple[int, int]]:
    """A version directory with two stamped files; returns their stamps."""
    directory.mkdir()
    (directory / "a.npy").write_bytes(b"x" * 1000)
    (directory / "corpus.jsonl").write_bytes(b"{}\n" * 500)
    (directory / "stamp.json").write_text("{}")
    return file_stamps(directory)


def reading_counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import rag.retrieval

    read: list[str] = []
    real = rag.retrieval.file_stamp
    monkeypatch.setattr(rag.retrieval, "file_stamp", lambda path: read.append(path.name) or real(path))
    return read


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The clock the check reads moved on (files written now look settled)."""
    now = time.time_ns()
    monkeypatch.setattr("rag.retrieval.time.time_ns", lambda: now + int(seconds * 1e9))


def test_a_verified_version_is_not_read_again_until_a_file_changes(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    version = tmp_path / "v1"
    stamps = lexical_version(version)
    read = reading_counted(monkeypatch)
    assert files_as_stamped(version, stamps) and sorted(read) == ["a.npy", "corpus.jsonl"]
    # Just written: not recorded as verified (a coarse clock could hide a second write), so read again.
    assert not (version / VERIFIED_FILE).exists()
    later(monkeypatch, 10)
    read.clear()
    assert files_as_stamped(version, stamps) and len(read) == 2 and (version / VERIFIED_FILE).is_file()
    read.clear()
    assert files_as_stamped(version, stamps) and read == []  # every later start: names, sizes and stats only
    time.sleep(0.05)  # past any filesystem clock tick: the write below gets a later ctime
    with open(version / "a.npy", "r+b") as handle:  # one byte scribbled over, same size
        handle.seek(500)
        handle.write(b"y")
    assert not files_as_stamped(version, stamps) and read == ["a.npy"]


def test_a_version_check_sees_missing_extra_and_cut_files_without_reading_them(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    version = tmp_path / "v1"
    stamps = lexical_version(version)
    read = reading_counted(monkeypatch)
    (version / "extra.npy").write_bytes(b"z")
    assert not files_as_stamped(version, stamps)
    (version / "extra.npy").unlink()
    os.truncate(version / "corpus.jsonl", 100)
    assert not files_as_stamped(version, stamps)
    (version / "a.npy").unlink()
    assert not files_as_stamped(version, stamps) and read == []


def test_a_damaged_verification_record_or_a_read_only_version_means_reading_the_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    version = tmp_path / "v1"
    stamps = lexical_version(version)
    later(monkeypatch, 10)
    (version / VERIFIED_FILE).write_text("[not a record")
    read = reading_counted(monkeypatch)
    assert files_as_stamped(version, stamps) and len(read) == 2
    (version / VERIFIED_FILE).unlink()

    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr("rag.retrieval.tempfile.NamedTemporaryFile", read_only)
    for _ in range(2):  # no record can be kept: every start reads the files, and still answers
        read.clear()
        assert files_as_stamped(version, stamps) and len(read) == 2 and not (version / VERIFIED_FILE).exists()


class PagedCollection:
    """A collection's ``get`` as Chroma pages it, counting the reads."""

    def __init__(self, size: int) -> None:
        self.ids = [f"id{n}" for n in range(size)]
        self.reads = 0

    def get(self, where: object, include: list[str], limit: int, offset: int) -> dict[str, list[str]]:
        self.reads += 1
        return {"ids": self.ids[offset : offset + limit]}


@pytest.mark.parametrize("size,reads", [(0, 1), (5, 1), (WRITE_BATCH, 2), (WRITE_BATCH + 5, 2),
                                        (2 * WRITE_BATCH + 1, 3)])
def test_paged_reads_stop_at_a_short_page(size: int, reads: int) -> None:
    collection = PagedCollection(size)
    assert [i for page in paged_get(collection, []) for i in page["ids"]] == collection.ids
    assert collection.reads == reads


def test_a_passages_sentences_survive_its_metadata_strings() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sentences = [StoredSentence("p", start, end, vector) for (start, end), vector in
                 zip([(120, 180), (181, 240), (241, 1000)], vectors, strict=True)]
    fields = sentence_fields(sentences)
    assert fields["sentence_spans"] == "120:180 181:240 241:1000"
    assert all(isinstance(value, str) for value in fields.values())
    read = sentences_from_fields("p", {"title": "t", **fields})
    assert [(s.passage_id, s.start, s.end) for s in read] == [("p", 120, 180), ("p", 181, 240), ("p", 241, 1000)]
    assert all(s.vector.dtype == np.float32 for s in read)
    # float16 storage moves a cosine between unit vectors by far less than sentence scores differ.
    query = vectors.sum(axis=0) / np.linalg.norm(vectors.sum(axis=0))
    assert np.allclose([s.vector @ query for s in read], vectors @ query, atol=1e-3)
    assert sentences_from_fields("p", sentence_fields([])) == []
    assert sentences_from_fields("p", {"title": "a passage stored without sentences"}) == []


def test_store_file_problems_are_named_before_chroma_opens_the_file(tmp_path: Path) -> None:
    database = tmp_path / "chroma" / "chroma.sqlite3"
    assert "missing" in (store_file_problem(tmp_path) or "")
    database.parent.mkdir()
    database.write_bytes(b"")
    assert "empty" in (store_file_problem(tmp_path) or "")
    database.write_bytes(b"garbage garbage garbage")
    assert "not an SQLite database" in (store_file_problem(tmp_path) or "")
    database.write_bytes(b"SQLite format 3\x00" + bytes(100))
    assert store_file_problem(tmp_path) is None


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_a_byte_order_mark_decides_the_encoding(encoding: str) -> None:
    text = "Troops entered Karsh — “on Monday”, the governor said.\r\n"
    mark = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE,
            "utf-32-le": codecs.BOM_UTF32_LE, "utf-32-be": codecs.BOM_UTF32_BE}[encoding]
    assert decode_text(mark + text.encode(encoding)) == (text, encoding[:6])
    assert decode_text(codecs.BOM_UTF8 + text.encode())[0] == "\ufeff" + text


def test_utf16_file_is_read_and_a_broken_one_named(tmp_path: Path) -> None:
    (tmp_path / "wide.txt").write_bytes(codecs.BOM_UTF16_LE + "Karsh reopens\n\nThe market reopened.\n".encode(
        "utf-16-le"))
    (tmp_path / "broken.txt").write_bytes(codecs.BOM_UTF16_LE + b"K\x00\x00\xd8")  # an unpaired surrogate
    result = load_corpus([tmp_path])
    [article] = result.articles
    assert article.extracted and article.text == "Karsh reopens\n\nThe market reopened.\n"
    [problem] = result.problems
    assert Path(problem.path).name == "broken.txt"
    assert problem.message.startswith("not UTF-8, nor UTF-16-LE as its byte-order mark says")


def test_an_article_over_the_size_limit_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("Karsh. " * 2000, encoding="utf-8")
    (tmp_path / "records.jsonl").write_text('{"id": "long", "text": "' + "word " * 400 + '"}\n'
                                            '{"id": "short", "text": "The market reopened."}\n', encoding="utf-8")
    result = load_corpus([tmp_path], max_article_bytes=1000)
    assert [article.doc_id for article in result.articles] == ["short"]
    messages = sorted(problem.message for problem in result.problems)
    assert messages[0].startswith("0.0 MB is over the 0.001 MB limit (max_article_mb")
    assert messages[1].startswith("record long is 0.0 MB, over the 0.001 MB limit")


def test_an_article_opening_with_a_paragraph_gets_its_first_words_as_its_title(tmp_path: Path) -> None:
    paragraph = " ".join(["The Karsh tunnel was dug by 400 workers in 1999."] * 40)
    (tmp_path / "long.txt").write_text(paragraph + "\n\nIt opened in 2001.\n", encoding="utf-8")
    (tmp_path / "records.jsonl").write_text(json.dumps({"id": "r", "title": "Karsh " * 100, "text": "It opened."})
                                            + "\n", encoding="utf-8")
    by_id = {article.doc_id: article for article in load_corpus([tmp_path]).articles}
    title = by_id["long.txt"].title
    assert len(title) <= TITLE_CHARS and title.endswith("1999…") and paragraph.startswith(title[:-1])
    assert by_id["long.txt"].text.startswith(paragraph)  # the text itself is untouched
    assert len(by_id["r"].title) <= TITLE_CHARS and by_id["r"].title.startswith("Karsh Karsh")


@pytest.mark.parametrize("text,title", [
    ("Dam reopens", "Dam reopens"),
    ("word " * 29 + "word", "word " * 29 + "word"),  # 149 characters: kept
    ("a" * 148 + " bb " + "c" * 40, "a" * 148 + "…"),  # the word cut at the limit is left out
    ("a    " * 40, " ".join(["a"] * 40)),  # spaces collapsed, then within the limit
    ("-" * 200, "-" * 149 + "…"),  # no word to cut at
])
def test_a_title_is_at_most_a_line(text: str, title: str) -> None:
    assert as_title(text) == title and len(as_title(text)) <= TITLE_CHARS


def test_a_named_pipe_is_skipped_by_name_not_waited_on(tmp_path: Path) -> None:
    import threading

    os.mkfifo(tmp_path / "pipe.txt")
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "news.txt").write_text("Dam reopens\n\nThe dam reopened on Monday.\n", encoding="utf-8")
    found: dict[str, Any] = {}

    def load() -> None:
        found.update(counted=estimate_articles([tmp_path]), result=load_corpus([tmp_path]))

    # Opening a pipe for reading blocks until a writer comes: a thread that never ends must not hold the test.
    reading = threading.Thread(target=load, daemon=True)
    reading.start()
    reading.join(timeout=30)
    assert not reading.is_alive(), "loading waited on a named pipe"
    counted, result = found["counted"], found["result"]
    assert counted == 3
    assert [article.doc_id for article in result.articles] == ["news.txt"]
    assert sorted((Path(problem.path).name, problem.message) for problem in result.problems) == [
        ("pipe.jsonl", "not a regular file (a pipe, socket or device)"),
        ("pipe.txt", "not a regular file (a pipe, socket or device)")]


def test_a_jsonl_file_is_streamed_and_its_problems_come_as_its_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "The market reopened."}) + "\n{oops\n\n"
                    + json.dumps({"id": "b", "text": "The dam reopened."}) + "\n", encoding="utf-8")
    result, articles = stream_corpus([path, tmp_path / "missing.jsonl"])
    assert result.origins == [str(path.resolve())] and result.problems == []
    assert next(articles).doc_id == "a" and result.problems == []
    assert next(articles).doc_id == "b"
    assert [problem.line for problem in result.problems] == [2]
    assert list(articles) == [] and [problem.message for problem in result.problems][1] == "no such file or directory"
    assert result.articles == []
    assert estimate_articles([path, tmp_path / "missing.jsonl"]) == 3


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_a_jsonl_file_with_a_byte_order_mark_is_read_line_by_line(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "wide.jsonl"
    lines = [json.dumps({"id": n, "text": f"Market {n} reopened\u2028on Friday."}, ensure_ascii=False) for n in (1, 2)]
    path.write_bytes("\n".join(lines).encode(encoding))
    result = load_corpus([path])
    assert (result.problems, [a.text for a in result.articles]) == ([], [f"Market {n} reopened\u2028on Friday."
                                                                          for n in (1, 2)])


def test_a_jsonl_file_broken_past_the_first_read_is_refused_before_any_record(tmp_path: Path) -> None:
    path = tmp_path / "late.jsonl"
    good = json.dumps({"id": "a", "text": "The market reopened."}) + "\n"
    offset = len(good.encode()) * 30_000
    path.write_bytes(good.encode() * 30_000 + b'{"id": "z", "text": "caf\xe9"}\n')
    result = load_corpus([path])
    assert result.articles == [] and result.unreadable_keys == {str(path.resolve())}
    [problem] = result.problems
    assert problem.message == f"not UTF-8 (invalid byte at offset {offset + 24})"


def test_time_left_goes_by_the_rate_over_the_samples() -> None:
    assert time_left([], 10) is None and time_left([(5.0, 3)], 10) is None
    assert time_left([(0.0, 0), (4.0, 0)], 10) is None
    assert time_left([(10.0, 100), (20.0, 120)], 200) == pytest.approx(40.0)
    assert time_left([(0.0, 0), (1.0, 12)], 10) == 0.0
    assert [format_duration(s) for s in (0.4, 42, 125, 3725)] == ["0s", "42s", "2m 05s", "1h 02m"]


def test_progress_lines_show_the_rate_and_the_time_left_until_the_last() -> None:
    stream = io.StringIO()
    progress = Progress("indexing articles", 10, stream=stream, every=0.0)
    for _ in range(3):
        progress.advance(1, "; 7 passages stored")
    progress.finish()  # the last count was shown: nothing more
    progress.advance(7)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "indexing articles: 1/10 (" + lines[0].split("(")[1]
    assert "left" not in lines[0]
    assert re.fullmatch(r"indexing articles: 3/10 \(\d+/s, \d+s left\); 7 passages stored", lines[2]), lines[2]
    assert re.fullmatch(r"indexing articles: 10/10 \(\d+/s\)", lines[3]) and len(lines) == 4
    short = Progress("indexing articles", 10, stream=stream, every=3600.0)
    short.advance(4)
    short.finish("; 5 passages stored")
    assert re.fullmatch(r"indexing articles: 4/10 \(\d+/s\); 5 passages stored", stream.getvalue().splitlines()[-1])


def test_duplicates_are_named_compactly_and_counted_in_the_summary() -> None:
    pairs = [(f"r{n}", f"r{n - 1}") for n in range(1, 13)]
    assert duplicates_line(pairs[:2]) == "not indexed, same text as an earlier article: r1 (= r0), r2 (= r1)"
    line = duplicates_line(pairs, named=3)
    assert line.endswith("r3 (= r2) and 9 more") and "r4" not in line
    report = IngestReport(new=3, duplicates=pairs)
    assert report.summary() == ("3 new, 0 changed, 0 unchanged, 0 removed; 0 passages embedded in 0.0s; "
                                "12 duplicate texts skipped (same text as an earlier article)")
    assert IngestReport(duplicates=pairs[:1]).summary().endswith("; 1 duplicate text skipped (same text as an earlier "
                                                                 "article)")
    assert IngestReport().summary().endswith("embedded in 0.0s")


def test_top_k_above_the_candidate_pool_widens_it_unless_the_pool_is_given(tmp_path: Path) -> None:
    settings = load_settings({"top_k": 41}, environ={})
    assert (settings.top_k, settings.candidates) == (41, 41)
    with pytest.raises(SettingsError, match="candidates must be at least top_k"):
        load_settings({"top_k": 41, "candidates": 40}, environ={})
    (tmp_path / "file").write_text("x")
    with pytest.raises(SettingsError, match="is a file, not a directory"):
        load_settings({"index_dir": str(tmp_path / "file")}, environ={})
    with pytest.raises(SettingsError, match="max_article_mb"):
        load_settings({}, environ={"RAG_MAX_ARTICLE_MB": "0"})


def test_the_cli_finds_the_index_a_command_line_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_INDEX_DIR", raising=False)
    assert index_dir_from(["question", "--index", "/x", "--json"]) == Path("/x")
    assert index_dir_from(["question"]) == Path(".rag")
    monkeypatch.setenv("RAG_INDEX_DIR", "/env")
    assert index_dir_from(["question"]) == Path("/env")


def test_login_throttle_waits_longer_after_each_failure_and_forgets_on_success() -> None:
    now = [100.0]
    throttle = LoginThrottle(free=3, base=1.0, cap=8.0, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("a") == 0
        throttle.failed("a")
    assert throttle.retry_after("a") == 1.0 and throttle.retry_after("b") == 0
    now[0] += 1.0
    throttle.failed("a")
    assert throttle.retry_after("a") == 2.0
    for _ in range(10):
        throttle.failed("a")
    assert throttle.retry_after("a") == 8.0  # capped
    throttle.succeeded("a")
    assert throttle.retry_after("a") == 0
