"""LinearRegressionModel and LogisticRegressionModel (binary and multinomial).

Linear: ``prediction = dot(features, coefficients) + intercept``.
Logistic, binary: margin ``m = dot + intercept``, rawPrediction ``[-m, m]``, probability
``1 / (1 + exp(-r))`` of each raw value; prediction ``rawPrediction[1] > log(t / (1 - t))``
(``-inf``/``+inf`` for t = 0/1) from the raw prediction, ``probability[1] > t`` from the
probability (``t`` the threshold, or ``1 / (1 + t0 / t1)`` from ``thresholds``) — Spark's
``raw2prediction`` / ``probability2prediction``.
Multinomial: raw margins ``intercept + coefficients @ x``; probability Spark's
``Utils.softmax``; prediction argmax (or by ``thresholds``).
Spark's BLAS may sum in another order, so floats agree to ~1e-15 relative, not to the bit.
"""
from __future__ import annotations

import math

import numpy as np

from ..batch import apply_each
from ..vectors import decode_matrix, decode_vector
from ..stage import StageScorer, scorer
from ._classification import ProbabilisticOutputs, first_row, softmax
from ._util import dot, dot_rows, java_exp


def _logistic(v: float) -> float:
    return 1.0 / (1.0 + java_exp(-v))


class LinearPredictor(StageScorer):
    """A model saved as ``coefficients`` and ``intercept`` (linear and generalized linear
    regression): ``dot(features, coefficients) + intercept`` of a row or a batch."""

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        data = self.read_parquet()[0]
        self.coefficients = decode_vector(data["coefficients"])
        self.intercept = float(data["intercept"])
        self.num_features = self.coefficients.size
        self.features_col = self.param("featuresCol", "features")
        self.pred_col = self.param("predictionCol", "prediction")

    def margin(self, row: dict) -> float:
        return dot(self.features_of(row, self.features_col, self.num_features), self.coefficients) + self.intercept

    def margins(self, batch) -> np.ndarray | None:
        X = self.feature_matrix(batch, self.features_col, self.num_features)
        return None if X is None else dot_rows(X, self.coefficients) + self.intercept


@scorer("org.apache.spark.ml.regression.LinearRegressionModel")
class LinearRegressionScorer(LinearPredictor):
    supports = 'prediction = dot + intercept'
    limitations = "summation order may differ from Spark's BLAS by ~1 ulp"

    def score_row(self, row: dict) -> dict:
        return {self.pred_col: self.margin(row)} if self.pred_col else {}

    def score_columns(self, batch) -> dict | None:
        m = self.margins(batch)
        return None if m is None else {self.pred_col: m} if self.pred_col else {}


@scorer("org.apache.spark.ml.classification.LogisticRegressionModel")
class LogisticRegressionScorer(ProbabilisticOutputs, StageScorer):
    supports = 'binary and multinomial; rawPrediction, probability, prediction; threshold / thresholds'
    limitations = 'floats within ~1e-15 relative of Spark (BLAS order)'

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        data = self.read_parquet()[0]
        self.num_classes = int(data["numClasses"])
        self.num_features = int(data["numFeatures"])
        self.multinomial = bool(data["isMultinomial"])
        self.coefficients = decode_matrix(data["coefficientMatrix"])
        self.intercepts = decode_vector(data["interceptVector"])
        self.features_col = self.param("featuresCol", "features")
        self.init_outputs(self.num_classes)
        t = self.params.get("threshold", 0.5)
        if self.thresholds is not None and not self.multinomial:
            t0, t1 = self.thresholds
            t = 1.0 / (1.0 + t0 / t1)
        t = self.threshold = float(t)
        self.raw_threshold = -math.inf if t == 0.0 else math.inf if t == 1.0 else math.log(t / (1.0 - t))

    def raw_row(self, x: np.ndarray) -> np.ndarray:
        if not self.multinomial:
            m = dot(x, self.coefficients[0]) + float(self.intercepts[0])
            return np.array([[-m, m]])
        return np.array([[float(self.intercepts[k]) + dot(x, self.coefficients[k]) for k in range(self.num_classes)]])

    def raw_rows(self, X: np.ndarray) -> np.ndarray:
        if not self.multinomial:
            m = dot_rows(X, self.coefficients[0]) + float(self.intercepts[0])
            return np.stack([-m, m], axis=1)
        return np.stack([float(self.intercepts[k]) + dot_rows(X, self.coefficients[k])
                         for k in range(self.num_classes)], axis=1)

    def raw2probability(self, raw):
        return softmax(raw) if self.multinomial else apply_each(_logistic, raw)

    def raw2prediction(self, raw, prob):
        if self.multinomial:
            return super().raw2prediction(raw, prob)
        return (raw[:, 1] > self.raw_threshold).astype(np.float64)

    def probability2prediction(self, prob):
        if self.multinomial:
            return super().probability2prediction(prob)
        return (prob[:, 1] > self.threshold).astype(np.float64)

    def predict(self, raw, context):
        """Binary: Spark's ``predict`` is ``score > threshold``, ``score`` the probability of 1."""
        if self.multinomial:
            return super().predict(raw, context)
        return self.probability2prediction(self.raw2probability(raw))

    def score_row(self, row: dict) -> dict:
        x = self.features_of(row, self.features_col, self.num_features)
        return first_row(self.outputs(self.raw_row(x)))

    def score_columns(self, batch) -> dict | None:
        X = self.feature_matrix(batch, self.features_col, self.num_features)
        return None if X is None else self.outputs(self.raw_rows(X))
