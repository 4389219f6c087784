"""Ingest end to end with the real model and Chroma: exact offsets, chrome never stored, incremental re-ingest,
interrupted runs, index fingerprints, and bad input reported by name."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from conftest import SEEDS, run_module

from rag.indexing import lexical_index_current
from rag.loading import load_corpus
from rag.pipeline import Assistant
from rag.retrieval import lexical_index_dir
from rag.settings import Settings, load_settings
from rag.store import SENTENCE_FIELDS, PassageStore, paged_get

pytestmark = pytest.mark.usefixtures("no_rag_env")

AP = "000_ddbd021a6e61dfd0.txt"
LWJ = "002_21e9abc1f7ceb01f.txt"


def stored_passages(store: PassageStore) -> dict[str, tuple[dict[str, Any], str]]:
    """Every stored passage: id -> (metadata, text)."""
    return {pid: (dict(meta), text) for got in paged_get(store.passages, ["metadatas", "documents"])
            for pid, meta, text in zip(got["ids"], got["metadatas"] or [], got["documents"] or [], strict=True)}


def ids_of(store: PassageStore, article_id: str) -> set[str]:
    return {pid for pid, (meta, _) in stored_passages(store).items() if meta["article_id"] == article_id}


def stored_sentence_count(store: PassageStore, passage_ids: set[str]) -> int:
    return sum(len(sentences) for sentences in store.sentences_of(sorted(passage_ids)).values())


def read_exact(path: str | Path) -> str:
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def assert_offsets_exact(store: PassageStore) -> None:
    """Every passage and every sentence vector's span slices the text its citation points at."""
    passages = stored_passages(store)
    assert passages
    for meta, text in passages.values():
        source = read_exact(meta["text_path"])
        assert source[meta["start"] : meta["end"]] == text
    # The sentence strings stay in the store's records, out of every node llama-index or BM25 sees.
    assert not any(set(SENTENCE_FIELDS) & set(node.metadata) for node in store.all_nodes())
    sentences = store.sentences_of(list(passages))
    for pid, (meta, _) in passages.items():
        assert sentences[pid], pid
        for sentence in sentences[pid]:
            assert meta["start"] <= sentence.start < sentence.end <= meta["end"]


def run_ingest(*args: str) -> tuple[int, str]:
    done = run_module("rag.ingest", *args)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""
    return done.returncode, done.stderr


# --- the seed index -------------------------------------------------------------------------------------------------


def test_every_stored_passage_slices_the_original_file_exactly(assistant: Assistant) -> None:
    store = assistant.store
    assert_offsets_exact(store)
    passages = stored_passages(store)
    per_article = Counter(meta["article_id"] for meta, _ in passages.values())
    assert set(per_article) == {AP, LWJ}
    for meta, _ in passages.values():
        path = SEEDS / meta["article_id"]
        assert meta["path"] == meta["text_path"] == str(path.resolve())
        assert meta["doc_hash"] == hashlib.sha256(read_exact(path).encode()).hexdigest()[:16]
        assert meta["doc_passages"] == per_article[meta["article_id"]]
        assert meta["record_id"] == ""
    titles = {meta["article_id"]: meta["title"] for meta, _ in passages.values()}
    assert titles == {AP: "Territorial losses suffered by Islamic State in Syria, Iraq",
                      LWJ: "Islamic State suffers defeats in Iraq and Syria"}


def test_stored_passages_cover_the_whole_article(assistant: Assistant) -> None:
    passages = stored_passages(assistant.store)
    for article in load_corpus([SEEDS]).articles:
        spans = sorted((m["start"], m["end"]) for m, _ in passages.values() if m["article_id"] == article.doc_id)
        for start, end in article.reporting:
            inside = [span for span in spans if start <= span[0] and span[1] <= end]
            assert inside[0][0] == start and inside[-1][1] == end
            for (_, previous_end), (next_start, _) in pairwise(inside):
                assert not article.text[previous_end:next_start].strip()


def chrome_spans() -> dict[str, list[tuple[int, int]]]:
    """Spans of the seeds that are banner, site chrome or reader comments."""
    ap, lwj = read_exact(SEEDS / AP), read_exact(SEEDS / LWJ)
    return {
        AP: [(0, ap.index("Territorial losses")), (ap.index("Share your thoughts"), len(ap))],
        LWJ: [(lwj.index("Tags:"), len(lwj))],
    }


