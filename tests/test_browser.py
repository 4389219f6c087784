"""The chat UI in a real headless browser: Playwright (from pip) driving Debian's chromium, never a downloaded one.

Without /usr/bin/chromium the tests skip, except in CI (CI=true), where .ci/run installs it and a skip would hide a
broken UI: there they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from rag.pipeline import Assistant
from rag.settings import load_settings
from rag.ui import page as ui_page

# gradio's queue trips pandas 3 deprecation warnings of its own; they say nothing about this app.
pytestmark = pytest.mark.filterwarnings("ignore:::gradio.queueing")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
REPLIES = "#rag-chat .rag-answer, #rag-chat .rag-error"
HARBOUR = """Port Vell harbour <script>alert(1)</script> reopens

The harbour of Port Vell reopened on March 3 after two years of works <img src=x onerror=alert(1)> \
[click](http://evil.example).

The city council said the works cost 40 million euros. Fishing boats returned the same week, and the ferry to the \
islands will resume in May, the harbour master said.
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI installs it: .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright; it needs no browser download here)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(assistant: Assistant) -> Iterator[str]:
    demo = ui_page.build_app(assistant)
    _, url, _ = ui_page.launch(demo, host="127.0.0.1", port=free_port(), block=False)
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def seed_url(assistant: Assistant) -> Iterator[str]:
    with serving(assistant) as url:
        yield url


class Session:
    """One page of the app, with every request that would leave loopback refused and recorded, and every dialog
    (an alert() run by article text would open one) recorded."""

    def __init__(self, browser: Any, url: str, width: int = 1280, height: int = 900) -> None:
        # Its own context: storage (the kept conversations) starts empty; the clipboard can be read back.
        self.context = browser.new_context(viewport={"width": width, "height": height},
                                           permissions=["clipboard-read", "clipboard-write"])
        self.page = self.context.new_page()
        self.external: list[str] = []
        self.dialogs: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("dialog", self._dialog)
        self.page.goto(url, wait_until="domcontentloaded")
        self.page.wait_for_selector("#rag-question textarea")

    def _route(self, route: Any) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname not in {"127.0.0.1", "localhost"}:
            self.external.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def replies(self) -> int:
        return int(self.page.locator(REPLIES).count())

    def wait_for_reply(self, before: int) -> Any:
        self.page.wait_for_function(f"document.querySelectorAll({REPLIES!r}).length > {before}", timeout=30_000)
        return self.page.locator(REPLIES).last

    def ask(self, question: str) -> Any:
        before = self.replies()
        box = self.page.locator("#rag-question textarea")
        box.fill(question)
        box.press("Enter")
        return self.wait_for_reply(before)

    def close(self) -> None:
        assert not self.external, f"the page tried to leave loopback: {self.external}"
        assert not self.dialogs, f"a dialog opened: {self.dialogs}"
        self.context.close()


def marks(reply: Any) -> list[str]:
    """The exact text of each highlight (textContent: no layout, no whitespace folding)."""
    return list(reply.locator("mark").evaluate_all("marks => marks.map(mark => mark.textContent)"))


def test_typed_question_gets_answer_with_the_exact_quote_highlighted(browser: Any, seed_url: str,
                                                                    assistant: Assistant) -> None:
    expected = assistant.ask("When did Mosul fall?")
    session = Session(browser, seed_url)
    reply = session.ask("When did Mosul fall?")
    assert "July 10" in reply.locator(".rag-text").inner_text()
    assert marks(reply) == [expected.citations[0].quote] * 2  # in the context, and in the full article
    assert expected.citations[0].title in reply.locator(".rag-source").first.inner_text()
    # The [1] marker and the "show the quote" link lead to the source and into the full article.
    reply.locator("a.rag-jump").click()
    article = reply.locator("details.rag-article")
    assert article.get_attribute("open") is not None
    box = reply.locator(".rag-article-text").bounding_box()
    quote = reply.locator(".rag-article-text mark").bounding_box()
    assert box and quote and box["y"] <= quote["y"] and quote["y"] + quote["height"] <= box["y"] + box["height"]
    article.locator("summary").click()  # fold it again for the screenshot
    ARTIFACTS.mkdir(exist_ok=True)
    session.page.wait_for_timeout(300)
    session.page.screenshot(path=str(ARTIFACTS / "browser-answer.png"))
    session.close()


def test_example_then_follow_up(browser: Any, seed_url: str) -> None:
    session = Session(browser, seed_url)
    example = session.page.locator(".rag-empty .rag-suggest").first
    asked = example.inner_text()
    assert asked.endswith("?")
    example.click()
    first = session.wait_for_reply(0)
    assert asked in session.page.locator("#rag-log").inner_text() and first.locator(".rag-text").inner_text()
    tal_afar = session.ask("When was Tal Afar liberated?")
    assert "Aug. 30" in tal_afar.locator(".rag-text").inner_text()
    session.ask("When did Mosul fall?")
    follow_up = session.ask("And Raqqa?")
    assert "Oct. 17" in follow_up.locator(".rag-text").inner_text()
    assert "When did Raqqa fall?" in follow_up.locator(".rag-asked").inner_text()
    session.ask("Who reported the story from Baghdad?")
    about_the_answer = session.ask("where was he")  # "he" is the answer, George
    assert "where was George" in about_the_answer.locator(".rag-asked").inner_text()
    session.page.locator("#rag-question textarea").fill("   ")
    session.page.locator("#rag-question textarea").press("Enter")
    session.page.get_by_text("the question is empty").wait_for(timeout=10_000)
    assert session.replies() == 6
    session.close()


def test_uploaded_article_with_markup_renders_as_text(browser: Any, seed_index: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    article = tmp_path / "harbour.txt"
    article.write_text(HARBOUR, encoding="utf-8")
    with serving(Assistant(load_settings({"index_dir": str(index)}, environ={}))) as url:
        session = Session(browser, url)
        session.page.locator("#rag-upload input[type=file]").set_input_files(str(article))
        session.page.locator("#rag-upload-report .rag-ok").wait_for(timeout=90_000)
        assert "1 new" in session.page.locator("#rag-upload-report").inner_text()
        assert "3 articles" in " ".join(session.page.locator("#rag-stats").inner_text().split())
        reply = session.ask("When did the harbour of Port Vell reopen?")
        assert "March 3" in reply.locator(".rag-text").inner_text()
        reply.locator("details.rag-article summary").click()
        session.page.wait_for_timeout(500)  # time for a live onerror handler to have fired, were there one
        shown = reply.inner_text()
        for text in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[click](http://evil.example)"):
            assert text in shown
        assert reply.locator("script, img, iframe, [onerror]").count() == 0
        assert reply.locator("a[href*='evil']").count() == 0
        quote = ("The harbour of Port Vell reopened on March 3 after two years of works <img src=x onerror=alert(1)> "
                 "[click](http://evil.example).")
        assert marks(reply) == [quote, quote]
        session.close()
