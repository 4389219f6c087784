"""Small learned linear models (logistic regression) and where their weights live.

The sentence ranker and the refusal decision are logistic regressions over a handful of named signals, fitted by
``rag.training.answerer`` and stored with their feature names in ``rag/models/answerer.json``; a model whose
feature names do not match the code's is refused rather than silently misapplied.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

MODELS_FILE = Path(__file__).resolve().parent.parent / "models" / "answerer.json"


class ModelMismatch(RuntimeError):
    """Stored weights do not fit the features the code computes."""


@dataclass(frozen=True)
class LinearModel:
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float = 0.0
    """Decision threshold on the log-odds (0 = probability one half)."""

    def score(self, values: Sequence[float]) -> float:
        """Log-odds."""
        return self.bias + sum(w * v for w, v in zip(self.weights, values, strict=True))

    def probability(self, values: Sequence[float]) -> float:
        return 1.0 / (1.0 + math.exp(-max(min(self.score(values), 50.0), -50.0)))

    def to_json(self) -> dict[str, Any]:
        return {"features": list(self.features), "weights": [round(w, 6) for w in self.weights],
                "bias": round(self.bias, 6), "threshold": round(self.threshold, 6)}

    @staticmethod
    def from_json(record: dict[str, Any], expected: Sequence[str]) -> LinearModel:
        features = tuple(record["features"])
        if features != tuple(expected):
            raise ModelMismatch(f"{MODELS_FILE}: features {features} do not match {tuple(expected)}; retrain")
        return LinearModel(features, tuple(float(w) for w in record["weights"]), float(record["bias"]),
                           float(record.get("threshold", 0.0)))


@cache
def stored_models(path: Path = MODELS_FILE) -> dict[str, Any]:
    if not path.is_file():
        return {}
    models: dict[str, Any] = json.loads(path.read_text())
    return models


def fit_logistic(rows: Sequence[Sequence[float]], labels: Sequence[int], names: Sequence[str],
                 l2: float = 1e-3, steps: int = 3000, rate: float = 0.5,
                 sample_weights: Sequence[float] | None = None, signs: Sequence[int] | None = None) -> LinearModel:
    """Weighted logistic regression by full-batch gradient descent on standardised features (deterministic; a few
    thousand rows of a few features converge in well under a second). ``signs`` (+1, -1 or 0 per feature) keeps a
    weight non-negative, non-positive or free: two signals that move together can otherwise take opposite weights
    that cancel on the training rows and not elsewhere."""
    import numpy as np

    x = np.asarray(rows, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    weight = np.ones(len(y)) if sample_weights is None else np.asarray(sample_weights, dtype=np.float64)
    weight = weight / weight.mean()
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    direction = np.zeros(z.shape[1]) if signs is None else np.asarray(signs, dtype=np.float64)
    if direction.shape != (z.shape[1],):
        raise ValueError(f"{len(direction)} signs for {z.shape[1]} features")
    lowest, highest = np.where(direction > 0, 0.0, -np.inf), np.where(direction < 0, 0.0, np.inf)
    positive = float(np.average(y, weights=weight))
    b = math.log(max(positive, 1e-6) / max(1 - positive, 1e-6))
    for _ in range(steps):
        error = weight * (1.0 / (1.0 + np.exp(-(z @ w + b))) - y)
        w = np.clip(w - rate * (z.T @ error / len(y) + l2 * w), lowest, highest)
        b -= rate * float(np.mean(error))
    weights = w / scale
    return LinearModel(tuple(names), tuple(float(v) for v in weights), float(b - (weights * mean).sum()))
