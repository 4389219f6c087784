"""Split an article's reporting spans into passages (llama-index) and sentences, keeping exact character spans.

For every passage and sentence ``article.text[start:end] == text``: the splitter's chunks are located back in the
original text rather than trusted to carry offsets, and a chunk that cannot be located is an error, not a guess.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rag.cleaning import Span, paragraph_spans
from rag.loading import Article

TokenCounter = Callable[[str], list[int]]


@dataclass(frozen=True)
class Passage:
    start: int
    end: int
    text: str
    sentences: tuple[Span, ...]
    """The passage's sentences (clipped to it), as spans of the article text."""


class SplitError(RuntimeError):
    """A chunk from the splitter is not a span of the original text (it never should be)."""


@cache
def english_sentence_tokenizer() -> object:
    """NLTK's trained English Punkt model (knows "Oct.", "Gen.", "U.S."), from the copy llama-index ships."""
    import llama_index.core

    nltk, PunktTokenizer = _import_punkt()
    # Point NLTK at llama-index's bundled data so nothing is ever downloaded.
    nltk_dir = str(Path(llama_index.core.__file__).parent / "_static" / "nltk_cache")
    if nltk_dir not in nltk.data.path:
        nltk.data.path.append(nltk_dir)
    return PunktTokenizer("english")


# Imported by NLTK's package init only for features Punkt never uses (collocation tests, scikit-learn classifiers),
# each behind ``except ImportError``: about 0.9 s of the 1.3 s an ingest spends importing NLTK.
_UNUSED_BY_PUNKT = ("scipy.stats", "sklearn")


def _import_punkt() -> tuple[Any, Any]:
    """``nltk`` and its ``PunktTokenizer``, imported with ``_UNUSED_BY_PUNKT`` hidden (unless already loaded, as
    they are in a process that imported sentence-transformers); they import normally afterwards."""
    hidden = [name for name in _UNUSED_BY_PUNKT if name not in sys.modules]
    for name in hidden:  # a module set to None in sys.modules raises ImportError when imported
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import nltk
        from nltk.tokenize.punkt import PunktTokenizer
    finally:
        for name in hidden:
            sys.modules.pop(name, None)
    return nltk, PunktTokenizer


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentences of ``text[start:end]``: never across a paragraph break, trimmed of surrounding whitespace."""
    tokenizer = english_sentence_tokenizer()
    spans: list[Span] = []
    for para_start, para_end in paragraph_spans(text, start, end):
        for sent_start, sent_end in tokenizer.span_tokenize(text[para_start:para_end]):  # type: ignore[attr-defined]
            spans.append((para_start + sent_start, para_start + sent_end))
    return spans


def _sentence_chunks(text: str) -> list[str]:
    """Sentences with their trailing whitespace, so that joining them rebuilds ``text`` exactly."""
    spans = list(english_sentence_tokenizer().span_tokenize(text))  # type: ignore[attr-defined]
    if not spans:
        return [text] if text else []
    pieces = [text[start : spans[index + 1][0]] for index, (start, _) in enumerate(spans[:-1])]
    pieces.append(text[spans[-1][0] :])
    pieces[0] = text[: spans[0][0]] + pieces[0]
    return pieces


class PassageSplitter:
    """llama-index's ``SentenceSplitter`` with the model's own tokenizer counting tokens."""

    def __init__(self, chunk_size: int, chunk_overlap: int, count_tokens: TokenCounter) -> None:
        from llama_index.core.node_parser import SentenceSplitter

        self._splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            tokenizer=count_tokens,
            chunking_tokenizer_fn=_sentence_chunks,
        )

    def split(self, article: Article) -> list[Passage]:
        passages: list[Passage] = []
        for region_start, region_end in article.reporting:
            sentences = sentence_spans(article.text, region_start, region_end)
            region = article.text[region_start:region_end]
            for start, end in locate_chunks(region, self._splitter.split_text(region)):
                start, end = region_start + start, region_start + end
                # A sentence longer than a passage is cut by the splitter: cite the part this passage holds.
                inside = tuple((max(s, start), min(e, end)) for s, e in sentences if s < end and e > start)
                passages.append(Passage(start, end, article.text[start:end], inside))
        return passages


def locate_chunks(text: str, chunks: list[str]) -> list[Span]:
    """Spans of consecutive, possibly overlapping chunks in ``text``, searched in order from the last start."""
    spans: list[Span] = []
    cursor = 0
    for chunk in chunks:
        found = text.find(chunk, cursor)
        if found < 0:
            raise SplitError(f"chunk not found in the original text: {chunk[:60]!r}")
        spans.append((found, found + len(chunk)))
        cursor = found + 1
    return spans
