"""Chat UI over the assistant: ``python app.py [--host H] [--port N] [--index DIR] [--auth USER:PASS] [--share]
[--llm BACKEND:MODEL [--llm-base-url URL] [--llm-timeout S]]``.

A thin shell: flags, the login rule, the start-up index, then the page from ``rag.ui`` (rendering in
``rag/ui/render.py``, requests in ``rag/ui/handlers.py``, the page in ``rag/ui/page.py``, its CSS and script in
``rag/ui/static/``).

Serves on 127.0.0.1:7860 by default. Listening beyond loopback, or a public ``--share`` link, requires a login
(``--auth USER:PASS`` or ``RAG_UI_AUTH=USER:PASS``).
"""

import argparse
import ipaddress
import os
from collections.abc import Sequence

# rag before gradio: importing rag sets the offline environment (no analytics, no model hub) that gradio reads.
from rag.cli import add_index_flags, add_llm_flags, fail, log, run, settings_from
from rag.pipeline import Assistant
from rag.ui.page import build_app, launch

HOST = "127.0.0.1"
PORT = 7860


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
    if assistant.settings.answerer != "rules":
        from rag.answering.reader import ReaderUnavailable

        try:
            assistant.answerer.reader  # noqa: B018  (the reader's graph too: compiled once, then cached)
        except ReaderUnavailable as error:
            fail(str(error))
    assistant.stats()  # and the counts the page shows first (the library itself reads the catalogue per page)
    demo = build_app(assistant, note)
    _, local_url, share_url = launch(demo, host=args.host, port=args.port, auth=auth, share=args.share, block=False)
    log(f"serving on {local_url}{f' and {share_url}' if share_url else ''}{' (login required)' if auth else ''}; "
        "Ctrl-C stops")
    demo.block_thread()
    return 0


if __name__ == "__main__":
    run(main)
