"""The Python backend: compiles an AST into closures over one row (a dict).

No ``eval``, no code strings. Every distinct ``Read`` of the expression is read and
checked once per row before anything is computed, so a missing field or a value of
the wrong type is reported whatever branch the row takes — as Spark reports it from
the schema. The closures then take the list of read values.

>>> from palette.dsl import parse, to_python
>>> f = to_python(parse('if(nVal("x") > 2, "big", "small")'))
>>> f({"x": 3}), f({"x": None})
('big', 'small')
"""
from __future__ import annotations

import bisect
import math
import numbers
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any, Callable

import numpy as np

from . import geohash
from .ast import Binary, Call, Literal, Node, Read, Unary
from .errors import DSLInputError, DSLUnsupportedError
from .fields import default_field
from .functions import SIGNATURES
from .parser import parse

INF = math.inf
Closure = Callable[[list], Any]


# -- reading values -----------------------------------------------------------

def _bad_value(read: Read, key: str, v: Any, want: str) -> DSLInputError:
    shown = repr(v)
    if len(shown) > 200:                                  # a long vector, say
        shown = shown[:200] + "…"
    return DSLInputError(f"field {key!r} read by {read} must be {want}, got {type(v).__name__} {shown}")


def _read_num(read: Read, key: str):
    def read_value(v):
        t = type(v)
        if t is float:
            return v if -INF < v < INF else None          # NaN and ±inf read as null
        if v is None:
            return None
        if t is int:
            try:
                f = float(v)
            except OverflowError:
                return None
            return f if -INF < f < INF else None
        if t is bool or _is_numpy_bool(v) or not isinstance(v, (numbers.Real, Decimal)):
            raise _bad_value(read, key, v, "a number (nVal)")
        try:
            f = float(v)                                   # numpy numbers, Decimal (Spark DECIMAL)
        except OverflowError:
            return None
        return f if -INF < f < INF else None
    return read_value


def _is_numpy_bool(v) -> bool:
    t = type(v)
    return t.__module__ == "numpy" and t.__name__ in ("bool_", "bool")


def _read_str(read: Read, key: str):
    def read_value(v):
        if v is None or type(v) is str:
            return v
        if isinstance(v, str):
            return str(v)
        raise _bad_value(read, key, v, "a string (sVal)")
    return read_value


def _read_bool(read: Read, key: str):
    def read_value(v):
        if v is None or type(v) is bool:
            return v
        if _is_numpy_bool(v):
            return bool(v)
        raise _bad_value(read, key, v, "a boolean (bVal)")
    return read_value


def _read_ts(read: Read, key: str):
    def read_value(v):
        if v is None:
            return None
        if isinstance(v, datetime):
            # Naive datetimes are UTC, as the DSL defines timestamps.
            return v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)
        raise _bad_value(read, key, v, "a datetime (tVal)")
    return read_value


_VEC_WANT = "a vector (vVal): a 1-d numpy array of numbers, a list or tuple of numbers, or a vector with toArray()"


def _vec_elements(items) -> np.ndarray | None:
    """A list or tuple (or object array) of numbers as float64; None when an element is null
    (Spark reads an array holding a null element as a null vector) or too large for a double.
    Raises TypeError for an element that is not a number."""
    if all(type(x) is float for x in items):            # the common case, without isinstance
        return np.array(items, dtype=np.float64)
    out = np.empty(len(items), dtype=np.float64)
    for i, x in enumerate(items):
        if x is None:
            return None
        if type(x) is bool or _is_numpy_bool(x) or not isinstance(x, (numbers.Real, Decimal)):
            raise TypeError(x)
        try:
            out[i] = float(x)
        except OverflowError:
            return None
    return out


def as_vector(v) -> np.ndarray | None:
    """A value as the DSL's vec: a new 1-d float64 array, or None when it is null, holds a
    null element or holds NaN or ±inf (NaN never escapes: the whole vector reads as null).
    Raises TypeError when ``v`` is not a vector of numbers."""
    if v is None:
        return None
    if not isinstance(v, np.ndarray):
        if isinstance(v, (list, tuple)):
            arr = _vec_elements(v)
            if arr is None:
                return None
            return arr if np.isfinite(arr).all() else None
        to_array = getattr(v, "toArray", None)
        if to_array is None or isinstance(v, (str, bytes)) or not callable(to_array):
            raise TypeError(v)
        v = to_array()
        if not isinstance(v, np.ndarray):
            v = np.asarray(v)
    if v.ndim != 1:
        raise TypeError(v)
    kind = v.dtype.kind
    if kind in "fiu":
        with np.errstate(over="ignore", invalid="ignore"):
            arr = v.astype(np.float64)                      # a copy: the value never aliases the row's
    elif kind == "O":
        arr = _vec_elements(v.tolist())
        if arr is None:
            return None
    else:
        raise TypeError(v)
    return arr if np.isfinite(arr).all() else None


