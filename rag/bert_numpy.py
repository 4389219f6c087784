"""BERT sentence-embedding forward pass in plain numpy.

Importing torch/transformers/sentence-transformers costs several seconds, which
dominates the cold start of ``python -m rag.ask``. Embedding one query needs
only a few small matrix products, so this module re-implements the BERT
encoder and the sentence-transformers Transformer -> Pooling -> Normalize
pipeline with numpy and the ``tokenizers`` library. It must produce the same
vectors as ``SentenceTransformer(model_dir).encode(texts)``; anything it cannot
reproduce faithfully raises ``UnsupportedModel`` so callers can fall back to
sentence-transformers instead of silently returning different vectors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from safetensors import safe_open
from safetensors.numpy import load_file
from tokenizers import Tokenizer
from tokenizers.normalizers import Lowercase
from tokenizers.normalizers import Sequence as NormalizerSequence

__all__ = ["BertNumpyEncoder", "BertParts", "ModelDescription", "UnsupportedModel", "describe_model", "erf", "gelu",
           "pool_tokens"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
PoolingMode = Literal["mean", "cls"]

# BERT's usual position-table size, assumed if config.json omits it.
_DEFAULT_MAX_POSITIONS = 512

# Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7). numpy has no erf, scipy
# costs import time, and this error is far below float32 matmul noise, so
# results stay within ~1e-6 of torch's exact-erf GELU.
_AS_P = 0.3275911
_AS_A1 = 0.254829592
_AS_A2 = -0.284496736
_AS_A3 = 1.421413741
_AS_A4 = -1.453152027
_AS_A5 = 1.061405429
_INV_SQRT2 = 1.0 / math.sqrt(2.0)

# Module types (last dotted component, so both the v2-v5
# ``sentence_transformers.models.X`` and newer package paths match).
_TRANSFORMER = "Transformer"
_POOLING = "Pooling"
_NORMALIZE = "Normalize"

_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


class UnsupportedModel(ValueError):
    """The model directory uses something this numpy port does not reproduce.

    Callers should catch this and fall back to sentence-transformers.
    """


def erf(x: F32) -> F32:
    """Vectorised float32 erf (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7)."""
    a = np.abs(x)
    t = 1.0 / (1.0 + _AS_P * a)
    poly = ((((_AS_A5 * t + _AS_A4) * t + _AS_A3) * t + _AS_A2) * t + _AS_A1) * t
    y = 1.0 - poly * np.exp(-a * a)
    result: F32 = np.copysign(y, x).astype(np.float32, copy=False)
    return result


def gelu(x: F32) -> F32:
    """Exact (erf-based) GELU, which is what BERT's ``hidden_act="gelu"`` means."""
    return (0.5 * x * (1.0 + erf(x * _INV_SQRT2))).astype(np.float32, copy=False)


def _layer_norm(x: F32, weight: F32, bias: F32, eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=-1, keepdims=True)
    out: F32 = (centered / np.sqrt(var + eps) * weight + bias).astype(np.float32, copy=False)
    return out


def pool_tokens(hidden: F32, mask: npt.NDArray[np.bool_], pooling: PoolingMode, normalize: bool) -> F32:
    """A sentence-transformers model's pooling (and normalisation) of right-padded token vectors
    ``(batch, seq, hidden)``."""
    if pooling == "cls":
        # Right padding, so the first real token is always position 0.
        pooled = hidden[:, 0]
    else:
        weights = mask[:, :, None].astype(np.float32)
        counts = np.maximum(weights.sum(axis=1), 1e-9)
        pooled = (hidden * weights).sum(axis=1) / counts
    if normalize:
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        pooled = pooled / np.maximum(norms, 1e-12)
    return pooled.astype(np.float32, copy=False)


def _read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


