"""MinMaxScalerModel and MaxAbsScalerModel against Spark."""
import numpy as np
import pytest
from pyspark.ml.feature import MaxAbsScaler, MinMaxScaler
from pyspark.ml.linalg import Vectors

from _stage_parity import check_stage


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
