"""A BERT forward pass as an ONNX graph, run by ONNX Runtime: the reader's (int8) and the passage encoder's (float32).

The reader is the costly step of answering (its cost is its tokens). The numpy forward pass (``rag.bert_numpy``)
is exact but runs at numpy's speed; ONNX Runtime with int8 matrix products (dynamic quantisation, one scale per
output channel) reads the same windows about three times as fast, with the same SQuAD F1 on the held-out half
(measured: 70.8 int8 against 70.1 numpy, 300 questions). Ingest's passage vectors stay float32 (int8 moved them by
a cosine of 0.005 on average). No torch: the graph is written from the numpy encoder's tensors with ``onnx``'s
helpers, quantised once where asked, and cached on disk by the identity of the weights it came from.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.bert_numpy import BertNumpyEncoder

F32 = npt.NDArray[np.float32]

GRAPH_VERSION = "3"
"""Part of the cache key: bump when ``bert_graph`` changes what it writes."""
OPSET = 17
"""LayerNormalization is an ONNX operator from opset 17."""


def bert_graph(encoder: BertNumpyEncoder, head_weight: F32 | None = None, head_bias: F32 | None = None) -> Any:
    """``[batch, seq]`` token and segment ids in (unpadded: there is no attention mask), ``encoder`` followed by a
    linear head out (``[batch, seq, outputs]``): the same arithmetic as
    ``BertNumpyEncoder.token_states(...) @ head_weight.T + head_bias``; without a head, the token states."""
    from onnx import TensorProto, helper, numpy_helper

    parts = encoder.parts()
    initializers: list[Any] = []
    nodes: list[Any] = []

    def constant(name: str, value: npt.NDArray[Any]) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], **attributes: Any) -> str:
        output = f"{op.lower()}{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def linear(x: str, weight: F32, bias: F32, name: str) -> str:
        # Weights stay (out, in) in the numpy encoder; MatMul wants (in, out).
        return node("Add", [node("MatMul", [x, constant(f"{name}.w", weight.T)]), constant(f"{name}.b", bias)])

    def layer_norm(x: str, weight: F32, bias: F32, name: str) -> str:
        return node("LayerNormalization", [x, constant(f"{name}.w", weight), constant(f"{name}.b", bias)],
                    axis=-1, epsilon=parts.eps)

    heads, head_dim, hidden = parts.heads, parts.hidden // parts.heads, parts.hidden
    split_heads = constant("shape.split_heads", np.array([0, 0, heads, head_dim], np.int64))
    merge_heads = constant("shape.merge_heads", np.array([0, 0, hidden], np.int64))
    scale = constant("attention.scale", np.array(1.0 / math.sqrt(head_dim), np.float32))
    half, one = constant("gelu.half", np.array(0.5, np.float32)), constant("gelu.one", np.array(1.0, np.float32))
    inv_sqrt2 = constant("gelu.inv_sqrt2", np.array(1.0 / math.sqrt(2.0), np.float32))

    embedded = node("Add", [
        node("Add", [node("Gather", [constant("embeddings.word", parts.word), "input_ids"]),
                     node("Gather", [constant("embeddings.type", parts.token_type), "token_type_ids"])]),
        node("Gather", [constant("embeddings.position", parts.position), "position_ids"]),
    ])
    x = layer_norm(embedded, parts.embedding_norm[0], parts.embedding_norm[1], "embeddings.norm")
    for i, layer in enumerate(parts.layers):
        weights, biases = np.split(layer.qkv_w, 3), np.split(layer.qkv_b, 3)
        q, k, v = (node("Reshape", [linear(x, w, b, f"layer{i}.{name}"), split_heads])
                   for w, b, name in zip(weights, biases, ("query", "key", "value"), strict=True))
        scores = node("Mul", [node("MatMul", [node("Transpose", [q], perm=[0, 2, 1, 3]),
                                              node("Transpose", [k], perm=[0, 2, 3, 1])]), scale])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), node("Transpose", [v], perm=[0, 2, 1, 3])])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
        attended = linear(context, layer.attn_out_w, layer.attn_out_b, f"layer{i}.attention_out")
        x = layer_norm(node("Add", [attended, x]), layer.attn_ln_w, layer.attn_ln_b, f"layer{i}.attention_norm")
        inner = linear(x, layer.inter_w, layer.inter_b, f"layer{i}.intermediate")
        # Exact (erf) GELU, as BERT's hidden_act "gelu"; ONNX Runtime fuses this pattern into one kernel.
        gelu = node("Mul", [node("Mul", [inner, half]), node("Add", [node("Erf", [node("Mul", [inner, inv_sqrt2])]),
                                                                       one])])
        out = linear(gelu, layer.out_w, layer.out_b, f"layer{i}.output")
        x = layer_norm(node("Add", [out, x]), layer.out_ln_w, layer.out_ln_b, f"layer{i}.output_norm")
    width = hidden
    if head_weight is None or head_bias is None:
        nodes[-1].output[0] = "outputs"
    else:
        nodes.append(helper.make_node("Add", [node("MatMul", [x, constant("head.w", head_weight.T)]),
                                              constant("head.b", head_bias)], ["outputs"]))
        width = len(head_bias)
    ids = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "seq"])
           for name in ("input_ids", "token_type_ids")]
    graph = helper.make_graph(
        nodes, "bert_head", initializer=initializers,
        inputs=[*ids, helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["seq"])],
        outputs=[helper.make_tensor_value_info("outputs", TensorProto.FLOAT, ["batch", "seq", width])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


class CompiledBert:
    """An ONNX Runtime session over ``bert_graph``: token ids in, head outputs per token out."""

    def __init__(self, model: Path | bytes, threads: int = 1, background: bool = False) -> None:
        """With ``background`` the session opens on a thread of its own (ONNX Runtime lets go of the GIL while it
        reads the graph: about 110 ms for a float32 MiniLM), and the first ``run`` waits for it; an error opening it
        is raised there."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        # At question time one thread, no spinning: on a 2-core machine shared with other users or an ingest, a
        # second thread that waits for a busy core costs far more than it saves (the same reason the query encoder
        # uses one). Ingest has the machine to itself and asks for every core.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if threads == 1:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = model if isinstance(model, bytes) else str(model)

        def open_session() -> Any:
            return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

        self._session: Future[Any] = Future()
        if background:
            threading.Thread(target=_settle, args=(self._session, open_session), name="onnx-session").start()
        else:
            self._session.set_result(open_session())

    @property
    def session(self) -> Any:
        return self._session.result()

    def run(self, ids: Sequence[int], type_ids: Sequence[int]) -> F32:
        """Head outputs ``[seq, outputs]`` for one unpadded sequence."""
        feed = {"input_ids": np.array([ids], np.int64), "token_type_ids": np.array([type_ids], np.int64),
                "position_ids": np.arange(len(ids), dtype=np.int64)}
        outputs: F32 = self.session.run(["outputs"], feed)[0][0]
        return outputs


