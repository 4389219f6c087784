"""Chat UI over the assistant: ``python app.py [--host H] [--port N] [--index DIR] [--auth USER:PASS] [--share]
[--llm BACKEND:MODEL [--llm-base-url URL] [--llm-timeout S]]``.

A thin shell over ``rag.pipeline.Assistant`` (the same ``ingest``/``ask`` calls as ``python -m rag.ask``): every
answer is shown with its [n] markers tied to a sources panel that quotes the cited span in its context and opens the
whole article scrolled to it; a side panel shows what is indexed and adds uploaded files to the index.

Everything that comes from an article (text, titles, quotes, file names) and everything the user typed is rendered as
text: it is HTML-escaped here, and the chat component is told not to interpret Markdown, LaTeX or custom tags.

With ``--llm`` the answers are written by that model and stream in as they are checked: a sentence appears once
every number, date and name in it has been found in the passage it cites (the raw text never shows); citations and
a note on any sentence left out come when the answer is complete; a small label says how each answer was made.

Serves on 127.0.0.1:7860 by default. Listening beyond loopback, or a public ``--share`` link, requires a login
(``--auth USER:PASS`` or ``RAG_UI_AUTH=USER:PASS``).
"""

import argparse
import html
import ipaddress
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# rag before gradio: importing rag sets the offline environment (no analytics, no model hub) that gradio reads.
from rag.citing import Citation, PassageHit, article_text, jsonl_record_source
from rag.cli import add_index_flags, add_llm_flags, fail, log, run, settings_from
from rag.loading import SUPPORTED_SUFFIXES
from rag.pipeline import Answer, Assistant, QuestionError

# isort: split
import gradio as gr

HOST = "127.0.0.1"
PORT = 7860
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# Questions run concurrently with each other (see Guard): a question costs ~50 ms of numpy and Chroma work, and on
# 2-4 cores four at a time is the measured sweet spot (10 at once was 5x slower than 4, from thread contention).
# Further requests wait in the queue, which is bounded so an overload gets a "queue full" message, not a pile-up.
ASK_CONCURRENCY = 4
QUEUE_SIZE = 64
CONTEXT_CHARS = 320
"""Characters of article text shown on each side of a quote in the sources panel."""
PASSAGE_EXCERPT_CHARS = 240
"""A retrieved passage is shown as an excerpt this long, which opens into the whole passage."""
FULL_ARTICLE_CHARS = 120_000
"""Longer articles are shown as a window of this size around the quote (a 5 MB upload is not sent to the page)."""
EXAMPLES = ("When did Mosul fall?", "Who is the spokesman for the Syrian army?", "When was Tal Afar liberated?")
UPLOAD_SUFFIXES = tuple(sorted(SUPPORTED_SUFFIXES))
# Characters str.splitlines() breaks on, and tabs: gr.Chatbot passes every message through inspect.cleandoc (which
# re-indents lines and expands tabs), so they are written as character references and reach the page untouched.
_WHITESPACE_REFS = {ord(c): f"&#{ord(c)};" for c in "\t\n\r\x0b\x0c\x1c\x1d\x1e\u2028\u2029"}


def text_html(text: str) -> str:
    """``text`` as HTML that displays exactly that text: escaped, with line breaks as character references."""
    return html.escape(text, quote=True).translate(_WHITESPACE_REFS)


# ---------------------------------------------------------------------------------------------------------------------
# Rendering: plain functions from library objects to escaped HTML


def source_anchor(turn: int, n: int) -> str:
    return f"rag-t{turn}-s{n}"


def quote_anchor(turn: int, n: int) -> str:
    return f"rag-t{turn}-q{n}"


def failure_reply(error: Exception) -> str:
    """What the chat shows for an unexpected failure (the traceback goes to the server log)."""
    traceback.print_exc(file=sys.stderr)
    return (f'<p class="rag-error">Sorry, this question could not be answered '
            f"({text_html(type(error).__name__)}: {text_html(str(error)[:300])}). "
            "The details are in the server log.</p>")


def render_question(question: str) -> str:
    """A user turn as shown in the chat (``previous_questions`` reverses it)."""
    return text_html(question)


def render_answer(answer: Answer, turn: int = 1) -> str:
    """One assistant turn: the answer with linked [n] markers, how it was made, any sentence of a generated answer
    that was left out, then the sources (or the closest passages)."""
    parts = [f'<div class="rag-answer{"" if answer.answerable else " rag-refusal"}">',
             f'<p class="rag-text">{_answer_text_html(answer, turn)}</p>', render_mode(answer)]
    parts.append(render_dropped(answer))
    if answer.asked and answer.asked != answer.question:
        parts.append(f'<p class="rag-asked">Read as a follow-up: “{text_html(answer.asked)}”</p>')
    parts.append(render_sources(answer, turn))
    parts.append("</div>")
    return "".join(parts)


