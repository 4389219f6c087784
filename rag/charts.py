"""Charts for reports (matplotlib, drawn to PNG without a display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rag.evaluation import Graded
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
