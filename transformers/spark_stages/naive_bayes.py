"""NaiveBayesModel: multinomial, complement, bernoulli and gaussian, as Spark's
``NaiveBayesModel.predictRaw`` computes them.

rawPrediction, with ``pi`` the log priors and ``theta`` the (classes x features) log
conditional probabilities (gaussian: the means, ``sigma`` the variances):

* multinomial: ``pi[i] + sum_j theta[i, j] * x[j]``; the features must be >= 0 (a
  negative or NaN value is an error, as in Spark's ``requireNonnegativeValues``).
* complement: ``p[i] = sum_j theta[i, j] * x[j]`` (same requirement), then
  ``p[i] - (log(sum_k exp(p[k] - max p)) + max p)``.
* bernoulli: ``(pi[i] + sum_j log1p(-exp(theta[i, j]))) + sum_j (theta[i, j] -
  log1p(-exp(theta[i, j]))) * x[j]``; every non-zero feature must be exactly 1.0.
* gaussian: ``pi[i] - (sum_j (x[j] - theta[i, j])**2 / sigma[i, j] + sum_j log sigma[i, j]) / 2``.

Sums run left to right (for a sparse vector over its stored entries); Spark's BLAS
(``dgemv``, vectorized) may add in another order, so with tens of features
rawPrediction differs by a few ulps, complement's (after the log-sum-exp cancels) and
probability up to ~1e-12 relative. probability is Spark's
``Utils.softmax`` (the largest value subtracted, starting from -Double.MaxValue; a
+inf gives probability 1 for it; scaled by ``1 / sum``); prediction the first
largest raw value, or by ``thresholds`` from probability, as
``ProbabilisticClassificationModel`` does.
"""
from __future__ import annotations

import math
import sys

import numpy as np

from ..vectors import decode_matrix, decode_vector
from ._base import SparkStageScorer, scorer
from ._classification import thresholded
from ._util import java_div, java_exp

MAX = sys.float_info.max


def _jlog(v: float) -> float:
    if v == 0.0:
        return -math.inf
    if v < 0.0 or math.isnan(v):
        return math.nan
    return math.log(v)


def _jlog1p(v: float) -> float:
    if v == -1.0:
        return -math.inf
    if v < -1.0 or math.isnan(v):
        return math.nan
    return math.log1p(v)


def _total_order(v: float) -> tuple:
    return (1, 0.0, 0.0) if math.isnan(v) else (0, v, math.copysign(1.0, v))


def _entries(v, uid: str, size: int) -> tuple[list[int], list[float]]:
    """The vector's (indices, values): the stored entries of a sparse vector, every
    entry of a dense one."""
    if v is None:
        raise ValueError(f"NaiveBayesModel {uid}: the features vector is null")
    if hasattr(v, "indices") and hasattr(v, "values") and hasattr(v, "size") and not isinstance(v, np.ndarray):
        n, idx, vals = int(v.size), [int(i) for i in v.indices], [float(x) for x in v.values]
    else:
        arr = np.asarray(v.toArray() if hasattr(v, "toArray") else v, dtype=np.float64)
        n, idx, vals = arr.size, list(range(arr.size)), arr.tolist()
    if n != size:
        raise ValueError(f"NaiveBayesModel {uid}: features of size {n}, the model expects {size}")
    return idx, vals


def spark_argmax(values) -> float:
    """``Vector.argmax``: the first largest value; NaN never wins over values[0]."""
    best_i, best = 0, values[0]
    for i in range(1, len(values)):
        if values[i] > best:
            best_i, best = i, values[i]
    return float(best_i)


def spark_softmax(raw: list[float]) -> list[float]:
    """``org.apache.spark.ml.impl.Utils.softmax``."""
    mx = -MAX
    for i, v in enumerate(raw):
        if v == math.inf:
            out = [0.0 * x for x in raw]        # BLAS dscal by 0 (NaN stays NaN, inf gives NaN)
            out[i] = 1.0
            return out
        if v > mx:
            mx = v
    out, total = [], 0.0
    for v in raw:
        e = java_exp(v - mx)
        out.append(e)
        total += e
    scale = java_div(1.0, total)
    return [e * scale for e in out]


