"""Choosing and calling the language model: ``openai:MODEL``, ``ollama:MODEL`` or ``gguf:/path/model.gguf``.

All three go through llama-index's LLM integrations, imported only here and only when a model is asked for: the
default install, ``make ask`` and the extractive path never import them. ``openai:`` covers every OpenAI-compatible
server (Ollama's ``/v1``, llama.cpp's server, vLLM, LM Studio, OpenAI itself); ``ollama:`` talks to Ollama's own
``/api/chat``; ``gguf:`` runs a GGUF file in this process with llama-cpp-python, formatting the chat with the chat
template the file carries.

Every failure of a call becomes one ``GenerationError`` whose message is one line a user can act on: a timeout, a
server that cannot be reached (a wrong URL), a model the server does not have, an HTTP error, a malformed reply.
Retries are off: a second try of a model that timed out would double the wait before the extractive answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from rag.generation.prompt import Message
from rag.settings import Settings

MAX_ANSWER_TOKENS = 320
"""A short answer is one to three sentences; this caps a model that rambles."""
CONTEXT_TOKENS = 4096
"""Context asked of Ollama and llama.cpp: five passages of 160 tokens, the rules and a few earlier turns fit."""
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
LLM_PACKAGES = {
    "openai": ("llama-index-llms-openai-like", "pip install '.[llm]'"),
    "ollama": ("llama-index-llms-ollama", "pip install '.[llm]'"),
    "gguf": ("llama-index-llms-llama-cpp and llama-cpp-python", "pip install '.[gguf]'"),
}


class LLMUnavailable(RuntimeError):
    """The model cannot be used at all (its integration is not installed, or the file does not load)."""


class GenerationError(RuntimeError):
    """One call failed (timeout, connection, HTTP status, malformed reply); the message is one line."""


class ChatModel(Protocol):
    name: str

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        """The reply, piece by piece as the model writes it; raises ``GenerationError``."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    backend: str
    model: str

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.model}"


def parse_spec(value: str) -> ModelSpec:
    backend, _, model = value.partition(":")
    if backend not in LLM_PACKAGES or not model.strip():
        raise LLMUnavailable(f"--llm {value!r}: expected openai:MODEL, ollama:MODEL or gguf:/path/model.gguf")
    return ModelSpec(backend, model.strip())


def load_model(settings: Settings) -> ChatModel:
    """The model ``settings.llm`` names, ready to stream. Raises ``LLMUnavailable`` with one line."""
    spec = parse_spec(settings.llm)
    try:
        if spec.backend == "openai":
            return _openai(spec, settings)
        if spec.backend == "ollama":
            return _ollama(spec, settings)
        return _gguf(spec, settings)
    except ImportError as error:
        packages, command = LLM_PACKAGES[spec.backend]
        raise LLMUnavailable(f"--llm {spec.backend}:... needs {packages}, which is not installed ({command}; "
                             f"{error})") from None


class LlamaIndexChat:
    """A llama-index LLM behind ``ChatModel``: streams deltas, enforces the time limit, names every failure."""

    def __init__(self, name: str, llm: Any, timeout: float, describe: Callable[[BaseException], str],
                 serial: bool = False) -> None:
        self.name = name
        self.llm = llm
        self.timeout = timeout
        self.describe = describe
        # llama.cpp runs in this process and is not thread-safe: one answer at a time.
        self._lock: threading.Lock | None = threading.Lock() if serial else None

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        from llama_index.core.llms import ChatMessage

        chat = [ChatMessage(role=message.role, content=message.content) for message in messages]
        started = time.monotonic()
        wrote = False
        try:
            with self._lock or nullcontext():
                for response in self.llm.stream_chat(chat):
                    delta = response.delta or ""
                    if delta:
                        wrote = True
                        yield delta
                    if time.monotonic() - started > self.timeout:
                        raise GenerationError(f"{self.name} did not finish its answer within {self.timeout:g} s "
                                              "(--llm-timeout)")
        except GenerationError:
            raise
        except Exception as error:
            raise GenerationError(self.describe(error)) from error
        if not wrote:
            raise GenerationError(f"{self.name} sent no answer text (an empty or malformed reply)")


