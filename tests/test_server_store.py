"""A Chroma server as the store (``chroma_url``): a real ``chroma run`` on 127.0.0.1, shared by two clients, each
with its own local directory (manifest, catalogue, lexical index). Ingest, a change, a removal and asks go through
it as through the embedded store, and each client sees what the other wrote."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.scale import ChromaServer, free_port
from rag.pipeline import Assistant
from rag.settings import Settings, load_settings
from tests.conftest import SEEDS, run_module

NEW_FACT = ("The Varenne footbridge over the canal reopened on 3 March 2017 after two years of repairs, the city "
            "engineer said on Friday.\n\nTraffic on the towpath had been diverted since the bridge closed.\n")
NEW_QUESTION = "When did the Varenne footbridge reopen?"


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server (the ``chroma`` CLI of the installed chromadb) on a free loopback port."""
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server") / "store")
    try:
        yield server.url
    finally:
        server.stop()


def client(index_dir: Path, chroma_url: str) -> Settings:
    return load_settings({"index_dir": str(index_dir), "chroma_url": chroma_url}, environ={})


def cited(answer: object) -> list[tuple[str, int, int]]:
    return [(c.doc_id, c.start, c.end) for c in answer.citations]  # type: ignore[attr-defined]


def test_two_clients_share_one_server_store(chroma_url: str, corpus_copy: Path, tmp_path: Path,
                                            assistant: Assistant) -> None:
    writer = Assistant(client(tmp_path / "writer", chroma_url))
    report = writer.ingest([corpus_copy])
    assert (report.new, report.problems) == (2, [])
    assert not (tmp_path / "writer" / "chroma").exists()  # the passages are on the server only

    # The same answer, with the same citations, as from the embedded seed index.
    embedded = assistant.ask("when did Mosul fall?")
    served = writer.ask("when did Mosul fall?")
    assert served.answerable and served.answer == embedded.answer and cited(served) == cited(embedded)

    # A second client with an empty directory adopts what the server holds instead of indexing the default corpus.
    reader = Assistant(client(tmp_path / "reader", chroma_url))
    messages: list[str] = []
    assert reader.ensure_index(messages.append) is None
    assert reader.stats() == {"articles": 2, "passages": writer.store.count()}
    assert cited(reader.ask("when did Mosul fall?")) == cited(embedded)
    assert not reader.ask(NEW_QUESTION).citations or "Varenne" not in reader.ask(NEW_QUESTION).answer

    # The writer adds an article: the reader, still running, finds it at its next question.
    (corpus_copy / "bridge.txt").write_text(NEW_FACT, encoding="utf-8")
    assert writer.ingest([corpus_copy]).new == 1
    answer = reader.ask(NEW_QUESTION)
    assert answer.answerable and "3 March 2017" in answer.answer
    assert answer.citations[0].doc_id == "bridge.txt"
    assert reader.store.article_count() == 3 and reader.stats()["articles"] == 3

    # The writer changes the article: the reader quotes the new text.
    (corpus_copy / "bridge.txt").write_text(NEW_FACT.replace("3 March", "5 March"), encoding="utf-8")
    assert writer.ingest([corpus_copy]).changed == 1
    assert "5 March 2017" in reader.ask(NEW_QUESTION).answer

    # The writer removes it (an upload taken away): gone for the reader too, passages and catalogue.
    assert writer.remove_file(corpus_copy / "bridge.txt").removed == 1
    (corpus_copy / "bridge.txt").unlink()
    after = reader.ask(NEW_QUESTION)
    assert all(hit.doc_id != "bridge.txt" for hit in after.passages)
    assert reader.store.article_count() == 2 and reader.store.count() == writer.store.count()

    # Ingesting the same folder again from the other client changes nothing.
    again = Assistant(client(tmp_path / "reader", chroma_url)).ingest([corpus_copy])
    assert (again.new, again.changed, again.removed, again.passages_added) == (0, 0, 0, 0)


def test_command_line_against_a_server(chroma_url: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus, ignore=shutil.ignore_patterns("README*"))
    flags = ["--chroma-url", chroma_url]
    ingested = run_module("rag.ingest", str(corpus), "--index", str(tmp_path / "one"), *flags)
    assert ingested.returncode == 0, ingested.stderr
    asked = run_module("rag.ask", "when did Mosul fall?", "--json", "--index", str(tmp_path / "two"), *flags)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["answerable"] and "July 10" in answer["answer"]
    checked = run_module("rag.ingest", "--check", "--index", str(tmp_path / "two"), *flags)
    assert checked.returncode == 0 and "no problem found" in checked.stdout, checked.stdout + checked.stderr


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    done = run_module("rag.ask", "when did Mosul fall?", "--index", str(tmp_path / "client"),
                      "--chroma-url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Chroma server" in lines[0], done.stderr


def test_a_server_url_is_checked() -> None:
    from rag.settings import SettingsError

    with pytest.raises(SettingsError, match="chroma_url"):
        load_settings({"chroma_url": "127.0.0.1:8000"}, environ={})
    assert load_settings({"chroma_url": "http://10.0.0.5:8000"}, environ={}).chroma_url == "http://10.0.0.5:8000"


def test_the_chat_page_of_two_clients(chroma_url: str, corpus_copy: Path, tmp_path: Path) -> None:
    from rag.ui.handlers import ChatHandlers

    first = ChatHandlers(Assistant(client(tmp_path / "first", chroma_url)))
    first.assistant.ingest([corpus_copy])
    second = ChatHandlers(Assistant(client(tmp_path / "second", chroma_url)))
    second.assistant.ensure_index(lambda message: None)
    upload = tmp_path / "bridge.txt"
    upload.write_text(NEW_FACT, encoding="utf-8")
    first.upload([str(upload)])
    # The other client's library lists the upload, and its answers use it; only the client that holds the file
    # removes it, and the other sees it gone.
    assert "Varenne" in second.library("varenne")
    assert "3 March 2017" in second.assistant.ask(NEW_QUESTION).answer
    [bridge] = second.assistant.store.articles(query="varenne")
    message, failed = second.remove(bridge.id)
    assert failed and "was not uploaded here" in message
    assert first.remove(bridge.id)[1] is False
    assert "Varenne" not in second.library("varenne")
    assert "3 March" not in second.assistant.ask(NEW_QUESTION).answer


def test_an_eval_against_a_server(chroma_url: str, tmp_path: Path) -> None:
    done = run_module("rag.eval", "--questions", "evals/seeds.jsonl", "--limit", "6", "--json", "--index",
                      str(tmp_path / "eval"), "--chroma-url", chroma_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["retrieval"]["recall@5"] > 0.8