def test_no_stored_passage_or_sentence_overlaps_chrome_or_comments(assistant: Assistant) -> None:
    passages = stored_passages(assistant.store)
    sentences = assistant.store.sentences_of(list(passages))
    spans = chrome_spans()
    for pid, (meta, text) in passages.items():
        for start, end in spans[meta["article_id"]]:
            assert meta["end"] <= start or meta["start"] >= end, (meta["article_id"], meta["start"], meta["end"])
            for sentence in sentences[pid]:
                assert sentence.end <= start or sentence.start >= end
        for comment in ("Richard Loewe", "irebukeu", "Lynn Farley", "bloggers like this", "Share your thoughts",
                        "Visit Us On", "ሐበሻ"):
            assert comment not in text


# --- incremental re-ingest ------------------------------------------------------------------------------------------


def test_unchanged_input_is_not_embedded_again(corpus_copy: Path, fresh_settings: Settings) -> None:
    assistant = Assistant(fresh_settings)
    first = assistant.ingest([corpus_copy])
    assert (first.new, first.changed, first.unchanged, first.removed) == (2, 0, 0, 0)
    assert first.passages_added > 0
    before = set(stored_passages(assistant.store))
    assert len(before) == first.passages_added

    code, stderr = run_ingest(str(corpus_copy), "--index", str(fresh_settings.index_dir))
    assert code == 0, stderr
    assert "0 new, 0 changed, 2 unchanged, 0 removed; 0 passages embedded" in stderr
    assert "skipped" not in stderr

    again = Assistant(fresh_settings).ingest([corpus_copy])
    assert (again.new, again.changed, again.unchanged, again.removed, again.passages_added) == (0, 0, 2, 0, 0)
    assert again.summary().startswith("0 new, 0 changed, 2 unchanged")
    assert set(stored_passages(assistant.store)) == before


def test_overlapping_paths_are_ingested_once(tmp_path: Path, fresh_settings: Settings) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, town in (("a.txt", "Karsh"), ("b.md", "Zarqa")):
        (corpus / name).write_text(f"Troops enter {town}\n\nGovernment troops entered {town} on Monday.\n",
                                   encoding="utf-8")
    assistant = Assistant(fresh_settings)
    report = assistant.ingest([corpus, corpus / "a.txt", corpus])
    assert (report.new, report.problems) == (2, [])
    assert {meta["article_id"] for meta, _ in stored_passages(assistant.store).values()} == {"a.txt", "b.md"}


def test_changed_article_has_its_old_passages_replaced(corpus_copy: Path, fresh_settings: Settings) -> None:
    assistant = Assistant(fresh_settings)
    assistant.ingest([corpus_copy])
    old_lwj, old_ap = ids_of(assistant.store, LWJ), ids_of(assistant.store, AP)
    path = corpus_copy / LWJ
    old_text = read_exact(path)
    new_text = old_text.replace("Husaybah border crossing", "Karabila border crossing").replace(
        "Bill Roggio is a Senior Fellow", "Bill Roggio, a Senior Fellow")
    assert new_text != old_text
    path.write_text(new_text, encoding="utf-8", newline="")

    report = assistant.ingest([corpus_copy])
    assert (report.new, report.changed, report.unchanged, report.removed) == (0, 1, 1, 0)
    new_lwj = ids_of(assistant.store, LWJ)
    assert report.passages_added == len(new_lwj)
    assert not new_lwj & old_lwj
    assert ids_of(assistant.store, AP) == old_ap
    passages = stored_passages(assistant.store)
    texts = [text for meta, text in passages.values() if meta["article_id"] == LWJ]
    assert not any("Husaybah" in text or "is a Senior Fellow" in text for text in texts)
    assert any("Karabila border crossing" in text for text in texts)
    assert_offsets_exact(assistant.store)
    new_hash = hashlib.sha256(new_text.encode()).hexdigest()[:16]
    assert {meta["doc_hash"] for meta, _ in passages.values() if meta["article_id"] == LWJ} == {new_hash}
    # The old passages' sentence vectors went with them.
    assert not stored_sentence_count(assistant.store, old_lwj)

    answer = assistant.ask("What is the name of the border crossing with Syria that Iraq took control of near Qaim?")
    assert "Karabila" in " ".join(passage.text for passage in answer.passages)
    assert "Husaybah" not in json.dumps(answer.to_json())


