"""Charts for reports (matplotlib, drawn to PNG without a display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from rag.evaluation import Graded, refusal_tradeoff
from rag.metrics import mean, recall_at_k

DEPTHS = list(range(1, 21))


def recall_curves(graded: Sequence[Graded]) -> dict[str, list[float]]:
    """recall@k for k = 1..20 of the final ranking, of plain fusion, and of each retriever alone (its own ranks)."""
    answerable = [g for g in graded if g.question.answerable]
    curves = {"hybrid, sentence re-ranked": [mean([recall_at_k(g.relevance, k) for g in answerable]) for k in DEPTHS]}
    curves["hybrid, plain RRF"] = [mean([recall_at_k(g.baseline_relevance, k) for g in answerable]) for k in DEPTHS]
    for name in ("dense", "lexical"):
        best = [min((p.ranks[name] for p, rel in zip(g.retrieved, g.relevance, strict=False)
                     if rel and name in p.ranks), default=None) for g in answerable]
        curves[name] = [mean([float(rank is not None and rank <= k) for rank in best]) for k in DEPTHS]
    return curves


def recall_chart(graded: Sequence[Graded], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4), dpi=110)
    for name, values in recall_curves(graded).items():
        axes.plot(DEPTHS, values, marker="o", markersize=3, label=name)
    axes.set_xlabel("k (passages)")
    axes.set_ylabel("recall@k")
    axes.set_xticks([1, 5, 10, 15, 20])
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    axes.set_title(f"Retrieval recall@k ({sum(g.question.answerable for g in graded)} questions)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def refusal_chart(graded: Sequence[Graded], threshold_label: str, path: Path) -> None:
    """Share of unanswerable questions refused against share of answerable ones refused, as the refusal threshold
    rises (``refusal_tradeoff``), with the point the run itself refused at."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    answerable = [g for g in graded if g.question.answerable]
    unanswerable = [g for g in graded if not g.question.answerable]
    points = refusal_tradeoff([g.answer.support for g in answerable], [g.answer.support for g in unanswerable])
    figure, axes = plt.subplots(figsize=(5, 4), dpi=110)
    axes.step([p.false_rate for p in points], [p.refused for p in points], where="post", label="any threshold")
    axes.plot([mean([float(g.refused) for g in answerable])], [mean([float(g.refused) for g in unanswerable])],
              marker="o", color="black", linestyle="none", label=threshold_label)
    axes.set_xlabel(f"answerable questions refused ({len(answerable)})")
    axes.set_ylabel(f"unanswerable questions refused ({len(unanswerable)})")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    axes.set_title("Refusal trade-off")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def scale_chart(warm: Mapping[str, Sequence[tuple[float, float]]], cold: Mapping[str, Sequence[tuple[float, float]]],
                path: Path) -> None:
    """Warm latency (one line per store and percentile) and cold start (one line per store) against the number of
    articles indexed, on a log scale; the format follows ``path``'s suffix (``.svg`` for reports)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, start) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    colours: dict[str, str] = {}  # one colour per store (the first word of a line's name), p95 dashed
    for axes, lines, ylabel, title in ((latency, warm, "ms per question", "Warm latency"),
                                       (start, cold, "seconds", "Cold start (python -m rag.ask)")):
        for name, points in lines.items():
            xs, ys = zip(*sorted(points), strict=True)
            colour = colours.setdefault(name.split()[0], f"C{len(colours)}")
            axes.plot(xs, ys, marker="o", color=colour, linestyle="--" if "p95" in name else "-", label=name)
        axes.set_xscale("log")
        axes.set_xlabel("articles indexed")
        axes.set_ylabel(ylabel)
        axes.set_ylim(bottom=0)
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