def _openai(spec: ModelSpec, settings: Settings) -> ChatModel:
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(model=spec.model, api_base=settings.llm_base_url or None,
                     api_key=settings.llm_api_key or "no-key", is_chat_model=True, is_function_calling_model=False,
                     context_window=CONTEXT_TOKENS, max_tokens=MAX_ANSWER_TOKENS, temperature=0.0,
                     timeout=settings.llm_timeout, max_retries=0)
    where = str(llm.api_base).rstrip("/")
    return LlamaIndexChat(spec.label, llm, settings.llm_timeout,
                          lambda error: describe_openai_error(error, spec, where, settings.llm_timeout))


def _ollama(spec: ModelSpec, settings: Settings) -> ChatModel:
    from llama_index.llms.ollama import Ollama

    where = (settings.llm_base_url or DEFAULT_OLLAMA_URL).rstrip("/")
    llm = Ollama(model=spec.model, base_url=where, request_timeout=settings.llm_timeout, temperature=0.0,
                 context_window=CONTEXT_TOKENS, additional_kwargs={"num_predict": MAX_ANSWER_TOKENS},
                 is_function_calling_model=False)
    return LlamaIndexChat(spec.label, llm, settings.llm_timeout,
                          lambda error: describe_ollama_error(error, spec, where, settings.llm_timeout))


def _gguf(spec: ModelSpec, settings: Settings) -> ChatModel:
    import llama_cpp  # noqa: F401  (named in the error if missing, before the integration hides it)
    from llama_index.llms.llama_cpp import LlamaCPP

    template = ChatTemplate()
    try:
        llm = LlamaCPP(model_path=spec.model, temperature=0.0, max_new_tokens=MAX_ANSWER_TOKENS,
                       context_window=CONTEXT_TOKENS, messages_to_prompt=template, verbose=False,
                       # llama.cpp's own thread count (half the cores): measured here on two cores shared with
                       # another job, two threads made each token ~20x slower than one (they wait on each other).
                       model_kwargs={"verbose": False})
    except (ValueError, RuntimeError, OSError) as error:
        raise LLMUnavailable(f"cannot load the model file {spec.model}: {one_line(error)}") from None
    template.bind(llm._model)
    if template.stop:
        llm.generate_kwargs["stop"] = template.stop
    return LlamaIndexChat(spec.label, llm, settings.llm_timeout,
                          lambda error: f"{spec.label} failed: {type(error).__name__}: {one_line(error)}",
                          serial=True)


class ChatTemplate:
    """Messages as the prompt the GGUF's own chat template makes of them (ChatML, Llama 3, ...)."""

    def __init__(self) -> None:
        self._format: Any = None
        self.stop: list[str] = []

    def bind(self, model: Any) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = model.metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMUnavailable("the model file has no chat template (tokenizer.chat_template): use an instruct "
                                 "model")

        def token(index: int) -> str:
            return model.detokenize([index], special=True).decode("utf-8", errors="ignore") if index >= 0 else ""

        eos, bos = token(model.token_eos()), token(model.token_bos())
        self._format = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.stop = [stop for stop in dict.fromkeys([eos, "<|im_end|>" if "<|im_end|>" in template else ""]) if stop]

    def __call__(self, messages: Sequence[Any]) -> str:
        chat = [{"role": str(getattr(m.role, "value", m.role)), "content": m.content or ""} for m in messages]
        prompt = str(self._format(messages=chat).prompt)
        # llama.cpp adds the BOS token itself.
        bos = getattr(self._format, "bos_token", "")
        return prompt[len(bos):] if bos and prompt.startswith(bos) else prompt


# --- naming failures ------------------------------------------------------------------------------------------------


