"""Helpers shared by the Spark-stage scorers."""
from __future__ import annotations

import math

import numpy as np


def in_out_cols(params: dict, single_in: str = "inputCol", single_out: str = "outputCol",
                multi_in: str = "inputCols", multi_out: str = "outputCols") -> tuple[list[str], list[str]]:
    """The stage's (input columns, output columns), whichever of the single- or
    multi-column params is set."""
    if params.get(multi_in):
        return list(params[multi_in]), list(params[multi_out])
    return [params[single_in]], [params[single_out]]


def spark_string(v) -> str | None:
    """A value as Spark's ``cast(StringType)`` writes it, for the common cases: strings,
    booleans, integers, and doubles (Java's ``Double.toString`` form for moderate
    magnitudes: ``1.0``, ``-2.5``; ``NaN``, ``Infinity``)."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        if 1e-3 <= abs(v) < 1e7 or v == 0.0:
            r = repr(v)
            return r if ("." in r or "e" in r) else r + ".0"
        mant, _, exp = f"{v!r}".partition("e")
        if not exp:
            mant, exp = f"{v:e}".split("e")
            mant = mant.rstrip("0")
        if "." not in mant:
            mant += ".0"
        elif mant.endswith("."):
            mant += "0"
        return f"{mant}E{int(exp)}"
    return str(v)


def dot(x: np.ndarray, w: np.ndarray) -> float:
    """A dot product summed left to right."""
    s = 0.0
    for a, b in zip(x.tolist(), w.tolist()):
        s += a * b
    return s


def dot_rows(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``dot`` of every row of ``X``, summed in the same order (so to the same bits)."""
    s = np.zeros(X.shape[0])
    for j, b in enumerate(w.tolist()):
        s = s + X[:, j] * b
    return s


def java_exp(v: float) -> float:
    """Java's ``Math.exp``: overflow gives +inf."""
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


def java_div(a: float, b: float) -> float:
    """Java's double division: x / 0 is +-inf (NaN for 0 / 0)."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
