"""Helpers shared by the Spark-stage scorers."""
from __future__ import annotations

import math


def in_out_cols(params: dict, single_in: str = "inputCol", single_out: str = "outputCol",
                multi_in: str = "inputCols", multi_out: str = "outputCols") -> tuple[list[str], list[str]]:
    """The stage's (input columns, output columns), whichever of the single- or
    multi-column params is set."""
    if params.get(multi_in):
        return list(params[multi_in]), list(params[multi_out])
    return [params[single_in]], [params[single_out]]


def is_nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


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
