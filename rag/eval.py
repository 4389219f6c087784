"""``python -m rag.eval``: grade retrieval, answers, citations and refusals on a question set.

    python -m rag.eval [--questions FILE] [--corpus PATH ...] [--index DIR] [--top-k K] [--json] [--report FILE.md]
                       [--squad FILE [--split heldout|train|all] [--limit N]] [--min-METRIC VALUE ...]
                       [--llm BACKEND:MODEL [--llm-base-url URL] [--llm-timeout S]]

``--min-answer.accuracy 0.9`` (any metric of the JSON output, dotted) makes the run exit 1 below that value,
``--max-refusal.false_rate 0.1`` above it.
Metric definitions: ``rag/evaluation.py``. A question set ``NAME.jsonl`` with a ``NAME-corpus.json`` beside it
(``{"paths": [...], "jsonl": [{"file": ..., "ids": [...]}]}``) is asked over that corpus. ``--squad`` indexes all
SQuAD paragraphs and asks the questions of one half of the committed article split (``evals/squad-split.json``; the
reader was trained on ``train``), and grades the reader alone on each gold paragraph too. A corpus gets an index of its
own under the index directory (``corpora/<content hash>``); with ``--index DIR`` it is indexed into DIR, which must
hold no other articles.

With ``--llm`` the answers are the model's (checked, or extractive where they fall back), graded by the same
metrics, plus ``generation.*``: share of sentences dropped by verification, fallbacks, model errors, and seconds to
the first token and to the checked answer.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.cli import add_index_flags, add_llm_flags, fail, log, run, settings_from
from rag.evaluation import (
    Graded,
    Question,
    QuestionSetError,
    breakdown,
    corpus_index_dir,
    failures,
    generation_metrics,
    load_questions,
    question_set_corpus,
    ranks_refusals,
    summarize,
)
from rag.evaluation import run as run_questions
from rag.indexing import Progress
from rag.pipeline import READER_SURE, Assistant
from rag.settings import Settings


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=Path("evals/seeds.jsonl"))
    parser.add_argument("--corpus", type=Path, nargs="+", help="index this corpus (cached by content) instead of seeds")
    parser.add_argument("--squad", type=Path, help="SQuAD v1.1 JSON: index its paragraphs and ask its questions")
    parser.add_argument("--split", choices=("heldout", "train", "all"), default="heldout",
                        help="with --squad: which half of the article split to ask (default heldout)")
    parser.add_argument("--limit", type=int, help="ask only the first N questions")
    parser.add_argument("--sample", type=int, help="ask N questions drawn at random (seed 0) instead of all")
    add_index_flags(parser)
    add_llm_flags(parser)
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument("--report", type=Path, help="write a Markdown report (and a recall@k chart beside it)")
    args, rest = parser.parse_known_args()
    limits = parse_limits(rest, parser)
    settings = settings_from(args)
    skeleton = summarize([])  # every metric name, to reject a misspelt one before the run rather than after
    if settings.llm:
        skeleton["generation"] = generation_metrics([])
    for _, name in limits:
        lookup(skeleton, name, measured=False)

    if args.squad:
        from rag.squad import squad_corpus

        try:
            corpus, questions = squad_corpus(args.squad, settings.index_dir / "squad", args.split)
        except ValueError as error:
            fail(str(error))
        args.corpus = [corpus]
    else:
        try:
            questions = load_questions(args.questions)
            if not args.corpus:
                args.corpus = question_set_corpus(args.questions, settings.index_dir / "samples")
        except (OSError, ValueError, QuestionSetError) as error:
            fail(str(error))
    if args.limit is not None and args.limit < 1:
        fail("--limit must be at least 1")
    questions = questions[: args.limit] if args.limit else questions
    if args.sample is not None:
        if args.sample < 1:
            fail("--sample must be at least 1")
        questions = random.Random(0).sample(questions, min(args.sample, len(questions)))
    if args.corpus and args.index_dir is None:
        settings = settings.with_overrides({"index_dir": corpus_index_dir(settings, args.corpus)})
    assistant = Assistant(settings)
    if settings.llm:
        from rag.generation.llm import LLMUnavailable

        try:
            assistant.llm  # noqa: B018
        except LLMUnavailable as error:
            fail(str(error))
    if args.corpus:
        report = assistant.ingest(args.corpus)
        log(report.summary())
        # An index given by --index may hold other articles, which would answer too: the grades would mix corpora.
        others = assistant.stats()["articles"] - (report.new + report.changed + report.unchanged)
        if others > 0:
            fail(f"{settings.index_dir} holds {others} article(s) besides this corpus: they would answer too; give "
                 "--index an empty directory, or leave it out (each corpus gets an index of its own)")
    else:
        assistant.ensure_index(log)

    progress = Progress("questions", len(questions))
    graded = run_questions(assistant, questions, progress=lambda done: progress.advance(1),
                           generated=bool(settings.llm))
    metrics = summarize(graded)
    metrics["by_type"] = breakdown(graded)
    # One number when one answerer decided every question, else each answerer's (their units differ).
    thresholds = {decider: assistant.threshold(decider) for decider in sorted({g.answer.decided_by for g in graded})}
    metrics["refusal_threshold"] = next(iter(thresholds.values())) if len(thresholds) == 1 else thresholds
    if "reader" in thresholds:
        metrics["open_refusal_threshold"] = assistant.answerer.open_threshold
    if settings.answerer == "hybrid":
        # Which answerer decided how many, and the support at which the reader takes a question from the rules.
        metrics["decided_by"] = dict(sorted(Counter(g.answer.decided_by for g in graded).items()))
        metrics["reader_sure"] = READER_SURE
    if args.squad:
        log("reading each gold paragraph with the reader alone")
        metrics["reader"] = read_gold_paragraphs(assistant, args.squad, questions)
    if settings.llm:
        metrics["model"] = settings.llm
        for reason, count in Counter(g.model_error for g in graded if g.model_error).most_common():
            log(f"llm: {reason} ({count} question{'s' if count > 1 else ''}: extractive answer used)")
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(render_table(metrics))
        print(render_failures(graded))
    if args.report:
        write_report(args.report, metrics, graded, settings)
    missed = missed_limits(limits, {name: lookup(metrics, name) for _, name in limits})
    for line in missed:
        log(line)
    return 1 if missed else 0


def missed_limits(limits: dict[tuple[str, str], float], values: dict[str, float]) -> list[str]:
    """One line per limit a measured value misses: below a ``min``, above a ``max``."""
    missed = []
    for (bound, name), limit in limits.items():
        value = values[name]
        if bound == "min" and value < limit:
            missed.append(f"below threshold: {name} {value:.3f} < {limit}")
        if bound == "max" and value > limit:
            missed.append(f"above threshold: {name} {value:.3f} > {limit}")
    return missed


def parse_limits(rest: list[str], parser: argparse.ArgumentParser) -> dict[tuple[str, str], float]:
    """``--min-NAME V`` and ``--max-NAME V`` as ``{("min"|"max", NAME): V}``."""
    limits: dict[tuple[str, str], float] = {}
    pairs = iter(rest)
    for flag in pairs:
        bound = flag[2:5]
        if not flag.startswith(("--min-", "--max-")):
            parser.error(f"unrecognized argument: {flag}")
        name, _, value = flag[len("--min-"):].partition("=")
        try:
            limits[(bound, name)] = float(value or next(pairs))
        except (StopIteration, ValueError):
            parser.error(f"{flag} needs a number")
    return limits


def lookup(metrics: dict[str, Any], dotted: str, measured: bool = True) -> float:
    value: Any = metrics
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            fail(f"no metric named {dotted!r}")
        value = value[part]
    if isinstance(value, dict):
        fail(f"{dotted!r} is a group of metrics; name one of: {', '.join(value)}")
    if value is None:
        if measured:
            fail(f"{dotted} was not measured on this question set")
        return 0.0
    return float(value)


def read_gold_paragraphs(assistant: Assistant, squad_file: Path, questions: list[Question]) -> dict[str, float]:
    """The reader alone on each question's gold paragraph: SQuAD exact match and F1 of its best span."""
    from rag.metrics import best_exact_match, best_f1, mean
    from rag.squad import gold_contexts

    contexts = gold_contexts(squad_file)
    reader = assistant.answerer.reader
    progress = Progress("gold paragraphs", len(questions))
    f1s, exacts = [], []
    for question in questions:
        context = contexts[question.id]
        span = reader.read(question.question, [context])[0]
        predicted = context[span.start : span.end] if span else ""
        f1s.append(best_f1(predicted, question.answers))
        exacts.append(float(best_exact_match(predicted, question.answers)))
        progress.advance(1)
    return {"f1": mean(f1s), "exact_match": mean(exacts), "count": len(f1s)}


