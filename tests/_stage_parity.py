"""Differential check of one saved Spark stage against the JVM-free scorer, row by row.

Every input DataFrame carries an integer ``rid`` column so that Spark's output rows
(some possibly dropped by handleInvalid='skip') are matched to the scored inputs.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from palette.transformers import load_scorer
from palette.transformers.runtime import RowSkipped


def _plain(v):
    if hasattr(v, "toArray"):
        return np.asarray(v.toArray(), dtype=float)
    return v


def close(a, b, rel: float) -> bool:
    a, b = _plain(a), _plain(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return a.shape == b.shape and all(close(float(x), float(y), rel) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if rel == 0:
            return a == b
        return a == b or abs(a - b) <= rel * max(abs(a), abs(b))
    return a == b


def check_stage(model, df, columns, tmp_path, exact=(), rel=1e-9, name="m", row_by_row=()):
    """Save ``model``, score ``df`` through ``load_scorer`` and compare ``columns`` with
    Spark's transform: ``exact`` columns bit for bit, the rest within ``rel``. Returns the
    number of rows compared (rows Spark dropped must raise RowSkipped here). Every Spark
    stage must score the batch with numpy, except the scorer classes in ``row_by_row``."""
    path = str(tmp_path / name)
    model.write().save(path)
    scorer = load_scorer(path)
    spark_rows = {r["rid"]: r.asDict() for r in model.transform(df).collect()}
    inputs = [r.asDict() for r in df.collect()]
    singles = compare_rows(scorer, inputs, spark_rows, columns, exact, rel)
    check_batch(scorer, inputs, singles, columns, row_by_row)
    return len(inputs)


def compare_rows(scorer, inputs, expected, columns, exact=(), rel=1e-9) -> list[dict]:
    """``scoreInstance`` of each input row against ``expected[rid]`` (``exact`` columns bit
    for bit, the rest within ``rel``); a row ``expected`` lacks (Spark dropped it) must
    raise RowSkipped. Returns the scored rows."""
    bad, singles = [], []
    for row in inputs:
        want = expected.get(row["rid"])
        if want is None:
            with pytest.raises(RowSkipped):
                scorer.scoreInstance(row)
            continue
        got = scorer.scoreInstance(row)
        singles.append(got)
        bad += [(row, c, want[c], got[c]) for c in columns if not close(want[c], got[c], 0 if c in exact else rel)]
    assert not bad, "\n".join(f"{c}: spark={e!r} python={g!r} row={r}" for r, c, e, g in bad[:10])
    return singles


def check_batch(scorer, inputs, singles, columns, row_by_row=()):
    """``scoreBatch`` (of dicts and of a pandas DataFrame) leaves out exactly the rows
    ``scoreInstance`` skipped and gives the very same numbers for the rest; from dicts,
    every column (inputs passed through too) of the very same type. Each Spark stage
    scored the batches with numpy, not row by row (but those of the classes in
    ``row_by_row``), so that the test data exercises the vectorized path."""
    import pandas as pd
    from palette.transformers.runtime import StageScorer
    stages = [s for s in scorer.stages if isinstance(s, StageScorer)]
    before = [s.batches_row_by_row for s in stages]
    frame = pd.DataFrame(inputs, dtype=object)          # object columns keep None apart from NaN
    as_dicts = scorer.scoreBatch(inputs)
    for batch in (as_dicts, scorer.scoreBatch(frame).to_dict("records")):
        assert [r["rid"] for r in batch] == [r["rid"] for r in singles]
        bad = [(c, one[c], many[c]) for one, many in zip(singles, batch) for c in columns
               if not close(one[c], many[c], 0)]
        assert not bad, "scoreBatch differs from scoreInstance: " + "; ".join(map(repr, bad[:5]))
    for one, many in zip(singles, as_dicts):
        assert set(one) == set(many), (sorted(one), sorted(many))
        bad = [(c, one[c], many[c]) for c in one
               if not close(one[c], many[c], 0) or _kind(one[c]) != _kind(many[c])]
        assert not bad, "scoreBatch of dicts differs from scoreInstance: " + "; ".join(map(repr, bad[:5]))
    fell_back = [type(s).__name__ for s, b in zip(stages, before)
                 if s.batches_row_by_row != b and type(s).__name__ not in row_by_row]
    assert not fell_back, f"scored the batch row by row: {', '.join(fell_back)}"


def _kind(v):
    """A value's type, numpy arrays of any dtype alike."""
    return np.ndarray if isinstance(v, np.ndarray) else type(v)


def check_both_fail(model, df, tmp_path, name="m_err"):
    """Spark's transform fails on ``df`` (when collected) and so does scoring some row;
    for a single stage, ``scoreBatch`` fails with the very error ``scoreInstance`` raises
    for the first failing row."""
    from pyspark.errors import PySparkException
    from py4j.protocol import Py4JJavaError
    path = str(tmp_path / name)
    model.write().save(path)
    scorer = load_scorer(path)
    with pytest.raises((Py4JJavaError, PySparkException, Exception)):
        model.transform(df).collect()
    rows = [r.asDict() for r in df.collect()]
    errors = []
    for r in rows:
        try:
            scorer.scoreInstance(r)
        except (ValueError, KeyError) as e:
            errors.append(e)
        except RowSkipped:
            pass
    assert errors, "Spark failed but the scorer scored every row"
    import pandas as pd
    for batch in (rows, pd.DataFrame(rows, dtype=object)):
        with pytest.raises((ValueError, KeyError)) as got:
            scorer.scoreBatch(batch)
        if len(scorer.stages) == 1:
            assert (type(got.value), str(got.value)) == (type(errors[0]), str(errors[0]))
