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
``Utils.softmax`` and the prediction ``ProbabilisticClassificationModel``'s (both in
``_classification``). A batch computes the same sums with numpy, one class per column,
over a sparse vector's stored entries only.
"""
from __future__ import annotations

import math

import numpy as np

from ..batch import apply_each
from ..vectors import decode_matrix, decode_vector, is_sparse
from ..stage import StageScorer, scorer
from ._classification import ProbabilisticOutputs, first_row, sequential_sum, softmax
from ._util import java_div, java_exp
from palette.errors import ScoringError


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
        raise ScoringError(f"NaiveBayesModel {uid}: the features vector is null")
    if is_sparse(v):
        n, idx, vals = int(v.size), [int(i) for i in v.indices], [float(x) for x in v.values]
    else:
        arr = np.asarray(v.toArray() if hasattr(v, "toArray") else v, dtype=np.float64)
        n, idx, vals = arr.size, list(range(arr.size)), arr.tolist()
    if n != size:
        raise ScoringError(f"NaiveBayesModel {uid}: features of size {n}, the model expects {size}")
    return idx, vals


@scorer("org.apache.spark.ml.classification.NaiveBayesModel")
class NaiveBayesScorer(ProbabilisticOutputs, StageScorer):
    supports = 'multinomial, complement, bernoulli, gaussian; rawPrediction, probability, prediction; thresholds'
    limitations = ("sums run left to right where Spark's BLAS vectorizes: with many features rawPrediction and "
                   "probability agree to ~1e-12 relative, not to the bit; feature checks (non-negative, 0/1) "
                   "raise as in Spark")

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        data = self.read_parquet()[0]
        self.model_type = self.param_in("modelType", ("multinomial", "complement", "bernoulli", "gaussian"),
                                        "multinomial")
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
        self.init_outputs(self.num_classes)
        self.features_col = self.param("featuresCol", "features")
        self.theta_a = np.array(self.theta)
        if self.model_type == "bernoulli":
            self.weights_a, self.base_a = np.array(self.weights), np.array(self.base)
        if self.model_type == "gaussian":
            self.sigma_a, self.log_var_sum_a = np.array(self.sigma), np.array(self.log_var_sum)
        self.pi_a = np.array(self.pi)

    # -- predictRaw ---------------------------------------------------------------------
    def _check_nonnegative(self, vals):
        if not all(v > 0.0 for v in vals if v != 0.0):
            raise ScoringError(f"NaiveBayesModel {self.uid}: Naive Bayes requires nonnegative feature values "
                             f"but found {vals}.")

    def _check_zero_one(self, vals):
        if not all(v == 1.0 for v in vals if v != 0.0):
            raise ScoringError(f"NaiveBayesModel {self.uid}: Bernoulli naive Bayes requires 0 or 1 feature values "
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

    def raw2probability(self, raw):
        return softmax(raw)

    def score_row(self, row: dict) -> dict:
        return first_row(self.outputs(np.array([self.raw(row[self.features_col])])))

    # -- the batch: the same operations, one class per column ---------------------------
    @staticmethod
    def _dots_rows(matrix: np.ndarray, X: np.ndarray, stored: np.ndarray | None) -> np.ndarray:
        """``_dots`` of every row: over a sparse vector's stored entries only (an unstored
        0 would add ``0 * -inf`` = NaN where a log-probability is -inf, smoothing 0)."""
        s = np.zeros((X.shape[0], matrix.shape[0]))
        for j in range(X.shape[1]):
            term = matrix[:, j] * X[:, j, None]
            s = s + (term if stored is None else np.where(stored[:, j, None], term, 0.0))
        return s

    def invalid(self, X: np.ndarray) -> np.ndarray:
        """Rows ``requireNonnegativeValues`` (``requireZeroOneBernoulliValues``) fails on."""
        if self.model_type in ("multinomial", "complement"):
            return ((X != 0.0) & ~(X > 0.0)).any(axis=1)
        if self.model_type == "bernoulli":
            return ((X != 0.0) & (X != 1.0)).any(axis=1)
        return np.zeros(X.shape[0], dtype=bool)

    def raw_rows(self, X: np.ndarray, stored: np.ndarray | None) -> np.ndarray:
        t = self.model_type
        if t in ("multinomial", "complement"):
            s = self._dots_rows(self.theta_a, X, stored)
            if t == "multinomial":
                return self.pi_a + 1.0 * s
            probs = 0.0 + s
            mx = probs.max(axis=1, keepdims=True)          # NaN largest, as Scala's Array.max
            total = sequential_sum(apply_each(java_exp, probs - mx))
            return probs - (apply_each(_jlog, total)[:, None] + mx)
        if t == "bernoulli":
            return self.base_a + 1.0 * self._dots_rows(self.weights_a, X, stored)
        s = np.zeros((X.shape[0], self.num_classes))
        for j in range(self.num_features):
            d = X[:, j, None] - self.theta_a[:, j]
            s = s + (d * d) / self.sigma_a[:, j]
        return self.pi_a - (s + self.log_var_sum_a) / 2

    def score_columns(self, batch) -> dict | None:
        X = self.feature_matrix(batch, self.features_col, self.num_features, self.invalid)
        if X is None:
            return None
        stored = batch.stored(self.features_col, X.shape[1])
        return self.outputs(self.raw_rows(X, None if stored is None else stored[1]))