def render_mode(answer: Answer) -> str:
    """The small label saying how the answer was made."""
    if answer.mode == "llm":
        label, title = (f"Generated by {answer.model} · checked against its sources",
                        "Every sentence was checked: its numbers, dates and names are in the passage it cites.")
    elif answer.mode == "extractive-fallback":
        label = "Quoted from the articles · the model's answer was not used"
        title = f"{answer.model}: {answer.fallback_reason}"
    else:
        label, title = "Quoted from the articles", "The answer is a sentence of an article, quoted exactly."
    note = (f'<span class="rag-mode-why">{text_html(answer.fallback_reason or "")}</span>'
            if answer.mode == "extractive-fallback" else "")
    return (f'<p class="rag-mode rag-mode-{answer.mode}" title="{text_html(title)}">'
            f'<span class="rag-mode-label">{text_html(label)}</span>{note}</p>')


def render_dropped(answer: Answer) -> str:
    """For a generated answer, what was left out and why; for one that fell back, why the model's sentences were
    not used. Only the reasons are shown, never the sentences themselves."""
    dropped = [sentence for sentence in answer.sentences if sentence.verdict == "dropped"]
    if answer.mode == "extractive" or not dropped:
        return ""
    items = "".join(f"<li>{text_html(readable_reason(sentence.reason))}</li>" for sentence in dropped)
    count = f"{len(dropped)} sentence{'s' if len(dropped) > 1 else ''}"
    head = (f"Left out: {count} of the model's answer that the cited passages do not support" if answer.mode == "llm"
            else f"Not used: {count} of the model's answer, for these reasons")
    return f'<div class="rag-dropped"><span class="rag-dropped-head">{head}</span><ul>{items}</ul></div>'


def readable_reason(reason: str) -> str:
    """A verdict's reason as the page says it: the model's passage numbers ([1] in the prompt) are written #1, so
    they are not read as the answer's source numbers."""
    return re.sub(r"\[(\d+)\]", r"#\1", reason)


def render_progress(answer_so_far: Sequence[str], pieces: int, model: str, started: float) -> str:
    """A generated answer while it streams: the sentences checked so far (without their citations, which come at
    the end) and how far the model has got. Nothing unchecked is shown."""
    text = " ".join(answer_so_far)
    waiting = "Waiting for the model…" if not pieces else (
        f"The model is writing ({pieces} piece{'s' if pieces != 1 else ''} of text, "
        f"{time.monotonic() - started:.1f} s); each sentence appears once checked against its source.")
    return (f'<div class="rag-answer rag-streaming"><p class="rag-text">{text_html(text)}</p>'
            f'<p class="rag-progress">{text_html(waiting)}</p><p class="rag-mode rag-mode-llm">'
            f'<span class="rag-mode-label">{text_html(f"Generated by {model} · checking")}</span></p></div>')


def _answer_text_html(answer: Answer, turn: int) -> str:
    """The answer text, escaped; its [n] markers (not any inside a quote) link to source n; the short answer bold."""
    text = answer.answer
    numbers = {citation.n for citation in answer.citations}
    quoted = []
    for citation in answer.citations:
        at = text.find(citation.quote) if citation.quote else -1
        while at != -1:
            quoted.append((at, at + len(citation.quote)))
            at = text.find(citation.quote, at + 1)
    pieces, position = [], 0
    short = answer.short_answer
    if short and text.startswith(f"{short}:"):
        pieces.append(f'<strong class="rag-short">{text_html(short)}</strong>')
        position = len(short)
    for marker in re.finditer(r"\[(\d+)\]", text):
        n = int(marker.group(1))
        if marker.start() < position or n not in numbers or any(a <= marker.start() < b for a, b in quoted):
            continue
        pieces.append(text_html(text[position : marker.start()]))
        pieces.append(f'<a class="rag-ref" href="#{source_anchor(turn, n)}" title="Go to source {n}">[{n}]</a>')
        position = marker.end()
    pieces.append(text_html(text[position:]))
    return "".join(pieces)


def render_sources(answer: Answer, turn: int = 1) -> str:
    """The sources panel: each citation in its context with the quote highlighted, or for a refusal the closest
    passages; the other passages retrieved for an answer are listed folded away."""
    if not answer.citations:
        if not answer.passages:
            return '<p class="rag-note">Nothing is indexed yet: add articles in the side panel.</p>'
        return (f'<div class="rag-sources"><div class="rag-label">Closest passages — the assistant found no answer '
                f'in them</div><ol class="rag-passages">{"".join(_passage_html(p) for p in answer.passages)}'
                "</ol></div>")
    cards = "".join(_citation_html(citation, turn) for citation in answer.citations)
    panel = f'<div class="rag-sources"><div class="rag-label">Sources</div>{cards}</div>'
    others = [p for p in answer.passages
              if not any(p.source == c.source and p.start <= c.start and c.end <= p.end for c in answer.citations)]
    if others:
        panel += (f'<details class="rag-more"><summary>Other passages retrieved ({len(others)})</summary>'
                  f'<ol class="rag-passages">{"".join(_passage_html(p) for p in others)}</ol></details>')
    return panel


