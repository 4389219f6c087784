"""Embed passages, their sentences and questions with one sentence-transformers model.

Ingest runs the model once per passage and gets two things from that one pass: the passage vector (the model's own
pooling) and a vector for every sentence, pooled from the passage's contextual token vectors over the sentence's
characters. Sentence scores at question time are then dot products, with the neighbouring text already folded in
(a sentence that says "the town" was read next to the one that names it).

Questions are embedded by a numpy copy of the same BERT forward pass when the model allows (``rag.bert_numpy``),
so answering a question never imports torch; the tests check both give the same vectors.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

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


class PassageEmbedder:
    """The sentence-transformers model, used at ingest (torch is worth its import cost there)."""

    def __init__(self, model_path: Path, batch_size: int) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(model_path), device="cpu")
        self.batch_size = batch_size

    def count_tokens(self, text: str) -> list[int]:
        ids: list[int] = self.model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return ids

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    def embed_passages(self, texts: Sequence[str], sentences: Sequence[Sequence[Span]]) -> PassageVectors:
        """``sentences[i]`` are character spans relative to ``texts[i]``.

        The model runs over ``POOLED_BATCHES`` batches at a time, longest texts first as sentence-transformers
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
    """The fastest encoder that gives the ingest model's vectors: numpy for BERT models, else sentence-transformers."""
    from rag.bert_numpy import BertNumpyEncoder, UnsupportedModel

    if settings.query_encoder != "sentence-transformers":
        try:
            encoder = BertNumpyEncoder.load(settings.model_path)
            # A question is a few dozen tokens. On an idle 2-core machine two BLAS threads embed one in ~6 ms and
            # one thread in ~9 ms; with the cores busy (concurrent users, an ingest) two threads took ~700 ms and
            # one ~8 ms. Predictable wins.
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
            return encoder
        except UnsupportedModel as error:
            if settings.query_encoder == "numpy":
                raise
            print(f"note: {error}; embedding questions with sentence-transformers", file=sys.stderr)
    return PassageEmbedder(settings.model_path, settings.embed_batch_size)


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


