"""LinearRegressionModel and LogisticRegressionModel (binary and multinomial).

Linear: ``prediction = dot(features, coefficients) + intercept``.
Logistic, binary: margin ``m = dot + intercept``, rawPrediction ``[-m, m]``, probability
``1 / (1 + exp(-r))`` of each raw value, prediction ``probability[1] > threshold`` when
``thresholds`` is set, else ``rawPrediction[1] > log(t / (1 - t))`` (``-inf``/``+inf`` for
t = 0/1) — Spark's ``raw2prediction``.
Multinomial: raw margins ``intercept + coefficients @ x``; probability by softmax,
subtracting the largest margin only when it is positive, scaled by ``1 / sum``; a
``+inf`` margin gives probability 1 for it; prediction argmax (or by ``thresholds``).
Spark's BLAS may sum in another order, so floats agree to ~1e-15 relative, not to the bit.
"""
from __future__ import annotations

import math

import numpy as np

from ..batch import apply_each
from ..vectors import as_array, decode_matrix, decode_vector
from ._base import SparkStageScorer, scorer
from ._classification import argmax, output_cols, thresholded
from ._util import dot, dot_rows


def _features(self, row):
    col = self.param("featuresCol", "features")
    v = row[col]
    if v is None:
        raise ValueError(f"{self.uid}: the features column {col!r} is null")
    x = as_array(v, f"column {col!r}")
    if x.size != self.num_features:
        raise ValueError(f"{self.uid}: features of size {x.size}, the model expects {self.num_features}")
    return x


def _feature_matrix(self, batch) -> np.ndarray | None:
    X = batch.matrix(self.param("featuresCol", "features"))
    return None if X is None or X.shape[1] != self.num_features else X


def _logistic(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v)) if -v < 709.78 else 0.0


@scorer("org.apache.spark.ml.regression.LinearRegressionModel")
class LinearRegressionScorer(SparkStageScorer):
    supports = 'prediction = dot + intercept'
    limitations = "summation order may differ from Spark's BLAS by ~1 ulp"

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        data = self.read_parquet()[0]
        self.coefficients = decode_vector(data["coefficients"])
        self.intercept = float(data["intercept"])
        self.num_features = self.coefficients.size

    def score_row(self, row: dict) -> dict:
        x = _features(self, row)
        return {self.param("predictionCol", "prediction"): dot(x, self.coefficients) + self.intercept}

    def score_columns(self, batch) -> dict | None:
        X = _feature_matrix(self, batch)
        if X is None:
            return None
        return {self.param("predictionCol", "prediction"): dot_rows(X, self.coefficients) + self.intercept}


@scorer("org.apache.spark.ml.classification.LogisticRegressionModel")
class LogisticRegressionScorer(SparkStageScorer):
    supports = 'binary and multinomial; rawPrediction, probability, prediction; threshold / thresholds'
    limitations = 'floats within ~1e-15 relative of Spark (BLAS order)'

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        data = self.read_parquet()[0]
        self.num_classes = int(data["numClasses"])
        self.num_features = int(data["numFeatures"])
        self.multinomial = bool(data["isMultinomial"])
        self.coefficients = decode_matrix(data["coefficientMatrix"])
        self.intercepts = decode_vector(data["interceptVector"])
        self.thresholds = self.metadata.get("paramMap", {}).get("thresholds")
        t = self.params.get("threshold", 0.5)
        if self.thresholds is not None and not self.multinomial:
            t0, t1 = self.thresholds
            t = 1.0 / (1.0 + t0 / t1)
        self.threshold = float(t)
        self.raw_col, self.prob_col, self.pred_col = output_cols(self)

    def raw(self, x: np.ndarray) -> np.ndarray:
        if not self.multinomial:
            m = dot(x, self.coefficients[0]) + float(self.intercepts[0])
            return np.array([-m, m])
        return np.array([float(self.intercepts[k]) + dot(x, self.coefficients[k]) for k in range(self.num_classes)])

    def probability(self, raw: np.ndarray) -> np.ndarray:
        if not self.multinomial:
            return np.array([_logistic(v) for v in raw.tolist()])
        i = int(np.argmax(raw))
        mx = float(raw[i])
        if mx == math.inf:
            return np.array([1.0 if k == i else 0.0 for k in range(raw.size)])
        vals = [math.exp(v - mx) if mx > 0 else math.exp(v) for v in raw.tolist()]
        total = 0.0
        for v in vals:
            total += v
        scale = 1.0 / total
        return np.array([v * scale for v in vals])

    def prediction(self, raw: np.ndarray, prob: np.ndarray) -> float:
        if self.multinomial:
            return argmax(raw) if self.thresholds is None else thresholded(prob, self.thresholds)
        if self.thresholds is not None:
            return 1.0 if prob[1] > self.threshold else 0.0
        return 1.0 if raw[1] > self.raw_threshold() else 0.0

    def raw_threshold(self) -> float:
        t = self.threshold
        return -math.inf if t == 0.0 else math.inf if t == 1.0 else math.log(t / (1.0 - t))

    def score_row(self, row: dict) -> dict:
        x = _features(self, row)
        raw = self.raw(x)
        prob = self.probability(raw)
        return self.outputs(raw, prob, self.prediction(raw, prob))

    def outputs(self, raw, prob, pred) -> dict:
        out = {self.pred_col: pred}
        if self.raw_col:
            out[self.raw_col] = raw
        if self.prob_col:
            out[self.prob_col] = prob
        return out

    def score_columns(self, batch) -> dict | None:
        """Margins with numpy; the multinomial softmax and thresholds row by row."""
        X = _feature_matrix(self, batch)
        if X is None:
            return None
        if not self.multinomial:
            m = dot_rows(X, self.coefficients[0]) + float(self.intercepts[0])
            raw = np.stack([-m, m], axis=1)
            prob = apply_each(_logistic, raw)
            pred = prob[:, 1] > self.threshold if self.thresholds is not None else raw[:, 1] > self.raw_threshold()
            return self.outputs(raw, prob, pred.astype(np.float64))
        raw = np.stack([float(self.intercepts[k]) + dot_rows(X, self.coefficients[k])
                        for k in range(self.num_classes)], axis=1)
        prob = np.array([self.probability(r) for r in raw])
        pred = np.array([self.prediction(r, p) for r, p in zip(raw, prob)])
        return self.outputs(raw, prob, pred)
