"""The parity harness: ``transform()`` on Spark against ``scoreInstance()`` in Python.

Both sides see the same input rows; every output cell is compared. A fitted stage or
a whole PipelineModel can be checked — a PipelineModel is saved to a temporary
directory and scored through ``load_scorer``, exactly as a serving process would.

>>> report = check_parity(model, df)                 # doctest: +SKIP
>>> print(report)                                    # doctest: +SKIP
parity: 1,000 rows x 4 columns, 0 mismatches
>>> assert_parity(model, df)                          # doctest: +SKIP
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import functions as F

ROW_ID = "__palette_parity_row"


def _normalize(v: Any) -> Any:
    """Spark collects timestamps as naive local-time datetimes (compare instants in UTC) and
    vectors as pyspark vectors (compare their values)."""
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc)
    if hasattr(v, "toArray"):                 # Spark ML vectors, dense or sparse
        return v.toArray()
    return v


def same_value(a: Any, b: Any, ulps: int = 0) -> bool:
    """Equal, both null, or floats within ``ulps`` units in the last place."""
    a, b = _normalize(a), _normalize(b)
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= ulps * max(math.ulp(a), math.ulp(b))
    if hasattr(a, "tolist") and hasattr(b, "tolist"):      # vectors as numpy arrays
        return same_value(a.tolist(), b.tolist(), ulps)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y, ulps) for x, y in zip(a, b))
    return a == b


@dataclass
class Mismatch:
    row: dict
    column: str
    spark: Any
    python: Any


@dataclass
class ParityReport:
    rows: int
    columns: list[str]
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def __str__(self) -> str:
        head = (f"parity: {self.rows:,} rows x {len(self.columns)} columns, "
                f"{len(self.mismatches)} mismatches")
        lines = [head]
        for m in self.mismatches[:10]:
            lines.append(f"  {m.column}: spark={m.spark!r} python={m.python!r} for row {m.row}")
        if len(self.mismatches) > 10:
            lines.append(f"  ... {len(self.mismatches) - 10} more")
        return "\n".join(lines)


def _row_scorer(model):
    if hasattr(model, "scoreInstance"):
        return model, None
    from palette.transformers import load_scorer
    tmp = tempfile.TemporaryDirectory(prefix="palette-parity-")
    path = f"{tmp.name}/model"
    model.write().save(path)
    return load_scorer(path), tmp


def check_parity(model, df, columns: list[str] | None = None, ulps: int = 0,
                 max_rows: int | None = 10_000) -> ParityReport:
    """Compare ``model.transform(df)`` with scoring each row of ``df`` in Python.

    ``columns`` defaults to every column the transform adds or changes; ``ulps`` allows
    that many units in the last place between floats (0: exact).
    """
    if max_rows is not None:
        df = df.limit(max_rows)
    df = df.withColumn(ROW_ID, F.monotonically_increasing_id()).cache()
    try:
        out = model.transform(df)
        inputs = {r[ROW_ID]: r.asDict() for r in df.collect()}
        outputs = {r[ROW_ID]: r.asDict() for r in out.collect()}
    finally:
        df.unpersist()
    if columns is None:
        columns = [c for c in out.columns if c != ROW_ID]
    scorer, tmp = _row_scorer(model)
    report = ParityReport(rows=len(inputs), columns=columns)
    try:
        for row_id, row in inputs.items():
            spark_row = outputs.get(row_id)
            request = {k: _normalize(v) for k, v in row.items() if k != ROW_ID}
            python_row = scorer.scoreInstance(request)
            for c in columns:
                s = spark_row.get(c) if spark_row is not None else None
                p = python_row.get(c)
                if spark_row is None or not same_value(s, p, ulps):
                    report.mismatches.append(Mismatch(request, c, s, p))
    finally:
        if tmp is not None:
            tmp.cleanup()
    return report


def assert_parity(model, df, **kwargs) -> ParityReport:
    """pytest helper: fail with the report when any cell differs."""
    report = check_parity(model, df, **kwargs)
    assert report.ok, str(report)
    return report