def test_removed_article_loses_its_passages(corpus_copy: Path, fresh_settings: Settings) -> None:
    assistant = Assistant(fresh_settings)
    assistant.ingest([corpus_copy])
    old_lwj, old_ap = ids_of(assistant.store, LWJ), ids_of(assistant.store, AP)
    # Ingesting one file of the directory on its own removes nothing else.
    alone = assistant.ingest([corpus_copy / AP])
    assert (alone.unchanged, alone.removed) == (1, 0)
    assert ids_of(assistant.store, LWJ) == old_lwj

    (corpus_copy / LWJ).unlink()
    report = assistant.ingest([corpus_copy])
    assert (report.new, report.changed, report.unchanged, report.removed) == (0, 0, 1, 1)
    assert ids_of(assistant.store, LWJ) == set()
    assert ids_of(assistant.store, AP) == old_ap
    assert not stored_sentence_count(assistant.store, old_lwj)
    assert lexical_index_current(fresh_settings, assistant.store)
    answer = assistant.ask("Which state-run news service reported the Syrian military's announcement?")
    assert answer.passages
    retrieved = assistant.retriever.retrieve("Which state-run news service reported the announcement?")
    assert retrieved and not any(set(SENTENCE_FIELDS) & set(passage.metadata) for passage in retrieved)
    assert {passage.doc_id for passage in answer.passages} == {AP}


def test_unreadable_file_keeps_what_was_indexed(corpus_copy: Path, fresh_settings: Settings) -> None:
    assistant = Assistant(fresh_settings)
    assistant.ingest([corpus_copy])
    old = set(stored_passages(assistant.store))
    path = corpus_copy / LWJ
    path.write_bytes(read_exact(path).encode("cp1252", errors="replace"))  # re-saved as Windows-1252: not UTF-8
    report = assistant.ingest([corpus_copy])
    assert [(Path(problem.path).name, problem.message.split(" (")[0]) for problem in report.problems] == [
        (LWJ, "not UTF-8")]
    assert (report.new, report.changed, report.unchanged, report.removed, report.passages_added) == (0, 0, 1, 0, 0)
    assert set(stored_passages(assistant.store)) == old


def test_interrupted_ingest_is_completed_by_the_next_run(corpus_copy: Path, fresh_settings: Settings) -> None:
    assistant = Assistant(fresh_settings)
    assistant.ingest([corpus_copy])
    complete = stored_passages(assistant.store)
    lwj = sorted((meta["start"], pid) for pid, (meta, _) in complete.items() if meta["article_id"] == LWJ)
    assert len(lwj) >= 3
    # A run killed halfway leaves some of an article's passages unwritten.
    lost = [lwj[1][1], lwj[-1][1]]
    assistant.store.passages.delete(ids=lost)
    key = str((corpus_copy / LWJ).resolve())
    assert not assistant.store.documents()[key].complete
    assert assistant.needs_index()

    fresh = Assistant(fresh_settings)  # the next run
    report = fresh.ingest([corpus_copy])
    assert (report.new + report.changed, report.unchanged, report.removed) == (1, 1, 0)
    assert report.passages_added == len(lwj)
    assert stored_passages(fresh.store).keys() == complete.keys()
    assert all(document.complete for document in fresh.store.documents().values())
    assert not fresh.needs_index()
    assert_offsets_exact(fresh.store)
    again = fresh.ingest([corpus_copy])
    assert (again.unchanged, again.passages_added) == (2, 0)


def test_collection_name_carries_the_fingerprint_and_indexes_do_not_mix(corpus_copy: Path,
                                                                         fresh_settings: Settings) -> None:
    small = load_settings({"index_dir": str(fresh_settings.index_dir), "chunk_size": 64, "chunk_overlap": 8},
                          environ={})
    assert small.fingerprint != fresh_settings.fingerprint
    default = Assistant(fresh_settings)
    assert default.ingest([corpus_copy]).new == 2
    default_ids = set(stored_passages(default.store))

    chunked = Assistant(small)
    report = chunked.ingest([corpus_copy])
    assert (report.new, report.unchanged) == (2, 0)
    assert chunked.store.passages.name == f"passages-{small.fingerprint}"
    assert default.store.passages.name == f"passages-{fresh_settings.fingerprint}"
    names = {collection.name for collection in chunked.store.client.list_collections()}
    assert {f"passages-{small.fingerprint}", f"passages-{fresh_settings.fingerprint}"} <= names
    assert set(stored_passages(default.store)) == default_ids
    small_ids = set(stored_passages(chunked.store))
    assert len(small_ids) > len(default_ids)
    assert lexical_index_dir(small) != lexical_index_dir(fresh_settings)
    assert lexical_index_current(small, chunked.store) and lexical_index_current(fresh_settings, default.store)

    question = "When did Iraqi forces declare victory in Mosul?"
    assert {p.id for p in chunked.retriever.retrieve(question)} <= small_ids
    assert {p.id for p in default.retriever.retrieve(question)} <= default_ids
    assert_offsets_exact(chunked.store)


