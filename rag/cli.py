"""What the command-line shells share: settings from flags, one-line errors, logging to stderr."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from rag.settings import Settings, SettingsError, load_settings


def add_index_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", dest="index_dir", metavar="DIR", help="index directory (.rag; RAG_INDEX_DIR)")
    parser.add_argument("--top-k", dest="top_k", type=int, metavar="N", help="passages to return (RAG_TOP_K)")
    parser.add_argument("--answerer", choices=("rules", "reader"),
                        help="extractive answerer: hand-tuned rules (default) or the trained reader (RAG_ANSWERER)")


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
                  names: tuple[str, ...] = ("index_dir", "top_k", "answerer", *LLM_SETTINGS)
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
    """Run a CLI main: expected failures are one line on stderr, never a traceback."""
    try:
        code = main()
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    except (OSError, ValueError, RuntimeError) as error:
        log(f"error: {error}")
        code = 1
    except Exception as error:  # anything else (a Chroma or SQLite error) is still one line, not a traceback
        log(f"error: {type(error).__name__}: {error}")
        code = 1
    raise SystemExit(code)
