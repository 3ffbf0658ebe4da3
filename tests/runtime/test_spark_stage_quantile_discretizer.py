"""QuantileDiscretizer: its fitted model is a Bucketizer; fit one in Spark (single and
multi column, handleInvalid keep/skip/error) and check the saved Bucketizer."""
import numpy as np
import pytest
from pyspark.ml.feature import QuantileDiscretizer

from _stage_parity import check_both_fail, check_stage

NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def frames(spark_session):
    rng = np.random.default_rng(0)
    rows = [(i, float(rng.normal() * 10), float(rng.exponential()), float(rng.integers(0, 4)))
            for i in range(60)]
    train = spark_session.createDataFrame(rows, "rid long, a double, b double, c double")
    extra = [(100, NAN, 1.0, 2.0), (101, -1e300, 1e300, NAN), (102, INF, -INF, 0.0), (103, -0.0, 0.0, 3.0),
             (104, NAN, NAN, NAN)]
    score = spark_session.createDataFrame(rows + extra, "rid long, a double, b double, c double")
    return train, score, len(rows + extra)


@pytest.mark.parametrize("handle", ["keep", "skip"])
def test_quantile_discretizer_single(frames, tmp_path, handle):
    train, score, n = frames
    model = QuantileDiscretizer(numBuckets=5, inputCol="a", outputCol="a_q", handleInvalid=handle).fit(train)
    assert type(model).__name__ == "Bucketizer"
    assert check_stage(model, score, ["a_q"], tmp_path, exact=("a_q",)) == n


@pytest.mark.parametrize("handle", ["keep", "skip"])
def test_quantile_discretizer_multi(frames, tmp_path, handle):
    train, score, n = frames
    model = QuantileDiscretizer(numBucketsArray=[4, 7, 10], inputCols=["a", "b", "c"],
                                outputCols=["a_q", "b_q", "c_q"], handleInvalid=handle,
                                relativeError=0.01).fit(train)
    assert check_stage(model, score, ["a_q", "b_q", "c_q"], tmp_path, exact=("a_q", "b_q", "c_q")) == n


def test_quantile_discretizer_error(frames, tmp_path):
    train, score, _ = frames
    model = QuantileDiscretizer(numBuckets=3, inputCol="b", outputCol="b_q").fit(train)      # handleInvalid error
    assert check_stage(model, score.where("not isnan(b)"), ["b_q"], tmp_path, exact=("b_q",)) > 60
    check_both_fail(model, score.where("rid = 104"), tmp_path)