# --- HTML and JSONL -------------------------------------------------------------------------------------------------

PAGE = """<html><head><title>Daily Site | Karsh</title><script>track("<p>x</p>")</script></head><body>
<nav><a href="/">Home</a></nav>
<article><header><h1>Rebels withdraw from the town of Karsh</h1></header>
<p>Government troops entered the town of Karsh on March 3 after rebel fighters withdrew overnight, the provincial
governor said.</p>
<p>The withdrawal followed two weeks of talks mediated by tribal elders.</p>
<section class="comments"><p>Reader: the rebels will be back in June.</p></section>
</article><footer>Copyright</footer></body></html>
"""


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


RECORDS: list[dict[str, Any]] = [
    {"id": "dam-1", "title": "Tabqa dam reopens", "author": "Desk", "tags": ["dam", "Syria"],
     "text": "Engineers reopened the Tabqa dam on May 21 after six months of repairs, the water ministry said."},
    {"id": "market-2", "title": "Karsh market reopens",
     "text": "Traders returned to the Karsh market on Friday, a week after the rebels left."},
]


def test_html_and_jsonl_passages_slice_their_text(tmp_path: Path, fresh_settings: Settings) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "karsh.html").write_text(PAGE, encoding="utf-8")
    write_records(corpus / "news.jsonl", RECORDS)
    assistant = Assistant(fresh_settings)
    report = assistant.ingest([corpus])
    assert (report.new, report.problems) == (3, [])
    passages = stored_passages(assistant.store)
    by_article = {meta["article_id"]: (meta, text) for meta, text in passages.values()}
    assert set(by_article) == {"karsh.html", "dam-1", "market-2"}

    meta, text = by_article["karsh.html"]
    assert meta["title"] == "Rebels withdraw from the town of Karsh"
    assert meta["path"] == str((corpus / "karsh.html").resolve())
    extracted = Path(meta["text_path"])
    assert extracted.parent == (fresh_settings.index_dir / "extracted").resolve()
    assert read_exact(extracted)[meta["start"] : meta["end"]] == text
    assert "Reader" not in read_exact(extracted) and "Home" not in text and "track(" not in text

    for record in RECORDS:
        meta, text = by_article[record["id"]]
        assert record["text"][meta["start"] : meta["end"]] == text
        assert (meta["record_id"], meta["title"], meta["text_path"]) == (
            record["id"], record["title"], str((corpus / "news.jsonl").resolve()))
    assert by_article["dam-1"][0]["author"] == "Desk"
    assert by_article["dam-1"][0]["tags"] == "dam, Syria"


def test_jsonl_records_are_incremental_too(tmp_path: Path, fresh_settings: Settings) -> None:
    path = tmp_path / "news.jsonl"
    extra = {"id": "gone-3", "text": "A checkpoint near Karsh was removed on Sunday, residents said."}
    write_records(path, [*RECORDS, extra])
    assistant = Assistant(fresh_settings)
    assert assistant.ingest([path]).new == 3
    dam = ids_of(assistant.store, "dam-1")

    changed = dict(RECORDS[1], text="Traders returned to the Karsh market on Saturday, a week after the rebels left.")
    write_records(path, [RECORDS[0], changed])
    report = assistant.ingest([path])
    assert (report.new, report.changed, report.unchanged, report.removed) == (0, 1, 1, 1)
    texts = {meta["article_id"]: text for meta, text in stored_passages(assistant.store).values()}
    assert set(texts) == {"dam-1", "market-2"}
    assert "Saturday" in texts["market-2"] and "Friday" not in texts["market-2"]
    assert ids_of(assistant.store, "dam-1") == dam

    # A malformed line keeps the file's other records; the record it hid keeps what it had.
    path.write_text(json.dumps(RECORDS[0]) + "\n{oops\n", encoding="utf-8")
    report = assistant.ingest([path])
    assert [(problem.line, problem.message.split(" (")[0]) for problem in report.problems] == [(2, "malformed JSON")]
    assert (report.unchanged, report.removed) == (1, 0)
    assert set(texts) == {meta["article_id"] for meta, _ in stored_passages(assistant.store).values()}


