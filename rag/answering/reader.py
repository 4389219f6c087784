"""The trained extractive reader: where in a text the answer to a question starts and ends, or that it is not there.

A BERT span-extraction model (start and end scores over ``[CLS] question [SEP] text [SEP]``, the ``[CLS]`` position
standing for "no answer here") fine-tuned from the packaged all-MiniLM-L6-v2 by ``rag.training.reader``. Only the
tensors training changed ship with the project (``rag/models/reader/``, fp16); the word embeddings come from the
packaged model. At question time it runs on the numpy BERT forward pass (``rag.bert_numpy``), so no torch import.

The input layout and the span decoding live here and nowhere else: training builds its examples with
``reader_inputs`` too, so the model sees at question time exactly what it was trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

READER_DIR = Path(__file__).resolve().parent.parent / "models" / "reader"
WEIGHTS_FILE = "reader.safetensors"
CONFIG_FILE = "reader.json"

MAX_LENGTH = 256
"""Tokens of one reader input, special tokens included (the model's trained window)."""
MAX_QUESTION_TOKENS = 48
STRIDE = 96
"""Context tokens shared by consecutive windows over a text too long for one."""
MAX_ANSWER_TOKENS = 30


class ReaderUnavailable(RuntimeError):
    """No trained reader weights are installed (run ``make train-reader``)."""


@dataclass(frozen=True)
class ReaderInput:
    """One window of ``[CLS] question [SEP] context-part [SEP]``."""

    ids: list[int]
    type_ids: list[int]
    char_starts: list[int]
    """Per token, the character offset in the context where it starts; -1 for the question and special tokens."""
    char_ends: list[int]


@dataclass(frozen=True)
class SpanScore:
    start: int
    end: int
    """Character offsets in the context."""
    score: float
    """Start logit + end logit of the span."""
    null: float
    """Start + end logit of ``[CLS]``: the model's score for "the answer is not here"."""

    @property
    def margin(self) -> float:
        """How much the model prefers this span to "no answer" (SQuAD 2.0's decision quantity)."""
        return self.score - self.null


class Tokenized:
    """The model's word-piece tokenizer with character offsets, without truncation or padding."""

    def __init__(self, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        cls_id, sep_id = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        if cls_id is None or sep_id is None:
            raise ReaderUnavailable(f"{tokenizer_file}: no [CLS]/[SEP] tokens (not a BERT word-piece tokenizer)")
        self.cls_id, self.sep_id = int(cls_id), int(sep_id)

    def pieces(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        return list(encoding.ids), [tuple(offset) for offset in encoding.offsets]  # type: ignore[misc]

    def is_word(self, word: str) -> bool:
        """Whether ``word`` is one piece of the vocabulary: a word the model knows, not a spelling it guesses at."""
        return self.tokenizer.token_to_id(word) is not None


def reader_inputs(tokenizer: Tokenized, question: str, context: str, max_length: int = MAX_LENGTH,
                  stride: int = STRIDE) -> list[ReaderInput]:
    """The windows the reader reads ``context`` in: one if it fits, else overlapping ones ``stride`` tokens apart."""
    question_ids = tokenizer.pieces(question)[0][:MAX_QUESTION_TOKENS]
    context_ids, offsets = tokenizer.pieces(context)
    room = max_length - len(question_ids) - 3
    windows = []
    start = 0
    while True:
        part = range(start, min(start + room, len(context_ids)))
        head = [tokenizer.cls_id, *question_ids, tokenizer.sep_id]
        ids = head + [context_ids[i] for i in part] + [tokenizer.sep_id]
        windows.append(ReaderInput(
            ids=ids,
            type_ids=[0] * len(head) + [1] * (len(part) + 1),
            char_starts=[-1] * len(head) + [offsets[i][0] for i in part] + [-1],
            char_ends=[-1] * len(head) + [offsets[i][1] for i in part] + [-1],
        ))
        if part.stop >= len(context_ids):
            return windows
        start += min(stride, room)


def token_targets(window: ReaderInput, answer_start: int, answer_end: int) -> tuple[int, int]:
    """The start and end token of a character span in ``window``; ``(0, 0)`` (``[CLS]``) if it is not all there."""
    inside = [i for i, start in enumerate(window.char_starts) if start >= 0]
    if not inside or window.char_starts[inside[0]] > answer_start or window.char_ends[inside[-1]] < answer_end:
        return 0, 0
    first = next(i for i in inside if window.char_ends[i] > answer_start)
    last = max(i for i in inside if window.char_starts[i] < answer_end)
    return (first, last) if first <= last else (0, 0)


def best_span(start_logits: npt.NDArray[np.float32], end_logits: npt.NDArray[np.float32], window: ReaderInput,
              max_answer_tokens: int = MAX_ANSWER_TOKENS) -> SpanScore | None:
    """The highest-scoring context span of at most ``max_answer_tokens`` tokens, ``None`` if the window has none."""
    positions = np.array([i for i, start in enumerate(window.char_starts) if start >= 0])
    if not len(positions):
        return None
    starts, ends = start_logits[positions], end_logits[positions]
    pair = starts[:, None] + ends[None, :]
    gap = positions[None, :] - positions[:, None]
    pair = np.where((gap >= 0) & (gap < max_answer_tokens), pair, -np.inf)
    first, last = np.unravel_index(int(np.argmax(pair)), pair.shape)
    return SpanScore(window.char_starts[positions[first]], window.char_ends[positions[last]],
                     float(pair[first, last]), float(start_logits[0] + end_logits[0]))


class SpanReader:
    """The reader at question time: the packaged model with the fine-tuned tensors, int8 in ONNX Runtime
    (``rag.onnx_bert``), compiled once per weights into ``cache_dir``."""

    def __init__(self, base_model: Path, cache_dir: Path, reader_dir: Path = READER_DIR) -> None:
        from rag.onnx_bert import compiled_bert

        weights_path = reader_dir / WEIGHTS_FILE
        if not weights_path.is_file():
            raise ReaderUnavailable(f"no trained reader at {weights_path} (make train-reader)")
        self.card: dict[str, Any] = json.loads((reader_dir / CONFIG_FILE).read_text())
        self.tokenizer = Tokenized(base_model / "tokenizer.json")
        identity = f"{hashlib.sha256(weights_path.read_bytes()).hexdigest()}:{base_model.resolve()}"
        self.model = compiled_bert(lambda: reader_graph(base_model, weights_path), identity, cache_dir,
                                   background=True)

    def read(self, question: str, contexts: Sequence[str]) -> list[SpanScore | None]:
        """For each context, its best answer span (over all its windows) with the no-answer score."""
        windows: list[tuple[int, ReaderInput]] = [
            (index, window) for index, context in enumerate(contexts)
            for window in reader_inputs(self.tokenizer, question, context)
        ]
        logits = self.logits([window for _, window in windows])
        best: list[SpanScore | None] = [None] * len(contexts)
        for (index, window), (start, end) in zip(windows, logits, strict=True):
            span = best_span(start, end, window)
            current = best[index]
            if span is not None and (current is None or span.margin > current.margin):
                best[index] = span
        return best

    def logits(self, windows: Sequence[ReaderInput]) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
        """Start and end logits of each window, one window a run: no padding to compute, and int8's dynamic
        activation scales stay those of the window itself (in a padded batch they depend on the other windows)."""
        scores = self._runs.map(lambda window: self.model.run(window.ids, window.type_ids), windows)
        return [(score[:, 0], score[:, 1]) for score in scores]

    @cached_property
    def _runs(self) -> ThreadPoolExecutor:
        """Windows are run side by side, one per core: each run is single-threaded and ONNX Runtime lets go of the
        GIL, so on two cores five windows take about the time of three, and a busy core slows only its own run (a
        multi-threaded run waits for its slowest thread)."""
        return ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0)), thread_name_prefix="reader")


def reader_graph(base_model: Path, weights_path: Path) -> Any:
    """The reader as an ONNX graph: the packaged model with the fine-tuned tensors laid over it, and the span head."""
    from safetensors.numpy import load_file

    from rag.bert_numpy import BertNumpyEncoder
    from rag.onnx_bert import bert_graph

    tensors = load_file(str(weights_path))
    head_weight = tensors.pop("qa_outputs.weight").astype(np.float32)
    head_bias = tensors.pop("qa_outputs.bias").astype(np.float32)
    encoder = BertNumpyEncoder.load(base_model, max_length=MAX_LENGTH, overrides=tensors)
    return bert_graph(encoder, head_weight, head_bias)


@cache
def load_reader(base_model: Path, cache_dir: Path) -> SpanReader:
    return SpanReader(base_model, cache_dir)
