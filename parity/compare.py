"""How the parity harness compares a value from ``transform()`` with one from the runtime.

- Floats: equal within ``rtol`` / ``atol`` (``|a - b| <= atol + rtol * |b|``, numpy's
  ``isclose`` rule with Spark's value as the reference); NaN equals NaN (Spark and
  DSL.md treat NaN as a value, not a missing one); infinities only equal themselves.
- Null equals only null: a null on one side and NaN on the other is a mismatch.
- Vectors (Spark ML vectors, numpy arrays, lists): the same length, elementwise as floats.
- Strings, booleans, integers (indices, labels) and timestamps (as instants): exactly.

>>> same(1.0, 1.0 + 1e-12, rtol=1e-9), same(1.0, 1.0 + 1e-6, rtol=1e-9)
(True, False)
>>> same(float("nan"), float("nan")), same(None, float("nan")), same(2, 2.0)
(True, False, True)
>>> errors(3.0, 3.5)
(0.5, 0.16666666666666666)
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from numbers import Integral, Real
from typing import Any

import numpy as np


def normalize(v: Any) -> Any:
    """One form per kind of value: timestamps as aware UTC instants (Spark collects naive
    local times), vectors as lists of floats, numpy scalars as Python numbers."""
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc)
    if hasattr(v, "toArray"):                       # Spark ML vectors, dense or sparse
        return [float(x) for x in v.toArray()]
    if isinstance(v, np.ndarray):
        return [float(x) for x in v.ravel()]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    return v


def _is_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    if a == b:
        return True
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return False
    return abs(a - b) <= atol + rtol * abs(a)


def same(spark: Any, python: Any, rtol: float = 1e-9, atol: float = 0.0) -> bool:
    """Whether two values agree under the rules above (``spark`` is the reference)."""
    a, b = normalize(spark), normalize(python)
    if a is None or b is None:
        return a is None and b is None
    if _is_number(a) and _is_number(b):
        if isinstance(a, Integral) and isinstance(b, Integral):
            return a == b
        return _close(float(a), float(b), rtol, atol)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rtol, atol) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def errors(spark: Any, python: Any) -> tuple[float, float] | None:
    """(absolute, relative) difference of two numbers or the largest over two vectors of
    one length; None when they are not numbers (or a side is null)."""
    a, b = normalize(spark), normalize(python)
    if _is_number(a) and _is_number(b):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
            return None if a == b or (math.isnan(a) and math.isnan(b)) else (math.inf, math.inf)
        d = abs(a - b)
        return d, (d / abs(a) if a else (0.0 if d == 0 else math.inf))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a:
        pairs = [errors(x, y) for x, y in zip(a, b)]
        if any(p is None and not same(x, y) for p, x, y in zip(pairs, a, b)):
            return None
        pairs = [p for p in pairs if p is not None]
        return (max(p[0] for p in pairs), max(p[1] for p in pairs)) if pairs else (0.0, 0.0)
    return None


def number(v: Any) -> float | None:
    """A value as one float for plots (None for what is not a number)."""
    v = normalize(v)
    return float(v) if _is_number(v) and math.isfinite(float(v)) else None


def jsonable(v: Any) -> Any:
    """A value as JSON holds it (NaN and infinities as strings, instants in ISO 8601)."""
    v = normalize(v)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, datetime):
        return v.isoformat()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)
