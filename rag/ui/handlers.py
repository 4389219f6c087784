"""What the page does, as plain methods over one assistant (testable without a server or a browser).

A turn travels alone: the page sends the question with a small context (the last few questions for follow-ups, the
last few answers for a model, the articles to ask within) and gets back the new turn only, as one JSON object the page
renders and keeps (``static/app.js``). So a turn costs the same at the start of a conversation and after a hundred
turns. Errors come back in that object too and are shown beside the question box, leaving the conversation as it was.
"""

from __future__ import annotations

import json
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from rag.citing import article_text
from rag.cli import log
from rag.conversation import suggest_follow_ups
from rag.loading import SUPPORTED_SUFFIXES
from rag.manifest import ArticleRow
from rag.pipeline import MAX_QUESTION_CHARS, Answer, Assistant, QuestionError
from rag.retrieval import Scope
from rag.ui.render import (
    is_upload,
    plural,
    render_library,
    render_progress,
    render_question,
    render_reader,
    render_stats,
    render_turn,
    text_html,
)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
UPLOAD_SUFFIXES = tuple(sorted(SUPPORTED_SUFFIXES))
LIBRARY_PAGE = 25
EXAMPLE_COUNT = 3
EXAMPLE_TEXT_CHARS = 3000
"""Where an example question is drawn from: an article's opening, which names what it is about."""
# Follow-up rewriting reads the previous question in the context of the one before it, and so on; five questions
# back covers any chain of "And X?" a reader types, and keeps what the page sends the same size at every turn.
CONTEXT_QUESTIONS = 5
# A model is sent the last three question-and-answer turns (rag/generation/prompt.py).
CONTEXT_TURNS = 3


@dataclass(frozen=True)
class AskContext:
    """What the page sends with a question besides the question itself."""

    earlier: list[str] = field(default_factory=list)
    """The previous questions, as typed (oldest first; the last ``CONTEXT_QUESTIONS``)."""
    turns: list[tuple[str, str]] = field(default_factory=list)
    """The previous (question, answer text) pairs, for a model (the last ``CONTEXT_TURNS``)."""
    previous_answer: str = ""
    """The short answer to the previous question, if it had one (a pronoun may stand for it)."""
    scope: list[str] = field(default_factory=list)
    """Ids of the articles to ask within (``ArticleRow.id``); empty: all."""
    turn: int = 1
    """This turn's number in the conversation (anchors on the page are unique per turn)."""
    request: str = ""
    """The page's name for this request, echoed so it can match the reply (and see two equal errors as two)."""


def parse_context(raw: str | None) -> AskContext:
    """The page's context (JSON); anything malformed is read as no context rather than failing the question."""
    try:
        data = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return AskContext()
    if not isinstance(data, dict):
        return AskContext()

    def strings(values: Any) -> list[str]:
        return [value for value in values if isinstance(value, str)] if isinstance(values, list) else []

    def asked(value: Any) -> TypeGuard[str]:
        # What no question could have been (a question is refused past MAX_QUESTION_CHARS) is no context: the
        # follow-up rewrite reads every word of it.
        return isinstance(value, str) and len(value) <= MAX_QUESTION_CHARS

    turns = [(str(pair[0]), str(pair[1])) for pair in data.get("turns") or []
             if isinstance(pair, list) and len(pair) == 2]
    turn = data.get("turn")
    previous = data.get("previous_answer")
    return AskContext([q for q in strings(data.get("earlier")) if asked(q)][-CONTEXT_QUESTIONS:],
                      turns[-CONTEXT_TURNS:], previous if asked(previous) else "", strings(data.get("scope")),
                      turn if isinstance(turn, int) and turn > 0 else 1, str(data.get("request") or ""))


def failure_message(error: Exception) -> str:
    """What the page says of an unexpected failure, in one line (the traceback goes to the server log)."""
    traceback.print_exc(file=sys.stderr)
    return (f"Sorry, this question could not be answered ({type(error).__name__}: {str(error)[:300]}). "
            "The details are in the server log.")


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


