"""StringIndexerModel (single and multi column; orders; handleInvalid; nulls) against Spark."""
import pytest
from pyspark.ml.feature import StringIndexer

from _stage_parity import check_both_fail, check_stage

FIT = [(0, "a", 1), (1, "b", 2), (2, "b", 2), (3, "c", 3), (4, "a", 2), (5, "b", 1), (6, None, 4), (7, "d", 3)]
SCORE = FIT + [(8, "zz", 9), (9, None, None), (10, "c", 1)]


@pytest.mark.parametrize("order", ["frequencyDesc", "frequencyAsc", "alphabetDesc", "alphabetAsc"])
@pytest.mark.parametrize("handle", ["keep", "skip"])
def test_string_indexer_multi(spark_session, tmp_path, order, handle):
    fit = spark_session.createDataFrame(FIT, "rid long, s string, n int")
    score = spark_session.createDataFrame(SCORE, "rid long, s string, n int")
    model = StringIndexer(inputCols=["s", "n"], outputCols=["s_i", "n_i"], stringOrderType=order,
                          handleInvalid=handle).fit(fit)
    assert check_stage(model, score, ["s_i", "n_i"], tmp_path, exact=("s_i", "n_i")) == len(SCORE)


def test_string_indexer_single_and_error(spark_session, tmp_path):
    fit = spark_session.createDataFrame(FIT, "rid long, s string, n int")
    model = StringIndexer(inputCol="s", outputCol="s_i").fit(fit.where("s is not null"))
    clean = fit.where("s is not null")
    assert check_stage(model, clean, ["s_i"], tmp_path, exact=("s_i",)) == clean.count()
    score = spark_session.createDataFrame(SCORE, "rid long, s string, n int")
    check_both_fail(model, score.where("rid = 8"), tmp_path, name="unseen")
    check_both_fail(model, score.where("rid = 9"), tmp_path, name="null")
    check_both_fail(model, score.where("rid != 6"), tmp_path, name="batch")         # unseen, then null, among valid rows


def test_string_indexer_double_input(spark_session, tmp_path):
    rows = [(0, 1.0), (1, 2.5), (2, 1.0), (3, -0.25), (4, 100.0), (5, None)]
    df = spark_session.createDataFrame(rows, "rid long, x double")
    model = StringIndexer(inputCol="x", outputCol="x_i", handleInvalid="keep").fit(df)
    assert check_stage(model, df, ["x_i"], tmp_path, exact=("x_i",)) == len(rows)
