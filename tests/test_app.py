"""The chat UI: rendering (escaping, highlights, refusals), handlers, the command line, and the API end to end.

Rendering is ``rag.ui.render``, the requests ``rag.ui.handlers``, the page ``rag.ui.page``; ``app`` is the shell.

API tests run the app in this process on a free loopback port and talk to it with gradio_client, as a user's script
would. Anything that ingests works on a copy of the seed index in a temporary directory.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

# conftest.py has imported rag already, so the offline environment is set before gradio is imported here.
import pytest
from gradio_client import Client, handle_file

import app
from rag.citing import Citation, PassageHit, article_text
from rag.pipeline import MAX_QUESTION_CHARS, Answer, Assistant
from rag.retrieval import RETRIEVER_FILE, Scope, current_lexical_version, lexical_index_current
from rag.settings import Settings, load_settings
from rag.ui import handlers as ui
from rag.ui import page as ui_page
from rag.ui import render

# gradio's queue trips pandas 3 deprecation warnings of its own; they say nothing about this app.
pytestmark = pytest.mark.filterwarnings("ignore:::gradio.queueing")
HARBOUR = """Port Vell harbour <script>alert(1)</script> reopens

The harbour of Port Vell reopened on March 3 after two years of works <img src=x onerror=alert(1)> \
[click](http://evil.example).

The city council said the works cost 40 million euros. Fishing boats returned the same week, and the ferry to the \
islands will resume in May, the harbour master said.
"""
HARBOUR_QUESTION = "When did the harbour of Port Vell reopen?"
# Questions with one right answer each in the seed articles (from evals/seeds.jsonl).
KNOWN = {
    "When did Mosul fall?": "July 10",
    "When was Tal Afar liberated?": "Aug. 30",
    "On what date was Raqqah captured?": "Oct. 17",
    "How many days did it take to liberate Hawija?": "20 days",
    "Who is the spokesman for the Syrian army?": "Mayhoub",
    "How many foreign fighters did the U.S.-led coalition estimate once flowed into Islamic State territory?": "40,000",
    "Which Iraqi prime minister proclaimed victory in retaking Al Qaim?": "Abadi",
    "Which U.S. envoy said the Islamic State is now facing “annihilation”?": "McGurk",
    "Which chairman of the U.S. Joint Chiefs of Staff said IS leaders are trying to exploit local insurgencies in "
    "Africa and Asia?": "Dunford",
    "During which years did al Qaeda in Iraq weather the US “surge”?": "2007 to 2009",
}
ALLOWED_TAGS = {"div", "p", "strong", "a", "section", "span", "blockquote", "mark", "details", "summary", "ol", "ul",
                "li", "code", "b", "button", "input", "article", "h2"}


class Page(HTMLParser):
    """What a browser would build from an HTML fragment: tags with their attributes, text, and each <mark>'s text."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text_parts: list[str] = []
        self.marks: list[str] = []
        self._open_marks: list[list[str]] = []
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "mark":
            self._open_marks.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark" and self._open_marks:
            self.marks.append("".join(self._open_marks.pop()))

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)
        for mark in self._open_marks:
            mark.append(data)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def assert_inert(self) -> None:
        """Only the markup the app writes: known tags, no event handlers, links only to anchors on the page."""
        for tag, attrs in self.tags:
            assert tag in ALLOWED_TAGS, f"unexpected live tag <{tag}>"
            assert not [name for name in attrs if name.startswith("on") or name in {"src", "style"}], (tag, attrs)
            if tag == "a":
                assert (attrs.get("href") or "").startswith("#"), attrs
            if tag in {"button", "input"}:  # the app's own controls: no form, no action, handled by static/app.js
                assert attrs.get("type") in {"button", "checkbox"}, attrs
                assert set(attrs) <= {"type", "class", "disabled", "title", "aria-label", "id"} | {
                    name for name in attrs if name.startswith("data-")}, attrs


def reply_text(turn: str) -> str:
    """The HTML of a turn as the server sends it (``ChatHandlers.respond``, ``/ask``): the question, then the reply."""
    payload = json.loads(turn)
    assert payload["error"] is None, payload["error"]
    return str(payload["html"])


