"""Interaction (numbers, integers, vectors with numeric/binary attributes) against Spark."""
import pytest
from pyspark.ml.feature import Interaction, OneHotEncoder, VectorAssembler

from _stage_parity import check_both_fail, check_stage

NAN, INF = float("nan"), float("inf")
ROWS = [(0, 1.5, 2, True, 0.5, -1.0, 0.0), (1, 0.0, 0, False, 0.0, 0.0, 1.0), (2, -0.0, -3, True, NAN, 2.0, 2.0),
        (3, 1e300, 7, True, 1e300, -1e-300, 1.0), (4, INF, 1, False, 3.0, 0.0, 0.0), (5, NAN, 4, True, -INF, 1.0, 2.0),
        (6, 0.1, 5, True, 0.2, 0.3, 1.0)]


@pytest.fixture
def df(spark_session):
    raw = spark_session.createDataFrame(ROWS, "rid long, a double, n int, flag boolean, x double, y double, k double")
    assembled = VectorAssembler(inputCols=["x", "y"], outputCol="v", handleInvalid="keep").transform(raw)
    return OneHotEncoder(inputCol="k", outputCol="k_oh").fit(assembled).transform(assembled)


@pytest.mark.parametrize("cols", [["a", "n"], ["v", "a"], ["a", "v", "k_oh"], ["v"], ["k_oh", "v", "n", "a"]])
def test_interaction(df, tmp_path, cols):
    stage = Interaction(inputCols=cols, outputCol="out")
    assert check_stage(stage, df, ["out"], tmp_path, exact=("out",)) == len(ROWS)


def test_interaction_null(spark_session, tmp_path):
    df = spark_session.createDataFrame([(0, 1.0, None)], "rid long, a double, b double")
    check_both_fail(Interaction(inputCols=["a", "b"], outputCol="out"), df, tmp_path)


def test_interaction_boolean_fails(df, tmp_path):
    """Spark 4.0's Interaction fails on a boolean column (attribute decoding); so does the scorer."""
    check_both_fail(Interaction(inputCols=["a", "flag"], outputCol="out"), df, tmp_path)
