"""VectorAssembler (every handleInvalid mode), VectorSizeHint and StandardScalerModel
against Spark; batches mix nulls, NaN and null vectors among valid rows, and every one
is scored with numpy (``check_stage`` fails on a row-by-row fallback)."""
import numpy as np
import pytest
from pyspark.ml import Pipeline
from pyspark.ml.feature import StandardScaler, VectorAssembler, VectorSizeHint
from pyspark.ml.linalg import Vectors

from palette.transformers import load_scorer

from _stage_parity import check_both_fail, check_stage


def _frame(spark, n=30, seed=0, dirty=True):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        a = float(rng.normal() * 1e3)
        b = int(rng.integers(-5, 5))
        c = bool(i % 2)
        v = Vectors.dense(rng.normal(size=3).tolist()) if i % 4 else Vectors.sparse(3, {1: 2.5})
        if dirty and i % 6 == 1:
            a = None
        if dirty and i % 6 == 2:
            a = float("nan")
        if dirty and i % 9 == 4:
            v = Vectors.dense([1.0, float("nan"), 2.0])
        if dirty and i % 10 == 7:
            v = None
        rows.append((i, a, b, c, v))
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.types import BooleanType, DoubleType, IntegerType, LongType, StructField, StructType
    schema = StructType([StructField("rid", LongType()), StructField("a", DoubleType()),
                         StructField("b", IntegerType()), StructField("c", BooleanType()),
                         StructField("v", VectorUDT())])
    return spark.createDataFrame(rows, schema)


@pytest.mark.parametrize("handle", ["skip", "keep"])
def test_vector_assembler_invalid_values(spark_session, tmp_path, handle):
    """'keep' needs the vector's size from a VectorSizeHint, as a real pipeline has it."""
    df = _frame(spark_session)
    pipeline = Pipeline(stages=[
        VectorSizeHint(inputCol="v", size=3, handleInvalid="optimistic"),
        VectorAssembler(inputCols=["a", "b", "c", "v"], outputCol="features", handleInvalid=handle)]).fit(df)
    assert check_stage(pipeline, df, ["features"], tmp_path) == 30


@pytest.mark.parametrize("handle", ["error", "skip", "optimistic"])
def test_vector_size_hint(spark_session, tmp_path, handle):
    rows = [(i, Vectors.dense([float(i)] * (3 if i % 5 else 2))) for i in range(20)] + [(20, None)]
    df = spark_session.createDataFrame(rows, ["rid", "v"])
    stage = VectorSizeHint(inputCol="v", size=3, handleInvalid=handle)
    if handle == "error":
        check_both_fail(stage, df, tmp_path)
    else:
        assert check_stage(stage, df, ["v"], tmp_path, rel=0) == 21


@pytest.mark.parametrize("handle", ["error", "skip"])
def test_vector_assembler_clean_numbers_and_vectors(spark_session, tmp_path, handle):
    df = _frame(spark_session, seed=1, dirty=False)
    stage = VectorAssembler(inputCols=["v", "a", "b"], outputCol="features", handleInvalid=handle)
    assert check_stage(stage, df, ["features"], tmp_path, rel=0) == 30


def test_vector_assembler_error_mode_fails_like_spark(spark_session, tmp_path):
    df = _frame(spark_session, seed=2)
    check_both_fail(VectorAssembler(inputCols=["a", "v"], outputCol="features"), df, tmp_path)
    vector_first = df.where("rid > 1 and rid % 6 != 2")           # the first invalid value: rid 7's null vector
    check_both_fail(VectorAssembler(inputCols=["v", "a"], outputCol="features"), vector_first, tmp_path, name="v")


@pytest.mark.parametrize("with_mean, with_std", [(False, True), (True, True), (True, False)])
def test_standard_scaler(spark_session, tmp_path, with_mean, with_std):
    rng = np.random.default_rng(3)
    rows = [(i, Vectors.dense((rng.normal(size=4) * [1.0, 1e5, 1e-5, 0.0] + [0, 3, 0, 2.0]).tolist()))
            for i in range(40)]
    rows.append((40, Vectors.dense([np.nan, np.inf, -1e300, 2.0])))
    df = spark_session.createDataFrame(rows, ["rid", "raw"])
    model = StandardScaler(inputCol="raw", outputCol="scaled", withMean=with_mean, withStd=with_std).fit(df.limit(40))
    assert check_stage(model, df, ["scaled"], tmp_path, rel=0) == 41
    scorer = load_scorer(str(tmp_path / "m"))           # a numpy input (a VectorAssembler's output) too
    for r in df.collect():
        want = scorer.scoreInstance(r.asDict())["scaled"]
        np.testing.assert_array_equal(scorer.scoreInstance({"raw": r["raw"].toArray()})["scaled"], want)


def test_every_row_skipped(spark_session, tmp_path):
    """A batch whose every row a stage skips leaves the next stage nothing to score."""
    df = _frame(spark_session, seed=4)
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=["a", "b"], outputCol="ab", handleInvalid="skip"),
                                StandardScaler(inputCol="ab", outputCol="scaled")]).fit(df)
    nulls = df.where("a is null")
    assert nulls.count() == 5 and pipeline.transform(nulls).count() == 0
    assert check_stage(pipeline, nulls, ["scaled"], tmp_path) == 5
