"""``python -m rag.ask "QUESTION" [--json] [--top-k N] [--index DIR] [--article ID]... [--source FILE]...
[--llm BACKEND:MODEL [--llm-base-url URL] [--llm-timeout S]]``: answer from the indexed articles (with ``--article``
or ``--source``, only from those; with ``--llm``, in the model's words, every sentence checked against the passages
it cites)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag.citing import in_quotes
from rag.cli import add_index_flags, add_llm_flags, fail, log, run, settings_from
from rag.pipeline import Answer, Assistant, QuestionError, check_question
from rag.retrieval import Scope


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.ask", description=__doc__)
    parser.add_argument("question", help="the question, in quotes")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--article", action="append", default=[], metavar="ID",
                        help="answer only from this article: its doc_id as citations give it (a file's path relative "
                        "to the ingested directory, a JSONL record's id) or its key; repeatable")
    parser.add_argument("--source", action="append", default=[], metavar="FILE",
                        help="answer only from the articles of this file (a JSONL file: all its records); repeatable")
    add_index_flags(parser)
    add_llm_flags(parser)
    args = parser.parse_args()
    try:
        check_question(args.question)
    except QuestionError as error:
        fail(str(error))
    assistant = Assistant(settings_from(args))
    if assistant.settings.llm:
        load_llm(assistant)
    assistant.ensure_index(log)
    if assistant.store.count() == 0:
        # Saying "the articles don't say" would be wrong: there are no articles to ask.
        corpus = ", ".join(str(path) for path in assistant.settings.corpus)
        fail(f"no articles to answer from: nothing could be indexed from {corpus}", code=1)
    scope = Scope(tuple(args.article), tuple(str(Path(source).resolve()) for source in args.source))
    if scope and not assistant.store.passages.get(where=scope.where(), limit=1, include=[])["ids"]:
        fail("no indexed article matches --article/--source (doc_id as in citations, or the ingested file)", code=1)
    answer = (generated(assistant, args.question, scope) if assistant.settings.llm
              else assistant.ask(args.question, scope=scope))
    print(json.dumps(answer.to_json(), ensure_ascii=False, indent=2) if args.json else render(answer))
    return 0


def load_llm(assistant: Assistant) -> None:
    """Load the model before anything else, so a missing integration or model file is one line and exit 2."""
    from rag.generation.llm import LLMUnavailable

    try:
        assistant.llm  # noqa: B018
    except LLMUnavailable as error:
        fail(str(error))


def generated(assistant: Assistant, question: str, scope: Scope) -> Answer:
    from rag.generation.chain import Done

    answer = next(event.answer for event in assistant.generate(question, scope=scope) if isinstance(event, Done))
    if answer.fallback_reason:
        log(f"llm: {answer.fallback_reason}; showing the extractive answer")
    return answer


def render(answer: Answer) -> str:
    lines = [answer.answer, ""]
    if answer.citations:
        lines.append("Sources:")
        for citation in answer.citations:
            where = f"{citation.source}, characters {citation.start}-{citation.end}"
            lines.append(f"[{citation.n}] {citation.title} ({where})")
            lines.append(f"    {in_quotes(citation.quote)}")
    else:
        lines.append("Closest passages:")
        for number, passage in enumerate(answer.passages, start=1):
            excerpt = " ".join(passage.text.split())
            lines.append(f"{number}. {passage.title} ({passage.source}, characters {passage.start}-{passage.end})")
            lines.append(f"    {excerpt[:240]}{'…' if len(excerpt) > 240 else ''}")
    dropped = [sentence for sentence in answer.sentences if sentence.verdict == "dropped"]
    if answer.mode == "llm" and dropped:
        lines += ["", f"Not shown ({len(dropped)} sentence{'s' if len(dropped) > 1 else ''} the cited passages do not "
                  "support):"]
        lines += [f"- {sentence.reason}" for sentence in dropped]
    if answer.mode == "llm":
        lines += ["", f"(written by {answer.model}; every sentence checked against the passages it cites)"]
    elif answer.mode == "extractive-fallback":
        lines += ["", f"(extractive answer: {answer.fallback_reason})"]
    return "\n".join(lines)


if __name__ == "__main__":
    run(main)
