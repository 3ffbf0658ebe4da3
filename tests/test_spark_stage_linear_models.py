"""LinearRegressionModel and LogisticRegressionModel (binary, multinomial, thresholds) against Spark."""
import numpy as np
import pytest
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.linalg import Vectors
from pyspark.ml.regression import LinearRegression

from _stage_parity import check_stage

CLASSIFIER_COLS = ["rawPrediction", "probability", "prediction"]


def _data(spark, n=40, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x = rng.normal(size=3) * np.array([1.0, 10.0, 0.1])
        y = float(x[0] + 0.1 * x[1] + rng.normal() * 0.5)
        label = float(min(classes - 1, max(0, int((y + 1.5) * classes / 3))))
        vec = Vectors.sparse(3, {1: float(x[1])}) if i % 6 == 0 else Vectors.dense(x.tolist())
        rows.append((i, vec, y, label))
    rows.append((n, Vectors.dense([50.0, -400.0, 3.0]), 0.0, 0.0))   # extreme margin
    return spark.createDataFrame(rows, ["rid", "features", "y", "label"])


@pytest.mark.parametrize("fit_intercept,reg", [(True, 0.0), (False, 0.3)])
def test_linear_regression(spark_session, tmp_path, fit_intercept, reg):
    df = _data(spark_session)
    model = LinearRegression(labelCol="y", fitIntercept=fit_intercept, regParam=reg, elasticNetParam=0.5).fit(df)
    assert check_stage(model, df, ["prediction"], tmp_path) == df.count()


@pytest.mark.parametrize("params", [{}, {"threshold": 0.3}, {"thresholds": [0.7, 0.4]},
                                    {"fitIntercept": False, "regParam": 0.1}])
def test_logistic_regression_binary(spark_session, tmp_path, params):
    df = _data(spark_session, seed=1)
    model = LogisticRegression(maxIter=20, **params).fit(df)
    assert check_stage(model, df, CLASSIFIER_COLS, tmp_path, exact=("prediction",)) == df.count()


@pytest.mark.parametrize("params", [{}, {"thresholds": [0.5, 0.2, 0.9]}])
def test_logistic_regression_multinomial(spark_session, tmp_path, params):
    df = _data(spark_session, classes=3, seed=2)
    model = LogisticRegression(maxIter=20, family="multinomial", **params).fit(df)
    assert check_stage(model, df, CLASSIFIER_COLS, tmp_path, exact=("prediction",)) == df.count()


def test_logistic_regression_binomial_as_multinomial(spark_session, tmp_path):
    df = _data(spark_session, seed=3)
    model = LogisticRegression(maxIter=20, family="multinomial").fit(df)    # 2 classes, multinomial
    assert check_stage(model, df, CLASSIFIER_COLS, tmp_path, exact=("prediction",)) == df.count()
