"""Fit the sentence ranker, the span selector and the refusal model (``make train-answerer``), after the reader.

    python -m rag.training.answerer --squad ../shared/data/squad-v1.1-dev.json [--questions 1500] [--seed 0]

All three are logistic regressions over the signals ``rag.answering`` computes at question time, fitted on questions
of the SQuAD train half (``evals/squad-split.json``) asked in the open setting, all 2,067 paragraphs indexed, half
of them lowercased without a question mark (as people type):

- the ranker: every candidate sentence of the best passages, labelled by whether it holds the answer;
- the span selector: every span the reader proposes (one per window it reads), labelled by whether it matches the
  answer (SQuAD F1 >= 0.5);
- the refusal model: each question once as retrieved (answerable when its gold paragraph is among the passages the
  answerer reads), once with every passage holding the answer removed (near-topic: the articles discuss the
  subject, not that fact), and once with a name in it swapped for another name of the same article that its
  paragraph never mentions (a trap: "when did the other town fall" while the passages date this one's fall).

The refusal model also learns from the development questions (``evals/dev.jsonl`` over the seeds and a BBC sample,
and ``evals/seeds.jsonl``: typed as people type, with off-topic, near-topic and trap questions beside answerable
ones; together weighing twice as much as the SQuAD readings), and its threshold is the best balanced accuracy on them
that refuses at most 5% of their answerable questions. The SQuAD held-out half and ``evals/open.jsonl`` (the test
set) are never used.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.answering.answerer import DEFAULT_REFUSAL, Answerer
from rag.answering.linear import MODELS_FILE, fit_logistic, stored_models
from rag.answering.questions import analyse
from rag.answering.refusal import REFUSAL_FEATURES, REFUSAL_SIGNS
from rag.answering.sentences import SENTENCE_FEATURES, candidate_sentences
from rag.answering.spans import MARGIN_ONLY, SPAN_FEATURES
from rag.conversation import contextualize
from rag.evaluation import calibrate_threshold, corpus_index_dir, load_questions, question_set_corpus
from rag.metrics import best_f1
from rag.pipeline import ANSWER_POOL, Assistant
from rag.retrieval import RetrievedPassage
from rag.settings import Settings, load_settings
from rag.squad import article_of, articles_of, load_squad, paragraph_id, squad_corpus
from rag.training.traps import article_names, swap_name

FIT_QUESTIONS = 800
FIT_SEED = 0
"""The train-half questions the models are fitted on by default (``make train-answerer``); the reader's run over
the answerer's windows leaves them out (``rag.training.windows``)."""
MAX_FALSE_REFUSAL = 0.05
MAX_OPEN_FALSE_REFUSAL = 0.0
"""Open questions' threshold refuses none of the answerable open-form readings: people's open questions are worded
more loosely than SQuAD's, and their support runs lower."""
DEV_WEIGHT = 2.0
DEV_QUESTIONS = (Path("evals/dev.jsonl"), Path("evals/seeds.jsonl"))
TYPED_SHARE = 0.5
"""Share of the training questions asked lowercase without a question mark, as people type them: a question
without capitals has no names to check, and the models must learn what else to rely on."""


@dataclasses.dataclass(frozen=True)
class TrainQuestion:
    id: str
    question: str
    doc_id: str
    answer_start: int
    answer: str
    trap: tuple[str, str] | None = None
    """The question with one of its names swapped for a name its paragraph never mentions (unanswerable), and
    that name."""


def train_questions(squad_file: Path, count: int, seed: int) -> list[TrainQuestion]:
    rng = random.Random(seed)
    items = []
    for article in articles_of(load_squad(squad_file), "train"):
        names = article_names(article)
        for index, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]
                question, trap = qa["question"], swap_name(qa["question"], paragraph["context"], names, rng)
                if rng.random() < TYPED_SHARE:
                    question = typed(question)
                    trap = (typed(trap[0]), trap[1]) if trap else None
                items.append(TrainQuestion(qa["id"], question, paragraph_id(article["title"], index),
                                           int(answer["answer_start"]), answer["text"], trap))
    return rng.sample(items, min(count, len(items)))


def typed(question: str) -> str:
    """A question as people type one into a search box: lowercase, no question mark (no capitalised names)."""
    return question.lower().rstrip(" ?")


