"""VectorSlicer (indices; dense and sparse vectors; names refused at load time) against Spark."""
import pytest
from pyspark.ml.feature import VectorAssembler, VectorSlicer
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql.types import LongType, StructField, StructType

from palette.transformers import UnsupportedStageError, load_scorer

from _stage_parity import check_both_fail, check_stage

SCHEMA = StructType([StructField("rid", LongType()), StructField("v", VectorUDT())])
NAN, INF = float("nan"), float("inf")
ROWS = [(0, Vectors.dense([1.0, 2.0, 3.0, 4.0, 5.0])), (1, Vectors.sparse(5, {0: 7.0, 3: -1.0})),
        (2, Vectors.dense([NAN, -0.0, INF, -INF, 1e-300])), (3, Vectors.sparse(5, {})),
        (4, Vectors.sparse(5, {1: NAN, 2: 0.0, 4: -2.5})), (5, Vectors.dense([0.0] * 5))]


@pytest.fixture
def df(spark_session):
    return spark_session.createDataFrame(ROWS, SCHEMA)


@pytest.mark.parametrize("indices", [[0], [4, 0, 2], [3, 1], [0, 1, 2, 3, 4]])
def test_vector_slicer_indices(df, tmp_path, indices):
    s = VectorSlicer(inputCol="v", outputCol="out", indices=indices)
    assert check_stage(s, df, ["out"], tmp_path, exact=("out",)) == len(ROWS)


def test_vector_slicer_sparse_index_past_end(spark_session, df, tmp_path):
    """Without attribute metadata Spark slices a sparse vector past its end to nothing,
    and fails on a dense one; so does the scorer."""
    s = VectorSlicer(inputCol="v", outputCol="out", indices=[1, 7])
    sparse = df.where("rid in (1, 3, 4)")
    assert check_stage(s, sparse, ["out"], tmp_path, exact=("out",)) == 3
    check_both_fail(s, df.where("rid = 0"), tmp_path, name="dense")


def test_vector_slicer_null(spark_session, tmp_path):
    s = VectorSlicer(inputCol="v", outputCol="out", indices=[0])
    check_both_fail(s, spark_session.createDataFrame([(0, None)], SCHEMA), tmp_path)


def test_vector_slicer_names_refused_at_load(spark_session, tmp_path):
    df = spark_session.createDataFrame([(0, 1.0, 2.0)], ["rid", "a", "b"])
    assembled = VectorAssembler(inputCols=["a", "b"], outputCol="v").transform(df)
    s = VectorSlicer(inputCol="v", outputCol="out", names=["b"], indices=[0])
    assert s.transform(assembled).head()["out"].toArray().tolist() == [1.0, 2.0]      # Spark resolves it
    s.write().save(str(tmp_path / "names"))
    with pytest.raises(UnsupportedStageError, match="names"):
        load_scorer(str(tmp_path / "names"))