@dataclass(frozen=True)
class _Located:
    """A citation's span in its article: the text around it and, when it fits, the article shown whole."""

    before: str
    after: str
    clipped_before: bool
    clipped_after: bool
    article: str | None = None
    """The article (or a window of a long one) with the quote at ``article_start:article_end``."""
    article_start: int = 0
    article_end: int = 0
    article_offset: int = 0
    """Where ``article`` starts in the full text (non-zero for a window of a long article)."""
    article_length: int = 0


def _locate(source: str, start: int, end: int, quote: str) -> _Located | None:
    try:
        text = article_text(source)
    except (OSError, ValueError) as error:
        log(f"sources panel: cannot read {source}: {error}")
        return None
    if text[start:end] != quote:
        log(f"sources panel: {source} changed since it was indexed (characters {start}-{end} are not the quote)")
        return None
    low, high = _context_bounds(text, start, end, CONTEXT_CHARS)
    window_start, window_end = 0, len(text)
    if len(text) > FULL_ARTICLE_CHARS:
        window_start, window_end = _context_bounds(text, start, end, FULL_ARTICLE_CHARS // 2)
    return _Located(text[low:start], text[end:high], _cut_inside_paragraph(text, low),
                    _cut_inside_paragraph(text, high), text[window_start:window_end],
                    start - window_start, end - window_start, window_start, len(text))


def _context_bounds(text: str, start: int, end: int, radius: int) -> tuple[int, int]:
    """About ``radius`` characters each side of ``start:end``: whole paragraphs when they fit, else cut at a word."""
    low, high = max(0, start - radius), min(len(text), end + radius)
    if low > 0:
        paragraph = text.find("\n\n", low, start)
        space = re.search(r"\s", text[low:start])
        low = paragraph + 2 if paragraph != -1 else (low + space.end() if space else start)
    if high < len(text):
        paragraph = text.rfind("\n\n", end, high)
        spaces = [m.start() for m in re.finditer(r"\s", text[end:high])]
        high = paragraph if paragraph != -1 else (end + spaces[-1] if spaces else end)
    return low, high


def _cut_inside_paragraph(text: str, at: int) -> bool:
    """Whether a context starting or ending at ``at`` cuts a paragraph (and so needs an ellipsis)."""
    return 0 < at < len(text) and not (text[:at].endswith("\n\n") or text[at:].startswith("\n\n"))


def _citation_html(citation: Citation, turn: int) -> str:
    title = citation.title.strip() or citation.doc_id
    where = _where(citation.source, citation.doc_id, citation.start, citation.end)
    located = _locate(citation.source, citation.start, citation.end, citation.quote)
    quote = f'<mark class="rag-quote">{text_html(citation.quote)}</mark>'
    if located is None:
        context = (f'<blockquote class="rag-context">{quote}</blockquote><p class="rag-note">The article file could '
                   "not be read or has changed since it was indexed; only the quoted span is shown.</p>")
        article = ""
    else:
        context = (f'<blockquote class="rag-context">{"…" if located.clipped_before else ""}'
                   f"{text_html(_squash(located.before).lstrip())}{quote}{text_html(_squash(located.after).rstrip())}"
                   f'{"…" if located.clipped_after else ""}</blockquote>')
        article = _article_html(located, citation.quote, quote_anchor(turn, citation.n))
    return (f'<section class="rag-source" id="{source_anchor(turn, citation.n)}">'
            f'<div class="rag-source-head"><span class="rag-n">[{citation.n}]</span>'
            f'<span class="rag-title">{text_html(title)}</span></div>'
            f'<div class="rag-where">{where}</div>{context}{article}</section>')


def _article_html(located: _Located, quote: str, anchor: str) -> str:
    article = located.article or ""
    before, after = article[: located.article_start], article[located.article_end :]
    note = ""
    if located.article_offset or len(article) < located.article_length:
        note = (f'<p class="rag-note">A long article: characters {located.article_offset:,}-'
                f"{located.article_offset + len(article):,} of {located.article_length:,} are shown.</p>")
    return (f'<details class="rag-article"><summary>Full article</summary>'
            f'<div class="rag-article-text">{text_html(before)}<mark class="rag-quote" id="{anchor}">'
            f"{text_html(quote)}</mark>{text_html(after)}</div>{note}</details>"
            f'<a class="rag-jump" href="#{anchor}">Show the quote in the full article</a>')


def _passage_html(passage: PassageHit) -> str:
    """A retrieved passage: title, place, and an excerpt that opens into the whole passage."""
    title = passage.title.strip() or passage.doc_id
    text = _squash(passage.text.strip())
    if len(text) <= PASSAGE_EXCERPT_CHARS:
        body = f'<blockquote class="rag-context">{text_html(text)}</blockquote>'
    else:
        cut = text.rfind(" ", 0, PASSAGE_EXCERPT_CHARS)
        excerpt = text[: cut if cut > 0 else PASSAGE_EXCERPT_CHARS]
        body = (f'<blockquote class="rag-context rag-excerpt">{text_html(excerpt)}…</blockquote>'
                f'<details class="rag-whole"><summary>Whole passage</summary>'
                f'<blockquote class="rag-context">{text_html(text)}</blockquote></details>')
    return (f'<li class="rag-passage"><div class="rag-title">{text_html(title)}</div>'
            f'<div class="rag-where">{_where(passage.source, passage.doc_id, passage.start, passage.end)}</div>'
            f"{body}</li>")


def _where(source: str, doc_id: str, start: int, end: int) -> str:
    record = jsonl_record_source(source)
    if record and not Path(source).is_file():
        place = f"{text_html(str(record[0]))} · record <code>{text_html(record[1])}</code>"
    else:
        place = text_html(source)
    return f"{place} · characters {start:,}-{end:,}"


def _squash(text: str) -> str:
    """Context text made compact: each run of whitespace becomes one space, or one line break if it had any."""
    return re.sub(r"\s+", lambda run: "\n" if "\n" in run.group() else " ", text)


def render_stats(stats: dict[str, int], index_dir: Path, note: str = "") -> str:
    articles, passages = stats.get("articles", 0), stats.get("passages", 0)
    body = (f'<div class="rag-stats"><div class="rag-label">Indexed</div>'
            f'<div class="rag-counts"><span><b>{articles:,}</b> article{"" if articles == 1 else "s"}</span>'
            f'<span><b>{passages:,}</b> passage{"" if passages == 1 else "s"}</span></div>'
            f'<div class="rag-where">index: {text_html(str(index_dir))}</div>')
    if note:
        body += f'<p class="rag-note">{text_html(note)}</p>'
    return body + "</div>"


def previous_questions(history: Sequence[Any] | None) -> list[str]:
    """The user's earlier questions, from the chat history (messages with a string or a list of text parts)."""
    questions = []
    for message in history or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        text = _message_text(message)
        if text.strip():
            questions.append(html.unescape(text))  # undoes render_question exactly
    return questions


def previous_turns(history: Sequence[Any] | None) -> list[tuple[str, str]]:
    """The earlier (question, answer text) pairs, for a model that is sent the conversation."""
    turns: list[tuple[str, str]] = []
    question = None
    for message in history or []:
        if not isinstance(message, dict):
            continue
        text = _message_text(message)
        if message.get("role") == "user" and text.strip():
            question = html.unescape(text)
        elif message.get("role") == "assistant" and question is not None:
            shown = re.search(r'<p class="rag-text">(.*?)</p>', text, re.DOTALL)
            turns.append((question, html.unescape(re.sub(r"<[^>]*>", "", shown.group(1))) if shown else ""))
            question = None
    return turns


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else [content]
    return " ".join(str(part.get("text", "")) for part in parts
                    if isinstance(part, dict) and part.get("type", "text") == "text")


# ---------------------------------------------------------------------------------------------------------------------
# Uploads


def safe_filename(name: str) -> str:
    """The file's own name, reduced to letters, digits, ``.``, ``-`` and ``_``: no directories, no hidden files."""
    base = unicodedata.normalize("NFKC", name.replace("\\", "/").rsplit("/", 1)[-1])
    base = re.sub(r"[^\w.-]+", "_", base).strip("._-") or "upload"
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem[:100].rstrip("._-") or "upload"
    return f"{stem}.{suffix[:12]}" if suffix else stem


def check_upload(path: Path, name: str) -> str | None:
    """Why an uploaded file cannot be added (wrong type, too big), or None. Its content is the loader's to judge."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(UPLOAD_SUFFIXES)
        return f"{name}: {suffix or 'no extension'} is not a supported file type (use {kinds})"
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        return f"{name}: {size / 1024 / 1024:.1f} MB is over the {MAX_UPLOAD_BYTES // 1024 // 1024} MB limit"
    if size == 0:
        return f"{name}: the file is empty"
    return None


# ---------------------------------------------------------------------------------------------------------------------
# The handlers


class Guard:
    """Questions share the index; an ingest has it alone.

    Asking only reads (Chroma queries, the BM25 index in memory, numpy), and 10 concurrent asks gave the same answers
    as 10 sequential ones, so questions run in parallel. An ingest writes Chroma, swaps the BM25 index directory, drops
    the cached retriever and may rewrite an uploaded article file that the sources panel reads: it waits for the
    questions in flight and holds new ones back until it is done. A waiting ingest goes before new questions.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._condition:
            self._writers_waiting += 1
            try:
                self._condition.wait_for(lambda: not self._writing and not self._readers)
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._condition:
                self._writing = False
                self._condition.notify_all()


Messages = list[dict[str, Any]]


class ChatHandlers:
    """What the UI does, as plain methods over one assistant (testable without a server)."""

    def __init__(self, assistant: Assistant, note: str = "") -> None:
        self.assistant = assistant
        self.note = note
        self.guard = Guard()

    def respond(self, question: str, history: Messages | None) -> tuple[Messages, str]:
        """Answer ``question`` as a follow-up to the user's earlier questions; returns (chat, cleared textbox).

        A question that cannot be asked (empty, too long) is a ``gr.Error`` with the library's message (the textbox
        keeps the text); any other failure is logged and answered in the chat with a one-line message.
        """
        history = list(history or [])
        earlier = previous_questions(history)
        turn = len(earlier) + 1
        try:
            with self.guard.reading():
                answer = self.assistant.ask(question or "", history=earlier)
                reply = render_answer(answer, turn)
        except QuestionError as error:
            raise gr.Error(f"Cannot ask that: {error}.", title="Question", print_exception=False) from None
        except Exception as error:
            reply = failure_reply(error)
        return [*history, {"role": "user", "content": render_question(question)},
                {"role": "assistant", "content": reply}], ""

    def respond_example(self, history: Messages | None, event: gr.SelectData) -> tuple[Messages, str]:
        value = event.value
        return self.respond(str(value.get("text", "") if isinstance(value, dict) else value), history)

    def respond_generated(self, question: str, history: Messages | None) -> Iterator[tuple[Messages, str]]:
        """``respond`` with the model ``settings.llm``: the reply streams in as sentences pass their checks, and
        the finished answer (citations, anything left out, or the extractive answer it fell back to) replaces it."""
        from rag.generation.chain import Checked, Done, Token

        history = list(history or [])
        turns = previous_turns(history)
        turn = len(turns) + 1
        asked = {"role": "user", "content": render_question(question)}
        model = self.assistant.settings.llm
        started = time.monotonic()
        reply = ""
        try:
            with self.guard.reading():
                checked: list[str] = []
                pieces = 0
                for event in self.assistant.generate(question or "", history=turns):
                    if isinstance(event, Token):
                        pieces += 1
                    elif isinstance(event, Checked) and event.verdict.verified:
                        checked.append(event.verdict.claim.body)
                    elif isinstance(event, Done):
                        reply = render_answer(event.answer, turn)
                        if event.answer.fallback_reason:
                            log(f"llm: {event.answer.fallback_reason}; showing the extractive answer")
                        break
                    if not isinstance(event, Done):
                        progress = render_progress(checked, pieces, model, started)
                        yield [*history, asked, {"role": "assistant", "content": progress}], ""
        except QuestionError as error:
            raise gr.Error(f"Cannot ask that: {error}.", title="Question", print_exception=False) from None
        except Exception as error:
            reply = failure_reply(error)
        yield [*history, asked, {"role": "assistant", "content": reply}], ""

    def respond_generated_example(self, history: Messages | None, event: gr.SelectData
                                  ) -> Iterator[tuple[Messages, str]]:
        value = event.value
        yield from self.respond_generated(str(value.get("text", "") if isinstance(value, dict) else value), history)

    def stats(self) -> str:
        try:
            with self.guard.reading():
                counts = self.assistant.stats()
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            return f'<p class="rag-error">Cannot read the index: {text_html(str(error)[:300])}</p>'
        return render_stats(counts, self.assistant.settings.index_dir, self.note)

    def upload(self, files: Sequence[Any] | None) -> tuple[str, str, None]:
        """Save the files in ``<index_dir>/uploads/`` and ingest them; returns (report, stats, cleared files)."""
        try:
            report = self._upload([Path(_file_path(file)) for file in files or []])
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            report = f'<p class="rag-error">The upload failed: {text_html(str(error)[:300])}</p>'
        return report + UPLOAD_NOTE, self.stats(), None

    def _upload(self, paths: list[Path]) -> str:
        if not paths:
            return '<p class="rag-note">Choose one or more files to add.</p>'
        refused, accepted = [], []
        for path in paths:
            name = safe_filename(path.name)
            why = check_upload(path, path.name)
            if why:
                refused.append(why)
            else:
                accepted.append((path, name))
        lines = []
        if accepted:
            folder = self.assistant.settings.index_dir / "uploads"
            folder.mkdir(parents=True, exist_ok=True)
            with self.guard.writing(), tempfile.TemporaryDirectory(dir=folder, prefix=".replaced-") as backups:
                saved: dict[str, str] = {}  # saved path -> name shown
                for path, name in accepted:
                    if name in saved.values():
                        refused.append(f"{path.name}: another file in this upload has the same name")
                        continue
                    target = folder / name
                    if target.exists():  # keep the indexed version until the new one is known to load
                        shutil.copy2(target, Path(backups) / name)
                    shutil.copyfile(path, target)
                    saved[str(target)] = name
                report = self.assistant.ingest(list(map(Path, saved)))
                for problem in report.problems:
                    name = saved.get(problem.path) or Path(problem.path).name
                    refused.append(f"{name}{f' line {problem.line}' if problem.line else ''}: {problem.message}")
                    if problem.line is None and problem.path in saved:  # the whole file was refused
                        backup = Path(backups) / name
                        if backup.exists():
                            shutil.copy2(backup, problem.path)  # the index kept the old version: so does the disk
                        else:
                            Path(problem.path).unlink(missing_ok=True)
            lines.append(f'<p class="rag-ok">Indexed {len(saved)} file{"" if len(saved) == 1 else "s"}: '
                         f"{text_html(report.summary())}.</p>")
        if refused:
            items = "".join(f"<li>{text_html(line)}</li>" for line in refused)
            lines.append(f'<div class="rag-error"><b>Not added:</b><ul>{items}</ul></div>')
        return "".join(lines)


def _file_path(file: Any) -> str:
    """A gr.File value (a path, or a FileData-like object/dict) as a path."""
    if isinstance(file, dict):
        return str(file.get("path"))
    return str(getattr(file, "path", file))


# ---------------------------------------------------------------------------------------------------------------------
# The page

CSS = """
.gradio-container { max-width: 1280px !important; margin: 0 auto !important; }
#rag-header h1 { font-size: 1.45rem; margin: 0.2rem 0 0.1rem; letter-spacing: -0.01em; }
#rag-header p { margin: 0; color: var(--body-text-color-subdued); font-size: 0.92rem; }
.rag-answer { font-size: 0.95rem; line-height: 1.55; }
.rag-text { font-size: 1.02rem; margin: 0 0 0.5rem; }
.rag-short { font-weight: 700; }
.rag-refusal .rag-text { color: var(--body-text-color-subdued); font-style: italic; }
.rag-asked { margin: 0 0 0.5rem; font-size: 0.82rem; color: var(--body-text-color-subdued); }
a.rag-ref { display: inline-block; padding: 0 0.3em; margin-left: 0.1em; border-radius: 4px; font-size: 0.8em;
  font-weight: 700; text-decoration: none; vertical-align: 0.1em; background: var(--color-accent-soft);
  color: var(--color-accent) !important; }
.rag-label { font-size: 0.72rem; font-weight: 700; letter-spacing: 0.08em; text-transform: uppercase;
  color: var(--body-text-color-subdued); margin: 0.75rem 0 0.35rem; }
.rag-source, .rag-passage { border: 1px solid var(--border-color-primary); border-left: 3px solid var(--color-accent);
  border-radius: 6px; padding: 0.55rem 0.75rem; margin: 0 0 0.6rem; background: var(--background-fill-primary);
  list-style: none; }
.rag-passage { border-left-color: var(--border-color-accent, var(--border-color-primary)); }
.rag-passages { padding: 0; margin: 0; }
.rag-source-head { display: flex; gap: 0.45rem; align-items: baseline; }
.rag-n { font-weight: 700; color: var(--color-accent); }
.rag-title { font-weight: 700; }
.rag-where { font-family: var(--font-mono); font-size: 0.74rem; color: var(--body-text-color-subdued);
  margin: 0.1rem 0 0.35rem; overflow-wrap: anywhere; }
.rag-context { margin: 0; padding: 0.35rem 0.6rem; border-left: 2px solid var(--border-color-primary);
  white-space: pre-line; font-family: Georgia, 'DejaVu Serif', serif; font-size: 0.94rem;
  color: var(--body-text-color); }
mark.rag-quote { background: #fde68a; color: #1f2937; padding: 0 1px; border-radius: 2px; }
.rag-article { margin-top: 0.45rem; font-size: 0.85rem; }
.rag-article summary, .rag-more summary, .rag-whole summary { cursor: pointer; color: var(--color-accent);
  font-size: 0.85rem; }
.rag-article-text { position: relative; max-height: 22rem; overflow: auto; white-space: pre-wrap; margin-top: 0.35rem;
  padding: 0.5rem 0.7rem; border: 1px solid var(--border-color-primary); border-radius: 4px;
  font-family: Georgia, 'DejaVu Serif', serif; font-size: 0.9rem; line-height: 1.5; }
a.rag-jump { display: inline-block; margin-top: 0.25rem; font-size: 0.78rem; color: var(--body-text-color-subdued); }
.rag-more { margin-top: 0.3rem; }
.rag-whole summary { font-size: 0.8rem; margin-top: 0.2rem; }
.rag-passage:has(details.rag-whole[open]) .rag-excerpt { display: none; }
.rag-passage .rag-context { font-size: 0.88rem; }
.rag-note { font-size: 0.8rem; color: var(--body-text-color-subdued); margin: 0.3rem 0; }
.rag-error { color: var(--error-text-color, #b91c1c); font-size: 0.88rem; }
.rag-error ul { margin: 0.2rem 0 0 1rem; padding: 0; }
.rag-ok { color: var(--body-text-color); font-size: 0.88rem; margin: 0.2rem 0; }
.rag-stats .rag-label { margin-top: 0; }
.rag-mode { margin: -0.2rem 0 0.45rem; font-size: 0.72rem; color: var(--body-text-color-subdued); }
.rag-mode-label { display: inline-block; padding: 0.05rem 0.45rem; border-radius: 999px;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary); }
.rag-mode-llm .rag-mode-label { border-color: var(--color-accent); color: var(--color-accent); }
.rag-mode-why { margin-left: 0.45rem; }
.rag-progress { font-size: 0.8rem; color: var(--body-text-color-subdued); font-style: italic; margin: 0.2rem 0; }
.rag-dropped { font-size: 0.8rem; color: var(--body-text-color-subdued); margin: 0 0 0.5rem;
  border-left: 2px solid #f59e0b; padding-left: 0.5rem; }
.rag-dropped ul { margin: 0.15rem 0 0 1rem; padding: 0; }
.rag-counts { display: flex; gap: 1rem; font-size: 0.95rem; }
.rag-counts b { font-size: 1.25rem; }
#rag-side .rag-help { font-size: 0.8rem; color: var(--body-text-color-subdued); line-height: 1.45; }
#rag-side .rag-help p { margin: 0 0 0.4rem; }
"""

# Opening "Full article" scrolls the article box (not the page) to the quote; the "Show the quote" link opens the box
# and brings the quote into view. Article text stays inert: this only moves what is already on the page.
JS = """
() => {
  const reveal = (box) => {
    const mark = box.querySelector('mark[id]');
    const text = box.querySelector('.rag-article-text');
    if (mark && text) text.scrollTop = Math.max(0, mark.offsetTop - text.clientHeight / 3);
  };
  document.addEventListener('toggle', (event) => {
    const box = event.target;
    if (box instanceof HTMLDetailsElement && box.open && box.classList.contains('rag-article')) reveal(box);
  }, true);
  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? event.target.closest('a.rag-jump, a.rag-ref') : null;
    if (!link) return;
    const target = document.getElementById((link.getAttribute('href') || '').slice(1));
    if (!target) return;
    event.preventDefault();
    const box = target.closest('details');
    if (box && !box.open) box.open = true;
    if (box) reveal(box);
    target.scrollIntoView({block: 'nearest', behavior: 'smooth'});
  });
}
"""

UPLOAD_NOTE = (f'<p class="rag-note">Add articles to the index: {", ".join(UPLOAD_SUFFIXES)} files, up to '
               f"{MAX_UPLOAD_BYTES // 1024 // 1024} MB each. A file named like an earlier upload replaces it.</p>")
# Brings the top of the newest reply (and the end of the question above it) into view inside the chat.
SCROLL_TO_REPLY = """
() => {
  setTimeout(() => {
    const replies = document.querySelectorAll('#rag-chat .rag-answer, #rag-chat .rag-error');
    const reply = replies[replies.length - 1];
    if (!reply) return;
    let box = reply.parentElement;
    while (box && box.scrollHeight <= box.clientHeight + 1) box = box.parentElement;
    if (!box || box === document.body || box === document.documentElement) return;
    box.scrollTop += reply.getBoundingClientRect().top - box.getBoundingClientRect().top - 72;
  }, 60);
}
"""
HELP = """<div class="rag-help">
<p>Answers quote one sentence from the indexed articles; <b>[n]</b> links to its source, where the highlighted text
is the exact quote in its context. Open <i>Full article</i> to read it in place.</p>
<p>When it finds no answer in the articles, the assistant says so and lists the closest passages.</p>
<p>Follow-ups work: after “When did Mosul fall?”, ask “And Raqqa?”.</p></div>"""


HELP_LLM = """<div class="rag-help">
<p>Answers are written by a language model from the indexed articles. Each sentence appears only once its numbers,
dates and names have been found in the passage it cites; <b>[n]</b> links to that passage's supporting sentence,
highlighted in its context. A sentence that fails the check is left out, and the answer says why.</p>
<p>When the model fails, is too slow, or writes nothing that checks out, the answer is a quoted sentence instead, and
its label says so.</p>
<p>Follow-ups work: after “When did Mosul fall?”, ask “And Raqqa?”.</p></div>"""


def build_app(assistant: Assistant, note: str = "") -> gr.Blocks:
    """The page: the conversation on the left, the index (counts and uploads) on the right. With ``settings.llm``
    the answers are generated by that model and stream in as they are checked."""
    handlers = ChatHandlers(assistant, note)
    model = assistant.settings.llm
    header = (f"Answers are written by {text_html(model)} from the indexed articles; every sentence is checked "
              "against the passage it cites." if model else
              "Every answer is a quoted sentence from an indexed article, with its source.")
    respond = handlers.respond_generated if model else handlers.respond
    respond_example = handlers.respond_generated_example if model else handlers.respond_example
    with gr.Blocks(title="News questions", delete_cache=(3600, 3600)) as demo:
        gr.HTML(f"<h1>Questions on the news articles</h1><p>{header}</p>", elem_id="rag-header")
        with gr.Row(equal_height=False):
            with gr.Column(scale=7, min_width=420):
                chatbot = gr.Chatbot(
                    show_label=False, elem_id="rag-chat", height="70vh", layout="panel", buttons=[], autoscroll=False,
                    render_markdown=False, sanitize_html=True, latex_delimiters=[], allow_tags=False,
                    examples=[{"text": question} for question in EXAMPLES],
                    placeholder="<b>Ask a question about the indexed articles</b><br>or start from an example:",
                )
                question = gr.Textbox(placeholder="Ask a question…", show_label=False, lines=1, max_lines=4,
                                      submit_btn="Ask", autofocus=True, elem_id="rag-question")
                gr.ClearButton([chatbot, question], value="New conversation", size="sm")
            with gr.Column(scale=3, min_width=260, elem_id="rag-side"):
                stats = gr.HTML(handlers.stats, elem_id="rag-stats", padding=True, container=True)
                files = gr.File(label="Add articles to the index", show_label=False, file_count="multiple",
                                file_types=list(UPLOAD_SUFFIXES), elem_id="rag-upload", height=140)
                upload_report = gr.HTML(UPLOAD_NOTE, elem_id="rag-upload-report")
                gr.HTML(HELP_LLM if model else HELP)
        # The chat does not jump to its bottom (an answer with its sources is long): the new reply is scrolled to.
        question.submit(respond, [question, chatbot], [chatbot, question], api_name="ask",
                        show_progress="minimal").then(None, js=SCROLL_TO_REPLY, api_visibility="private")
        chatbot.example_select(respond_example, [chatbot], [chatbot, question], api_visibility="private",
                               show_progress="minimal").then(None, js=SCROLL_TO_REPLY, api_visibility="private")
        # One ingest at a time: it loads the embedding model (hundreds of MB) and takes the index for itself.
        files.upload(handlers.upload, [files], [upload_report, stats, files], api_name="upload", concurrency_limit=1)
    demo.queue(default_concurrency_limit=ASK_CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def launch(demo: gr.Blocks, *, host: str = HOST, port: int = PORT, auth: tuple[str, str] | None = None,
           share: bool = False, block: bool = True) -> tuple[Any, str, str | None]:
    """Serve ``demo`` (blocking unless ``block=False``); the same settings for ``main`` and the tests."""
    from starlette.middleware import Middleware

    from rag.throttle import LoginThrottleMiddleware

    # Failed logins are throttled per client (rag/throttle.py); a login otherwise takes guesses as fast as sent.
    throttled = {"middleware": [Middleware(LoginThrottleMiddleware)]} if auth else {}
    return demo.launch(server_name=host, server_port=port, auth=auth, share=share, prevent_thread_lock=not block,
                       app_kwargs=throttled, auth_message="Sign in to ask questions on the indexed articles.",
                       max_file_size=MAX_UPLOAD_BYTES, show_error=False, quiet=True, inbrowser=False,
                       footer_links=["api"], ssr_mode=False, mcp_server=False, enable_monitoring=False, pwa=False,
                       theme=theme(), css=CSS, js=JS)


def theme() -> gr.themes.Base:
    """Fonts shipped with gradio, so nothing is fetched from the network. Only their regular and bold files: the
    semibold ones in gradio 6.31 hold a few dozen glyphs, and text set in them comes out in mixed fonts."""
    font = gr.themes.LocalFont
    return gr.themes.Soft(
        primary_hue="blue", neutral_hue="slate", radius_size="sm",
        font=(font("IBM Plex Sans", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"),
        font_mono=(font("IBM Plex Mono", weights=(400, 700)), "ui-monospace", "monospace"),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Command line


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if value is None or value == "":
        return None
    user, colon, password = value.partition(":")
    if not colon or not user or not password:
        fail("the login must be given as USER:PASS (--auth or RAG_UI_AUTH)")
    return user, password


def prepare_index(assistant: Assistant) -> str:
    """Index the default corpus when there is no index yet; returns what was done, for the UI to say."""
    report = assistant.ensure_index(log)
    if report is None:
        return ""
    corpus = ", ".join(str(path) for path in assistant.settings.corpus)
    return f"There was no index yet: {corpus} was indexed at start ({report.summary()})."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python app.py", description="Chat UI: ask questions on the indexed "
                                     "articles and add articles to the index.")
    parser.add_argument("--host", default=HOST, help=f"address to listen on (default {HOST}); anything beyond "
                        "loopback needs a login")
    parser.add_argument("--port", type=int, default=PORT, help=f"port (default {PORT})")
    add_index_flags(parser)
    add_llm_flags(parser)
    parser.add_argument("--auth", metavar="USER:PASS", help="require this login (better: RAG_UI_AUTH=USER:PASS, which "
                        "other users cannot see in the process list)")
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link (needs a login "
                        "and a network; off by default)")
    args = parser.parse_args(argv)
    auth = parse_auth(args.auth if args.auth is not None else os.environ.get("RAG_UI_AUTH"))
    if auth is None and (args.share or not is_loopback(args.host)):
        where = "a public share link" if args.share else args.host
        fail(f"refusing to serve on {where} without a login: pass --auth USER:PASS or set RAG_UI_AUTH=USER:PASS")
    assistant = Assistant(settings_from(args))
    if assistant.settings.llm:
        from rag.generation.llm import LLMUnavailable

        try:
            assistant.llm  # noqa: B018  (a missing integration or model file is one line at start, not per question)
        except LLMUnavailable as error:
            fail(str(error))
    note = prepare_index(assistant)
    assistant.retriever  # noqa: B018  (load the models now, not on the first question)
    demo = build_app(assistant, note)
    _, local_url, share_url = launch(demo, host=args.host, port=args.port, auth=auth, share=args.share, block=False)
    log(f"serving on {local_url}{f' and {share_url}' if share_url else ''}{' (login required)' if auth else ''}; "
        "Ctrl-C stops")
    demo.block_thread()
    return 0


if __name__ == "__main__":
    run(main)