def _read_vec(read: Read, key: str):
    def read_value(v):
        try:
            return as_vector(v)
        except TypeError:
            raise _bad_value(read, key, v, _VEC_WANT) from None
    return read_value


READ_VALUE = {"nVal": _read_num, "sVal": _read_str, "bVal": _read_bool, "tVal": _read_ts, "vVal": _read_vec}


def _reader(read: Read, field_of: Callable[[Read], str]) -> Callable[[dict], Any]:
    key = field_of(read)
    convert = READ_VALUE[read.reader](read, key)

    def missing(row: dict) -> DSLInputError:
        fields = ", ".join(sorted(map(str, row))) or "none"
        return DSLInputError(f"the row has no field {key!r}, which {read} reads; fields present: {fields}")

    if read.reader == "nVal":
        def read_num(row: dict):
            try:
                v = row[key]
            except KeyError:
                raise missing(row) from None
            if type(v) is float:                          # the common case, without a call to convert
                return v if -INF < v < INF else None
            return convert(v)
        return read_num

    def read_row(row: dict):
        try:
            v = row[key]
        except KeyError:
            raise missing(row) from None
        return convert(v)
    return read_row


# -- compiling nodes ------------------------------------------------------------

def _finite(r: float):
    return r if -INF < r < INF else None


def _arith(op: str):
    if op == "+":
        return lambda a, b: _finite(a + b)
    if op == "-":
        return lambda a, b: _finite(a - b)
    if op == "*":
        return lambda a, b: _finite(a * b)
    if op == "/":
        return lambda a, b: None if b == 0 else _finite(a / b)
    if op == "%":
        return lambda a, b: None if b == 0 else math.fmod(a, b)
    raise KeyError(op)


_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


def _strict2(fa: Closure, fb: Closure, op) -> Closure:
    def f(v):
        a = fa(v)
        if a is None:
            return None
        b = fb(v)
        if b is None:
            return None
        return op(a, b)
    return f


def _strict1(fa: Closure, op) -> Closure:
    def f(v):
        a = fa(v)
        return None if a is None else op(a)
    return f


def _compile_binary(node: Binary, c, index=None) -> Closure:
    fa, fb = c(node.left), c(node.right)
    if node.op == "and":
        def and_(v):
            a = fa(v)
            if a is False:
                return False
            b = fb(v)
            if b is False:
                return False
            return None if a is None or b is None else True
        return and_
    if node.op == "or":
        def or_(v):
            a = fa(v)
            if a is True:
                return True
            b = fb(v)
            if b is True:
                return True
            return None if a is None or b is None else False
        return or_
    op = _COMPARE.get(node.op) or _arith(node.op)
    return _strict2(fa, fb, op)


def _compile_unary(node: Unary, c, index=None) -> Closure:
    fa = c(node.operand)
    return _strict1(fa, (lambda a: not a) if node.op == "not" else (lambda a: -a))


# -- functions ---------------------------------------------------------------------

def _guard(fn):
    """Math functions: out of domain or overflow (ValueError/OverflowError, NaN, ±inf) is null."""
    def g(*xs):
        try:
            return _finite(fn(*xs))
        except (ValueError, OverflowError):
            return None
    return g


def _sign(x):
    return x if x == 0 else math.copysign(1.0, x)


_DECIMAL = Context(prec=400)


_WHOLE_16 = 2.0 ** 53     # from here on doubles are whole numbers of 16 or more digits