@dataclass(frozen=True, slots=True)
class _Layer:
    # Linear weights stay in torch's (out, in) layout; ``x @ w.T`` hands BLAS
    # a transposed view, so no copy is needed at load time.
    qkv_w: F32  # query/key/value fused into one (3 * hidden, hidden) matmul
    qkv_b: F32
    attn_out_w: F32
    attn_out_b: F32
    attn_ln_w: F32
    attn_ln_b: F32
    inter_w: F32
    inter_b: F32
    out_w: F32
    out_b: F32
    out_ln_w: F32
    out_ln_b: F32


@dataclass(frozen=True)
class BertParts:
    """The encoder's tensors, for writing the same forward pass in another runtime (``rag.onnx_bert``)."""

    word: F32
    position: F32
    token_type: F32
    embedding_norm: tuple[F32, F32]
    layers: tuple[_Layer, ...]
    eps: float
    heads: int
    hidden: int


class _Weights:
    """Looks up tensors regardless of the prefix the checkpoint was saved with."""

    def __init__(self, tensors: dict[str, npt.NDArray[Any]], source: Path,
                 overrides: dict[str, npt.NDArray[Any]] | None = None) -> None:
        anchor = "embeddings.word_embeddings.weight"
        prefixes = [k[: -len(anchor)] for k in tensors if k.endswith(anchor)]
        if len(prefixes) != 1:
            raise UnsupportedModel(f"{source}: expected exactly one '*{anchor}' tensor, found {len(prefixes)}")
        # Checkpoints saved from BertModel have no prefix; ones saved from a
        # task head (BertForMaskedLM, ...) use "bert.".
        self._prefix = prefixes[0]
        self._tensors = {**tensors, **{self._prefix + name: value for name, value in (overrides or {}).items()}}
        self._source = source

    def get(self, name: str) -> F32:
        key = self._prefix + name
        try:
            tensor = self._tensors[key]
        except KeyError:
            raise UnsupportedModel(f"{self._source}: missing tensor {key!r}") from None
        if not np.issubdtype(tensor.dtype, np.floating):
            raise UnsupportedModel(f"{self._source}: tensor {key!r} has dtype {tensor.dtype}")
        # fp16/bf16 checkpoints are upcast so all arithmetic matches the
        # float32 reference.
        return np.ascontiguousarray(tensor, dtype=np.float32)


def _pooling_mode(config: dict[str, Any], source: Path) -> PoolingMode:
    mode: Any = config.get("pooling_mode")
    if mode is None:
        legacy = [name for key, name in _LEGACY_POOLING_KEYS.items() if config.get(key)]
        # sentence-transformers defaults to mean pooling when nothing is set.
        mode = legacy if legacy else "mean"
    if isinstance(mode, list):
        if len(mode) != 1:
            raise UnsupportedModel(f"{source}: combined pooling modes {mode} are not supported")
        mode = mode[0]
    if mode == "mean":
        return "mean"
    if mode == "cls":
        return "cls"
    raise UnsupportedModel(f"{source}: pooling mode {mode!r} is not supported (only mean, cls)")


@dataclass(frozen=True)
class ModelDescription:
    """What a sentence-transformers BERT directory says besides its weights: enough to tokenise and pool, and to
    run a compiled copy of the model (``rag.onnx_bert``) without reading the weights again."""

    weights_path: Path
    config: dict[str, Any]
    tokenizer: Tokenizer
    """Cutting at the model's window, as sentence-transformers does."""
    max_seq_length: int
    pooling: PoolingMode
    normalize: bool

    @property
    def dimension(self) -> int:
        return int(self.config["hidden_size"])