def _number(value: float | None) -> str:
    if isinstance(value, int):
        return str(value)
    return "-" if value is None else f"{value:.3f}"


def flatten(group: dict[str, Any], prefix: str = "") -> dict[str, float | None]:
    """``{"a": 1, "b": {"c": 2}}`` as ``{"a": 1, "b.c": 2}``."""
    flat: dict[str, float | None] = {}
    for name, value in group.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


GROUPS = ("retrieval", "answer", "citation", "refusal", "reader", "generation")


def render_table(metrics: dict[str, Any]) -> str:
    rows = [f"{'metric':<32}{'value':>8}", "-" * 40]
    if metrics.get("model"):
        rows.insert(0, f"answers generated by {metrics['model']}")
    for group in (group for group in GROUPS if group in metrics):
        for name, value in flatten(metrics[group]).items():
            if name != "count":
                rows.append(f"{group + '.' + name:<32}{_number(value):>8}")
    rows.append(f"{'questions':<32}{metrics['n']:>8d}")
    return "\n".join(rows)


def render_failures(graded: list[Graded]) -> str:
    failed = failures(graded)
    lines = [f"\n{len(failed)} question(s) to look at:"]
    for g in failed:
        q = g.question
        expected = "unanswerable" if not q.answerable else " | ".join(q.answers)
        rank = next((i for i, relevant in enumerate(g.relevance, start=1) if relevant), None)
        lines.append(f"- [{q.id}] {q.question}")
        lines.append(f"    expected: {expected}; evidence rank: {rank or '-'}; "
                     f"support {g.answer.support:.3f} ({g.answer.decided_by})")
        lines.append(f"    answered: {g.answer.answer[:220]}")
    return "\n".join(lines)


