"""GeneralizedLinearRegressionModel (every family/link pair, tweedie powers, offsetCol,
linkPredictionCol, extreme linear predictors) against Spark."""
import numpy as np
import pytest
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.ml.regression import GeneralizedLinearRegression
from pyspark.sql.types import DoubleType, LongType, StructField, StructType

from _stage_parity import check_both_fail, check_stage

REL = 1e-12
SCHEMA = StructType([StructField("rid", LongType()), StructField("features", VectorUDT()),
                     StructField("y", DoubleType()), StructField("off", DoubleType())])


def _label(family, link, eta, rng):
    if family == "binomial":
        return float(rng.random() < 1.0 / (1.0 + np.exp(-eta)))
    if family == "gaussian":
        return float(3.0 + eta + rng.normal() * 0.3)
    if family == "poisson":
        return float(rng.poisson(np.exp(0.5 + 0.3 * eta)))
    if family == "gamma":
        return float(rng.gamma(2.0, np.exp(0.3 * eta)))
    # tweedie: compound Poisson-gamma, some zeros
    n = rng.poisson(1.0)
    return float(sum(rng.gamma(2.0, 1.0) for _ in range(n)))


def _frames(spark, family, link=None, n=40, seed=0, offset=False):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x = rng.normal(size=3) * np.array([1.0, 0.5, 0.2])
        eta = x[0] + 0.5 * x[1]
        vec = Vectors.sparse(3, {1: float(x[1])}) if i % 7 == 0 else Vectors.dense(x.tolist())
        rows.append((i, vec, _label(family, link, eta, rng), float(rng.normal() * 0.1)))
    extra = [(n, Vectors.dense([40.0, -30.0, 5.0]), 1.0, 0.0),           # extreme linear predictors
             (n + 1, Vectors.dense([-40.0, 30.0, -5.0]), 1.0, 0.0),
             (n + 2, Vectors.dense([800.0, 0.0, 0.0]), 1.0, 0.0),
             (n + 3, Vectors.dense([-800.0, 0.0, 0.0]), 1.0, 0.0),
             (n + 4, Vectors.dense([0.0, 0.0, 0.0]), 1.0, 0.0),
             (n + 5, Vectors.sparse(3, {}), 1.0, -1e6),
             (n + 6, Vectors.dense([-5.0, -2.0, 0.0]), 1.0, 0.0)]
    if offset:
        extra += [(n + 7, Vectors.dense([0.1, 0.2, 0.3]), 1.0, float("nan")),
                  (n + 8, Vectors.dense([0.1, 0.2, 0.3]), 1.0, float("inf"))]
    return spark.createDataFrame(rows, SCHEMA), spark.createDataFrame(rows + extra, SCHEMA)


N_SCORE = 47       # 40 random rows and 7 extreme ones (+2 with odd offsets)
PAIRS = [("gaussian", "identity"), ("gaussian", "log"), ("gaussian", "inverse"),
         ("binomial", "logit"), ("binomial", "probit"), ("binomial", "cloglog"),
         ("poisson", "log"), ("poisson", "identity"), ("poisson", "sqrt"),
         ("gamma", "inverse"), ("gamma", "identity"), ("gamma", "log")]


@pytest.fixture(scope="module")
def base(spark_session):
    """One cheap fit (gaussian/identity: a single weighted least squares pass, with an
    offset); the family/link variants are copies of it with other params, which is all
    that scoring depends on."""
    train, score = _frames(spark_session, "gaussian", seed=11, offset=True)
    model = GeneralizedLinearRegression(labelCol="y", offsetCol="off").fit(train.where("rid % 5 != 0"))
    return model, score


def _variant(model, **params):
    return model.copy({getattr(model, k): v for k, v in params.items()})


@pytest.mark.parametrize("family,link", PAIRS)
def test_glr_family_link(base, tmp_path, family, link):
    model, score = base
    model = _variant(model, family=family, link=link, linkPredictionCol="eta")
    assert check_stage(model, score, ["prediction", "eta"], tmp_path, rel=REL) == N_SCORE + 2


@pytest.mark.parametrize("family", ["binomial", "gamma"])
def test_glr_default_link(base, tmp_path, family):
    model, score = base
    model = _variant(model, family=family, linkPower=0.5)          # linkPower is ignored here
    assert check_stage(model, score, ["prediction"], tmp_path, rel=REL) == N_SCORE + 2


@pytest.mark.parametrize("var_power,link_power", [(1.5, None), (1.2, 0.3), (0.0, None), (1.0, None),
                                                  (2.0, None), (1.6, -1.0), (3.0, None), (0.0, -2.5)])
def test_glr_tweedie(base, tmp_path, var_power, link_power):
    model, score = base
    params = {"linkPower": link_power} if link_power is not None else {}
    model = _variant(model, family="tweedie", variancePower=var_power, link="log", **params)  # link ignored
    assert check_stage(model, score, ["prediction"], tmp_path, rel=REL) == N_SCORE + 2


def test_glr_fitted(spark_session, tmp_path):
    """A real IRLS fit (tweedie, offset, link prediction)."""
    train, score = _frames(spark_session, "tweedie", seed=5, offset=True)
    model = GeneralizedLinearRegression(labelCol="y", family="tweedie", variancePower=1.5, offsetCol="off",
                                        linkPredictionCol="eta", maxIter=5).fit(train)
    assert check_stage(model, score, ["prediction", "eta"], tmp_path, rel=REL) == N_SCORE + 2


def test_glr_link_prediction_only(base, tmp_path):
    model, score = base
    model = _variant(model, family="gamma", link="log", linkPredictionCol="eta", predictionCol="")
    assert check_stage(model, score, ["eta"], tmp_path, rel=REL) == N_SCORE + 2


def test_glr_errors(spark_session, base, tmp_path):
    model, _ = base
    bad = spark_session.createDataFrame([(0, Vectors.dense([1.0, 2.0]), 1.0, 0.0)], SCHEMA)
    check_both_fail(model, bad, tmp_path, name="size")
    null = spark_session.createDataFrame([(0, None, 1.0, 0.0)], SCHEMA)
    check_both_fail(model, null, tmp_path, name="null")


def test_glr_null_offset(spark_session, base, tmp_path):
    """A null offset gives null outputs (Spark's UDF on a primitive double), also where the
    features are null; mixed among valid rows, scored with numpy."""
    model, score = base
    model = _variant(model, family="poisson", linkPredictionCol="eta")
    rows = [(r["rid"], r["features"], r["y"], None if r["rid"] % 4 == 1 else r["off"]) for r in score.collect()]
    rows.append((500, None, 1.0, None))
    df = spark_session.createDataFrame(rows, SCHEMA)
    assert check_stage(model, df, ["prediction", "eta"], tmp_path, rel=REL) == N_SCORE + 3