def context(*earlier: str, scope: list[str] | None = None) -> str:
    """What the page sends with a question: the earlier questions, this turn's number, the articles to ask within."""
    return json.dumps({"earlier": list(earlier), "turn": len(earlier) + 1, "scope": scope or [], "request": "r"})


def answer_line(rendered: str) -> str:
    """The text of the answer itself (without the sources panel)."""
    match = re.search(r'<p class="rag-text">(.*?)</p>', rendered)
    assert match, rendered[:300]
    return Page(match.group(1)).text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(assistant: Assistant) -> Iterator[str]:
    demo = ui_page.build_app(assistant)
    _, url, _ = ui_page.launch(demo, host="127.0.0.1", port=free_port(), block=False)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def client(server: str) -> Client:
    return Client(server, verbose=False)


@pytest.fixture
def index_copy(seed_index: Path, tmp_path: Path) -> Settings:
    """A private copy of the seed index, for tests that add to an index."""
    target = tmp_path / "index"
    shutil.copytree(seed_index, target)
    return load_settings({"index_dir": str(target)}, environ={})


# ---------------------------------------------------------------------------------------------------------------------
# Rendering


def malicious_answer(tmp_path: Path) -> tuple[Answer, str]:
    article = tmp_path / "harbour.txt"
    article.write_text(HARBOUR, encoding="utf-8")
    quote = "The harbour of Port Vell reopened on March 3 after two years of works <img src=x onerror=alert(1)> " \
            "[click](http://evil.example)."
    start = HARBOUR.index(quote)
    title = "Port Vell harbour <script>alert(1)</script> reopens"
    citation = Citation(1, "harbour.txt", title, str(article), start, start + len(quote), quote, 2.0)
    passage = PassageHit("harbour.txt", title, str(article), 0, len(HARBOUR), 0.03, HARBOUR)
    other = PassageHit("x<b>.txt", "<img src=x onerror=alert(2)>", "x<b>.txt", 0, 30, 0.01,
                       "[link](javascript:alert(3)) <script>alert(4)</script>")
    answer = Answer(HARBOUR_QUESTION, f"March 3: “{quote}” [1]", "March 3", True, [citation], [passage, other],
                    2.0, HARBOUR_QUESTION)
    return answer, quote


def test_article_text_is_rendered_as_text(tmp_path: Path) -> None:
    answer, _ = malicious_answer(tmp_path)
    rendered = render.render_answer(answer, turn=3)
    page = Page(rendered)
    page.assert_inert()
    assert "<script" not in rendered and "<img" not in rendered and "evil.example\"" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    for visible in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[click](http://evil.example)",
                    "<img src=x onerror=alert(2)>", "[link](javascript:alert(3))", "x<b>.txt"):
        assert visible in page.text
    assert "\n" not in rendered  # gr.Chatbot re-indents lines (inspect.cleandoc): line breaks go as &#10;


def test_highlight_is_the_exact_quote_and_links_to_the_article(tmp_path: Path) -> None:
    answer, quote = malicious_answer(tmp_path)
    page = Page(render.render_answer(answer, turn=3))
    assert page.marks == [quote, quote]  # in the context, and in the full article
    marked = [attrs for tag, attrs in page.tags if tag == "mark" and attrs.get("id")]
    assert [attrs["id"] for attrs in marked] == [render.quote_anchor(3, 1)]
    hrefs = [attrs.get("href") for tag, attrs in page.tags if tag == "a"]
    assert f"#{render.source_anchor(3, 1)}" in hrefs and f"#{render.quote_anchor(3, 1)}" in hrefs
    assert HARBOUR.replace("\n", "") in page.text.replace("\n", "")  # the whole article is there to read


def test_real_answer_highlights_its_citation(assistant: Assistant) -> None:
    answer = assistant.ask("When did Mosul fall?")
    citation = answer.citations[0]
    assert article_text(citation.source)[citation.start : citation.end] == citation.quote
    page = Page(render.render_answer(answer))
    page.assert_inert()
    assert "July 10" in page.text and set(page.marks) == {citation.quote}
    assert citation.title in page.text and citation.source in page.text


def test_a_question_read_with_a_name_written_out_says_how_it_was_read(assistant: Assistant) -> None:
    answer = assistant.ask("who is the iraqi pm")
    page = Page(render.render_answer(answer))
    assert "Read as: “who is the iraqi prime minister”" in page.text and "Haider al-Abadi" in page.text
    assert "Read as" not in Page(render.render_answer(assistant.ask("When did Mosul fall?"))).text


