"""The Python backend over a batch of rows: numpy where it is exact, the row rules elsewhere.

``to_batch(expr)`` compiles an expression into a function of a batch of columns
(``palette.transformers.runtime.batch.Batch``, or anything with ``n``,
``nullable_floats(name)``, ``values(name)`` and ``in_every_row(name)``) that returns one
value per row (a ``Vec``) — the very values the row backend (``python_backend``) gives row by row,
bit for bit: it is how ``scoreBatch`` runs a DSL stage.

Numbers travel as a float64 array with a null mask; +, -, *, /, %, comparisons, the
three-valued logic, if, coalesce/nFill, min/max, clip, abs, sign, floor, ceil, bucket and
regionId are numpy operations that compute exactly what the row rules compute (IEEE
arithmetic is the same in both). Vectors travel as a list of float64 arrays (None for
null); dot, norm, cosine and vget work on them as one (rows, length) matrix when the
non-null ones share a length, summing each row in order as the row rules do (an
``add.accumulate`` along the row), and vector by vector otherwise. Functions where numpy's kernels may differ from
Python's ``math`` in the last bit (log, exp, pow, ...), round, and the string and
timestamp functions apply the row backend's own rule to each non-null value. A batch
whose values do not fit the readers (a string read by nVal, a missing field) raises
``Irregular``: the caller scores it row by row, which raises the row path's error.

>>> import numpy as np
>>> class Rows:                                   # the smallest batch
...     n = 3
...     def nullable_floats(self, name): return np.array([1.0, np.nan, 4.0]), np.array([False, True, False])
...     def in_every_row(self, name): return True
>>> to_batch('nFill(nVal("x"), -1) * 2')(Rows()).as_list()
[2.0, -2.0, 8.0]
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import numpy as np

from palette.errors import PaletteError

from . import geohash
from .ast import Binary, Call, Literal, Node, Read, Unary
from .fields import default_field
from .functions import SIGNATURES
from .parser import parse
from .errors import DSLInputError
from .python_backend import (BINARY_STRICT, READ_VALUE, UNARY_MATH, round_half_up, vec_cosine, vec_dot, vec_get,
                             vec_norm)

_BIG = 2.0 ** 52


class Irregular(PaletteError):
    """The batch's values do not fit the expression's readers: score it row by row (a
    signal for the caller, not an error a user sees)."""


class Vec:
    """One value per row: ``num`` (float64 ``values`` + ``null`` mask), ``bool`` (bool
    ``values`` + ``null``) or ``obj`` (a list, None for null)."""
    __slots__ = ("kind", "values", "null")

    def __init__(self, kind: str, values, null=None):
        self.kind, self.values, self.null = kind, values, null

    def as_list(self) -> list:
        if self.kind == "obj":
            return self.values
        out = self.values.tolist()
        if self.null.any():
            for i in np.flatnonzero(self.null).tolist():
                out[i] = None
        return out


def _num(values: np.ndarray, null: np.ndarray) -> Vec:
    return Vec("num", values, null)


def _finite(values: np.ndarray, null: np.ndarray) -> Vec:
    """Arithmetic results: NaN and infinities are null."""
    return _num(values, null | ~np.isfinite(values))


def _from_list(kind: str, items: list) -> Vec:
    if kind == "num":
        null = np.fromiter((x is None for x in items), dtype=bool, count=len(items))
        return _num(np.array([0.0 if x is None else x for x in items], dtype=np.float64), null)
    if kind == "bool":
        null = np.fromiter((x is None for x in items), dtype=bool, count=len(items))
        return Vec("bool", np.fromiter((bool(x) for x in items), dtype=bool, count=len(items)), null)
    return Vec("obj", items)


def _kind(node: Node) -> str:
    return {"num": "num", "bool": "bool"}.get(node.type, "obj")


def _each(kind: str, op: Callable, args: list[Vec]) -> Vec:
    """The row rule ``op`` on every row whose arguments are all non-null; null elsewhere."""
    lists = [a.as_list() for a in args]
    out = [None if None in xs else op(*xs) for xs in zip(*lists)]
    return _from_list(kind, out)


# -- reading ----------------------------------------------------------------------

def _read(node: Read, batch, field: str) -> Vec:
    if not batch.in_every_row(field):
        raise Irregular(field)
    if node.reader == "nVal":
        try:
            got = batch.nullable_floats(field)
        except (OverflowError, TypeError, ValueError):
            got = None
        if got is None:
            raise Irregular(field)
        values, null = got
        with np.errstate(invalid="ignore"):
            return _num(np.where(null, 0.0, values), null | ~np.isfinite(values))
    values = batch.values(field)
    if node.reader == "vVal":
        convert = READ_VALUE["vVal"](node, field)
        try:
            return Vec("obj", [convert(v) for v in values])
        except DSLInputError:
            raise Irregular(field) from None
    if node.reader == "sVal":
        if not all(type(v) is str or v is None for v in values):
            raise Irregular(field)
        return Vec("obj", list(values))
    if node.reader == "bVal":
        if not all(v is None or type(v) is bool for v in values):
            raise Irregular(field)
        return _from_list("bool", values)
    if not all(v is None or isinstance(v, datetime) for v in values):
        raise Irregular(field)
    convert = READ_VALUE["tVal"](node, field)
    return Vec("obj", [convert(v) for v in values])


# -- operators -------------------------------------------------------------------------

def _and_or(op: str, a: Vec, b: Vec) -> Vec:
    """SQL's three-valued logic: false and null = false, true or null = true."""
    a_true, a_false = ~a.null & a.values, ~a.null & ~a.values
    b_true, b_false = ~b.null & b.values, ~b.null & ~b.values
    if op == "and":
        values = a_true & b_true
        return Vec("bool", values, ~(values | a_false | b_false))
    values = a_true | b_true
    return Vec("bool", values, ~(values | (a_false & b_false)))


