"""The reader's input layout and span decoding (pure functions), the reader's graph against its torch original, and the
learned linear models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.answering.linear import LinearModel, ModelMismatch, fit_logistic
from rag.answering.reader import (
    MAX_LENGTH,
    READER_DIR,
    WEIGHTS_FILE,
    ReaderInput,
    SpanReader,
    Tokenized,
    best_span,
    reader_graph,
    reader_inputs,
    token_targets,
)
from rag.onnx_bert import CompiledBert
from rag.settings import Settings

MODEL = Settings().model_path
CONTEXT = "Iraqi forces declared victory in Mosul on July 10. Clashes continued in tunnels for weeks."


@pytest.fixture(scope="module")
def tokenizer() -> Tokenized:
    return Tokenized(MODEL / "tokenizer.json")


def test_one_window_holds_question_and_context(tokenizer: Tokenized) -> None:
    [window] = reader_inputs(tokenizer, "when did mosul fall", CONTEXT)
    assert window.ids[0] == tokenizer.cls_id and window.ids[-1] == tokenizer.sep_id
    question_end = window.ids.index(tokenizer.sep_id)
    assert set(window.type_ids[: question_end + 1]) == {0} and set(window.type_ids[question_end + 1 :]) == {1}
    context_tokens = [i for i, start in enumerate(window.char_starts) if start >= 0]
    assert context_tokens[0] == question_end + 1
    first, last = context_tokens[0], context_tokens[-1]
    assert CONTEXT[window.char_starts[first] : window.char_ends[last]] == CONTEXT[:-1] + "."


def test_a_long_context_is_read_in_overlapping_windows_that_cover_it(tokenizer: Tokenized) -> None:
    context = " ".join(f"Sentence number {i} says something about town {i}." for i in range(120))
    windows = reader_inputs(tokenizer, "which town", context)
    assert len(windows) > 1
    assert all(len(window.ids) <= MAX_LENGTH for window in windows)
    covered = {start for window in windows for start in window.char_starts if start >= 0}
    all_starts = {offset[0] for offset in tokenizer.pieces(context)[1]}
    assert covered == all_starts
    first_end = max(window_end for window_end in windows[0].char_ends)
    second_start = min(start for start in windows[1].char_starts if start >= 0)
    assert second_start < first_end  # windows overlap


def test_token_targets_locate_a_character_span(tokenizer: Tokenized) -> None:
    [window] = reader_inputs(tokenizer, "when did mosul fall", CONTEXT)
    start = CONTEXT.index("July 10")
    first, last = token_targets(window, start, start + len("July 10"))
    assert CONTEXT[window.char_starts[first] : window.char_ends[last]] == "July 10"


def test_an_answer_outside_the_window_targets_cls(tokenizer: Tokenized) -> None:
    [window] = reader_inputs(tokenizer, "q", CONTEXT[:30])
    start = CONTEXT.index("July 10")
    assert token_targets(window, start, start + 7) == (0, 0)


def test_best_span_takes_the_best_pair_in_order_and_within_length() -> None:
    window = ReaderInput(ids=[101, 7, 102, 1, 2, 3, 102], type_ids=[0, 0, 0, 1, 1, 1, 1],
                         char_starts=[-1, -1, -1, 0, 5, 10, -1], char_ends=[-1, -1, -1, 4, 9, 14, -1])
    start = np.array([3.0, 0, 0, 0.0, 5.0, 1.0, 0], dtype=np.float32)
    end = np.array([2.0, 0, 0, 9.0, 0.0, 4.5, 0], dtype=np.float32)
    span = best_span(start, end, window)
    assert span is not None
    # start 5.0 at token 4 cannot pair with end 9.0 at token 3 (before it): best is tokens 4..5 = 9.5
    assert (span.start, span.end, span.score) == (5, 14, 9.5)
    assert span.null == 5.0 and span.margin == 4.5
    short = best_span(start, end, window, max_answer_tokens=1)
    assert short is not None and short.score == 9.0 and (short.start, short.end) == (0, 4)


def test_a_window_without_context_has_no_span() -> None:
    window = ReaderInput([101, 102, 102], [0, 0, 1], [-1, -1, -1], [-1, -1, -1])
    assert best_span(np.zeros(3, np.float32), np.zeros(3, np.float32), window) is None


@pytest.mark.skipif(not (READER_DIR / WEIGHTS_FILE).is_file(), reason="no trained reader")
def test_reader_graph_is_the_torch_model_it_was_trained_as_and_int8_keeps_its_spans(
        tokenizer: Tokenized, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(str(MODEL))
    tuned = {("" if name.startswith("qa_outputs") else "bert.") + name: tensor.float()
             for name, tensor in load_file(str(READER_DIR / WEIGHTS_FILE)).items()}
    missing, _ = model.load_state_dict(tuned, strict=False)
    assert set(missing) <= {"bert.embeddings.word_embeddings.weight", "bert.pooler.dense.weight",
                            "bert.pooler.dense.bias"}
    model.eval()
    exact = CompiledBert(reader_graph(MODEL, READER_DIR / WEIGHTS_FILE).SerializeToString())
    reader = SpanReader(MODEL, tmp_path)
    assert list(tmp_path.glob("bert-int8-*.onnx")), "the int8 graph is cached for the next start"
    questions = ["when did mosul fall", "where did the clashes continue", "how long did the clashes last", "who"]
    windows = [window for question in questions for window in reader_inputs(tokenizer, question, CONTEXT)]
    for window, (start, end) in zip(windows, reader.logits(windows), strict=True):
        ids, types = np.array([window.ids]), np.array([window.type_ids])
        with torch.no_grad():
            out = model(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types))
        torch_start, torch_end = out.start_logits[0].numpy(), out.end_logits[0].numpy()
        fp32 = exact.run(window.ids, window.type_ids)
        np.testing.assert_allclose(fp32[:, 0], torch_start, atol=2e-4)
        np.testing.assert_allclose(fp32[:, 1], torch_end, atol=2e-4)
        theirs, ours = best_span(torch_start, torch_end, window), best_span(start, end, window)
        assert theirs is not None and ours is not None
        assert (ours.start, ours.end) == (theirs.start, theirs.end)
        # int8 moves the answer-or-not margin by 0.5 on average (200 held-out SQuAD questions), rarely by 2-3;
        # the refusal model is fitted on the int8 reader's margins.
        assert abs(ours.margin - theirs.margin) < 3.0 and (ours.margin > 0) == (theirs.margin > 0)


def test_logistic_regression_separates_a_separable_signal() -> None:
    rows = [[x, 0.3] for x in np.linspace(-2, 2, 41)]
    labels = [int(row[0] > 0.1) for row in rows]
    model = fit_logistic(rows, labels, ("signal", "constant"))
    assert model.weights[0] > 0
    assert all((model.score(row) > 0) == bool(label) for row, label in zip(rows, labels, strict=True)
               if abs(row[0] - 0.1) > 0.2)
    assert 0.0 < model.probability([0.1, 0.3]) < 1.0


def test_a_sign_keeps_a_weight_on_its_side_where_a_correlated_twin_would_cancel_it() -> None:
    # "twin" follows "signal" closely; free, the fit leans on their difference and gives "twin" a negative weight.
    rng = np.random.default_rng(0)
    signal = rng.normal(size=400)
    twin = signal + rng.normal(scale=0.1, size=400)
    labels = [int(s - 0.8 * t + rng.normal(scale=0.05) > 0) for s, t in zip(signal, twin, strict=True)]
    rows = [[s, t] for s, t in zip(signal, twin, strict=True)]
    free = fit_logistic(rows, labels, ("signal", "twin"))
    assert free.weights[0] > 0 > free.weights[1]
    signed = fit_logistic(rows, labels, ("signal", "twin"), signs=(0, 1))
    assert signed.weights[1] == 0.0 and signed.weights[0] > 0
    with pytest.raises(ValueError):
        fit_logistic(rows, labels, ("signal", "twin"), signs=(1,))


def test_stored_weights_for_other_features_are_refused() -> None:
    record = LinearModel(("a", "b"), (1.0, 2.0), 0.5, 1.0).to_json()
    assert LinearModel.from_json(record, ("a", "b")).threshold == 1.0
    with pytest.raises(ModelMismatch):
        LinearModel.from_json(record, ("a", "c"))
