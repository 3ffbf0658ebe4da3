"""OneHotEncoderModel (dropLast; handleInvalid error/keep; multi column) against Spark."""
import pytest
from pyspark.ml.feature import OneHotEncoder

from _stage_parity import check_both_fail, check_stage

FIT = [(0, 0.0, 1.0), (1, 1.0, 0.0), (2, 2.0, 3.0), (3, 1.0, 2.0), (4, 0.0, 0.0)]
SCORE = FIT + [(5, 3.0, 4.0), (6, None, 1.0), (7, 2.0, 7.0)]


@pytest.mark.parametrize("drop_last", [True, False])
@pytest.mark.parametrize("handle", ["keep", "error"])
def test_one_hot_encoder(spark_session, tmp_path, drop_last, handle):
    fit = spark_session.createDataFrame(FIT, "rid long, a double, b double")
    model = OneHotEncoder(inputCols=["a", "b"], outputCols=["a_v", "b_v"], dropLast=drop_last,
                          handleInvalid=handle).fit(fit)
    score = spark_session.createDataFrame(SCORE if handle == "keep" else FIT + [(6, None, 1.0)],
                                          "rid long, a double, b double")
    assert check_stage(model, score, ["a_v", "b_v"], tmp_path, rel=0) == score.count()
    if handle == "error":
        bad = spark_session.createDataFrame([(5, 3.0, 1.0)], "rid long, a double, b double")
        check_both_fail(model, bad, tmp_path, name="unseen")
        mixed = spark_session.createDataFrame(FIT + [(5, 1.0, -1.0), (6, None, 1.0), (7, 3.0, 0.0)],
                                              "rid long, a double, b double")
        check_both_fail(model, mixed, tmp_path, name="mixed")          # negative, null, unseen among valid rows


def test_one_hot_encoder_single(spark_session, tmp_path):
    fit = spark_session.createDataFrame(FIT, "rid long, a double, b double")
    model = OneHotEncoder(inputCol="b", outputCol="b_v").fit(fit)
    assert check_stage(model, fit, ["b_v"], tmp_path, rel=0) == len(FIT)