_NUMPY_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
                  "==": np.equal, "!=": np.not_equal}
_PY_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
               ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


def _binary(node: Binary, a: Vec, b: Vec) -> Vec:
    op = node.op
    if op in ("and", "or"):
        return _and_or(op, a, b)
    if op in _NUMPY_COMPARE:
        if a.kind == "num":
            null = a.null | b.null
            return Vec("bool", _NUMPY_COMPARE[op](a.values, b.values) & ~null, null)
        return _each("bool", _PY_COMPARE[op], [a, b])
    null = a.null | b.null
    x, y = a.values, b.values
    if op == "+":
        return _finite(x + y, null)
    if op == "-":
        return _finite(x - y, null)
    if op == "*":
        return _finite(x * y, null)
    zero = y == 0
    safe = np.where(zero, 1.0, y)
    if op == "/":
        return _finite(x / safe, null | zero)
    return _num(np.fmod(x, safe), null | zero)             # "%": C's fmod, as math.fmod


def _unary(node: Unary, a: Vec) -> Vec:
    if node.op == "not":
        return Vec("bool", ~a.values & ~a.null, a.null)
    return _num(-a.values, a.null)


# -- functions ------------------------------------------------------------------------------

def _first_non_null(kind: str, args: list[Vec]) -> Vec:
    if kind != "obj" and all(a.kind == kind for a in args):
        values, null = args[-1].values.copy(), args[-1].null.copy()
        for a in reversed(args[:-1]):
            take = ~a.null
            values = np.where(take, a.values, values)
            null = null & a.null
        return Vec(kind, values, null)
    lists = [a.as_list() for a in args]
    return _from_list(kind, [next((x for x in xs if x is not None), None) for xs in zip(*lists)])


def _if(c: Vec, a: Vec, b: Vec, kind: str) -> Vec:
    yes = c.values & ~c.null
    if kind != "obj":
        return Vec(kind, np.where(yes, a.values, b.values), np.where(yes, a.null, b.null))
    return Vec("obj", [x if t else y for t, x, y in zip(yes.tolist(), a.as_list(), b.as_list())])


def _extreme(args: list[Vec], smaller: bool) -> Vec:
    """min/max ignoring nulls, the row rule's way: the first value strictly beyond the one
    kept so far replaces it (so of -0.0 and 0.0 the first wins)."""
    values, null = args[0].values.copy(), args[0].null.copy()
    for a in args[1:]:
        better = (a.values < values) if smaller else (a.values > values)
        take = ~a.null & (null | better)
        values = np.where(take, a.values, values)
        null = null & a.null
    return _num(values, null)


def _clip(x: Vec, lo: Vec, hi: Vec) -> Vec:
    m = np.where(lo.values > x.values, lo.values, x.values)     # Python's max(x, lo)
    return _num(np.where(hi.values < m, hi.values, m), x.null | lo.null | hi.null)   # min(m, hi)


def _floor_ceil(x: Vec, fn) -> Vec:
    # float(math.floor(x)) is never -0.0: + 0.0 turns numpy's -0.0 into 0.0.
    return _num(np.where(np.abs(x.values) < _BIG, fn(x.values) + 0.0, x.values), x.null)