def write_report(path: Path, metrics: dict[str, Any], graded: list[Graded], settings: Settings) -> None:
    from rag.charts import recall_chart, refusal_chart

    command = "python -m rag.eval " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    chart = path.with_suffix(".png")
    recall_chart(graded, chart)
    lines = [
        f"# Evaluation report: {path.stem}",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; index fingerprint `{settings.fingerprint}`; "
        f"answerer `{settings.answerer}`; {metrics['n']} questions.",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    if metrics.get("model"):
        lines[5:5] = [f"Answers generated by `{metrics['model']}`, every sentence checked against the passages it "
                      "cites.", ""]
    for group in (group for group in GROUPS if group in metrics):
        lines += [f"| {group}.{name} | {_number(value)} |" for name, value in flatten(metrics[group]).items()
                  if name != "count"]
    lines += ["", f"![recall@k]({chart.name})", "", "## By question type", "",
              "| type | n | recall@5 | accuracy | EM | F1 |", "|---|---|---|---|---|---|"]
    for kind, row in metrics["by_type"].items():
        lines.append(f"| {kind} | {row['n']:.0f} | {row['recall@5']:.3f} | {row['accuracy']:.3f} | "
                     f"{row['exact_match']:.3f} | {row['f1']:.3f} |")
    charts = [chart]
    if ranks_refusals(graded):
        refusals = path.with_name(f"{path.stem}-refusal.png")
        refusal_chart(graded, f"this run ({graded[0].answer.decided_by})", refusals)
        charts.append(refusals)
        lines += ["", "## Refusal trade-off", "",
                  "Each point is a refusal threshold on the answers' support: the share of unanswerable questions it "
                  "refuses against the share of answerable ones. The dot is where this run refused; "
                  "`refusal.refused_at_false_rate` reads the curve at fixed false-refusal rates.", "",
                  f"![refusal trade-off]({refusals.name})"]
    lines += ["", "## Questions to look at", "", "```", render_failures(graded).strip(), "```"]
    path.write_text("\n".join(lines) + "\n")
    log(f"report written to {path} and {', '.join(map(str, charts))}")


if __name__ == "__main__":
    run(main)
