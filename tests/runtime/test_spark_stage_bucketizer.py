"""Bucketizer (single and multi column; handleInvalid error/skip/keep) against Spark."""
import pytest
from pyspark.ml.feature import Bucketizer

from _stage_parity import check_both_fail, check_stage

INF = float("inf")
ROWS = [(0, -0.5, 0.0), (1, 0.0, 1.0), (2, -0.0, 5.0), (3, 0.5, 9.99), (4, 1.0, 10.0),
        (5, float("nan"), 2.0), (6, None, 3.0), (7, 1e300, -1e300), (8, -1e300, float("nan")),
        (9, 0.25, None), (10, 3.0, 4.0)]
SPLITS_A = [-INF, -0.5, 0.0, 0.5, INF]
SPLITS_B = [-INF, 0.0, 1.0, 10.0, INF]


@pytest.fixture
def df(spark_session):
    return spark_session.createDataFrame(ROWS, "rid long, a double, b double")


@pytest.mark.parametrize("handle", ["keep", "skip"])
def test_bucketizer_single(df, tmp_path, handle):
    b = Bucketizer(splits=SPLITS_A, inputCol="a", outputCol="a_b", handleInvalid=handle)
    assert check_stage(b, df, ["a_b"], tmp_path, exact=("a_b",)) == len(ROWS)


@pytest.mark.parametrize("handle", ["keep", "skip"])
def test_bucketizer_multi(df, tmp_path, handle):
    b = Bucketizer(splitsArray=[SPLITS_A, SPLITS_B], inputCols=["a", "b"], outputCols=["a_b", "b_b"],
                   handleInvalid=handle)
    assert check_stage(b, df, ["a_b", "b_b"], tmp_path, exact=("a_b", "b_b")) == len(ROWS)


def test_bucketizer_bounded_and_error(df, tmp_path):
    inside = df.where("a >= -1 and a <= 1")
    b = Bucketizer(splits=[-1.0, -0.0, 0.5, 1.0], inputCol="a", outputCol="a_b")      # handleInvalid error
    assert check_stage(b, inside, ["a_b"], tmp_path, exact=("a_b",)) == inside.count()
    check_both_fail(b, df.where("rid = 5"), tmp_path, name="nan")                         # NaN with error
    keep = Bucketizer(splits=[-1.0, 0.0, 1.0], inputCol="a", outputCol="a_b", handleInvalid="keep")
    check_both_fail(keep, df.where("rid = 7"), tmp_path, name="out_of_bounds")           # out of splits
    check_both_fail(keep, df, tmp_path, name="out_of_bounds_batch")                      # ... among valid rows
    strict = Bucketizer(splitsArray=[SPLITS_A, SPLITS_B], inputCols=["a", "b"], outputCols=["a_b", "b_b"])
    check_both_fail(strict, df, tmp_path, name="nan_batch")                              # NaN among valid rows


@pytest.mark.spark
def test_unknown_mode_fails_at_load(tmp_path):
    """A handleInvalid mode the runtime does not know (say, one a later Spark adds) fails
    at load time, naming the stage, the param and the modes it supports."""
    import json
    from pathlib import Path
    from palette.transformers import UnsupportedStageError, load_scorer
    b = Bucketizer(splits=SPLITS_A, inputCol="a", outputCol="a_b", handleInvalid="keep")
    b.write().save(str(tmp_path / "b"))
    part = next(Path(tmp_path / "b" / "metadata").glob("part-*"))
    meta = json.loads(part.read_text())
    meta["paramMap"]["handleInvalid"] = "nearest"
    part.write_text(json.dumps(meta))
    with pytest.raises(UnsupportedStageError, match=r"Bucketizer.*handleInvalid='nearest'.*'error', 'skip', 'keep'"):
        load_scorer(str(tmp_path / "b"))