def describe_model(model_dir: Path, max_length: int | None = None) -> ModelDescription:
    """Read and check a sentence-transformers model directory's configuration and tokenizer (see
    ``BertNumpyEncoder.load``); raises ``UnsupportedModel`` for anything the numpy port cannot match."""
    model_dir = Path(model_dir)
    modules_path = model_dir / "modules.json"
    modules: list[dict[str, Any]] = _read_json(modules_path) if modules_path.is_file() else []
    # The Transformer module's files live at its "path" ("" for the usual
    # flat layout); checking its config first gives the most useful error
    # (e.g. "model_type 'roberta'") when the architecture is the problem.
    transformer_dir = model_dir / str(modules[0].get("path", "")) if modules else model_dir

    config_path = transformer_dir / "config.json"
    if not config_path.is_file():
        raise UnsupportedModel(f"{transformer_dir}: no config.json")
    config: dict[str, Any] = _read_json(config_path)
    model_type = config.get("model_type")
    if model_type != "bert":
        raise UnsupportedModel(
            f"{transformer_dir}: model_type {model_type!r} is not supported; "
            "the numpy encoder only implements 'bert'"
        )
    if config.get("hidden_act", "gelu") != "gelu":
        raise UnsupportedModel(f"{transformer_dir}: hidden_act {config['hidden_act']!r} not supported")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UnsupportedModel(
            f"{transformer_dir}: position_embedding_type {config['position_embedding_type']!r} not supported"
        )
    if config.get("is_decoder", False):
        raise UnsupportedModel(f"{transformer_dir}: decoder (causal) BERT not supported")

    if not modules:
        # Without modules.json sentence-transformers guesses a pipeline;
        # better to let it do that than to guess differently here.
        raise UnsupportedModel(f"{model_dir}: no modules.json (not a sentence-transformers model)")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]):
        raise UnsupportedModel(
            f"{model_dir}: module pipeline {kinds} is not supported (need Transformer, Pooling[, Normalize])"
        )
    pooling_dir = model_dir / str(modules[1].get("path", ""))

    st_config_path = transformer_dir / "sentence_bert_config.json"
    st_config: dict[str, Any] = _read_json(st_config_path) if st_config_path.is_file() else {}
    max_positions = int(config.get("max_position_embeddings", _DEFAULT_MAX_POSITIONS))
    if max_length is not None:
        if not 2 <= max_length <= max_positions:
            raise ValueError(f"max_length must be in [2, {max_positions}], got {max_length}")
        max_seq_length = max_length
    elif st_config.get("max_seq_length") is not None:
        max_seq_length = int(st_config["max_seq_length"])
    else:
        # Mirrors sentence-transformers: tokenizer limit capped by the
        # position table.
        tok_config_path = transformer_dir / "tokenizer_config.json"
        tok_config: dict[str, Any] = _read_json(tok_config_path) if tok_config_path.is_file() else {}
        model_max = tok_config.get("model_max_length")
        limit = int(model_max) if isinstance(model_max, int) else max_positions
        max_seq_length = min(limit, max_positions)

    weights_path = transformer_dir / "model.safetensors"
    if not weights_path.is_file():
        # Reading pytorch_model.bin needs torch, which is what we avoid.
        raise UnsupportedModel(f"{transformer_dir}: no model.safetensors")
    tokenizer_path = transformer_dir / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise UnsupportedModel(f"{transformer_dir}: no tokenizer.json")
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    # tokenizer.json often carries export-time settings (e.g. truncate at
    # 128, pad to fixed 128) that sentence-transformers overrides; do the
    # same. Padding is done per batch in numpy.
    tokenizer.enable_truncation(max_length=max_seq_length)
    tokenizer.no_padding()
    if st_config.get("do_lower_case"):
        # Same normalizer sentence-transformers installs for do_lower_case.
        current = tokenizer.normalizer
        tokenizer.normalizer = NormalizerSequence([Lowercase(), current]) if current is not None else Lowercase()

    pooling_config_path = pooling_dir / "config.json"
    pooling_config: dict[str, Any] = _read_json(pooling_config_path) if pooling_config_path.is_file() else {}
    pooling = _pooling_mode(pooling_config, pooling_config_path)

    dimension = int(config["hidden_size"])
    pooled_dim = pooling_config.get("embedding_dimension", pooling_config.get("word_embedding_dimension"))
    if pooled_dim is not None and int(pooled_dim) != dimension:
        raise UnsupportedModel(f"{pooling_config_path}: pooling dimension {pooled_dim} != hidden size {dimension}")
    return ModelDescription(weights_path, config, tokenizer, max_seq_length, pooling, normalize=len(kinds) == 3)


