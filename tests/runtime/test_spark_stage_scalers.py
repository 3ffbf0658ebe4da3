"""MinMaxScalerModel and MaxAbsScalerModel against Spark; all three scalers (with
StandardScalerModel) on null vectors and on vectors of another size than the model's."""
import numpy as np
import pytest
from pyspark.ml.feature import MaxAbsScaler, MinMaxScaler, StandardScaler
from pyspark.ml.linalg import Vectors

from _stage_parity import check_both_fail, check_stage


def _vectors(spark, n=25, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x = rng.normal(size=4) * np.array([1.0, 1e6, 1e-6, 3.0])
        x[3] = 7.0                                    # a constant feature
        if i % 7 == 3:
            x[0] = np.nan
        vec = Vectors.sparse(4, {1: float(x[1]), 3: 7.0}) if i % 5 == 0 else Vectors.dense(x.tolist())
        rows.append((i, vec))
    return spark.createDataFrame(rows, ["rid", "features"])


@pytest.mark.parametrize("lo,hi", [(0.0, 1.0), (-3.0, 5.5)])
def test_min_max_scaler(spark_session, tmp_path, lo, hi):
    df = _vectors(spark_session)
    fit_df = df.where("rid % 7 != 3")
    model = MinMaxScaler(inputCol="features", outputCol="scaled", min=lo, max=hi).fit(fit_df)
    extreme = spark_session.createDataFrame([(100, Vectors.dense([1e300, -1e300, 0.0, 8.0]))], df.schema)
    assert check_stage(model, df.union(extreme), ["scaled"], tmp_path) == 26


def test_max_abs_scaler(spark_session, tmp_path):
    df = _vectors(spark_session, seed=1)
    model = MaxAbsScaler(inputCol="features", outputCol="scaled").fit(df.where("rid % 7 != 3"))
    zero = spark_session.createDataFrame([(100, Vectors.dense([0.0, 0.0, 0.0, 0.0]))], df.schema)
    model2 = MaxAbsScaler(inputCol="features", outputCol="scaled").fit(zero)   # all-zero maxAbs
    assert check_stage(model, df, ["scaled"], tmp_path, rel=0) == 25
    assert check_stage(model2, df, ["scaled"], tmp_path, rel=0, name="zero") == 25


def _model(spark, kind, **params):
    fit = spark.createDataFrame([(0, Vectors.dense([1.0, 2.0])), (1, Vectors.dense([3.0, 5.0]))], ["rid", "v"])
    est = {"standard": StandardScaler, "minmax": MinMaxScaler, "maxabs": MaxAbsScaler}[kind]
    return est(inputCol="v", outputCol="o", **params).fit(fit)


def _frame(spark, rows):
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.types import LongType, StructField, StructType
    return spark.createDataFrame(rows, StructType([StructField("rid", LongType()), StructField("v", VectorUDT())]))


@pytest.mark.parametrize("kind, params", [("standard", {}), ("standard", {"withMean": True}),
                                          ("minmax", {}), ("maxabs", {})])
def test_scalers_fail_on_a_null_vector(spark_session, tmp_path, kind, params):
    """Spark's scalers fail on a null vector (a NullPointerException in their UDF)."""
    rows = [(0, Vectors.dense([1.0, 2.0])), (1, None), (2, Vectors.dense([0.5, 0.0]))]
    check_both_fail(_model(spark_session, kind, **params), _frame(spark_session, rows), tmp_path)


@pytest.mark.parametrize("kind, params", [("standard", {}), ("standard", {"withMean": True}), ("maxabs", {})])
def test_scalers_scale_a_shorter_vector(spark_session, tmp_path, kind, params):
    """Spark loops over the vector's own entries: a shorter one is scaled over its length,
    and a sparse one longer than the model without withMean too, if it stores nothing past it."""
    rows = [(0, Vectors.dense([1.5])), (1, Vectors.sparse(1, {0: -2.0})), (2, Vectors.dense([1.0, 4.0]))]
    if not params:
        rows.append((3, Vectors.sparse(4, {1: 3.0})))
    assert check_stage(_model(spark_session, kind, **params), _frame(spark_session, rows), ["o"], tmp_path,
                       rel=0, row_by_row=("StandardScalerScorer", "MaxAbsScalerScorer")) == len(rows)


@pytest.mark.parametrize("kind, params, v", [("standard", {}, Vectors.dense([1.0, 2.0, 3.0])),
                                             ("standard", {}, Vectors.sparse(3, {2: 1.0})),
                                             ("standard", {"withMean": True}, Vectors.sparse(3, {0: 1.0})),
                                             ("minmax", {}, Vectors.dense([1.0])),
                                             ("minmax", {}, Vectors.dense([1.0, 2.0, 3.0])),
                                             ("maxabs", {}, Vectors.dense([1.0, 2.0, 3.0]))])
def test_scalers_fail_past_the_model_size(spark_session, tmp_path, kind, params, v):
    rows = [(0, Vectors.dense([1.0, 2.0])), (1, v)]
    check_both_fail(_model(spark_session, kind, **params), _frame(spark_session, rows), tmp_path)
