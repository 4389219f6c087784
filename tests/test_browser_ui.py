"""The chat page as a reader who keeps it open all day uses it, in a real headless browser (as ``test_browser``:
skips without chromium, fails in CI): turns that cost the same at turn 30 as at turn 1, errors that leave the
conversation alone, the article library (list, search, read, ask within, remove an upload), copy, follow-ups, the
kept history, the up arrow, a phone layout, and an axe-core accessibility scan. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import ARTIFACTS, HARBOUR, REPLIES, Session, _unavailable, browser, serving

from rag.pipeline import Assistant
from rag.settings import load_settings

__all__ = ["browser"]  # the fixture, shared with test_browser
pytestmark = pytest.mark.filterwarnings("ignore:::gradio.queueing")
ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / ".axe" / "node_modules" / "axe-core" / "axe.min.js"
TURNS = 30
CYCLE = ("When did Mosul fall?", "When was Tal Afar liberated?", "Who is the spokesman for the Syrian army?")


@pytest.fixture(scope="module")
def seed_url(assistant: Assistant) -> Iterator[str]:
    with serving(assistant) as url:
        yield url


@pytest.fixture
def own_index(seed_index: Path, tmp_path: Path) -> Iterator[str]:
    """The app over a private copy of the seed index (for uploads and removals)."""
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    with serving(Assistant(load_settings({"index_dir": str(index)}, environ={}))) as url:
        yield url


def shot(session: Session, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    session.page.wait_for_timeout(200)
    session.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def axe_violations(session: Session) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is (axe runs in the page, from the pinned npm
    package; nothing is fetched)."""
    if not AXE.is_file():
        _unavailable(f"{AXE} is missing (make setup-axe)")
    session.page.add_script_tag(path=str(AXE))
    result = session.page.evaluate("async () => (await axe.run(document)).violations.map(v => ({id: v.id, "
                                   "impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))")
    return [v for v in result if v["impact"] in {"serious", "critical"}]


# What a turn does in the page, counted as it happens: elements added to or removed from the document, and bytes
# written to localStorage. A page that redrew or re-saved the whole conversation would do more each turn.
COUNT_PAGE_WORK = """() => {
  window.ragWork = {nodes: 0, stored: 0};
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        window.ragWork.nodes += 1 + (node.querySelectorAll ? node.querySelectorAll('*').length : 0);
      }
      window.ragWork.nodes += record.removedNodes.length;
    }
  }).observe(document.body, {childList: true, subtree: true});
  const setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (key, value) {
    window.ragWork.stored += String(key).length + String(value).length;
    return setItem.call(this, key, value);
  };
}"""


def test_each_turn_costs_the_same_at_turn_30_as_at_turn_1(browser: Any, seed_url: str) -> None:
    """The cost of a turn is counted, not timed (timings on a shared machine are noise): the bytes it sends and
    receives, the elements it changes and the bytes it keeps must not grow with the conversation. The times are
    written to tests/artifacts/turn-cost.json for a person to look at."""
    session = Session(browser, seed_url)
    sent: list[tuple[int, int]] = []  # (request body, response body) of each request to the ask endpoint

    def finished(request: Any) -> None:
        if "/gradio_api/call/ask" in request.url:
            sizes = request.sizes()
            sent.append((max(0, sizes["requestBodySize"]), max(0, sizes["responseBodySize"])))

    session.page.on("requestfinished", finished)
    session.page.evaluate(COUNT_PAGE_WORK)
    box = session.page.locator("#rag-question textarea")
    seconds, up, down, nodes, stored = [], [], [], [], []
    for turn in range(TURNS):
        before, seen = session.replies(), len(sent)
        work_before = session.page.evaluate("() => ({...window.ragWork})")
        box.fill(CYCLE[turn % len(CYCLE)])
        started = time.perf_counter()
        box.press("Enter")
        session.page.wait_for_function(f"document.querySelectorAll({REPLIES!r}).length > {before}",
                                       polling=10, timeout=30_000)
        seconds.append(time.perf_counter() - started)
        deadline = time.monotonic() + 5
        while len(sent) < seen + 2 and time.monotonic() < deadline:  # the POST and the event stream
            session.page.wait_for_timeout(10)
        session.page.wait_for_function("!document.querySelector('#rag-log .rag-pending')", timeout=10_000)
        work = session.page.evaluate("() => ({...window.ragWork})")
        nodes.append(work["nodes"] - work_before["nodes"])
        stored.append(work["stored"] - work_before["stored"])
        up.append(sum(request for request, _ in sent[seen:]))
        down.append(sum(response for _, response in sent[seen:]))
    report = {"turn_ms": [round(s * 1000) for s in seconds], "request_bytes": up, "response_bytes": down,
              "elements_changed": nodes, "bytes_kept": stored,
              "median_turns_2_6_ms": round(statistics.median(seconds[1:6]) * 1000),
              "median_turns_26_30_ms": round(statistics.median(seconds[-5:]) * 1000)}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "turn-cost.json").write_text(json.dumps(report, indent=1) + "\n")
    assert session.replies() == TURNS

    def spread(counts: list[int], turns: range) -> int:
        return max(counts[t] for t in turns) - min(counts[t] for t in turns)

    for k in range(len(CYCLE)):
        # The same question costs the same bytes at turn 4 as at turn 28: only the new turn travels, with at most
        # five earlier questions as context.
        later = range(k + 2 * len(CYCLE), TURNS, len(CYCLE))  # once five earlier questions are sent
        assert spread(up, later) <= 16, up
        assert spread(down, range(k, TURNS, len(CYCLE))) <= 16, down  # only the turn number differs
        # The page adds that turn and keeps that turn: the same elements and, but for the turn's number in its
        # key, the same bytes at turn 28 as at turn 4 (the first turn also clears the examples).
        after_first = range(k + len(CYCLE), TURNS, len(CYCLE))
        assert spread(nodes, after_first) == 0, report
        assert spread(stored, after_first) <= 16, report
    shot(session, "browser-30-turns")
    session.close()