def round_half_up(x: float, d: int) -> float:
    if d < 0 and not -_WHOLE_16 < x < _WHOLE_16:
        # Java 17's Double.toString is not always the shortest form of such numbers, so
        # Spark's BigDecimal rounding cannot be relied on here: both backends round x / 10**-d
        # (below 2**53, where the forms agree) and scale back; x itself from 2**53 * 10**-d.
        scale = float(10 ** -d)
        return x if abs(x) >= _WHOLE_16 * scale else round_half_up(x / scale, 0) * scale
    # Half away from zero on the shortest decimal form of x, as Spark's BigDecimal round does;
    # "+ 0.0" turns -0.0 into 0.0 like Spark.
    q = Decimal(repr(x)).quantize(Decimal(1).scaleb(-d), rounding=ROUND_HALF_UP, context=_DECIMAL)
    return float(q) + 0.0


_BIG = 2.0 ** 52     # doubles at or above this are whole numbers


def _floor(x):
    return float(math.floor(x)) if -_BIG < x < _BIG else x


def _ceil(x):
    return float(math.ceil(x)) if -_BIG < x < _BIG else x


def _least(xs):
    r = None
    for x in xs:
        if x is not None and (r is None or x < r):
            r = x
    return r


def _greatest(xs):
    r = None
    for x in xs:
        if x is not None and (r is None or x > r):
            r = x
    return r


# -- vectors ---------------------------------------------------------------------------------
# Sums are sequential left folds from 0.0, as Spark's aggregate(…, 0D, (acc, x) -> acc + x):
# numpy's sum and dot add pairwise (and in SIMD lanes), which rounds differently; cumsum
# (add.accumulate) adds in order. It starts from the first term rather than 0.0, which
# differs only where the fold gives 0.0 and cumsum -0.0 (all terms -0.0): "+ 0.0" maps it.

def fold_sum(terms: np.ndarray) -> float:
    """0.0 + terms[0] + terms[1] + ..., in that order, in float64."""
    return float(np.cumsum(terms)[-1]) + 0.0 if terms.size else 0.0


