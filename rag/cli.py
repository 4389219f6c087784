"""What the command-line shells share: settings from flags, one-line errors, logging to stderr."""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, get_args

from rag.settings import AnswererKind, Settings, SettingsError, load_settings


def add_index_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", dest="index_dir", metavar="DIR", help="index directory (.rag; RAG_INDEX_DIR)")
    parser.add_argument("--chroma-url", dest="chroma_url", metavar="URL",
                        help="keep the passages on this Chroma server, shared with other clients (RAG_CHROMA_URL)")
    parser.add_argument("--top-k", dest="top_k", type=int, metavar="N", help="passages to return (RAG_TOP_K)")
    parser.add_argument("--answerer", choices=get_args(AnswererKind),
                        help="extractive answerer: hybrid (default: factoid questions of a kind the hand-tuned "
                             "rules can type by them unless the trained reader is sure or picks other words in "
                             "their sentence, the rest by the reader), "
                             "rules or reader (RAG_ANSWERER)")


def add_llm_flags(parser: argparse.ArgumentParser) -> None:
    """The model that writes generated answers (none: extractive answers). The API key is read from
    ``RAG_LLM_API_KEY`` or ``OPENAI_API_KEY`` only, so it never shows in the process list."""
    parser.add_argument("--llm", metavar="BACKEND:MODEL", help="generate answers with openai:MODEL (any "
                        "OpenAI-compatible server), ollama:MODEL or gguf:/path/model.gguf; every sentence is checked "
                        "against the passages it cites (RAG_LLM; default: extractive answers)")
    parser.add_argument("--llm-base-url", dest="llm_base_url", metavar="URL",
                        help="the model server, e.g. http://127.0.0.1:8080/v1 (RAG_LLM_BASE_URL)")
    parser.add_argument("--llm-timeout", dest="llm_timeout", type=float, metavar="SECONDS",
                        help="seconds the model has to answer before the extractive answer is shown (30; "
                        "RAG_LLM_TIMEOUT)")


LLM_SETTINGS = ("llm", "llm_base_url", "llm_timeout")


def settings_from(args: argparse.Namespace,
                  names: tuple[str, ...] = ("index_dir", "chroma_url", "top_k", "answerer", *LLM_SETTINGS)
                  ) -> Settings:
    try:
        return load_settings({name: getattr(args, name, None) for name in names})
    except SettingsError as error:
        fail(str(error))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fail(message: str, code: int = 2) -> NoReturn:
    log(f"error: {message}")
    raise SystemExit(code)


def run(main: Callable[[], int]) -> NoReturn:
    """Run a CLI main: expected failures are one line on stderr, never a traceback, and a native crash in the
    store's code (a damaged HNSW file can make it segfault) is one line naming the fix, not a bare signal."""
    if hasattr(os, "fork"):
        _continue_in_watched_child()
    raise SystemExit(_run(main))


def _run(main: Callable[[], int]) -> int:
    try:
        return main()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except (OSError, ValueError, RuntimeError) as error:
        log(f"error: {error}{_store_hint(error)}")
        return 1
    except Exception as error:  # anything else (a Chroma or SQLite error) is still one line, not a traceback
        log(f"error: {type(error).__name__}: {error}{_store_hint(error)}")
        return 1


# A native crash is seen only from outside the process: run the work in a child and report how it ended.
CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT)
PR_SET_PDEATHSIG = 1


def _continue_in_watched_child() -> None:
    """Fork: the child returns and does the work (exiting normally, so its exit handlers run); the parent waits
    and reports how the child ended."""
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        # Killing the process a user sees (even with SIGKILL) kills the work with it.
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(128 + signal.SIGKILL)
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child gets the terminal's Ctrl-C and says "interrupted"
    signal.signal(signal.SIGTERM, lambda number, frame: os.kill(child, signal.SIGTERM))
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number in CRASH_SIGNALS:
            index = index_dir_from(sys.argv[1:])
            log(f"error: the index store in {index} crashed when read ({signal.Signals(number).name}): it is "
                f"damaged; see what is wrong with python -m rag.ingest --check --index {index}, rebuild it with "
                f"python -m rag.ingest --rebuild --index {index}")
            os._exit(1)
        os._exit(128 + number)
    os._exit(os.WEXITSTATUS(status))


def index_dir_from(argv: list[str]) -> Path:
    """The index directory a command line names (``--index``, else ``RAG_INDEX_DIR``, else the default)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--index")
    given = parser.parse_known_args(argv)[0].index
    return Path(given or os.environ.get("RAG_INDEX_DIR") or Settings.index_dir)


def _store_hint(error: BaseException) -> str:
    """For an error raised inside Chroma, the way out (the store's own messages name none)."""
    if not type(error).__module__.startswith("chromadb"):
        return ""
    index = index_dir_from(sys.argv[1:])
    return (f"; the index store in {index} may be damaged: python -m rag.ingest --check --index {index} says, "
            f"python -m rag.ingest --rebuild --index {index} rebuilds it")