def _sign(x: Vec) -> Vec:
    return _num(np.where(x.values == 0, x.values, np.copysign(1.0, x.values)), x.null)


def _bucket(node: Call, x: Vec) -> Vec:
    cuts = np.array([a.value for a in node.args[1:]], dtype=np.float64)
    return _num(np.searchsorted(cuts, x.values, side="right").astype(np.float64), x.null)


def _region_id(node: Call, lat: Vec, lng: Vec) -> Vec:
    precision = int(node.args[2].value) if len(node.args) > 2 else 6
    return Vec("obj", geohash.encode_many(lat.values, lng.values, lat.null | lng.null, precision))


def _is_null(a: Vec) -> Vec:
    null = a.null if a.kind != "obj" else np.fromiter((x is None for x in a.values), dtype=bool, count=len(a.values))
    return Vec("bool", null.copy(), np.zeros(len(null), dtype=bool))


# -- vectors ---------------------------------------------------------------------------------

def _each_vector(op: Callable, args: list[Vec]) -> Vec:
    """The row rule ``op`` (vector arguments, a num result) on every row whose arguments are
    all non-null (``_each`` tests ``None in``, which an array cannot answer)."""
    lists = [a.as_list() for a in args]
    return _from_list("num", [None if any(x is None for x in xs) else op(*xs) for xs in zip(*lists)])


def _matrix(a: Vec) -> tuple[np.ndarray, np.ndarray] | None:
    """The vectors as an (n, length) matrix (zeros in null rows) and the null mask, when
    every non-null vector has one length; else None."""
    items = a.values
    null = np.fromiter((x is None for x in items), dtype=bool, count=len(items))
    sizes = {x.size for x in items if x is not None}
    if len(sizes) > 1:
        return None
    width = sizes.pop() if sizes else 0
    m = np.zeros((len(items), width), dtype=np.float64)
    for i, x in enumerate(items):
        if x is not None:
            m[i] = x
    return m, null


def _row_sums(m: np.ndarray) -> np.ndarray:
    """Each row's fold_sum: its terms added in order (accumulate is sequential), + 0.0 as there."""
    if m.shape[1] == 0:
        return np.zeros(m.shape[0], dtype=np.float64)
    return np.add.accumulate(m, axis=1)[:, -1] + 0.0


def _two_matrices(a: Vec, b: Vec):
    ma, mb = _matrix(a), _matrix(b)
    if ma is None or mb is None or ma[0].shape[1] != mb[0].shape[1]:
        return None
    return ma[0], mb[0], ma[1] | mb[1]


def _dot(a: Vec, b: Vec) -> Vec:
    got = _two_matrices(a, b)
    if got is None:
        return _each_vector(vec_dot, [a, b])
    x, y, null = got
    return _finite(_row_sums(x * y), null)


def _norm(a: Vec) -> Vec:
    got = _matrix(a)
    if got is None:
        return _each_vector(vec_norm, [a])
    x, null = got
    return _finite(np.sqrt(_row_sums(x * x)), null)


def _cosine(a: Vec, b: Vec) -> Vec:
    got = _two_matrices(a, b)
    if got is None:
        return _each_vector(vec_cosine, [a, b])
    x, y, null = got
    d = _row_sums(x * y)
    p = np.sqrt(_row_sums(x * x)) * np.sqrt(_row_sums(y * y))
    bad = ~((p > 0) & (p < np.inf))
    return _finite(d / np.where(bad, 1.0, p), null | bad)


def _vget(node: Call, a: Vec) -> Vec:
    i = int(node.args[1].value)
    got = _matrix(a)
    if got is None:
        return _each_vector(vec_get(i), [a])
    x, null = got
    if i >= x.shape[1]:
        return _num(np.zeros(len(null)), np.ones(len(null), dtype=bool))
    return _num(x[:, i].copy(), null)


def _round_rule(node: Call, args: list[Vec], kind: str) -> Vec:
    d = int(node.args[1].value) if len(node.args) > 1 else 0
    return _each(kind, lambda x: round_half_up(x, d), args[:1])