def test_quote_across_paragraphs_keeps_its_line_breaks(tmp_path: Path) -> None:
    answer, _ = malicious_answer(tmp_path)
    citation = answer.citations[0]
    end = HARBOUR.index("euros.") + len("euros.")
    quote = HARBOUR[citation.start : end]
    assert "\n\n" in quote
    spanning = Answer(answer.question, f"“{quote}” [1]", None, True,
                      [Citation(1, citation.doc_id, citation.title, citation.source, citation.start, end, quote, 2.0)])
    assert Page(render.render_answer(spanning)).marks == [quote, quote]


def test_refusal_says_so_and_shows_the_closest_passages(assistant: Assistant) -> None:
    answer = assistant.ask("Who won the 2017 French presidential election?")
    assert not answer.answerable and answer.passages
    page = Page(render.render_answer(answer))
    page.assert_inert()
    assert "The articles don't say" in page.text and "Closest passages" in page.text
    assert not page.marks
    assert sum(1 for tag, attrs in page.tags if tag == "li" and attrs.get("class") == "rag-passage") == len(
        answer.passages)
    for passage in answer.passages:
        assert passage.source in page.text


def test_missing_or_changed_article_still_shows_the_quote(tmp_path: Path) -> None:
    answer, quote = malicious_answer(tmp_path)
    Path(answer.citations[0].source).write_text("rewritten since", encoding="utf-8")
    page = Page(render.render_answer(answer))
    assert page.marks == [quote] and "changed since it was indexed" in page.text


def test_article_text_reads_files_and_jsonl_records(tmp_path: Path) -> None:
    records = tmp_path / "news.jsonl"
    records.write_text("\ufeff" + "\n".join(json.dumps(r) for r in [{"id": 7, "text": "seven\r\nlines"},
                                                                    {"id": "a#b", "text": "hash id"}]), "utf-8")
    assert article_text(f"{records}#7") == "seven\r\nlines"
    assert article_text(f"{records}#a#b") == "hash id"
    with pytest.raises(ValueError):
        article_text(f"{records}#missing")
    odd = tmp_path / "notes#1.txt"
    odd.write_bytes(b"keeps\r\nCRLF")
    assert article_text(str(odd)) == "keeps\r\nCRLF"


def test_context_keeps_the_earlier_questions_as_typed() -> None:
    asked = ["When did Mosul fall?", "<b>AT&amp;T</b> & co\nline two"]
    assert ui.parse_context(json.dumps({"earlier": asked})).earlier == asked
    many = [f"question {n}" for n in range(40)]
    assert ui.parse_context(json.dumps({"earlier": many})).earlier == many[-ui.CONTEXT_QUESTIONS :]
    assert ui.parse_context(json.dumps({"previous_answer": "Oct. 17"})).previous_answer == "Oct. 17"
    # Longer than any question may be: not context (the follow-up rewrite would read all of it).
    long = "x " * MAX_QUESTION_CHARS
    assert ui.parse_context(json.dumps({"earlier": [asked[0], long], "previous_answer": long})) == ui.AskContext(
        earlier=[asked[0]])
    for broken in ("", "not json", "[1, 2]", '{"earlier": "x", "turn": -3, "scope": [1], "previous_answer": 4}'):
        assert ui.parse_context(broken) == ui.AskContext()


def test_stats_panel_escapes_the_note() -> None:
    rendered = render.render_stats({"articles": 2, "passages": 20}, "<script>x</script>")
    Page(rendered).assert_inert()
    assert "2</b> articles" in rendered and "20</b> passages" in rendered


# ---------------------------------------------------------------------------------------------------------------------
# Handlers and uploads