def holds_answer(passage: RetrievedPassage, item: TrainQuestion) -> bool:
    return holds_text(passage.text, (item.answer,))


def holds_text(text: str, answers: tuple[str, ...]) -> bool:
    """Whether ``text`` holds one of ``answers`` (case aside)."""
    return any(answer.lower() in text.lower() for answer in answers)


def squad_assistant(settings: Settings, squad_file: Path, log: Callable[[str], None]) -> Assistant:
    """An assistant over every paragraph of SQuAD v1.1 dev (the open setting), indexed on first use."""
    corpus, _ = squad_corpus(squad_file, settings.index_dir / "squad", "all")
    squad = Assistant(settings.with_overrides({"index_dir": corpus_index_dir(settings, [corpus])}))
    log(squad.ingest([corpus]).summary())
    return squad


def development_readings(settings: Settings, answerer: Answerer,
                         log: Callable[[str], None]) -> list[tuple[tuple[float, ...], int, bool]]:
    """The refusal signals, whether it is answerable and whether it is open, for each development question
    (``DEV_QUESTIONS``)."""
    return [row for path in DEV_QUESTIONS if path.is_file() for row in development_rows(path, settings, answerer, log)]


def development_rows(path: Path, settings: Settings, answerer: Answerer,
                     log: Callable[[str], None]) -> list[tuple[tuple[float, ...], int, bool]]:
    """The refusal signals, whether it is answerable and whether it is open (as read at question time), for each
    question of a development set, asked over its corpus (``NAME-corpus.json`` beside it) or the seeds."""
    corpus = question_set_corpus(path, settings.index_dir / "samples")
    assistant = Assistant(settings.with_overrides({"index_dir": corpus_index_dir(settings, corpus)})
                          if corpus else settings)
    if corpus:
        log(assistant.ingest(corpus).summary())
    else:
        assistant.ensure_index(log)
    rows = []
    for question in load_questions(path):
        asked = contextualize(question.question, question.history, assistant.retriever)
        vector = assistant.retriever.embed_question(asked)
        passages = assistant.retriever.retrieve(asked, vector)[:ANSWER_POOL]
        asked, vector = assistant.retriever.written_out(asked, vector, passages)  # as ``Assistant.answer`` reads it
        reading = answerer.read(asked, vector, passages, assistant.retriever.rarity)
        rows.append((reading.signals.values, int(question.answerable), reading.form.open))
    return rows


def open_refusal(squad: Assistant, squad_file: Path, settings: Settings, answerer: Answerer, seed: int,
                 development: list[tuple[tuple[float, ...], int, bool]], log: Callable[[str], None]) -> dict[str, Any]:
    """The refusal threshold for open questions (why, how, what happened...), whose support the reader's scores do
    not inform (``RefusalSignals``): it rests on retrieval alone, and sits apart from the factoid questions'.

    Set on every open-form question of the SQuAD train half, read as retrieved (answerable when its paragraph is
    among the passages read) and read again with its whole article out of the passages (off-topic: "how do I ..."
    asked of news), together with the open-form ``development`` readings (``development_readings``): the best
    balanced accuracy that refuses at most ``MAX_OPEN_FALSE_REFUSAL`` of the answerable ones.
    """
    items = [item for item in train_questions(squad_file, sys.maxsize, seed) if analyse(item.question).open]
    answerable, off_topic = [], []
    for done, item in enumerate(items, start=1):
        vector = squad.retriever.embed_question(item.question)
        retrieved = squad.retriever.retrieve(item.question, vector, limit=settings.candidates)
        if any(p.metadata.get("article_id") == item.doc_id for p in retrieved[:ANSWER_POOL]):
            answerable.append(answerer.read(item.question, vector, retrieved[:ANSWER_POOL],
                                            squad.retriever.rarity).support)
        elsewhere = [p for p in retrieved if article_of(p.metadata.get("article_id", "")) != article_of(
            item.doc_id)][:ANSWER_POOL]
        if elsewhere:
            off_topic.append(answerer.read(item.question, vector, elsewhere, squad.retriever.rarity).support)
        if done % 100 == 0:
            log(f"open questions: read {done}/{len(items)}")
    developed = [(answerer.refusal.score(signals), label) for signals, label, is_open in development if is_open]
    supports = [*((s, 1) for s in answerable), *((s, 0) for s in off_topic), *developed]
    threshold = calibrate_threshold([s for s, label in supports if label], [s for s, label in supports if not label],
                                    MAX_OPEN_FALSE_REFUSAL)
    refused = [s < threshold for s in off_topic]
    record = {"threshold": round(threshold, 6),
              "data": f"{len(items)} open-form questions of the SQuAD v1.1 dev train half ({len(answerable)} with "
                      f"their paragraph read, {len(off_topic)} with their article out) and {len(developed)} "
                      f"open-form questions of {', '.join(map(str, DEV_QUESTIONS))}",
              "off_topic_refused": round(sum(refused) / max(len(refused), 1), 4)}
    log(f"open questions' refusal threshold: {record}")
    return record


