"""Pure parts of the index's robustness: manifest and catalogue, catalogue reconciliation, lexical stamps, text
decoding, settings edge cases, the login throttle, and the CLI's index argument."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from rag.cli import index_dir_from
from rag.indexing import catalogue_changes
from rag.loading import decode_text, load_corpus
from rag.manifest import CatalogueEntry, IndexManifest
from rag.retrieval import file_stamps
from rag.settings import SettingsError, load_settings
from rag.store import StoredDocument, store_file_problem
from rag.throttle import LoginThrottle


def entry(key: str, title: str, passages: int = 1) -> CatalogueEntry:
    return CatalogueEntry(key, title, f"/corpus/{key}.txt", "", "", passages, "hash")


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
    assert [e.doc_key for e in manifest.articles("fp", query="renamed")] == ["k000"]
    assert manifest.article_count("fp") == 119 and manifest.article_count("fp", "title 09") == 10
    assert manifest.article_count("other") == 0 and manifest.fingerprints() == ["fp"]
    manifest.forget_store("fp")
    forgotten = manifest.read("fp")
    assert forgotten is not None and (forgotten.articles, forgotten.roots) == (0, ("/a", "/b", "/c"))
    assert forgotten.generation == 3


def stored(key: str) -> StoredDocument:
    return StoredDocument(key, f"/corpus/{key}", "hash", True, key.title())


def test_catalogue_changes_list_exactly_the_stored_articles_and_mend_a_killed_run() -> None:
    before = {key: stored(key) for key in ("kept", "gone", "missed")}
    written = {"new": entry("new", "New")}
    # "missed" was stored by a run killed before it wrote the catalogue; "stale" is a row of an article not stored.
    upserts, removed = catalogue_changes(before, written, {"gone"}, {"kept", "gone", "stale"})
    assert [e.doc_key for e in upserts] == ["new", "missed"]
    assert removed == {"gone", "stale"}


def test_lexical_file_stamps_see_a_changed_byte(tmp_path: Path) -> None:
    (tmp_path / "a.npy").write_bytes(b"x" * 1000)
    before = file_stamps(tmp_path)
    with open(tmp_path / "a.npy", "r+b") as handle:
        handle.seek(500)
        handle.write(b"y")
    assert file_stamps(tmp_path) != before and file_stamps(tmp_path)["a.npy"][0] == 1000


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