class BertNumpyEncoder:
    """Encodes texts like ``SentenceTransformer(model_dir).encode`` using numpy only.

    Build with :meth:`load`. ``encode`` returns float32 ``(n, dimension)``.
    """

    dimension: int
    max_seq_length: int
    pooling: PoolingMode
    normalize: bool

    def __init__(
        self,
        *,
        tokenizer: Tokenizer,
        weights: _Weights,
        config: dict[str, Any],
        max_seq_length: int,
        pooling: PoolingMode,
        normalize: bool,
    ) -> None:
        self._tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.pooling = pooling
        self.normalize = normalize

        hidden = int(config["hidden_size"])
        heads = int(config["num_attention_heads"])
        if hidden % heads:
            raise UnsupportedModel(f"hidden_size {hidden} not divisible by {heads} heads")
        self.dimension = hidden
        self._heads = heads
        self._head_dim = hidden // heads
        self._eps = float(config.get("layer_norm_eps", 1e-12))

        self._word_emb = weights.get("embeddings.word_embeddings.weight")
        self._pos_emb = weights.get("embeddings.position_embeddings.weight")
        # A single text is segment 0; a reader's question + context pair uses segments 0 and 1.
        self._type_emb = weights.get("embeddings.token_type_embeddings.weight")
        self._emb_ln_w = weights.get("embeddings.LayerNorm.weight")
        self._emb_ln_b = weights.get("embeddings.LayerNorm.bias")
        if self._word_emb.shape[1] != hidden:
            raise UnsupportedModel(f"word embeddings have width {self._word_emb.shape[1]}, config says {hidden}")
        if self._pos_emb.shape[0] < max_seq_length:
            raise UnsupportedModel(
                f"max_seq_length {max_seq_length} exceeds the {self._pos_emb.shape[0]} position embeddings"
            )

        self._layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            self._layers.append(
                _Layer(
                    qkv_w=np.concatenate(
                        [weights.get(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")]
                    ),
                    qkv_b=np.concatenate(
                        [weights.get(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")]
                    ),
                    attn_out_w=weights.get(p + "attention.output.dense.weight"),
                    attn_out_b=weights.get(p + "attention.output.dense.bias"),
                    attn_ln_w=weights.get(p + "attention.output.LayerNorm.weight"),
                    attn_ln_b=weights.get(p + "attention.output.LayerNorm.bias"),
                    inter_w=weights.get(p + "intermediate.dense.weight"),
                    inter_b=weights.get(p + "intermediate.dense.bias"),
                    out_w=weights.get(p + "output.dense.weight"),
                    out_b=weights.get(p + "output.dense.bias"),
                    out_ln_w=weights.get(p + "output.LayerNorm.weight"),
                    out_ln_b=weights.get(p + "output.LayerNorm.bias"),
                )
            )

    @classmethod
    def load(cls, model_dir: Path, max_length: int | None = None,
             overrides: dict[str, npt.NDArray[Any]] | None = None) -> BertNumpyEncoder:
        """Load a sentence-transformers model directory.

        ``max_length`` overrides the model's configured ``max_seq_length``; ``overrides`` replaces tensors by name
        (without the checkpoint's prefix): fine-tuned layers laid over the packaged model.
        Raises ``UnsupportedModel`` for anything the numpy port cannot match.
        """
        model = describe_model(model_dir, max_length)
        if overrides:
            # Only what the overrides do not replace is read from the base model (a reader replaces all but the
            # word embeddings).
            with safe_open(str(model.weights_path), "numpy") as handle:
                base = {key: handle.get_tensor(key) for key in handle.keys()  # noqa: SIM118 (safe_open is no dict)
                        if not any(key.endswith(name) for name in overrides)}
        else:
            base = load_file(str(model.weights_path))
        return cls(tokenizer=model.tokenizer, weights=_Weights(base, model.weights_path, overrides),
                   config=model.config, max_seq_length=model.max_seq_length, pooling=model.pooling,
                   normalize=model.normalize)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> F32:
        """Embed ``texts``; returns float32 ``(len(texts), dimension)``."""
        if isinstance(texts, str):
            # A bare str is a Sequence[str] of characters; encoding each
            # character is never what the caller meant.
            raise TypeError("encode() takes a sequence of strings, not a single str")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        ids_list = [enc.ids for enc in self._tokenizer.encode_batch(list(texts))]
        # Longest first, like sentence-transformers, so each batch pads little.
        order = sorted(range(len(ids_list)), key=lambda i: -len(ids_list[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = len(ids_list[chunk[0]])
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=bool)
            for row, i in enumerate(chunk):
                seq = ids_list[i]
                ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = True
            out[chunk] = self._embed(ids, mask)
        return out

    def _embed(self, ids: I64, mask: npt.NDArray[np.bool_]) -> F32:
        return pool_tokens(self._forward(ids, mask), mask, self.pooling, self.normalize)

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer, cutting at its window as sentence-transformers does."""
        return self._tokenizer

    def parts(self) -> BertParts:
        return BertParts(self._word_emb, self._pos_emb, self._type_emb, (self._emb_ln_w, self._emb_ln_b),
                         tuple(self._layers), self._eps, self._heads, self.dimension)

    def token_states(self, ids: I64, mask: npt.NDArray[np.bool_], type_ids: I64 | None = None) -> F32:
        """The last layer's token vectors ``(batch, seq, hidden)`` for right-padded ``ids``."""
        return self._forward(ids, mask, type_ids)

    def _forward(self, ids: I64, mask: npt.NDArray[np.bool_], type_ids: I64 | None = None) -> F32:
        batch, seq = ids.shape
        # Same summation order as HF BertEmbeddings: (word + type) + position.
        emb = self._word_emb[ids] + (self._type_emb[0] if type_ids is None else self._type_emb[type_ids])
        emb = emb + self._pos_emb[:seq]
        x = _layer_norm(emb.reshape(batch * seq, self.dimension), self._emb_ln_w, self._emb_ln_b, self._eps)

        # A single query (the latency-critical case) has no padding, so the
        # additive mask and its broadcast add are skipped entirely.
        attn_bias: F32 | None = None
        if not mask.all():
            attn_bias = np.where(mask, 0.0, np.finfo(np.float32).min).astype(np.float32)[:, None, None, :]

        for layer in self._layers:
            x = self._layer(x, layer, batch, seq, attn_bias)
        return x.reshape(batch, seq, self.dimension)

    def _layer(self, x: F32, layer: _Layer, batch: int, seq: int, attn_bias: F32 | None) -> F32:
        heads, head_dim = self._heads, self._head_dim
        qkv = x @ layer.qkv_w.T + layer.qkv_b
        # (batch*seq, 3*hidden) -> (3, batch, heads, seq, head_dim)
        qkv = qkv.reshape(batch, seq, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = (q @ k.transpose(0, 1, 3, 2)) * np.float32(1.0 / math.sqrt(head_dim))
        if attn_bias is not None:
            scores = scores + attn_bias
        scores = scores - scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * seq, self.dimension)

        attn = context @ layer.attn_out_w.T + layer.attn_out_b
        x = _layer_norm(attn + x, layer.attn_ln_w, layer.attn_ln_b, self._eps)
        inter = gelu((x @ layer.inter_w.T + layer.inter_b).astype(np.float32, copy=False))
        out = inter @ layer.out_w.T + layer.out_b
        return _layer_norm(out + x, layer.out_ln_w, layer.out_ln_b, self._eps)
