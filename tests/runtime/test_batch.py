"""Batch, the columnar form scoreBatch passes between stages: null masks, row selection,
and columns that keep their Python values; no Spark needed."""
import numpy as np
import pandas as pd

from palette.transformers.runtime.batch import Batch, Masked, with_nulls


def test_nullable_readers_and_masked_columns():
    b = Batch.of([{"x": 1, "v": [1.0, 2.0]}, {"x": None, "v": None}, {"x": 2.5, "v": np.array([3.0, 4.0])}])
    x, null = b.nullable_floats("x")
    assert np.isnan(x[1]) and x[[0, 2]].tolist() == [1.0, 2.5] and null.tolist() == [False, True, False]
    assert b.floats("x") is None and b.matrix("v") is None          # a null: only the nullable readers take it
    X, vnull = b.nullable_matrix("v")
    assert X.shape == (3, 2) and vnull.tolist() == [False, True, False]
    out = b.with_columns({"y": with_nulls(x * 2, null), "w": with_nulls(X, vnull)})
    rows = out.rows()
    assert [r["y"] for r in rows] == [2.0, None, 5.0] and rows[1]["w"] is None
    assert rows[0]["x"] == 1 and type(rows[0]["x"]) is int        # read as floats, passed through as the int it was
    assert isinstance(out.columns["y"], Masked) and isinstance(with_nulls(x, np.zeros(3, bool)), np.ndarray)


def test_readers_refuse_other_values():
    b = Batch.of([{"s": "a", "v": [1.0]}, {"s": 1.0, "v": [1.0, 2.0]}, {"s": True}])
    assert b.nullable_floats("s") is None and b.nullable_matrix("v") is None
    assert b.nullable_floats("s", bools=True) is None
    assert not b.in_every_row("v") and b.in_every_row("s")


def test_where_and_row():
    b = Batch.of([{"a": i, "x": float(i)} for i in range(5)])
    b.nullable_floats("x")                                            # cached, then selected with the rows
    kept = b.with_columns({"m": with_nulls(np.arange(5.0), np.array([0, 1, 0, 1, 0], bool))}).where(
        np.array([True, True, False, False, True]))
    assert kept.n == 3 and [r["a"] for r in kept.rows()] == [0, 1, 4]
    assert kept.nullable_floats("x")[0].tolist() == [0.0, 1.0, 4.0]
    assert kept.row(1) == {"a": 1, "x": 1.0, "m": None}


def test_stored_entries_of_sparse_vectors():
    from palette.transformers.runtime.vectors import SparseVector
    b = Batch.of([{"v": SparseVector(3, (1,), (5.0,))}, {"v": [1.0, 0.0, 2.0]}])
    sparse, mask = b.stored("v", 3)
    assert sparse.tolist() == [True, False] and mask.tolist() == [[False, True, False], [True, True, True]]
    assert Batch.of([{"v": [1.0]}]).stored("v", 1) is None


def test_frame_float_columns_are_arrays():
    frame = pd.DataFrame({"x": [1.0, np.nan], "n": [1, 2], "o": pd.Series([None, 1.5], dtype=object)})
    b = Batch.of(frame)
    assert isinstance(b.columns["x"], np.ndarray) and b.columns["n"] == [1, 2]
    assert b.nullable_floats("o")[1].tolist() == [True, False]
    assert b.frame()["o"].tolist() == [None, 1.5]
