"""NaiveBayesModel (multinomial, complement, bernoulli, gaussian; thresholds; sparse
vectors; extreme values; invalid features) against Spark."""
import numpy as np
import pytest
from pyspark.ml.classification import NaiveBayes
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql.types import DoubleType, LongType, StructField, StructType

from _stage_parity import check_both_fail, check_stage

COLS = ["rawPrediction", "probability", "prediction"]
REL = 1e-12
SCHEMA = StructType([StructField("rid", LongType()), StructField("features", VectorUDT()),
                     StructField("label", DoubleType())])


def _vec(x, sparse):
    return Vectors.sparse(len(x), {j: float(v) for j, v in enumerate(x) if v != 0}) if sparse \
        else Vectors.dense([float(v) for v in x])


def _frames(spark, model_type, n=45, seed=0):
    """(train, score): 3 classes, 4 features, with extreme rows added to ``score``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 3
        if model_type == "gaussian":
            x = rng.normal(size=4) + np.array([label, -label, 0.5 * label, 0.0])
        elif model_type == "bernoulli":
            x = (rng.random(4) < np.array([0.2, 0.5, 0.8, 0.4]) + 0.1 * label).astype(float)
        else:
            x = rng.poisson(np.array([1.0, 2.0, 3.0, 0.5]) * (1 + label)).astype(float)
        rows.append((i, _vec(x, i % 4 == 0), float(label)))
    if model_type == "gaussian":
        extra = [[40.0, -40.0, 1e3, 0.0], [1e200, 0.0, 0.0, 0.0], [float("inf"), 0.0, 0.0, 0.0],
                 [float("nan"), 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    elif model_type == "bernoulli":
        extra = [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [-0.0, 1.0, 0.0, 0.0]]
    else:
        extra = [[1e6, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0], [0.5, 1e300, 0.0, 2.0], [-0.0, 1.0, 2.5, 1e-300]]
    more = [(n + k, _vec(x, k % 2 == 1), 0.0) for k, x in enumerate(extra)]
    return spark.createDataFrame(rows, SCHEMA), spark.createDataFrame(rows + more, SCHEMA), len(rows + more)


@pytest.mark.parametrize("model_type,params", [
    ("multinomial", {}), ("multinomial", {"smoothing": 0.3, "thresholds": [0.5, 0.2, 0.9]}),
    ("complement", {}), ("complement", {"smoothing": 2.0}),
    ("bernoulli", {}), ("bernoulli", {"smoothing": 0.5, "thresholds": [1.0, 0.0, 2.0]}),
    ("gaussian", {}), ("gaussian", {"thresholds": [0.2, 0.3, 0.4]})])
def test_naive_bayes(spark_session, tmp_path, model_type, params):
    train, score, n = _frames(spark_session, model_type, seed=len(params) + len(model_type))
    model = NaiveBayes(modelType=model_type, **params).fit(train)
    assert check_stage(model, score, COLS, tmp_path, exact=("prediction",), rel=REL) == n


def test_naive_bayes_output_columns(spark_session, tmp_path):
    """Only probability and prediction (prediction then from probability), and only prediction."""
    train, score, n = _frames(spark_session, "multinomial", seed=9)
    model = NaiveBayes(rawPredictionCol="").fit(train)
    assert check_stage(model, score, ["probability", "prediction"], tmp_path, exact=("prediction",), rel=REL) == n
    model = NaiveBayes(rawPredictionCol="", probabilityCol="", modelType="gaussian").fit(
        _frames(spark_session, "gaussian", seed=9)[0])
    assert check_stage(model, score, ["prediction"], tmp_path, exact=("prediction",), name="m2") == n


def test_naive_bayes_invalid_features(spark_session, tmp_path):
    train, _, _ = _frames(spark_session, "multinomial", seed=3)
    model = NaiveBayes().fit(train)
    for k, x in enumerate([[-1.0, 0.0, 0.0, 0.0], [float("nan"), 0.0, 0.0, 0.0]]):
        bad = spark_session.createDataFrame([(0, _vec(x, k == 1), 0.0)], SCHEMA)
        check_both_fail(model, bad, tmp_path, name=f"mn{k}")
    wrong_size = spark_session.createDataFrame([(0, Vectors.dense([1.0, 2.0]), 0.0)], SCHEMA)
    check_both_fail(model, wrong_size, tmp_path, name="size")
    train, _, _ = _frames(spark_session, "bernoulli", seed=3)
    model = NaiveBayes(modelType="bernoulli").fit(train)
    for k, x in enumerate([[2.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 1.0]]):
        bad = spark_session.createDataFrame([(0, _vec(x, k == 1), 0.0)], SCHEMA)
        check_both_fail(model, bad, tmp_path, name=f"b{k}")


@pytest.mark.parametrize("model_type", ["multinomial", "complement", "bernoulli", "gaussian"])
def test_naive_bayes_many_features(spark_session, tmp_path, model_type):
    """60 features: Spark's vectorized BLAS sums in another order, so floats agree to
    ~1e-12 relative here (measured up to 9.5e-13), the predictions exactly."""
    rng = np.random.default_rng(2)
    rows = []
    for i in range(60):
        if model_type == "gaussian":
            x = rng.normal(size=60) + (i % 3)
        elif model_type == "bernoulli":
            x = (rng.random(60) < 0.2 + 0.2 * (i % 3)).astype(float)
        else:
            x = rng.poisson(1.0 + i % 3, size=60).astype(float)
        rows.append((i, _vec(x, i % 5 == 0), float(i % 3)))
    df = spark_session.createDataFrame(rows, SCHEMA)
    model = NaiveBayes(modelType=model_type).fit(df)
    assert check_stage(model, df, COLS, tmp_path, exact=("prediction",), rel=1e-11) == 60


@pytest.mark.parametrize("model_type", ["multinomial", "bernoulli"])
def test_naive_bayes_smoothing_zero(spark_session, tmp_path, model_type):
    """smoothing 0: a feature a class never shows has log-probability -inf. A sparse
    vector's unstored entries are not multiplied in (0 * -inf would be NaN); a batch
    mixing sparse and dense vectors is scored with numpy all the same."""
    rng = np.random.default_rng(4)
    rows = []
    for i in range(30):
        label = i % 3
        x = (rng.random(4) < 0.6).astype(float) if model_type == "bernoulli" else rng.poisson(2.0, 4).astype(float)
        x[label] = 0.0                                   # class `label` never shows feature `label`
        rows.append((i, _vec(x, i % 2 == 0), float(label)))
    train = spark_session.createDataFrame(rows, SCHEMA)
    model = NaiveBayes(modelType=model_type, smoothing=0.0).fit(train)
    assert np.isinf(model.theta.toArray()).any()
    extra = [(100 + k, _vec(x, k % 2 == 0), 0.0) for k, x in enumerate([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0],
                                                                        [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])]
    score = spark_session.createDataFrame(rows + extra, SCHEMA)
    assert check_stage(model, score, COLS, tmp_path, exact=("prediction",), rel=REL) == 34


def test_naive_bayes_errors_in_a_batch(spark_session, tmp_path):
    """A batch with a negative feature among valid rows fails with the row path's error."""
    train, score, _ = _frames(spark_session, "multinomial", seed=3)
    bad = spark_session.createDataFrame([(900, _vec([1.0, -2.0, 0.0, 1.0], False), 0.0)], SCHEMA)
    check_both_fail(NaiveBayes().fit(train), score.union(bad), tmp_path)