def one_line(error: BaseException | str, limit: int = 200) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _timeout_or_connection(error: BaseException, spec: ModelSpec, where: str, timeout: float,
                           server: str) -> str | None:
    import httpx

    chain = [e for e in (error, error.__cause__, error.__context__) if e is not None]
    if any(isinstance(e, httpx.TimeoutException) or type(e).__name__ == "APITimeoutError" for e in chain):
        return f"{server} at {where} did not answer within {timeout:g} s (--llm-timeout)"
    for e in chain:
        if isinstance(e, httpx.ConnectError | httpx.UnsupportedProtocol | ConnectionError) or (
                type(e).__name__ == "APIConnectionError"):
            cause = next((c for c in chain if isinstance(c, httpx.HTTPError | OSError) and str(c)), e)
            return (f"cannot reach {server} at {where} ({one_line(cause, 120)}): is the URL right (--llm-base-url) "
                    "and the server running?")
    if any(isinstance(e, httpx.RemoteProtocolError | httpx.DecodingError) for e in chain):
        return f"{server} at {where} sent a malformed reply ({one_line(error, 120)})"
    return None


def _malformed(error: BaseException) -> bool:
    from pydantic import ValidationError

    return isinstance(error, json.JSONDecodeError | ValidationError | KeyError | TypeError | AttributeError
                      | IndexError | UnicodeDecodeError) or type(error).__name__ == "APIResponseValidationError"


def describe_openai_error(error: BaseException, spec: ModelSpec, where: str, timeout: float) -> str:
    import openai

    server = "the model server"
    known = _timeout_or_connection(error, spec, where, timeout, server)
    if known:
        return known
    if isinstance(error, openai.APIStatusError):
        status, detail = error.status_code, _status_detail(error)
        if status == 404:
            if re.search(r"\bmodel\b", detail, re.IGNORECASE):
                return f"{server} at {where} has no model {spec.model!r} (HTTP 404: {detail})"
            return (f"no OpenAI-compatible API at {where}: HTTP 404 for {where}/chat/completions ({detail}); "
                    "check --llm-base-url (it usually ends in /v1)")
        if status in (401, 403):
            return (f"{server} at {where} refused the API key (HTTP {status}: {detail}); set RAG_LLM_API_KEY or "
                    "OPENAI_API_KEY")
        return f"{server} at {where} answered HTTP {status}: {detail}"
    if isinstance(error, openai.APIError) and not isinstance(error, openai.APIConnectionError):
        return f"{server} at {where} reported an error: {one_line(error.message, 160)}"
    if _malformed(error):
        return f"{server} at {where} sent a malformed reply ({type(error).__name__}: {one_line(error, 120)})"
    return f"{spec.label} at {where} failed: {type(error).__name__}: {one_line(error, 160)}"


def _status_detail(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return one_line(str(message), 160)
    try:
        text = error.response.text
    except Exception:
        text = ""
    return one_line(text or getattr(error, "message", "") or "no detail", 160)


def describe_ollama_error(error: BaseException, spec: ModelSpec, where: str, timeout: float) -> str:
    import ollama

    server = "the Ollama server"
    known = _timeout_or_connection(error, spec, where, timeout, server)
    if known:
        return known
    if isinstance(error, ollama.ResponseError):
        status, detail = error.status_code, one_line(error.error, 160)
        if status == 404:
            if re.search(r"\bmodel\b", detail, re.IGNORECASE):
                return f"{server} at {where} has no model {spec.model!r} ({detail})"
            return (f"no Ollama API at {where}: HTTP 404 for {where}/api/chat ({detail}); check --llm-base-url "
                    "(the server's root, e.g. http://127.0.0.1:11434)")
        if status == -1:
            return f"{server} at {where} reported an error: {detail}"
        return f"{server} at {where} answered HTTP {status}: {detail}"
    if _malformed(error):
        return f"{server} at {where} sent a malformed reply ({type(error).__name__}: {one_line(error, 120)})"
    return f"{spec.label} at {where} failed: {type(error).__name__}: {one_line(error, 160)}"
