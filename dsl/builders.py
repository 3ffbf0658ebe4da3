"""Python builders for DSL expressions: the same AST the parser makes.

>>> from palette.dsl.builders import nVal, nFill, if_, regionId
>>> e = if_(nVal("basis:order_size") > 3, nFill(nVal("basis:tip"), 0) * 2, 0)
>>> str(e)
'if(nVal("basis:order_size") > 3, nFill(nVal("basis:tip"), 0) * 2, 0)'
>>> from palette.dsl import parse
>>> assert parse(str(e)) == e
"""
from __future__ import annotations

from .ast import Call, Node, Read, lit


def nVal(ref: str) -> Node:
    """Read ``ref`` as a number (num)."""
    return Read("nVal", ref)


def sVal(ref: str) -> Node:
    """Read ``ref`` as a string (str)."""
    return Read("sVal", ref)


def bVal(ref: str) -> Node:
    """Read ``ref`` as a boolean (bool)."""
    return Read("bVal", ref)


def tVal(ref: str) -> Node:
    """Read ``ref`` as a timestamp (ts)."""
    return Read("tVal", ref)


def vVal(ref: str) -> Node:
    """Read ``ref`` as a vector (vec): a 1-d float64 array in Python, a Spark ML vector in Spark."""
    return Read("vVal", ref)


def _fn(name: str, doc: str):
    def build(*args) -> Node:
        return Call(name, tuple(lit(a) for a in args))
    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return build


if_ = _fn("if", "``if(c, a, b)``: a when c is true; b when c is false or null.")
coalesce = _fn("coalesce", "The first non-null argument.")
isNull = _fn("isNull", "True when the argument is null; never null itself.")
nFill = _fn("nFill", "``nFill(x, d)``: x, or d when x is null.")
sFill = _fn("sFill", "``sFill(s, d)``: s, or d when s is null.")
log = _fn("log", "Natural logarithm; null for x <= 0.")
log1p = _fn("log1p", "log(1 + x); null for x <= -1.")
sqrt = _fn("sqrt", "Square root; null for x < 0.")
exp = _fn("exp", "e**x; null on overflow.")
abs_ = _fn("abs", "Absolute value.")
pow_ = _fn("pow", "x**y; null when undefined or on overflow.")
sign = _fn("sign", "-1, 0 or 1 (-0.0 for -0.0).")
min_ = _fn("min", "The smallest non-null argument.")
max_ = _fn("max", "The largest non-null argument.")
clip = _fn("clip", "``clip(x, lo, hi)``: x limited to [lo, hi].")
round_ = _fn("round", "``round(x, d)``: half away from zero at d decimals (d a literal, default 0).")
floor = _fn("floor", "The largest whole number <= x.")
ceil = _fn("ceil", "The smallest whole number >= x.")
lower = _fn("lower", "Lower-case string.")
upper = _fn("upper", "Upper-case string.")
length = _fn("length", "Number of characters.")
concat = _fn("concat", "Joined strings; null if any part is null.")
contains = _fn("contains", "``contains(s, t)``: t occurs in s.")
startsWith = _fn("startsWith", "``startsWith(s, t)``: s starts with t.")
hourOfDay = _fn("hourOfDay", "Hour of the timestamp in UTC, 0-23.")
dayOfWeek = _fn("dayOfWeek", "Day of the week in UTC, Monday = 1 ... Sunday = 7.")
regionId = _fn("regionId", "``regionId(lat, lng[, p])``: the geohash cell at precision p (default 6).")
vfill = _fn("vfill", "``vfill(v, w)``: the vector v, or w when v is null.")
dot = _fn("dot", "``dot(a, b)``: the sum of a[i] * b[i], in order from 0.0; null if the lengths differ.")
norm = _fn("norm", "``norm(v)``: the Euclidean length, sqrt of the sum of squares in order; 0 for an empty vector.")
cosine = _fn("cosine", "``cosine(a, b)``: dot(a, b) / (norm(a) * norm(b)); null if the lengths differ or a norm is 0.")
vget = _fn("vget", "``vget(v, i)``: element i (a literal, 0-based) of v; null if v has no element i.")
bucket = _fn("bucket", "``bucket(x, c1, c2, ...)``: the 0-based bucket of x among ascending cut points.")
impute = _fn("impute", "Learned: ``impute(x[, \"mean\"|\"median\"|\"mode\"])`` fills nulls.")
standardize = _fn("standardize", "Learned: (x - mean) / std.")
minMaxScale = _fn("minMaxScale", "Learned: (x - min) / (max - min).")
bucketize = _fn("bucketize", "Learned: ``bucketize(x, n)``, n-1 quantile cut points.")

# Python keywords and builtins get a trailing underscore; DSL-named aliases for readability.
ifElse = if_

__all__ = ["nVal", "sVal", "bVal", "tVal", "vVal", "lit", "if_", "ifElse", "coalesce", "isNull", "nFill",
           "sFill", "log", "log1p", "sqrt", "exp", "abs_", "pow_", "sign", "min_", "max_", "clip",
           "round_", "floor", "ceil", "lower", "upper", "length", "concat", "contains", "startsWith",
           "hourOfDay", "dayOfWeek", "regionId", "vfill", "dot", "norm", "cosine", "vget", "bucket", "impute",
           "standardize", "minMaxScale", "bucketize"]
