"""What Spark's ProbabilisticClassificationModel does after ``predictRaw``: probability
and prediction columns, honoring ``thresholds``."""
from __future__ import annotations

import numpy as np


def normalize(raw: np.ndarray) -> np.ndarray:
    """``normalizeToProbabilitiesInPlace``: each value divided by the sum."""
    total = 0.0
    for v in raw.tolist():                       # Scala's Array.sum: left to right
        total += v
    if not total > 0:
        raise ValueError("Can't normalize the 0-vector.")
    return np.array([v / total for v in raw])


def argmax(v: np.ndarray) -> float:
    return float(np.argmax(v))


def thresholded(probability: np.ndarray, thresholds) -> float:
    """``probability2prediction`` with thresholds: argmax of probability / threshold,
    the first of equals; NaN (0/0) never wins."""
    best, best_i = -np.inf, 0
    for i, (p, t) in enumerate(zip(probability, thresholds)):
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.float64(p) / np.float64(t)
        if scaled > best:
            best, best_i = scaled, i
    return float(best_i)


def output_cols(scorer) -> tuple[str, str, str]:
    return (scorer.param("rawPredictionCol", "rawPrediction"), scorer.param("probabilityCol", "probability"),
            scorer.param("predictionCol", "prediction"))