# name -> rule(node, args, kind): this backend's own rule for every function. The rules
# of ELEMENTWISE apply the row backend's scalar function value by value (numpy has no
# exact equivalent); they still take whole columns, never rows through the row backend.
FUNCTION_RULES = {
    **dict.fromkeys(("coalesce", "nFill", "sFill"), lambda node, args, kind: _first_non_null(kind, args)),
    "if": lambda node, args, kind: _if(*args, kind),
    "isNull": lambda node, args, kind: _is_null(args[0]),
    "min": lambda node, args, kind: _extreme(args, True),
    "max": lambda node, args, kind: _extreme(args, False),
    "clip": lambda node, args, kind: _clip(*args),
    "abs": lambda node, args, kind: _num(np.abs(args[0].values), args[0].null),
    "sign": lambda node, args, kind: _sign(args[0]),
    "floor": lambda node, args, kind: _floor_ceil(args[0], np.floor),
    "ceil": lambda node, args, kind: _floor_ceil(args[0], np.ceil),
    "bucket": lambda node, args, kind: _bucket(node, args[0]),
    "regionId": lambda node, args, kind: _region_id(node, args[0], args[1]),
    "round": _round_rule,
    "concat": lambda node, args, kind: _each(kind, lambda *parts: "".join(parts), args),
    **{name: (lambda f: lambda node, args, kind: _each(kind, f, args))(f) for name, f in UNARY_MATH.items()},
    **{name: (lambda f: lambda node, args, kind: _each(kind, f, args))(f) for name, f in BINARY_STRICT.items()},
    # vectors (after the row backend's tables, which hold dot, norm and cosine too)
    "vfill": lambda node, args, kind: _first_non_null(kind, args),
    "dot": lambda node, args, kind: _dot(*args),
    "norm": lambda node, args, kind: _norm(args[0]),
    "cosine": lambda node, args, kind: _cosine(*args),
    "vget": lambda node, args, kind: _vget(node, args[0]),
}
VECTOR_RULES = frozenset({"dot", "norm", "cosine", "vget"})
ELEMENTWISE = frozenset({"round", "concat", *UNARY_MATH, *BINARY_STRICT}) - VECTOR_RULES


def _call(node: Call, args: list[Vec]) -> Vec:
    name = node.name
    if SIGNATURES[name].learned:
        from .errors import DSLUnsupportedError
        raise DSLUnsupportedError(f"{name} is learned from data: use it in a DSLEstimator and fit it "
                                  f"before scoring ({node})")
    rule = FUNCTION_RULES.get(name)
    if rule is None:
        raise TypeError(f"the batch backend has no rule for {name}")
    return rule(node, args, _kind(node))


def _literal(node: Literal, n: int) -> Vec:
    v = node.value
    kind = _kind(node)
    if kind == "obj":
        return Vec("obj", [v] * n)
    dtype = np.float64 if kind == "num" else bool
    return Vec(kind, np.full(n, v, dtype=dtype), np.zeros(n, dtype=bool))


class BatchExpression:
    """A compiled expression: call it with a batch to get one value per row (a Batch
    column: a float64 array, a masked one, or a list)."""

    def __init__(self, expr: Node, field_of: Callable[[Read], str] = default_field):
        if expr.type == "invalid":
            raise expr.error
        self.expr = expr
        self.fields = {r._key(): field_of(r) for r in expr.reads()}
        for n in expr.walk():
            if isinstance(n, Call) and SIGNATURES[n.name].learned:
                _call(n, [])                          # raises DSLUnsupportedError, as the row backend does

    def vector(self, batch) -> Vec:
        n = batch.n
        cache: dict[Any, Vec] = {}

        def ev(node: Node) -> Vec:
            if isinstance(node, Literal):
                return _literal(node, n)
            if isinstance(node, Read):
                key = node._key()
                if key not in cache:
                    cache[key] = _read(node, batch, self.fields[key])
                return cache[key]
            if isinstance(node, Unary):
                return _unary(node, ev(node.operand))
            if isinstance(node, Binary):
                return _binary(node, ev(node.left), ev(node.right))
            if isinstance(node, Call):
                return _call(node, [ev(a) for a in node.args])
            raise TypeError(f"the batch backend has no rule for {type(node).__name__}")

        with np.errstate(all="ignore"):
            for read in self.expr.reads():           # every read is checked, whatever branch is taken
                ev(read)
            return ev(self.expr)

    def __call__(self, batch) -> Vec:
        return self.vector(batch)


NODE_RULES = {Literal, Read, Unary, Binary, Call}    # the node classes this backend evaluates


def to_batch(expr, field_of: Callable[[Read], str] = default_field) -> BatchExpression:
    """Compile an expression (or DSL text) into a function of a batch of rows."""
    return BatchExpression(parse(expr), field_of)


__all__ = ["to_batch", "BatchExpression", "Vec", "Irregular", "NODE_RULES", "FUNCTION_RULES", "ELEMENTWISE"]
