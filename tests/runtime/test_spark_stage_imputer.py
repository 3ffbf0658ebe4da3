"""ImputerModel (mean, median, mode; single and multi column; missingValue) against Spark."""
import pytest
from pyspark.ml.feature import Imputer

from _stage_parity import check_stage

ROWS = [(0, 1.0, 3, 2.0), (1, None, 5, 2.0), (2, float("nan"), None, -1.0), (3, 4.5, 5, 7.25),
        (4, 4.5, -1, None), (5, 1e9, 2, -1.0), (6, -0.5, 5, float("nan")), (7, 2.0, 8, 3.0)]


@pytest.fixture
def df(spark_session):
    return spark_session.createDataFrame(ROWS, "rid long, a double, b int, c double")


@pytest.mark.parametrize("strategy", ["mean", "median", "mode"])
def test_imputer_multi_column(df, tmp_path, strategy):
    model = Imputer(inputCols=["a", "b", "c"], outputCols=["a_i", "b_i", "c_i"], strategy=strategy).fit(df)
    assert check_stage(model, df, ["a_i", "b_i", "c_i"], tmp_path, exact=("b_i",), rel=0) == len(ROWS)


@pytest.mark.parametrize("strategy", ["mean", "median"])
def test_imputer_missing_value(df, tmp_path, strategy):
    model = Imputer(inputCols=["b", "c"], outputCols=["b_i", "c_i"], strategy=strategy, missingValue=-1.0).fit(df)
    assert check_stage(model, df, ["b_i", "c_i"], tmp_path, exact=("b_i",), rel=0) == len(ROWS)


def test_imputer_single_column(df, tmp_path):
    model = Imputer(inputCol="a", outputCol="a", strategy="mean").fit(df)   # in place
    assert check_stage(model, df, ["a"], tmp_path, rel=0) == len(ROWS)