class ChatHandlers:
    """The page's requests: a question (one turn back), an upload, the library (list, search, read, remove)."""

    def __init__(self, assistant: Assistant, note: str = "") -> None:
        self.assistant = assistant
        self.note = note
        self.guard = Guard()

    @property
    def uploads(self) -> Path:
        return self.assistant.settings.index_dir / "uploads"

    # --- questions ----------------------------------------------------------------------------------------------

    def respond(self, question: str, context: str | None = None) -> tuple[str, str]:
        """Answer ``question`` in its context (see ``AskContext``); returns (the turn as JSON, the question box).

        The turn holds ``html`` (the answer as the page shows it), ``text`` (the answer alone, sent back as context
        for a model) and ``final``; a question that cannot be asked (empty, too long, scoped to articles no longer
        indexed) or that failed (the index unreadable...) holds ``error`` instead, a line for the page to show by
        the question box, which keeps the question; a failure's traceback goes to the server log."""
        ask = parse_context(context)
        try:
            with self.guard.reading():
                scope = self._scope(ask.scope)
                answer = self.assistant.ask(question or "", history=ask.earlier, scope=scope,
                                            previous_answer=ask.previous_answer or None)
                return self._turn(ask, question, answer), ""
        except QuestionError as error:
            return self._error(ask, question, f"Cannot ask that: {error}."), question
        except Exception as error:
            return self._error(ask, question, failure_message(error)), question

    def respond_generated(self, question: str, context: str | None = None) -> Iterator[tuple[str, str]]:
        """``respond`` with the model ``settings.llm``: the turn streams in as sentences pass their checks, and the
        finished answer (citations, anything left out, or the extractive answer it fell back to) replaces it."""
        from rag.generation.chain import Checked, Done, Token

        ask = parse_context(context)
        model = self.assistant.settings.llm
        started = time.monotonic()
        try:
            with self.guard.reading():
                scope = self._scope(ask.scope)
                checked: list[str] = []
                pieces = 0
                for event in self.assistant.generate(question or "", history=ask.turns, scope=scope,
                                                     previous_answer=ask.previous_answer or None):
                    if isinstance(event, Token):
                        pieces += 1
                    elif isinstance(event, Checked) and event.verdict.verified:
                        checked.append(event.verdict.claim.body)
                    elif isinstance(event, Done):
                        if event.answer.fallback_reason:
                            log(f"llm: {event.answer.fallback_reason}; showing the extractive answer")
                        yield self._turn(ask, question, event.answer), ""
                        return
                    progress = render_progress(checked, pieces, model, started)
                    yield self._payload(ask, question, progress, final=False), question
        except QuestionError as error:
            yield self._error(ask, question, f"Cannot ask that: {error}."), question
        except Exception as error:
            yield self._error(ask, question, failure_message(error)), question

    def _scope(self, ids: Sequence[str]) -> Scope | None:
        if not ids:
            return None
        rows = [row for row in map(self.assistant.store.article, ids) if row is not None]
        if not rows:
            raise QuestionError("the articles chosen to ask within are no longer indexed (clear the choice)")
        return Scope(tuple(row.key for row in rows))

    def _turn(self, ask: AskContext, question: str, answer: Answer) -> str:
        html = render_turn(answer, ask.turn, self.assistant.threshold(answer.decided_by, answer.asked))
        return self._payload(ask, question, html, final=True, text=answer.answer, short=answer.short_answer or "")

    @staticmethod
    def _payload(ask: AskContext, question: str, html: str, *, final: bool, text: str = "", short: str = "") -> str:
        html = render_question(question) + html
        return json.dumps({"request": ask.request, "turn": ask.turn, "question": question, "html": html,
                           "text": text, "short": short, "final": final, "error": None}, ensure_ascii=False)

    @staticmethod
    def _error(ask: AskContext, question: str, message: str) -> str:
        return json.dumps({"request": ask.request, "turn": ask.turn, "question": question, "error": message},
                          ensure_ascii=False)

    # --- the index ----------------------------------------------------------------------------------------------

    def stats(self) -> str:
        try:
            with self.guard.reading():
                self.assistant.follow_store()
                counts = self.assistant.stats()
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            return f'<p class="rag-error">Cannot read the index: {text_html(str(error)[:300])}</p>'
        return render_stats(counts, self.note)

    def library(self, query: str = "", offset: int = 0, message: str = "", error: bool = False) -> str:
        """One page of the article list (``LIBRARY_PAGE`` articles from ``offset``), searched by ``query``."""
        store = self.assistant.store
        try:
            with self.guard.reading():
                self.assistant.follow_store()
                total = store.article_count(query)
                offset = max(0, min(offset, max(total - 1, 0)) // LIBRARY_PAGE * LIBRARY_PAGE)
                rows = store.articles(offset, LIBRARY_PAGE, query)
        except Exception as failure:
            traceback.print_exc(file=sys.stderr)
            return f'<p class="rag-error">Cannot read the index: {text_html(str(failure)[:300])}</p>'
        return render_library(rows, total, offset, LIBRARY_PAGE, query, self.uploads, message, error)

    def library_action(self, query: str, action: str) -> tuple[str, str | None]:
        """What the library's buttons ask for (JSON ``{"op": "page"|"open"|"remove", ...}``); returns (the list,
        the reader view or None to leave it)."""
        try:
            request = json.loads(action or "{}")
        except json.JSONDecodeError:
            request = {}
        op, ref = request.get("op"), str(request.get("id") or "")
        offset = int(request.get("offset") or 0) if str(request.get("offset") or "0").isdigit() else 0
        if op == "open":
            return self.library(query, offset), self.read(ref)
        if op == "remove":
            message, failed = self.remove(ref)
            return self.library(query, offset, message, failed), None
        return self.library(query, offset), None

    def read(self, ref: str) -> str:
        """An article in the reader view."""
        with self.guard.reading():
            row = self.assistant.store.article(ref)
            if row is None:
                return '<p class="rag-error">That article is no longer in the index.</p>'
            text = _text_of(row)
        return render_reader(row, text)

    def examples(self, count: int = EXAMPLE_COUNT) -> list[str]:
        """Questions to start from, drawn from the library's first articles: about the names they mention most, or
        a date they give (``suggest_follow_ups``), so they come from whatever corpus is indexed and every one has an
        article that speaks to it."""
        questions: list[str] = []
        with self.guard.reading():
            try:
                rows = self.assistant.store.articles(limit=count)
            except Exception as failure:  # the library says what is wrong; the page shows no examples
                log(f"no example questions: {failure}")
                return []
            each = -(-count // max(len(rows), 1))
            for row in rows:
                text = _text_of(row)
                if text:
                    suggested = suggest_follow_ups("", [text[:EXAMPLE_TEXT_CHARS]])
                    questions += [question for question in suggested if question not in questions][:each]
        return questions[:count]

    def remove(self, ref: str) -> tuple[str, bool]:
        """Remove an uploaded file and its articles: the file leaves the uploads folder, then its articles leave
        the index (``Assistant.remove_file``) and nothing else changes. Returns (what happened, whether it failed)."""
        row = self.assistant.store.article(ref)
        if row is None:
            return "That article is no longer in the index.", True
        if not is_upload(row, self.uploads):
            return (f"“{row.title}” was not uploaded here: remove it from {row.source.split('#')[0]} and ingest that "
                    "again."), True
        path = Path(row.path)
        with self.guard.writing(), tempfile.TemporaryDirectory(dir=self.uploads, prefix=".removed-") as kept:
            backup = Path(kept) / path.name
            if path.exists():  # a removal killed halfway took it already; what it left in the index goes now
                shutil.move(path, backup)
            try:
                report = self.assistant.remove_file(path)
            except Exception as error:
                if backup.exists():
                    shutil.move(backup, path)
                traceback.print_exc(file=sys.stderr)
                return f"{path.name} could not be removed: {str(error)[:300]}", True
        return f"Removed {path.name}: {plural(report.removed, 'article')} and their passages left the index.", False

    def upload(self, files: Sequence[Any] | None) -> tuple[str, str, None]:
        """Save the files in ``<index_dir>/uploads/`` and ingest them; returns (report, stats, cleared files)."""
        try:
            report = self._upload([Path(_file_path(file)) for file in files or []])
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            report = f'<p class="rag-error" role="alert">The upload failed: {text_html(str(error)[:300])}</p>'
        return report, self.stats(), None

    def _upload(self, paths: list[Path]) -> str:
        if not paths:
            return '<p class="rag-note">Choose one or more files to add.</p>'
        refused, accepted = [], []
        for path in paths:
            why = check_upload(path, path.name)
            if why:
                refused.append(why)
            else:
                accepted.append((path, safe_filename(path.name)))
        added: list[str] = []
        if accepted:
            folder = self.uploads
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
                # The catalogue's rows of each saved file, before and after: not a read of every stored article.
                before = {path: self._file_articles(path) for path in saved}
                report = self.assistant.ingest(list(map(Path, saved)))
                whole_file_refused = set()
                for problem in report.problems:
                    name = saved.get(problem.path) or Path(problem.path).name
                    refused.append(f"{name}{f' line {problem.line}' if problem.line else ''}: {problem.message}")
                    if problem.line is None and problem.path in saved:  # the whole file was refused
                        whole_file_refused.add(problem.path)
                        backup = Path(backups) / name
                        if backup.exists():
                            shutil.copy2(backup, problem.path)  # the index kept the old version: so does the disk
                        else:
                            Path(problem.path).unlink(missing_ok=True)
                added = [self._added(name, before[saved_path], self._file_articles(saved_path))
                         for saved_path, name in saved.items() if saved_path not in whole_file_refused]
        lines = [f'<p class="rag-ok">{text_html(line)}</p>' for line in added]
        if refused:
            items = "".join(f"<li>{text_html(line)}</li>" for line in refused)
            lines.append(f'<div class="rag-error" role="alert"><b>Not added:</b><ul>{items}</ul></div>')
        return "".join(lines)

    def _file_articles(self, path: str) -> dict[str, ArticleRow]:
        store = self.assistant.store
        return {row.key: row for row in store.manifest.articles_of_file(store.fingerprint, str(Path(path).resolve()))}

    @staticmethod
    def _added(name: str, before: dict[str, ArticleRow], after: dict[str, ArticleRow]) -> str:
        """What an upload did to a file's articles, in words: new, changed or unchanged ones and the passages
        added."""
        keys = list(after)
        new = [key for key in keys if key not in before]
        changed = [key for key in keys if key in before and before[key].content_hash != after[key].content_hash]
        passages = sum(after[key].passages for key in new + changed)
        parts = []
        if new:
            parts.append(f"{len(new)} new article{'s' if len(new) != 1 else ''}")
        if changed:
            parts.append(f"{len(changed)} changed article{'s' if len(changed) != 1 else ''}")
        if new or changed:
            unchanged = len(keys) - len(new) - len(changed)
            tail = f"; {unchanged} unchanged" if unchanged else ""
            return f"{name}: added {' and '.join(parts)} ({plural(passages, 'passage')}){tail}."
        return f"{name}: unchanged, already indexed ({plural(len(keys), 'article')})."


def _file_path(file: Any) -> str:
    """A gr.File value (a path, or a FileData-like object/dict) as a path."""
    if isinstance(file, dict):
        return str(file.get("path"))
    return str(getattr(file, "path", file))


def _text_of(row: ArticleRow) -> str | None:
    """An article's text as indexed (None when its file can no longer be read)."""
    try:
        return article_text(row.text_path + (f"#{row.record_id}" if row.record_id else ""))
    except (OSError, ValueError) as error:
        log(f"reader: cannot read {row.text_path}: {error}")
        return None
