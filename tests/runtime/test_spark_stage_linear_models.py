"""LinearRegressionModel and LogisticRegressionModel (binary, multinomial, thresholds) against Spark."""
import numpy as np
import pytest
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.linalg import Vectors
from pyspark.ml.regression import LinearRegression

from _stage_parity import check_both_fail, check_stage

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


@pytest.mark.parametrize("raw, prob", [("", "probability"), ("", ""), ("rawPrediction", "")])
@pytest.mark.parametrize("family, params", [("binomial", {"threshold": 0.3}), ("binomial", {"thresholds": [0.7, 0.4]}),
                                            ("multinomial", {}), ("multinomial", {"thresholds": [0.5, 0.2, 0.9]})])
def test_logistic_regression_output_columns(spark_session, tmp_path, raw, prob, family, params):
    """Prediction from raw, from probability or from predict(features), as Spark's
    transform picks by the columns set; empty columns are not written."""
    df = _data(spark_session, classes=2 if family == "binomial" else 3, seed=4)
    model = LogisticRegression(maxIter=20, family=family, **params).fit(df)
    model.setRawPredictionCol(raw).setProbabilityCol(prob)
    cols = [c for c in (raw, prob, "prediction") if c]
    assert check_stage(model, df, cols, tmp_path, exact=("prediction",)) == df.count()


def test_multinomial_nan_margins_never_win(spark_session, tmp_path):
    """With L1 some coefficients are exactly 0, and an infinite feature makes such a
    class's margin 0 * inf = NaN next to other classes' +-inf. Spark's argmax (in the
    prediction and in the softmax) keeps index 0 and moves only on a strictly greater
    value, so NaN never wins; np.argmax would pick the first NaN."""
    df = _data(spark_session, classes=3, seed=2)
    model = LogisticRegression(maxIter=50, family="multinomial", regParam=0.02, elasticNetParam=1.0).fit(df)
    inf = float("inf")
    xs = [[0.0, inf, 0.0], [0.0, -inf, 0.0], [1.5, inf, -2.0], [-1.0, -inf, 3.0], [inf, 0.0, 0.0], [-inf, 1.0, 0.0]]
    extra = spark_session.createDataFrame([(1000 + k, Vectors.dense(x), 0.0, 0.0) for k, x in enumerate(xs)], df.schema)
    raws = [r["rawPrediction"].toArray() for r in model.transform(extra).collect()]
    assert any(np.isnan(r[1:]).any() and not np.isnan(r[0]) for r in raws)   # a NaN after a number
    assert check_stage(model, df.union(extra), CLASSIFIER_COLS, tmp_path, exact=("prediction",)) == df.count() + 6


def test_linear_models_null_features_fail_like_spark(spark_session, tmp_path):
    df = _data(spark_session, seed=5)
    nulls = spark_session.createDataFrame([(100, None, 0.0, 0.0)], df.schema)
    model = LogisticRegression(maxIter=5).fit(df)
    check_both_fail(model, df.union(nulls), tmp_path, name="lr")
    check_both_fail(LinearRegression(labelCol="y").fit(df), df.union(nulls), tmp_path, name="lin")