def test_errors_are_shown_by_the_box_and_leave_the_conversation(browser: Any, seed_url: str) -> None:
    session = Session(browser, seed_url)
    session.ask("When did Mosul fall?")
    chat = session.page.locator("#rag-log").inner_html()
    box = session.page.locator("#rag-question textarea")
    for question, message in (("   ", "the question is empty"), ("x" * 2001, "longer than 2000 characters")):
        box.fill(question)
        box.press("Enter")
        session.page.locator("#rag-notice").get_by_text(message).wait_for(timeout=10_000)
        assert session.page.locator("#rag-log").inner_html() == chat
        assert box.input_value() == question  # kept, to fix
        assert not session.page.get_by_text("Error", exact=True).count()  # no stuck red pill
    shot(session, "browser-error-kept-chat")
    follow = session.ask("When was Tal Afar liberated?")
    assert "Aug. 30" in follow.inner_text() and not session.page.locator("#rag-notice").inner_text().strip()
    session.close()


def test_answer_tools_history_and_recall(browser: Any, seed_url: str) -> None:
    session = Session(browser, seed_url)
    page = session.page
    reply = session.ask("When did Mosul fall?")
    turn = page.locator("#rag-log .rag-turn").last
    support = turn.locator(".rag-support")
    assert support.is_visible() and support.inner_text().startswith("Quoted directly")
    turn.locator(".rag-copy").click()
    page.wait_for_function("document.querySelector('#rag-log .rag-copy').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("July 10: “Iraqi forces declared victory in Mosul on July 10.” [1]")
    assert "Sources:\n[1] Territorial losses suffered by Islamic State in Syria, Iraq" in copied
    suggestions = turn.locator(".rag-suggest").all_inner_texts()
    cited = reply.locator(".rag-source").inner_text()
    assert suggestions and all(s.removeprefix("And ").removeprefix("What happened on ").rstrip("?") in cited
                               for s in suggestions)  # drawn from the cited text, not invented
    before = session.replies()
    turn.locator(".rag-suggest").first.click()
    session.wait_for_reply(before)
    session.ask("Who is the spokesman for the Syrian army?")
    box = page.locator("#rag-question textarea")
    box.press("ArrowUp")
    assert box.input_value() == "Who is the spokesman for the Syrian army?"
    box.press("ArrowUp")
    assert box.input_value() == suggestions[0]
    box.press("ArrowDown")
    box.press("ArrowDown")
    assert box.input_value() == ""
    # Kept in the browser: a reload shows the same conversation, listed in the history panel.
    page.reload(wait_until="domcontentloaded")
    page.locator("#rag-log .rag-answer").nth(2).wait_for(timeout=10_000)
    assert session.replies() == 3
    assert "When did Mosul fall?" in page.locator("#rag-history").inner_text()
    # "New conversation" asks first (in the page, not a dialog); the old one stays listed and reopens.
    page.locator("#rag-new").click()
    page.locator("#rag-notice").get_by_text("Start a new conversation?").wait_for()
    shot(session, "browser-new-conversation-asks")
    page.locator("#rag-notice button", has_text="Start new").click()
    assert session.replies() == 0 and page.locator("#rag-log .rag-empty").is_visible()
    session.ask("When was Tal Afar liberated?")
    assert page.locator("#rag-history li").count() == 2
    page.locator(".rag-history-open", has_text="When did Mosul fall?").click()
    assert session.replies() == 3
    session.close()


def test_library_lists_searches_reads_scopes_and_removes_an_upload(browser: Any, own_index: str,
                                                                   tmp_path: Path) -> None:
    session = Session(browser, own_index)
    page = session.page
    harbour = tmp_path / "harbour news.txt"
    harbour.write_text(HARBOUR, encoding="utf-8")
    slides = tmp_path / "slides.pdf"
    slides.write_bytes(b"%PDF-1.4")
    page.locator("#rag-upload input[type=file]").set_input_files([str(harbour), str(slides)])
    report = page.locator("#rag-upload-report")
    report.locator(".rag-ok").wait_for(timeout=90_000)
    assert "harbour_news.txt: added 1 new article (1 passage)" in report.inner_text()
    assert "slides.pdf: .pdf is not a supported file type" in report.inner_text()
    assert not page.get_by_text("Error", exact=True).count()
    library = page.locator("#rag-library")
    library.get_by_text("1-3 of 3 articles").wait_for(timeout=10_000)
    listing = library.inner_text()
    assert "harbour_news.txt · 1 passage" in listing and str(tmp_path) not in listing  # no server path
    page.locator("#rag-lib-search input, #rag-lib-search textarea").first.fill("harbour")
    library.get_by_text("1-1 of 1 article matching “harbour”").wait_for(timeout=10_000)
    library.locator(".rag-lib-open").click()
    reader = page.locator("#rag-reader .rag-reader")
    reader.wait_for(timeout=10_000)
    assert "<script>alert(1)</script>" in reader.inner_text() and not reader.locator("script, img").count()
    # Ask within the upload only: the Mosul question now finds nothing there.
    library.locator(".rag-scope-pick").check()
    assert "Asking within" in page.locator("#rag-scope").inner_text()
    within = session.ask("When did Mosul fall?")
    assert "don't say" in within.locator(".rag-text").inner_text()
    assert set(within.locator(".rag-passage .rag-title").all_inner_texts()) == {
        "Port Vell harbour <script>alert(1)</script> reopens"}
    shot(session, "browser-library-scope")
    page.locator("#rag-scope-clear").click()
    assert "July 10" in session.ask("When did Mosul fall?").locator(".rag-text").inner_text()
    remove = library.locator(".rag-lib-remove")
    remove.click()
    assert remove.inner_text() == "Confirm remove"
    remove.click()
    library.get_by_text("Removed harbour_news.txt: 1 article and their passages left the index.").wait_for(
        timeout=60_000)
    assert "2 articles" in " ".join(page.locator("#rag-stats").inner_text().split())
    page.locator("#rag-lib-search input, #rag-lib-search textarea").first.fill("")
    library.get_by_text("1-2 of 2 articles").wait_for(timeout=10_000)
    session.close()


def test_phone_layout_and_accessibility(browser: Any, seed_url: str) -> None:
    desktop = Session(browser, seed_url)
    desktop.ask("When did Mosul fall?")
    assert axe_violations(desktop) == []
    desktop.close()
    phone = Session(browser, seed_url, width=390, height=844)
    page = phone.page
    reply = phone.ask("When did Mosul fall?")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
    ref = reply.locator("a.rag-ref").first
    box = ref.bounding_box()
    assert box and box["height"] < 2 * float(ref.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 20"))
    # The citation link is reachable from the keyboard and shows a focus ring.
    page.locator("#rag-question textarea").focus()
    for _ in range(60):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.classList.contains('rag-ref')"):
            break
    assert page.evaluate("document.activeElement.classList.contains('rag-ref')")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    # The library is one tap away from the chat.
    page.locator(".rag-nav a", has_text="Library").click()
    page.wait_for_timeout(300)
    heading = page.locator("#rag-library-section").bounding_box()
    assert heading and -5 <= heading["y"] < 844
    shot(phone, "browser-phone-library")
    assert axe_violations(phone) == []
    page.evaluate("window.scrollTo(0, 0)")
    shot(phone, "browser-phone-chat")
    phone.close()
