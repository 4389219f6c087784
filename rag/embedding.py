"""Embed passages, their sentences and questions with one sentence-transformers model.

Ingest runs the model once per passage and gets two things from that one pass: the passage vector (the model's own
pooling) and a vector for every sentence, pooled from the passage's contextual token vectors over the sentence's
characters. Sentence scores at question time are then dot products, with the neighbouring text already folded in
(a sentence that says "the town" was read next to the one that names it).

For BERT models neither side imports torch: passages go through the model's forward pass as an ONNX graph in ONNX
Runtime (``rag.onnx_bert``, float32 on all cores), questions through the same graph on one thread (or, when it is
not compiled, a numpy copy of the model: ``rag.bert_numpy``); the tests check each gives sentence-transformers'
vectors. Other models run in sentence-transformers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from rag.bert_numpy import pool_tokens
from rag.cleaning import Span
from rag.settings import Settings

Vectors = npt.NDArray[np.float32]
# Model batches whose token vectors are held at once while sentences are pooled from them.
POOLED_BATCHES = 8


class QueryEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> Vectors: ...


@dataclass(frozen=True)
class PassageVectors:
    passage: Vectors
    """One row per passage, unit length."""
    sentences: list[Vectors]
    """For each passage, one unit row per sentence span given."""


class PassageEmbedder(Protocol):
    """What ingest embeds with: ``make_passage_embedder`` chooses one."""

    engine: str
    """What runs the model and on how many threads, for reports."""

    def count_tokens(self, text: str) -> list[int]:
        """The model's token ids of ``text``, without special tokens and never cut (the splitter measures with it)."""
        ...

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text (the model's pooling)."""
        ...

    def embed_passages(self, texts: Sequence[str], sentences: Sequence[Sequence[Span]]) -> PassageVectors:
        """``sentences[i]`` are character spans relative to ``texts[i]``."""
        ...


def make_passage_embedder(settings: Settings) -> PassageEmbedder:
    """ONNX Runtime for BERT models (1.56x sentence-transformers' rate on 200 Reuters passages, its vectors within
    3e-7, no torch), unless ``passage_encoder`` asks for sentence-transformers; ``auto`` falls back to it when the
    model is no BERT or the ONNX graph cannot be built or run here."""
    if settings.passage_encoder != "sentence-transformers":
        try:
            return OnnxEmbedder(settings.model_path, settings.cache_dir)
        except Exception as error:  # UnsupportedModel, or ONNX Runtime's own errors building or opening the graph
            if settings.passage_encoder == "onnx":
                raise
            print(f"note: {error}; embedding passages with sentence-transformers", file=sys.stderr)
    return SentenceTransformersEmbedder(settings.model_path, settings.embed_batch_size)


class OnnxEmbedder:
    """The model's forward pass compiled to ONNX (float32), one unpadded text a run: passages at ingest on every
    core, questions on one thread (``make_query_encoder``)."""

    def __init__(self, model_path: Path, cache_dir: Path, threads: int | None = None, build: bool = True,
                 background: bool = False) -> None:
        """Without ``build`` the compiled graph must be in ``cache_dir`` already (``rag.onnx_bert.NotCompiled``
        otherwise), and the model's weights are never read: only its tokenizer and configuration. ``background``
        opens the graph while the caller goes on (``rag.onnx_bert.CompiledBert``)."""
        from rag.bert_numpy import BertNumpyEncoder, describe_model
        from rag.onnx_bert import bert_graph, compiled_bert
        from rag.settings import model_identity

        model = describe_model(model_path)
        self.tokenizer, self.pooling, self.normalize = model.tokenizer, model.pooling, model.normalize
        self.dimension = model.dimension
        threads = threads or len(os.sched_getaffinity(0))
        self.model = compiled_bert(lambda: bert_graph(BertNumpyEncoder.load(model_path)),
                                   f"passages:{model_identity(model_path)}", cache_dir, quantise=False,
                                   threads=threads, build=build, background=background)
        self.engine = f"ONNX Runtime float32, {threads} thread(s)"

    @cached_property
    def counter(self) -> Tokenizer:
        """The splitter measures whole sentences and articles: a copy of the tokenizer that does not cut at the
        window (made when first needed: questions never need it)."""
        counter = Tokenizer.from_str(self.tokenizer.to_str())
        counter.no_truncation()
        return counter

    def count_tokens(self, text: str) -> list[int]:
        ids: list[int] = self.counter.encode(text, add_special_tokens=False).ids
        return ids

    def encode(self, texts: Sequence[str]) -> Vectors:
        return self._rows([self._pooled(self._tokens(text)[0]) for text in texts])

    def embed_passages(self, texts: Sequence[str], sentences: Sequence[Sequence[Span]]) -> PassageVectors:
        passages, pooled = [], []
        for text, spans in zip(texts, sentences, strict=True):
            tokens, offsets = self._tokens(text)
            passages.append(self._pooled(tokens))
            pooled.append(pool_spans(tokens, offsets, spans))
        return PassageVectors(self._rows(passages), pooled)

    def _tokens(self, text: str) -> tuple[Vectors, list[tuple[int, int]]]:
        encoding = self.tokenizer.encode(text)
        return self.model.run(encoding.ids, encoding.type_ids), encoding.offsets

    def _rows(self, vectors: list[Vectors]) -> Vectors:
        return np.vstack(vectors) if vectors else np.empty((0, self.dimension), np.float32)

    def _pooled(self, tokens: Vectors) -> Vectors:
        return pool_tokens(tokens[None], np.ones((1, len(tokens)), dtype=bool), self.pooling, self.normalize)[0]


class SentenceTransformersEmbedder:
    """The model in sentence-transformers (torch), for models the ONNX graph does not cover."""

    def __init__(self, model_path: Path, batch_size: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(model_path), device="cpu")
        self.batch_size = batch_size
        self.engine = f"sentence-transformers (torch), {torch.get_num_threads()} thread(s)"

    def count_tokens(self, text: str) -> list[int]:
        ids: list[int] = self.model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return ids

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    def embed_passages(self, texts: Sequence[str], sentences: Sequence[Sequence[Span]]) -> PassageVectors:
        """The model runs over ``POOLED_BATCHES`` batches at a time, longest texts first as sentence-transformers
        orders one call's texts: their token vectors (about 250 KB a 160-token passage) are pooled and dropped
        before the next ones, so a group of 1,024 passages never holds 250 MB of them at once.
        """
        order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
        step = self.batch_size * POOLED_BATCHES
        passage_rows: list[Vectors] = [np.empty(0, np.float32)] * len(texts)
        sentence_rows: list[Vectors] = [np.empty(0, np.float32)] * len(texts)
        for start in range(0, len(order), step):
            chunk = order[start : start + step]
            outputs: list[dict[str, Any]] = self.model.encode(  # type: ignore[assignment]
                [texts[index] for index in chunk], batch_size=self.batch_size, output_value=None
            )
            for index, output in zip(chunk, outputs, strict=True):
                passage_rows[index] = np.asarray(output["sentence_embedding"], dtype=np.float32)
                offsets = self.model.tokenizer(texts[index], return_offsets_mapping=True, truncation=True,
                                               max_length=self.model.max_seq_length)["offset_mapping"]
                tokens = np.asarray(output["token_embeddings"], dtype=np.float32)
                sentence_rows[index] = pool_spans(tokens, offsets, sentences[index])
        return PassageVectors(np.vstack(passage_rows), sentence_rows)


def pool_spans(tokens: Vectors, offsets: Sequence[tuple[int, int]], spans: Sequence[Span]) -> Vectors:
    """Mean of the token vectors whose characters lie in each span, normalised to unit length.

    ``offsets[i]`` is the character span of token ``i`` (``(0, 0)`` for special tokens). A span with no tokens
    (cut off by the model's window) falls back to the whole text's mean, so every sentence gets a usable vector.
    """
    tokens = tokens[: len(offsets)]  # drop the batch's padding rows
    starts = np.array([start for start, _ in offsets])
    ends = np.array([end for _, end in offsets])
    real = ends > starts
    rows = []
    for span_start, span_end in spans:
        inside = real & (starts < span_end) & (ends > span_start)
        rows.append((tokens[inside] if inside.any() else tokens).mean(axis=0))
    pooled = np.asarray(rows, dtype=np.float32).reshape(len(spans), tokens.shape[1])
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.maximum(norms, 1e-12)


def make_query_encoder(settings: Settings) -> QueryEncoder:
    """The fastest encoder that gives the ingest model's vectors (the tests hold each to sentence-transformers'):
    ingest's ONNX graph on one thread (``auto`` takes it when ingest has compiled it: 5 ms a question here against
    14 ms in numpy, and it opens while the retriever loads its indexes, so a one-question ``rag.ask`` starts no
    slower), else numpy for BERT models, else sentence-transformers."""
    from threadpoolctl import threadpool_limits

    from rag.bert_numpy import BertNumpyEncoder, UnsupportedModel
    from rag.onnx_bert import NotCompiled

    # One thread, for numpy's products at question time too. A question is a few dozen tokens: on an idle 2-core
    # machine two threads embed one in ~6 ms and one thread in ~9 ms; with the cores busy (concurrent users, an
    # ingest) two threads took ~700 ms and one ~8 ms. Predictable wins.
    threadpool_limits(limits=1, user_api="blas")
    mode = settings.query_encoder
    if mode in ("auto", "onnx"):
        try:
            return OnnxEmbedder(settings.model_path, settings.cache_dir, threads=1, build=mode == "onnx",
                                background=True)
        except Exception as error:  # UnsupportedModel, NotCompiled, or ONNX Runtime's own errors building the graph
            if mode == "onnx":
                raise
            if not isinstance(error, NotCompiled | UnsupportedModel):
                print(f"note: {error}; embedding questions in numpy", file=sys.stderr)
    if mode != "sentence-transformers":
        try:
            return BertNumpyEncoder.load(settings.model_path)
        except UnsupportedModel as error:
            if mode == "numpy":
                raise
            print(f"note: {error}; embedding questions with sentence-transformers", file=sys.stderr)
    return SentenceTransformersEmbedder(settings.model_path, settings.embed_batch_size)


def llama_embedding(encoder: QueryEncoder) -> Any:
    """A llama-index ``BaseEmbedding`` over ``encoder``, so llama-index retrievers embed with our model."""
    from llama_index.core.embeddings import BaseEmbedding

    def embed(texts: Sequence[str]) -> list[list[float]]:
        return [row.tolist() for row in encoder.encode(texts)]

    class _Embedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return embed([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return embed([query])[0]

        def _get_text_embedding(self, text: str) -> list[float]:
            return embed([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return embed(texts)

    return _Embedding(model_name="rag-query-encoder")