def test_a_text_under_several_ids_is_indexed_once_the_first_in_file_order(tmp_path: Path,
                                                                          fresh_settings: Settings) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    path, other = corpus / "wire.jsonl", corpus / "zz-more.jsonl"
    same = {"text": "A convoy reached Raqqa on Monday. Aid was delivered, the agency said."}
    write_records(path, [{"id": "a", **same}, RECORDS[0], {"id": "c", **same}])
    write_records(other, [{"id": "z", **same}])
    assistant = Assistant(fresh_settings)
    report = assistant.ingest([corpus])
    assert (report.new, report.duplicates, report.problems) == (2, [("c", "a"), ("z", "a")], [])
    assert "; 2 duplicate texts skipped (same text as an earlier article)" in report.summary()
    assert {meta["article_id"] for meta, _ in stored_passages(assistant.store).values()} == {"a", "dam-1"}
    assert assistant.store.article_count() == 2

    # The order decides, not the ids: with c first, c is indexed and a's passages go.
    write_records(path, [{"id": "c", **same}, RECORDS[0], {"id": "a", **same}])
    report = assistant.ingest([corpus])
    assert (report.new, report.unchanged, report.removed) == (1, 1, 1)
    assert report.duplicates == [("a", "c"), ("z", "c")]
    assert {meta["article_id"] for meta, _ in stored_passages(assistant.store).values()} == {"c", "dam-1"}
    assert assistant.store.article_count() == 2
    again = assistant.ingest([corpus])
    assert (again.new, again.unchanged, again.removed, len(again.duplicates)) == (0, 2, 0, 2)


# --- bad input on the command line ----------------------------------------------------------------------------------


def test_cli_names_each_bad_input_ingests_the_rest_and_exits_non_zero(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text(
        "Rebels withdraw from Karsh\n\nGovernment troops entered Karsh on March 3, the governor said.\n",
        encoding="utf-8")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (corpus / "latin1.md").write_bytes("Troops entered the café district of Karsh on Monday.".encode("latin-1"))
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "records.jsonl").write_text(
        json.dumps(RECORDS[0]) + "\n" + '{"id": "broken", "text": "unterminated\n' + json.dumps(RECORDS[1]) + "\n",
        encoding="utf-8")
    missing = tmp_path / "no-such-dir"
    empty_dir = tmp_path / "empty-dir"
    empty_dir.mkdir()
    index = tmp_path / "index"

    code, stderr = run_ingest(str(corpus), str(missing), str(empty_dir), "--index", str(index))
    assert code == 1
    skipped = [line for line in stderr.splitlines() if line.startswith("skipped ")]
    expected = {
        "binary.txt": "binary file",
        "latin1.md": "not UTF-8",
        "empty.txt": "empty file",
        "records.jsonl:2": "malformed JSON",
        "no-such-dir": "no such file or directory",
        "empty-dir": "no .txt",
    }
    assert len(skipped) == len(expected), stderr
    for name, message in expected.items():
        [line] = [line for line in skipped if f"{name}:" in line]
        assert message in line, line
    assert "3 new, 0 changed, 0 unchanged" in stderr
    assert "6 problem(s)" in stderr

    settings = load_settings({"index_dir": str(index)}, environ={})
    store = PassageStore(index, settings.fingerprint)
    keys = {Path(key).name for key in store.documents()}
    assert keys == {"good.txt", f"records.jsonl#{RECORDS[0]['id']}", f"records.jsonl#{RECORDS[1]['id']}"}

    code, stderr = run_ingest(str(corpus / "good.txt"), "--index", str(index))
    assert code == 0, stderr
    assert "0 new, 0 changed, 1 unchanged" in stderr


@pytest.mark.parametrize("kind", ["missing", "empty directory", "index is a file"])
def test_cli_with_nothing_to_ingest_fails_in_one_line(tmp_path: Path, kind: str) -> None:
    target, index = tmp_path / "corpus", tmp_path / "index"
    if kind == "empty directory":
        target.mkdir()
    if kind == "index is a file":
        target = SEEDS / AP
        index.write_text("not a directory")
    code, stderr = run_ingest(str(target), "--index", str(index))
    assert code != 0
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert any(str(target) in line or str(index) in line for line in lines), stderr
    assert len([line for line in lines if line.startswith(("skipped", "error"))]) == 1, stderr