def test_respond_answers_follow_ups(assistant: Assistant) -> None:
    handlers = ui.ChatHandlers(assistant)
    turn, cleared = handlers.respond("When did Mosul fall?", context())
    first = Page(reply_text(turn))
    assert cleared == "" and first.tags[0] == ("div", {"class": "rag-q"}) and "When did Mosul fall?" in first.text
    assert [attrs.get("class") for tag, attrs in first.tags if tag == "div"].count("rag-answer") == 1
    turn, _ = handlers.respond("And Raqqa?", context("When did Mosul fall?"))
    page = Page(reply_text(turn))
    assert "Oct. 17" in answer_line(reply_text(turn)) and "When did Raqqa fall?" in page.text
    assert render.quote_anchor(2, 1) in reply_text(turn)  # ids are unique per turn
    # The page keeps each turn's short answer and sends the last one back: a pronoun may stand for it.
    turn, _ = handlers.respond("Who reported the story from Baghdad?", context())
    assert json.loads(turn)["short"] == "George"
    earlier = json.loads(context("Who reported the story from Baghdad?"))
    turn, _ = handlers.respond("where was he", json.dumps({**earlier, "previous_answer": "George"}))
    assert "where was George" in Page(reply_text(turn)).text


def test_example_questions_come_from_the_indexed_articles(assistant: Assistant) -> None:
    examples = ui.ChatHandlers(assistant).examples()
    assert len(examples) == 3 and len(set(examples)) == 3
    texts = " ".join(path.read_text(encoding="utf-8") for path in Path("seeds").iterdir())
    for example in examples:
        subject = re.fullmatch(r"(?:Who or what is|What happened on) (.+)\?", example)
        assert subject and subject.group(1) in texts


def test_respond_turns_question_errors_into_messages(assistant: Assistant) -> None:
    handlers = ui.ChatHandlers(assistant)
    for question, reason in (("   ", "empty"), ("x" * 2001, "longer than 2000")):
        turn, kept = handlers.respond(question, context("When did Mosul fall?"))
        payload = json.loads(turn)
        assert reason in payload["error"] and "html" not in payload and kept == question


def test_respond_reports_unexpected_failures_in_one_line(assistant: Assistant,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    handlers = ui.ChatHandlers(assistant)

    def broken(question: str, history: Any = (), scope: Any = None, previous_answer: Any = None) -> Answer:
        raise RuntimeError("index <unavailable>")

    monkeypatch.setattr(handlers.assistant, "ask", broken)
    turn, kept = handlers.respond("When did Mosul fall?", context())
    error = json.loads(turn)["error"]  # shown by the question box (as text), the conversation left as it was
    assert "RuntimeError: index <unavailable>" in error and kept == "When did Mosul fall?"
    assert "Traceback" not in error and "\n" not in error


def test_safe_filename() -> None:
    assert ui.safe_filename("../../etc/passwd.txt") == "passwd.txt"
    assert ui.safe_filename("C:\\Users\\me\\My Notes (1).md") == "My_Notes_1.md"
    assert ui.safe_filename(".hidden.txt") == "hidden.txt"
    assert ui.safe_filename("<script>.html") == "script.html"
    assert ui.safe_filename("Mossoul été.jsonl") == "Mossoul_été.jsonl"
    assert ui.safe_filename("..") == "upload"


def test_check_upload_refuses_wrong_type_too_big_and_empty(tmp_path: Path) -> None:
    good = tmp_path / "a.txt"
    good.write_text("text", encoding="utf-8")
    assert ui.check_upload(good, "a.txt") is None
    assert "not a supported file type" in (ui.check_upload(good, "a.pdf") or "")
    big = tmp_path / "big.txt"
    with open(big, "wb") as handle:
        handle.truncate(ui.MAX_UPLOAD_BYTES + 1)
    assert "over the 5 MB limit" in (ui.check_upload(big, "big.txt") or "")
    empty = tmp_path / "empty.md"
    empty.touch()
    assert "empty" in (ui.check_upload(empty, "empty.md") or "")


def test_upload_handler_ingests_and_reports_problems(index_copy: Settings, tmp_path: Path) -> None:
    handlers = ui.ChatHandlers(Assistant(index_copy))
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "Port Vell harbour.txt").write_text(HARBOUR, encoding="utf-8")
    (incoming / "latin1.txt").write_bytes("caf\xe9 news".encode("latin-1"))
    (incoming / "slides.pdf").write_bytes(b"%PDF-1.4")
    report, stats, cleared = handlers.upload([str(path) for path in sorted(incoming.iterdir())])
    page = Page(report)
    page.assert_inert()
    assert cleared is None
    assert "1 new" in page.text
    assert "latin1.txt: not UTF-8" in page.text and "slides.pdf: .pdf is not a supported file type" in page.text
    uploads = index_copy.index_dir / "uploads"
    assert sorted(path.name for path in uploads.iterdir()) == ["Port_Vell_harbour.txt"]  # refused files are not kept
    assert "3</b> articles" in stats
    answer = handlers.assistant.ask(HARBOUR_QUESTION)
    assert answer.answerable and answer.citations[0].source.endswith("uploads/Port_Vell_harbour.txt")
    # A broken new version of an uploaded file leaves the indexed version, on disk as in the index.
    (incoming / "Port Vell harbour.txt").write_bytes(b"\xff\xfe broken")
    report, _, _ = handlers.upload([str(incoming / "Port Vell harbour.txt")])
    assert "not UTF-8" in Page(report).text
    assert (uploads / "Port_Vell_harbour.txt").read_text(encoding="utf-8") == HARBOUR
    assert handlers.assistant.ask(HARBOUR_QUESTION).answerable