def _products(a: np.ndarray, b: np.ndarray) -> float:
    """The fold of a * b (overflow gives inf, inf - inf NaN: IEEE, as in Java, without warnings)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return fold_sum(a * b)


def vec_dot(a: np.ndarray, b: np.ndarray):
    if a.size != b.size:
        return None
    return _finite(_products(a, b))


def vec_norm(v: np.ndarray):
    return _finite(math.sqrt(_products(v, v)))            # the sum of squares is never negative


def vec_cosine(a: np.ndarray, b: np.ndarray):
    """dot(a, b) / (norm(a) * norm(b)) as the DSL computes that expression: null where a
    part is null (lengths differ, overflow) or the divisor is 0."""
    d = vec_dot(a, b)
    if d is None:
        return None
    p = math.sqrt(_products(a, a)) * math.sqrt(_products(b, b))
    if not 0 < p < INF:
        return None
    return _finite(d / p)


def vec_get(i: int):
    return lambda v: float(v[i]) if i < v.size else None


UNARY_MATH = {
    "log": lambda x: math.log(x) if x > 0 else None,
    "log1p": lambda x: math.log1p(x) if x > -1 else None,
    "sqrt": lambda x: math.sqrt(x) if x >= 0 else None,
    "exp": _guard(math.exp),
    "abs": abs,
    "sign": _sign,
    "floor": _floor,
    "ceil": _ceil,
    "lower": str.lower,
    "upper": str.upper,
    "length": lambda s: float(len(s)),
    "hourOfDay": lambda t: float(t.hour),
    "dayOfWeek": lambda t: float(t.isoweekday()),
    "norm": vec_norm,
}

BINARY_STRICT = {
    "pow": _guard(math.pow),
    "dot": vec_dot,
    "cosine": vec_cosine,
    "contains": lambda s, t: t in s,
    "startsWith": lambda s, t: s.startswith(t),
}


def _literal_args(node: Call, start: int) -> list:
    return [a.value for a in node.args[start:]]


def _compile_call(node: Call, c, index=None) -> Closure:
    name = node.name
    sig = SIGNATURES[name]
    if sig.learned:
        raise DSLUnsupportedError(f"{name} is learned from data: use it in a DSLEstimator and fit it "
                                  f"before scoring ({node})")
    fs = [c(a) for a in node.args]
    if name in UNARY_MATH:
        return _strict1(fs[0], UNARY_MATH[name])
    if name in BINARY_STRICT:
        return _strict2(fs[0], fs[1], BINARY_STRICT[name])
    rule = _CALL_RULES[name]
    return rule(node, fs)


def _if(node, fs):
    fc, fa, fb = fs
    return lambda v: fa(v) if fc(v) is True else fb(v)


def _coalesce(node, fs):
    if len(fs) == 2:
        first, second = fs
        if isinstance(node.args[1], Literal):              # nFill(x, -1): the common case
            fallback = node.args[1].value
            return lambda v: x if (x := first(v)) is not None else fallback
        return lambda v: x if (x := first(v)) is not None else second(v)

    def f(v):
        for g in fs:
            x = g(v)
            if x is not None:
                return x
        return None
    return f


def _concat(node, fs):
    def f(v):
        parts = [g(v) for g in fs]
        return None if None in parts else "".join(parts)
    return f


def _clip(node, fs):
    fx, flo, fhi = fs

    def f(v):
        x, lo, hi = fx(v), flo(v), fhi(v)
        if x is None or lo is None or hi is None:
            return None
        return min(max(x, lo), hi)
    return f


def _region_id(node, fs):
    precision = int(node.args[2].value) if len(node.args) > 2 else 6
    flat, flng = fs[0], fs[1]
    return lambda v: geohash.encode(flat(v), flng(v), precision)


def _bucket(node, fs):
    cuts = _literal_args(node, 1)
    fx = fs[0]
    return _strict1(fx, lambda x: float(bisect.bisect_right(cuts, x)))


def _round_rule(node, fs):
    d = int(node.args[1].value) if len(node.args) > 1 else 0
    return _strict1(fs[0], lambda x: round_half_up(x, d))


_CALL_RULES: dict[str, Callable] = {
    "if": _if,
    "coalesce": _coalesce,
    "nFill": _coalesce,
    "sFill": _coalesce,
    "vfill": _coalesce,
    "isNull": lambda node, fs: (lambda v, f=fs[0]: f(v) is None),
    "min": lambda node, fs: (lambda v: _least([g(v) for g in fs])),
    "max": lambda node, fs: (lambda v: _greatest([g(v) for g in fs])),
    "clip": _clip,
    "round": _round_rule,
    "concat": _concat,
    "regionId": _region_id,
    "bucket": _bucket,
    "vget": lambda node, fs: _strict1(fs[0], vec_get(int(node.args[1].value))),
}

# Functions with a rule (the learned ones have theirs in DSLEstimator.fit).
FUNCTION_RULES = set(UNARY_MATH) | set(BINARY_STRICT) | set(_CALL_RULES)


class CompiledExpression:
    """A compiled expression: call it with a row dict to get the value."""

    __slots__ = ("expr", "readers", "body", "fields", "row_function")

    def __init__(self, expr: Node, field_of: Callable[[Read], str] = default_field):
        reads = expr.reads()
        index = {r._key(): i for i, r in enumerate(reads)}
        self.expr = expr
        self.fields = [field_of(r) for r in reads]
        self.readers = [_reader(r, field_of) for r in reads]

        if expr.type == "invalid":
            raise expr.error

        def c(node: Node) -> Closure:
            rule = next((r for cls, r in NODE_RULES.items() if isinstance(node, cls)), None)
            if rule is None:
                raise TypeError(f"the Python backend has no rule for {type(node).__name__}")
            return rule(node, c, index)

        self.body = c(expr)
        self.row_function = _row_function(self.body, self.readers)

    def __call__(self, row: dict):
        return self.row_function(row)


def _row_function(body: Closure, readers: list) -> Callable[[dict], Any]:
    """``row -> body([each reader's value])``, without a loop for one or two readers."""
    if len(readers) == 1:
        (r0,) = readers
        return lambda row: body([r0(row)])
    if len(readers) == 2:
        r0, r1 = readers
        return lambda row: body([r0(row), r1(row)])
    return lambda row: body([r(row) for r in readers])


def _compile_literal(node: Literal, c, index) -> Closure:
    value = node.value
    return lambda v: value


def _compile_read(node: Read, c, index) -> Closure:
    i = index[node._key()]
    return lambda v: v[i]


NODE_RULES = {Literal: _compile_literal, Read: _compile_read, Unary: _compile_unary,
              Binary: _compile_binary, Call: _compile_call}


def to_python(expr, field_of: Callable[[Read], str] = default_field) -> CompiledExpression:
    """Compile an expression (or DSL text) into a callable ``f(row) -> value``."""
    return CompiledExpression(parse(expr), field_of)


def evaluate(expr, row: dict):
    """Evaluate an expression (or DSL text) on one row dict."""
    return to_python(expr)(row)
