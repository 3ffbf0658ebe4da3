"""The prediction rules shared by the classifiers, against hand-computed expectations of
Spark's ``DenseVector.argmax`` (index 0 unless a later value is strictly greater, so NaN
never wins) and ``probability2prediction`` with thresholds; no Spark needed."""
import math

import numpy as np
import pytest

from palette.transformers.runtime.scorers._classification import softmax, spark_argmax, thresholded

NAN, INF = math.nan, math.inf
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")      # 0 / 0 and inf - inf, on purpose


def test_spark_argmax_never_picks_nan():
    rows = np.array([[NAN, 1.0, 2.0],          # NaN at index 0: nothing is greater than it
                     [1.0, NAN, 3.0],
                     [-INF, NAN, INF],
                     [2.0, NAN, 2.0],           # ties: the first
                     [NAN, NAN, NAN],
                     [0.0, -0.0, 0.0]])
    assert spark_argmax(rows).tolist() == [0.0, 2.0, 2.0, 0.0, 0.0, 0.0]
    assert np.argmax(rows, axis=1).tolist() != [0, 2, 2, 0, 0, 0]      # numpy picks the first NaN


def test_thresholded_prediction():
    p = np.array([[0.2, 0.5, 0.3], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
    # p / t = [0.4, 1.0, 0.3], [0, 0, 1], [1, 1, 0]: the first largest
    assert thresholded(p, [0.5, 0.5, 1.0]).tolist() == [1.0, 2.0, 0.0]
    # p / t = [inf, 1, inf], [0 / 0 = NaN, 0, inf], [inf, 1, NaN]: NaN never wins
    assert thresholded(p, [0.0, 0.5, 0.0]).tolist() == [0.0, 2.0, 0.0]


def test_softmax_as_spark_utils():
    out = softmax(np.array([[1.0, 2.0, 3.0], [-INF, 1.0, INF], [NAN, 0.0, 1.0], [-1e300, -1e300, 0.0]]))
    e = [math.exp(1.0 - 3.0), math.exp(2.0 - 3.0), 1.0]
    s = (e[0] + e[1]) + e[2]
    assert out[0].tolist() == [v * (1.0 / s) for v in e]
    assert np.isnan(out[1][0]) and out[1][1:].tolist() == [0.0, 1.0]   # 0 * -inf, 0 * 1.0, then 1 at the inf
    assert np.isnan(out[2]).all()
    assert out[3].tolist() == [0.0, 0.0, 1.0]