# ---------------------------------------------------------------------------------------------------------------------
# Command line


@pytest.mark.parametrize("args", [["--host", "0.0.0.0"], ["--host", "192.168.1.5"], ["--share"]])
def test_refuses_to_serve_beyond_loopback_without_login(args: list[str], capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_UI_AUTH", raising=False)
    with pytest.raises(SystemExit) as exited:
        app.main(args)
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: refusing to serve") and "--auth" in error and "\n" not in error


def test_bad_login_setting_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_UI_AUTH", "no-colon")
    with pytest.raises(SystemExit) as exited:
        app.main(["--host", "0.0.0.0"])
    assert exited.value.code == 2 and "USER:PASS" in capsys.readouterr().err


def test_loopback_hosts() -> None:
    assert all(map(app.is_loopback, ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]))
    assert not any(map(app.is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org", ""]))


# ---------------------------------------------------------------------------------------------------------------------
# Through the API


def test_api_answers_with_the_library_answer(client: Client, assistant: Assistant) -> None:
    chat, cleared = client.predict("When did Mosul fall?", context(), api_name="/ask")
    assert cleared == ""
    page = Page(reply_text(chat))
    assert "July 10" in answer_line(reply_text(chat))
    assert set(page.marks) == {assistant.ask("When did Mosul fall?").citations[0].quote}


def test_api_follow_up_uses_the_earlier_questions(client: Client) -> None:
    chat, _ = client.predict("When did Mosul fall?", context(), api_name="/ask")
    chat, _ = client.predict("And Raqqa?", context(json.loads(chat)["question"]), api_name="/ask")
    assert json.loads(chat)["turn"] == 2 and json.loads(chat)["question"] == "And Raqqa?"
    line = answer_line(reply_text(chat))
    assert "Oct. 17" in line and "Raqqa" in line and "July 10" not in line


def test_api_serves_concurrent_questions_each_its_own_answer(client: Client, assistant: Assistant) -> None:
    expected = {question: assistant.ask(question) for question in KNOWN}
    for question, short in KNOWN.items():  # the library's own answers are right to begin with
        assert short in expected[question].answer, question

    def ask(question: str) -> tuple[str, str]:
        chat, _ = client.predict(question, context(), api_name="/ask")
        return question, reply_text(chat)

    with ThreadPoolExecutor(max_workers=len(KNOWN)) as pool:
        results = list(pool.map(ask, KNOWN))
    assert [question for question, _ in results] == list(KNOWN)
    for question, rendered in results:
        assert KNOWN[question] in answer_line(rendered), question
        assert answer_line(rendered) == answer_line(render.render_answer(expected[question])), question
        assert set(Page(rendered).marks) == {expected[question].citations[0].quote}, question


def test_api_empty_question_is_a_message_not_a_traceback(client: Client) -> None:
    turn, kept = client.predict("  ", context(), api_name="/ask")
    message = json.loads(turn)["error"]
    assert "the question is empty" in message and "Traceback" not in message and kept == "  "


def test_api_upload_adds_an_article_that_renders_as_text(index_copy: Settings, tmp_path: Path) -> None:
    demo = ui_page.build_app(Assistant(index_copy))
    _, url, _ = ui_page.launch(demo, host="127.0.0.1", port=free_port(), block=False)
    try:
        client = Client(url, verbose=False)
        upload = tmp_path / "harbour <news>.txt"
        upload.write_text(HARBOUR, encoding="utf-8")
        report, stats, _ = client.predict([handle_file(str(upload))], api_name="/upload")
        assert "1 new" in Page(report).text and "3</b> articles" in stats
        assert (index_copy.index_dir / "uploads" / "harbour_news.txt").read_text(encoding="utf-8") == HARBOUR
        chat, _ = client.predict(HARBOUR_QUESTION, context(), api_name="/ask")
        rendered = reply_text(chat)
        page = Page(rendered)
        page.assert_inert()
        assert "March 3" in answer_line(rendered) and "harbour_news.txt" in page.text
        assert "<script>alert(1)</script>" in page.text and "<img src=x onerror=alert(1)>" in page.text
        assert "[click](http://evil.example)" in page.text
        assert "<script" not in rendered and "<img" not in rendered
    finally:
        demo.close()


# ---------------------------------------------------------------------------------------------------------------------
# The library


def test_library_pages_searches_and_removes_only_uploads(index_copy: Settings, tmp_path: Path) -> None:
    handlers = ui.ChatHandlers(Assistant(index_copy))
    store = handlers.assistant.store
    upload = tmp_path / "harbour.txt"
    upload.write_text(HARBOUR, encoding="utf-8")
    handlers.upload([str(upload)])
    every = store.articles(0, 10)
    assert store.article_count() == 3 and [row.title for row in every] == sorted(
        (row.title for row in every), key=str.casefold)
    assert store.articles(0, 2) + store.articles(2, 2) == every and store.articles(3, 2) == []
    [harbour] = store.articles(0, 10, "port VELL")
    assert store.article_count("port vell") == 1 and harbour.source == "harbour.txt" and harbour.passages == 1
    assert store.article(harbour.id) == harbour == store.article(harbour.key)
    page = Page(handlers.library("", 0))
    page.assert_inert()
    assert "1-3 of 3 articles" in page.text and str(index_copy.index_dir) not in page.text
    assert "Port Vell harbour <script>alert(1)</script> reopens" in page.text
    assert "No article matches “zzz”" in Page(handlers.library("zzz")).text
    seed = next(row for row in every if row.key != harbour.key)
    kept = {row.key: row for row in every if row.key != harbour.key}
    passages_before = set(store.passage_ids())
    harbour_passages = set(store.passages.get(where={"doc_key": harbour.key}, include=[])["ids"])
    message, failed = handlers.remove(seed.id)
    assert failed and "was not uploaded here" in message and store.article_count() == 3
    lexical_before = current_lexical_version(index_copy)
    message, failed = handlers.remove(harbour.id)
    assert not failed and message == "Removed harbour.txt: 1 article and their passages left the index."
    assert {row.key: row for row in store.articles(0, 10)} == kept
    assert len(harbour_passages) == 1 and set(store.passage_ids()) == passages_before - harbour_passages
    assert not (index_copy.index_dir / "uploads" / "harbour.txt").exists()
    assert store.article(harbour.id) is None and store.article_count("port vell") == 0
    # The lexical index was not built again: its new version shares the previous one's files and masks the passage.
    assert lexical_index_current(index_copy, store) and lexical_before is not None
    version = current_lexical_version(index_copy)
    assert version is not None and version[0] != lexical_before[0]
    shared = set(lexical_before[1].files) - {RETRIEVER_FILE}
    assert shared and all((version[0] / name).samefile(lexical_before[0] / name) for name in shared)
    answer = handlers.assistant.ask(HARBOUR_QUESTION)
    assert not answer.answerable and answer.passages
    found = handlers.assistant.retriever.retrieve("Port Vell harbour reopened March 3 council 40 million euros")
    assert found and not {passage.id for passage in found} & harbour_passages
    assert not any(hit.source.endswith("harbour.txt") for hit in answer.passages)


def test_removing_a_jsonl_upload_removes_all_its_records_and_nothing_else(index_copy: Settings,
                                                                          tmp_path: Path) -> None:
    handlers = ui.ChatHandlers(Assistant(index_copy))
    store = handlers.assistant.store
    (tmp_path / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    records = tmp_path / "dams.jsonl"
    records.write_text("".join(json.dumps(record) + "\n" for record in [
        {"id": "d1", "title": "Karsh dam reopens", "date": "2017-05-21", "category": "works",
         "text": "The Karsh dam reopened on May 21 after the floods, the water authority said."},
        {"id": "d2", "title": "Karsh dam levels", "text": "Water levels behind the Karsh dam rose by two metres."}]),
        encoding="utf-8")
    handlers.upload([str(tmp_path / "harbour.txt"), str(records)])
    [levels, reopens] = store.articles(0, 10, "karsh dam")  # by title
    assert (reopens.source, reopens.date, reopens.topic, levels.source) == (
        "dams.jsonl#d1", "2017-05-21", "works", "dams.jsonl#d2")
    assert handlers.assistant.ask("When did the Karsh dam reopen?").answerable
    message, failed = handlers.remove(levels.id)
    assert not failed and message == "Removed dams.jsonl: 2 articles and their passages left the index."
    assert store.article_count("karsh") == 0 and store.article_count() == 3
    assert not store.passages.get(where={"path": reopens.path}, include=[])["ids"]
    assert not handlers.assistant.ask("When did the Karsh dam reopen?").answerable
    # What stays is answered from the masked lexical index; a second removal keeps the first one's passages out.
    assert handlers.assistant.ask(HARBOUR_QUESTION).answerable
    [harbour] = store.articles(0, 1, "port vell")
    assert not handlers.remove(harbour.id)[1] and store.article_count() == 2
    answer = handlers.assistant.ask("Karsh dam Port Vell harbour reopened water levels")
    assert answer.passages and not any(hit.source.endswith(("harbour.txt", "#d1", "#d2")) for hit in answer.passages)
    assert lexical_index_current(index_copy, store)


def test_reader_view_shows_the_article_as_text(index_copy: Settings, tmp_path: Path) -> None:
    handlers = ui.ChatHandlers(Assistant(index_copy))
    upload = tmp_path / "harbour.txt"
    upload.write_text(HARBOUR, encoding="utf-8")
    handlers.upload([str(upload)])
    [row] = handlers.assistant.store.articles(0, 1, "harbour")
    page = Page(handlers.read(row.id))
    page.assert_inert()
    assert HARBOUR in page.text and "harbour.txt · 1 passage" in page.text
    assert "no longer in the index" in handlers.read("missing")


def test_follow_ups_are_drawn_from_the_cited_text() -> None:
    from rag.conversation import suggest_follow_ups

    cited = ["Iraqi forces declared victory in Mosul on July 10. Kurdish-led forces took Raqqa on Oct. 17, said "
             "Brett McGurk. The Syrian army said Deir Ezzor was retaken."]
    suggestions = suggest_follow_ups("When did Mosul fall?", cited)
    assert suggestions and all(
        s.removeprefix("And ").removeprefix("What happened on ").rstrip("?") in cited[0] for s in suggestions)
    assert not any("Mosul" in s or s.startswith("And Iraqi") for s in suggestions)
    assert "What happened on July 10?" in suggestions or "What happened on Oct. 17?" in suggestions
    assert suggest_follow_ups("When did Mosul fall?", ["nothing named here."]) == []


def test_turn_says_how_the_answer_is_supported_and_copies_as_text(assistant: Assistant) -> None:
    answer = assistant.ask("When did Mosul fall?")
    page = Page(render.render_turn(answer, 1, assistant.threshold(answer.decided_by)))
    page.assert_inert()
    copy = next(attrs["data-copy"] for tag, attrs in page.tags if tag == "button" and attrs.get("class") == "rag-copy")
    assert copy and copy.startswith(answer.answer) and "Sources:" in copy and answer.citations[0].quote in copy
    assert "Quoted directly" in page.text
    refusal = assistant.ask("Who won the 2017 French presidential election?")
    label, kind = render.support_words(refusal, assistant.threshold(refusal.decided_by))
    assert (label, kind) == ("No answer found · closest passages only", "none")
    assert "rag-follow" not in render.render_turn(refusal, 1, assistant.threshold(refusal.decided_by))
    within = assistant.ask("When did Mosul fall?", scope=Scope(("000_ddbd021a6e61dfd0.txt",)))
    assert "Asked within 1 article chosen in the library." in Page(render.render_turn(within, 1, 0.0)).text