def provenance() -> dict[str, str]:
    """The command and the day that fitted a stored model."""
    return {"command": "python -m rag.training.answerer " + " ".join(sys.argv[1:]),
            "date": datetime.now(UTC).strftime("%Y-%m-%d")}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.training.answerer", description=__doc__.split("\n")[0])
    parser.add_argument("--squad", type=Path, default=Path("../shared/data/squad-v1.1-dev.json"))
    parser.add_argument("--questions", type=int, default=FIT_QUESTIONS)
    parser.add_argument("--seed", type=int, default=FIT_SEED)
    parser.add_argument("--index", type=Path, default=Path(".rag"))
    parser.add_argument("--open-threshold-only", action="store_true",
                        help="keep the stored models and set only the open questions' refusal threshold with them")
    args = parser.parse_args()
    if not args.squad.is_file():
        print(f"error: {args.squad} not found (the SQuAD v1.1 dev file)", file=sys.stderr)
        return 2
    started = time.time()

    def log(message: str) -> None:
        print(f"[{(time.time() - started) / 60:5.1f} min] {message}", file=sys.stderr, flush=True)

    settings = load_settings({"index_dir": str(args.index)})
    squad = squad_assistant(settings, args.squad, log)
    if args.open_threshold_only:
        shipped = Answerer(settings.model_path, settings.cache_dir)
        development = development_readings(settings, shipped, log)
        updated = dict(stored_models()) | {
            "open_refusal": open_refusal(squad, args.squad, settings, shipped, args.seed, development, log)
            | provenance()}
        MODELS_FILE.write_text(json.dumps(updated, indent=1) + "\n")
        log(f"wrote {MODELS_FILE}")
        return 0
    items = train_questions(args.squad, args.questions, args.seed)
    answerer = Answerer(settings.model_path, settings.cache_dir, refusal_threshold=float("-inf"))
    # Readings only need the signals, not a verdict: stored weights of other features must not be loaded.
    answerer.__dict__["refusal"] = DEFAULT_REFUSAL
    answerer.__dict__["selector"] = MARGIN_ONLY

    log(f"retrieving {len(items)} train-half questions")
    retrieved = []
    for item in items:
        vector = squad.retriever.embed_question(item.question)
        retrieved.append((vector, squad.retriever.retrieve(item.question, vector)[:ANSWER_POOL]))

    rows, labels = [], []
    for item, (vector, passages) in zip(items, retrieved, strict=True):
        ranked, _ = candidate_sentences(analyse(item.question), vector, passages, answerer.ranker)
        for candidate in ranked:
            gold = candidate.article == item.doc_id and candidate.start <= item.answer_start < candidate.end
            rows.append(candidate.features)
            labels.append(int(gold))
    ranker = fit_logistic(rows, labels, SENTENCE_FEATURES)
    ranker_rows, ranker_positives = len(rows), sum(labels)
    log(f"ranker fitted on {len(rows)} sentences ({sum(labels)} holding the answer): {ranker.to_json()}")
    answerer.__dict__["ranker"] = ranker

    rows, labels = [], []
    for item, (vector, passages) in zip(items, retrieved, strict=True):
        for window in answerer.read(item.question, vector, passages, squad.retriever.rarity).windows:
            if window.span is not None:
                text = window.candidate.passage.text[window.span.start - window.candidate.passage.start:
                                                     window.span.end - window.candidate.passage.start]
                rows.append(window.features)
                labels.append(int(best_f1(text, [item.answer]) >= 0.5))
    selector = fit_logistic(rows, labels, SPAN_FEATURES)
    selector_rows, selector_positives = len(rows), sum(labels)
    log(f"span selector fitted on {len(rows)} spans ({sum(labels)} matching the answer): {selector.to_json()}")
    answerer.__dict__["selector"] = selector

    rows, labels, traps = [], [], 0
    for done, (item, (vector, passages)) in enumerate(zip(items, retrieved, strict=True), start=1):
        if any(p.metadata.get("article_id") == item.doc_id for p in passages):
            rows.append(answerer.read(item.question, vector, passages, squad.retriever.rarity).signals.values)
            labels.append(1)
        without = [p for p in passages if not holds_answer(p, item)]
        if without:
            rows.append(answerer.read(item.question, vector, without, squad.retriever.rarity).signals.values)
            labels.append(0)
        if item.trap:
            trap, name = item.trap
            trap_vector = squad.retriever.embed_question(trap)
            trap_passages = squad.retriever.retrieve(trap, trap_vector)[:ANSWER_POOL]
            # A swapped-in name that the retrieved text pairs with the same answer may well be answerable.
            if not any(holds_answer(p, item) and name.lower() in p.text.lower() for p in trap_passages):
                rows.append(answerer.read(trap, trap_vector, trap_passages, squad.retriever.rarity).signals.values)
                labels.append(0)
                traps += 1
        if done % 250 == 0:
            log(f"read {done}/{len(items)}")
    # Read once: the refusal model is fitted on them, and the open questions' threshold set on the open ones.
    development = development_readings(settings, answerer, log)
    dev_rows = [(signals, label) for signals, label, _ in development]
    # The development questions are typed as people type and hold off-topic, near-topic and trap questions, which
    # the SQuAD pairs lack: together they weigh DEV_WEIGHT times as much as the pairs.
    dev_weight = DEV_WEIGHT * len(rows) / max(len(dev_rows), 1)
    refusal = fit_logistic([*rows, *(r for r, _ in dev_rows)], [*labels, *(label for _, label in dev_rows)],
                           REFUSAL_FEATURES, sample_weights=[1.0] * len(rows) + [dev_weight] * len(dev_rows),
                           signs=tuple(REFUSAL_SIGNS.values()))
    log(f"refusal fitted on {len(rows)} SQuAD readings ({sum(labels)} answerable, {traps} traps) and "
        f"{len(dev_rows)} development questions: {refusal.to_json()}")
    squad_scores = [(refusal.score(row), label) for row, label in zip(rows, labels, strict=True)]
    dev_scores = [(refusal.score(row), label) for row, label in dev_rows]
    threshold = calibrate_threshold([s for s, label in dev_scores if label],
                                    [s for s, label in dev_scores if not label], MAX_FALSE_REFUSAL)
    refusal = dataclasses.replace(refusal, threshold=threshold)

    def rates(pairs: list[tuple[float, int]]) -> dict[str, float]:
        answerable = [s for s, label in pairs if label]
        unanswerable = [s for s, label in pairs if not label]
        return {"false_refusal": round(sum(s < threshold for s in answerable) / max(len(answerable), 1), 4),
                "refusal_accuracy": round(sum(s < threshold for s in unanswerable) / max(len(unanswerable), 1), 4),
                "answerable": len(answerable), "unanswerable": len(unanswerable)}

    answerer.__dict__["refusal"] = refusal
    models: dict[str, Any] = dict(stored_models())
    models.update({
        "ranker": ranker.to_json(),
        "selector": selector.to_json(),
        "refusal": refusal.to_json(),
        "open_refusal": open_refusal(squad, args.squad, settings, answerer, args.seed, development, log)
        | provenance(),
        "trained": {
            **provenance(),
            "data": f"{len(items)} questions of the SQuAD v1.1 dev train half (seed {args.seed}), and for the "
                    f"refusal model {', '.join(map(str, DEV_QUESTIONS))} (weight {DEV_WEIGHT}), its threshold on "
                    "these",
            "threshold_at": {"squad_train_pairs": rates(squad_scores), "dev_questions": rates(dev_scores)},
            "ranker_data": {"sentences": ranker_rows, "holding_answer": ranker_positives},
            "selector_data": {"spans": selector_rows, "matching_answer": selector_positives},
        },
    })
    MODELS_FILE.parent.mkdir(parents=True, exist_ok=True)
    MODELS_FILE.write_text(json.dumps(models, indent=1) + "\n")
    log(f"threshold {threshold:.3f}: {models['trained']['threshold_at']}; wrote {MODELS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