@scorer("org.apache.spark.ml.classification.NaiveBayesModel")
class NaiveBayesScorer(SparkStageScorer):
    supports = 'multinomial, complement, bernoulli, gaussian; rawPrediction, probability, prediction; thresholds'
    limitations = ("sums run left to right where Spark's BLAS vectorizes: with many features rawPrediction and "
                   "probability agree to ~1e-12 relative, not to the bit; feature checks (non-negative, 0/1) "
                   "raise as in Spark")

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        data = self.read_parquet()[0]
        self.model_type = self.param("modelType", "multinomial")
        if self.model_type not in ("multinomial", "complement", "bernoulli", "gaussian"):
            raise ValueError(f"NaiveBayesModel {self.uid}: unsupported modelType {self.model_type!r}")
        self.pi = decode_vector(data["pi"]).tolist()
        theta = decode_matrix(data["theta"])
        self.num_classes, self.num_features = len(self.pi), theta.shape[1]
        self.theta = theta.tolist()
        if self.model_type == "bernoulli":
            neg = [[_jlog1p(-java_exp(t)) for t in row] for row in self.theta]
            self.weights = [[t - n for t, n in zip(trow, nrow)] for trow, nrow in zip(self.theta, neg)]
            self.base = []
            for p, nrow in zip(self.pi, neg):
                s = 0.0
                for n in nrow:
                    s += n * 1.0
                self.base.append(p + 1.0 * s)
        if self.model_type == "gaussian":
            self.sigma = decode_matrix(data["sigma"]).tolist()
            self.log_var_sum = []
            for row in self.sigma:
                s = 0.0
                for v in row:
                    s += _jlog(v)
                self.log_var_sum.append(s)
        self.thresholds = self.metadata.get("paramMap", {}).get("thresholds")
        if self.thresholds is not None and len(self.thresholds) != self.num_classes:
            raise ValueError(f"NaiveBayesModel {self.uid}: thresholds has length {len(self.thresholds)}, "
                             f"the model has {self.num_classes} classes")
        self.raw_col = self.param("rawPredictionCol", "rawPrediction")
        self.prob_col = self.param("probabilityCol", "probability")
        self.pred_col = self.param("predictionCol", "prediction")
        self.features_col = self.param("featuresCol", "features")

    # -- predictRaw ---------------------------------------------------------------------
    def _check_nonnegative(self, vals):
        if not all(v > 0.0 for v in vals if v != 0.0):
            raise ValueError(f"NaiveBayesModel {self.uid}: Naive Bayes requires nonnegative feature values "
                             f"but found {vals}.")

    def _check_zero_one(self, vals):
        if not all(v == 1.0 for v in vals if v != 0.0):
            raise ValueError(f"NaiveBayesModel {self.uid}: Bernoulli naive Bayes requires 0 or 1 feature values "
                             f"but found {vals}.")

    @staticmethod
    def _dots(matrix, idx, vals) -> list[float]:
        out = []
        for row in matrix:
            s = 0.0
            for j, v in zip(idx, vals):
                s += row[j] * v
            out.append(s)
        return out

    def raw(self, features) -> list[float]:
        idx, vals = _entries(features, self.uid, self.num_features)
        t = self.model_type
        if t == "multinomial":
            self._check_nonnegative(vals)
            return [p + 1.0 * s for p, s in zip(self.pi, self._dots(self.theta, idx, vals))]
        if t == "complement":
            self._check_nonnegative(vals)
            probs = [0.0 + s for s in self._dots(self.theta, idx, vals)]
            mx = max(probs, key=_total_order)              # Scala's Array.max: NaN largest, -0.0 < 0.0
            total = 0.0
            for v in probs:
                total += java_exp(v - mx)
            lse = _jlog(total) + mx
            return [v - lse for v in probs]
        if t == "bernoulli":
            self._check_zero_one(vals)
            return [b + 1.0 * s for b, s in zip(self.base, self._dots(self.weights, idx, vals))]
        # gaussian: every feature, a sparse vector's missing entries as 0.0
        x = [0.0] * self.num_features
        for j, v in zip(idx, vals):
            x[j] = v
        out = []
        for i in range(self.num_classes):
            s = 0.0
            th, sg = self.theta[i], self.sigma[i]
            for j in range(self.num_features):
                d = x[j] - th[j]
                s += java_div(d * d, sg[j])
            out.append(self.pi[i] - (s + self.log_var_sum[i]) / 2)
        return out

    def score_row(self, row: dict) -> dict:
        raw = self.raw(row[self.features_col])
        prob = spark_softmax(raw)
        out = {}
        if self.raw_col:
            out[self.raw_col] = np.array(raw)
        if self.prob_col:
            out[self.prob_col] = np.array(prob)
        if self.pred_col:
            if self.thresholds is None:
                pred = spark_argmax(prob) if (not self.raw_col and self.prob_col) else spark_argmax(raw)
            else:
                pred = thresholded(prob, self.thresholds)
            out[self.pred_col] = pred
        return out
