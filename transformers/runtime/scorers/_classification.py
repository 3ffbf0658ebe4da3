"""What Spark's ProbabilisticClassificationModel does around ``predictRaw``: which output
columns it writes, and probability and prediction from the raw prediction. Every
function here takes a batch, ``(rows, classes)``; a single row is a batch of one, so
``scoreInstance`` and ``scoreBatch`` run the same operations."""
from __future__ import annotations

import sys

import numpy as np

from ..batch import apply_each
from ._util import java_exp
from palette.errors import ArtifactError, ScoringError

MAX = sys.float_info.max


def sequential_sum(values: np.ndarray) -> np.ndarray:
    """Sums along the last axis left to right (as Scala's ``Array.sum`` and a Java loop
    add), not in numpy's pairwise order."""
    return np.cumsum(values, axis=-1)[..., -1] if values.shape[-1] else np.zeros(values.shape[:-1])


def _first_greatest(values: np.ndarray, best: np.ndarray, start: int) -> np.ndarray:
    """Per row, the first column from ``start`` on whose value is strictly greater than
    every one before it and than ``best`` (index 0 if none is)."""
    index = np.zeros(values.shape[0])
    for i in range(start, values.shape[1]):
        greater = values[:, i] > best
        best = np.where(greater, values[:, i], best)
        index[greater] = i
    return index


def spark_argmax(values: np.ndarray) -> np.ndarray:
    """``DenseVector.argmax`` of each row: index 0 unless a later value is strictly
    greater than the best so far, so NaN never wins (and a NaN at index 0 keeps 0),
    where ``np.argmax`` would pick the first NaN."""
    return _first_greatest(values, values[:, 0], 1)


def thresholded(probability: np.ndarray, thresholds) -> np.ndarray:
    """``probability2prediction`` with thresholds: the first largest ``p / t`` (starting
    from -inf, strictly greater), so NaN (0/0) never wins, not even at index 0."""
    scaled = probability / np.asarray(thresholds, dtype=np.float64)
    return _first_greatest(scaled, np.full(probability.shape[0], -np.inf), 0)


def normalize(raw: np.ndarray) -> np.ndarray:
    """``normalizeToProbabilitiesInPlace``: each row divided by its (left-to-right) sum,
    which must be positive."""
    total = sequential_sum(raw)
    if not (total > 0).all():
        raise ScoringError("Can't normalize the 0-vector.")
    return raw / total[:, None]


def softmax(raw: np.ndarray) -> np.ndarray:
    """``org.apache.spark.ml.impl.Utils.softmax`` of each row: the largest value (from
    -Double.MaxValue up, NaN skipped) subtracted, ``exp`` (Java's, via ``math``),
    scaled by ``1 / sum``; a row holding +inf is ``0 * value`` (BLAS ``dscal``) with 1.0
    at its first +inf."""
    mx = np.fmax.reduce(raw, axis=1, initial=-MAX)
    e = apply_each(java_exp, raw - mx[:, None])
    out = e * (1.0 / sequential_sum(e))[:, None]
    is_inf = raw == np.inf
    rows = np.flatnonzero(is_inf.any(axis=1))
    if rows.size:
        out[rows] = 0.0 * raw[rows]
        out[rows, np.argmax(is_inf[rows], axis=1)] = 1.0
    return out


class ProbabilisticOutputs:
    """Spark's ``ProbabilisticClassificationModel.transform``: rawPrediction when its
    column is set; probability from the raw prediction when its column is set; the
    prediction from the raw prediction when that column is set, else from the
    probability when that one is, else the model's own ``predict`` — three ways that
    differ in ties, NaN and (binary logistic regression) thresholds. An empty column
    name writes nothing, as in Spark."""

    def init_outputs(self, num_classes: int):
        self.raw_col = self.param("rawPredictionCol", "rawPrediction")
        self.prob_col = self.param("probabilityCol", "probability")
        self.pred_col = self.param("predictionCol", "prediction")
        self.thresholds = self.metadata.get("paramMap", {}).get("thresholds")
        if self.thresholds is not None and len(self.thresholds) != num_classes:
            raise ArtifactError(f"{self.uid}: thresholds has length {len(self.thresholds)}, "
                             f"the model has {num_classes} classes")

    def raw2probability(self, raw: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def raw2prediction(self, raw: np.ndarray, prob: np.ndarray | None) -> np.ndarray:
        if self.thresholds is None:
            return spark_argmax(raw)
        return self.probability2prediction(self.raw2probability(raw) if prob is None else prob)

    def probability2prediction(self, prob: np.ndarray) -> np.ndarray:
        return spark_argmax(prob) if self.thresholds is None else thresholded(prob, self.thresholds)

    def predict(self, raw: np.ndarray, context) -> np.ndarray:
        """``predict(features)`` (neither raw nor probability column set):
        ``ClassificationModel.predict`` is ``raw2prediction(predictRaw(features))``."""
        return self.raw2prediction(raw, None)

    def outputs(self, raw: np.ndarray, context=None) -> dict:
        out, prob = {}, None
        if self.raw_col:
            out[self.raw_col] = raw
        if self.prob_col:
            prob = out[self.prob_col] = self.raw2probability(raw)
        if self.pred_col:
            if self.raw_col:
                out[self.pred_col] = self.raw2prediction(raw, prob)
            elif self.prob_col:
                out[self.pred_col] = self.probability2prediction(prob)
            else:
                out[self.pred_col] = self.predict(raw, context)
        return out


def first_row(columns: dict) -> dict:
    """Row 0 of a batch's output columns, as ``scoreInstance`` returns it."""
    return {k: (v[0] if v.ndim == 2 else float(v[0])) for k, v in columns.items()}