class NotCompiled(LookupError):
    """The graph asked for is not in the cache, and building it was not allowed."""


def _settle(future: Future[Any], open_session: Callable[[], Any]) -> None:
    try:
        future.set_result(open_session())
    except BaseException as error:  # handed to whoever runs the model first
        future.set_exception(error)


def compiled_bert(graph: Callable[[], Any], identity: str, cache_dir: Path, quantise: bool = True,
                  threads: int = 1, build: bool = True, background: bool = False) -> CompiledBert:
    """The session (int8 if ``quantise``) for the weights ``identity`` names: from ``cache_dir`` when it was built
    before, else ``graph()`` is built (a few seconds), quantised and stored there; written aside and renamed, so
    concurrent first runs never see half a file. An unwritable cache directory only costs the build on every
    start. Without ``build``, a graph not in the cache raises ``NotCompiled``; ``background``: see ``CompiledBert``."""
    precision = "int8" if quantise else "fp32"
    key = hashlib.sha256(f"{GRAPH_VERSION}\0{identity}".encode()).hexdigest()[:16]
    cached = cache_dir / f"bert-{precision}-{key}.onnx"
    if cached.is_file():
        return CompiledBert(cached, threads, background)
    if not build:
        raise NotCompiled(f"no compiled graph for {identity} in {cache_dir}")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
    except OSError:
        workdir = Path(tempfile.mkdtemp(prefix="rag-bert-"))
    try:
        built = _quantised(graph(), workdir) if quantise else _saved(graph(), workdir)
        try:
            os.replace(built, cached)
            return CompiledBert(cached, threads, background)
        except OSError:
            return CompiledBert(built, threads)  # opened now: the build directory is removed on return
    finally:
        for leftover in workdir.glob("*"):
            leftover.unlink(missing_ok=True)
        workdir.rmdir()


def _saved(model: Any, workdir: Path) -> Path:
    import onnx

    target = workdir / "fp32.onnx"
    onnx.save(model, str(target))
    return target


def _quantised(model: Any, workdir: Path) -> Path:
    """int8 weights for every matrix product, one scale per output channel (per-tensor scales cost 5.7 F1)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target = _saved(model, workdir), workdir / "int8.onnx"
    # The quantiser logs advice to pre-process the graph on the root logger (not done: per-channel int8 kept the
    # reader's F1 without it); keep it quiet.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         per_channel=True)
    finally:
        root.setLevel(level)
    return target
