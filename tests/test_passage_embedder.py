"""Ingest's passage encoder in ONNX Runtime must give sentence-transformers' token counts and vectors, and ingest
must not import torch for a BERT model. Questions go through the same compiled graph once ingest has built it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.bert_numpy import BertNumpyEncoder
from rag.embedding import OnnxEmbedder, SentenceTransformersEmbedder, make_passage_embedder, make_query_encoder
from rag.onnx_bert import CompiledBert, NotCompiled
from rag.settings import load_settings
from tests.conftest import run_code
from tests.test_bert_numpy import LONG_PARAGRAPH, MODEL_DIR, TEXTS

PASSAGES = [
    "Iraqi forces retook the town on Thursday. The militants had held it since 2014, when they swept across the "
    "north. Residents said the fighting lasted three days.",
    "Shares rose 2.5% in early trading. Analysts said the results beat forecasts.",
    LONG_PARAGRAPH,
]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for end in [i + 1 for i, char in enumerate(text) if char == "."] or [len(text)]:
        if text[start:end].strip():
            spans.append((start, end))
        start = end + 1
    return spans


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    return OnnxEmbedder(MODEL_DIR, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def st_embedder() -> SentenceTransformersEmbedder:
    return SentenceTransformersEmbedder(MODEL_DIR, 32)


def test_token_counts_are_sentence_transformers_and_never_cut(onnx_embedder: OnnxEmbedder,
                                                              st_embedder: SentenceTransformersEmbedder) -> None:
    for text in [*TEXTS, LONG_PARAGRAPH * 3]:
        assert onnx_embedder.count_tokens(text) == st_embedder.count_tokens(text), text
    assert len(onnx_embedder.count_tokens(LONG_PARAGRAPH * 3)) > 3 * 256


def test_passage_and_sentence_vectors_are_sentence_transformers(onnx_embedder: OnnxEmbedder,
                                                                st_embedder: SentenceTransformersEmbedder) -> None:
    spans = [sentence_spans(text) for text in PASSAGES]
    ours, theirs = onnx_embedder.embed_passages(PASSAGES, spans), st_embedder.embed_passages(PASSAGES, spans)
    assert ours.passage.shape == theirs.passage.shape == (len(PASSAGES), 384)
    np.testing.assert_allclose(ours.passage, theirs.passage, atol=1e-5)
    for mine, reference, given in zip(ours.sentences, theirs.sentences, spans, strict=True):
        assert mine.shape == (len(given), 384)
        np.testing.assert_allclose(mine, reference, atol=1e-5)
    np.testing.assert_allclose(onnx_embedder.encode(TEXTS), st_embedder.encode(TEXTS), atol=1e-4)
    assert onnx_embedder.encode([]).shape == (0, 384)


def test_the_setting_chooses_the_encoder(tmp_path: Path) -> None:
    settings = load_settings({"cache_dir": str(tmp_path)}, environ={})
    assert isinstance(make_passage_embedder(settings), OnnxEmbedder)
    chosen = make_passage_embedder(settings.with_overrides({"passage_encoder": "sentence-transformers"}))
    assert isinstance(chosen, SentenceTransformersEmbedder) and chosen.engine.startswith("sentence-transformers")


def test_questions_go_through_ingests_graph_once_it_is_compiled(tmp_path: Path,
                                                                st_embedder: SentenceTransformersEmbedder) -> None:
    settings = load_settings({"cache_dir": str(tmp_path)}, environ={})
    # Before ingest compiled the graph, ``auto`` embeds questions in numpy rather than compile it for one question.
    with pytest.raises(NotCompiled):
        OnnxEmbedder(settings.model_path, tmp_path, threads=1, build=False)
    assert isinstance(make_query_encoder(settings), BertNumpyEncoder)
    make_passage_embedder(settings)
    encoder = make_query_encoder(settings)
    assert isinstance(encoder, OnnxEmbedder) and encoder.engine == "ONNX Runtime float32, 1 thread(s)"
    questions = ["When did Iraqi forces declare victory in Mosul?", "raqa fall date", "who"]
    np.testing.assert_allclose(encoder.encode(questions), st_embedder.encode(questions), atol=1e-5)
    assert isinstance(make_query_encoder(settings.with_overrides({"query_encoder": "numpy"})), BertNumpyEncoder)


def test_a_graph_opened_in_the_background_raises_its_error_at_the_first_run() -> None:
    broken = CompiledBert(b"not an ONNX graph", background=True)  # the caller goes on while it opens
    with pytest.raises(Exception, match="INVALID_PROTOBUF"):
        broken.run([101, 102], [0, 0])
    with pytest.raises(Exception, match="INVALID_PROTOBUF"):
        CompiledBert(b"not an ONNX graph")


def test_ingest_of_a_bert_model_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from rag.indexing import ingest\n"
        "from rag.settings import load_settings\n"
        "settings = load_settings({'index_dir': sys.argv[1], 'cache_dir': sys.argv[2]}, environ={})\n"
        "report = ingest([Path('seeds')], settings, log=lambda message: None)\n"
        "assert report.passages_added > 0, report\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    result = run_code(code, str(tmp_path / "index"), str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
