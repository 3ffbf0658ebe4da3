"""The Spark backend: compiles an AST into one native ``pyspark.sql.Column``.

Only built-in Spark expressions, no Python UDFs. The DSL's semantics (DSL.md) hold
with ``spark.sql.ansi.enabled`` on and off: division and modulo use ``try_divide`` /
``try_mod``; every result that may overflow goes through the binder's finite guard,
float reads through ``_finite_ref``.

A subexpression is never copied into the tree twice unless it is a plain read or a
literal: Catalyst walks expression trees as trees, so copies nest exponentially
(18 nested copies exhaust a 1 GiB heap), and large copies overflow Java's 64 KB
method limit in code generation. Where a function needs a value more than once, a
*binder* evaluates it once:

- ``with_dsl_columns(df, lambdas)`` (what the DSL stages use) binds it as an
  intermediate column in a projection of its own, dropped at the end; Catalyst keeps
  such a projection rather than inline a non-cheap expression twice, and the whole
  stage still compiles to generated code.
- ``to_column(expr)`` must return one Column, so it binds the value to a lambda
  variable (``element_at(transform(array(v), body), 1)``), which Spark interprets.

>>> from palette.dsl.spark_backend import to_column                       # doctest: +SKIP
>>> df.select(to_column('nFill(nVal("basis:x"), -1)').alias("x_filled"))  # doctest: +SKIP
"""
from __future__ import annotations

import re
from typing import Callable

from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from . import geohash
from .ast import Binary, Call, Literal, Node, Read, Unary
from .errors import DSLInputError, DSLUnsupportedError
from .fields import default_field
from .functions import SIGNATURES
from .parser import parse

# A vec is an array<double> inside an expression; a vec result leaves it as a Spark ML vector
# (VectorUDT: ``_Compiler.output``), which is what VectorAssembler and the estimators take.
SPARK_TYPES = {"num": T.DoubleType(), "str": T.StringType(), "bool": T.BooleanType(),
               "ts": T.TimestampType(), "vec": T.ArrayType(T.DoubleType())}
_INF = float("inf")
_BIG = 2.0 ** 52
_WHOLE_16 = 2.0 ** 53     # from here on doubles are whole numbers of 16 or more digits


def _null(dsl_type: str) -> Column:
    return F.lit(None).cast(SPARK_TYPES[dsl_type])


def _finite_once(c: Column) -> Column:
    """c, or null where c is NaN or ±inf, referencing c once: x % inf is x for finite x
    and NaN for ±inf (Java's remainder), and nanvl maps NaN to null."""
    return F.nanvl(c % F.lit(_INF), _null("num"))


def _finite_ref(c: Column) -> Column:
    """c, or null where c is NaN or ±inf, for a c that is a column reference (which may be
    repeated): a comparison is several times cheaper than the remainder of ``_finite_once``.
    Spark orders NaN above +inf, so NaN fails the test like ±inf."""
    return F.when(F.abs(c) < F.lit(_INF), c)


def _col(name: str) -> Column:
    return F.col("`" + name.replace("`", "``") + "`")


# How costly a value is to copy into the tree more than once, as binders see it.
LITERAL, READ, COMPUTED = "literal", "read", "computed"


# Spark's subexpression elimination walks the first input of a coalesce or nanvl twice, so
# a chain of them nested in that position costs 2**depth walks when a plan is compiled
# (nFill(x + 1, 1) nested 14 deep took 5 minutes). Binders break such chains.


class LambdaBinder:
    """Binds a value to a lambda variable: one Column, evaluated by Spark's interpreter.
    Reads are copied instead: a lambda costs more than reading a column again.

    Chains of coalesce/nanvl are broken by a lambda every ``CHAIN`` links (counted in
    the order nodes are compiled, children first, so no path goes longer unbroken);
    subexpression elimination does not look inside a higher-order function."""

    CHAIN = 6

    def __init__(self):
        self.unbroken = 0

    def let(self, c: Column, cost: str, body: Callable[[Column], Column]) -> Column:
        if cost != COMPUTED:
            return body(c)
        return F.element_at(F.transform(F.array(c), body), 1)

    def _link(self, c: Column, cost: str, body: Callable[[Column], Column]) -> Column:
        self.unbroken += 1
        if self.unbroken < self.CHAIN or cost != COMPUTED:
            return body(c)
        self.unbroken = 0
        return self.let(c, cost, body)

    def finite(self, c: Column) -> Column:
        return self._link(c, COMPUTED, _finite_once)

    def coalesce(self, first: Column, cost: str, rest: list[Column]) -> Column:
        return self._link(first, cost, lambda v: F.coalesce(v, *rest)) if rest else first


class ProjectionBinder:
    """Binds a value to an intermediate column, computed in a projection before the outputs.
    Reads are bound too (a float read carries its finite guard); literals are copied.

    A guard or a coalesce reads its bound input twice, so Catalyst keeps the input's
    projection apart (CollapseProject inlines a value used once): nested, they stay one
    column deep and the plan stays fully code-generated. Bindings that do not depend on
    each other share a projection (``levels``): Spark generates code for a chain of
    projections recursively, and a few hundred of them overflow the driver's stack."""

    def __init__(self, taken: set[str]):
        self.taken = taken
        self.bindings: list[tuple[str, Column, int]] = []
        self._level: dict[str, int] = {}
        self._chain_free: dict[int, Column] = {}   # guard results: no coalesce below them

    def let(self, c: Column, cost: str, body: Callable[[Column], Column]) -> Column:
        if cost == LITERAL:
            return body(c)
        name = f"__palette_let_{len(self.bindings)}"
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        level = 1 + max((self._level.get(n, 0) for n in _BOUND.findall(str(c))), default=0)
        self._level[name] = level
        self.bindings.append((name, c, level))
        return body(_col(name))

    def levels(self) -> list[dict[str, Column]]:
        """The bindings as projections, in order: each reads only the ones before it."""
        out: list[dict[str, Column]] = [{} for _ in range(max(self._level.values(), default=0))]
        for name, c, level in self.bindings:
            out[level - 1][name] = c
        return out

    def finite(self, c: Column) -> Column:
        guarded = self.let(c, COMPUTED, _finite_ref)
        self._chain_free[id(guarded)] = guarded
        return guarded

    def coalesce(self, first: Column, cost: str, rest: list[Column]) -> Column:
        if not rest:
            return first
        if cost != COMPUTED or self._chain_free.get(id(first)) is first:   # starts no chain
            return F.coalesce(first, *rest)
        return self.let(first, cost, lambda v: F.when(v.isNotNull(), v).otherwise(F.coalesce(*rest)))


_BOUND = re.compile(r"__palette_let_\d+_*")


_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)


def _is_vector_udt(t: T.DataType) -> bool:
    """A Spark ML vector column (``pyspark.ml.linalg.VectorUDT``, or the older mllib one)."""
    return type(t).__name__ == "VectorUDT" and type(t).__module__ in ("pyspark.ml.linalg", "pyspark.mllib.linalg")


def _of(*classes) -> Callable[[T.DataType], bool]:
    return lambda t: isinstance(t, classes)


# reader -> (does it read a column of this type, what it reads: for the error)
_ACCEPTS = {"nVal": (_of(*_NUMERIC), "a numeric column"),
            "sVal": (_of(T.StringType, T.VarcharType, T.CharType), "a string column"),
            "bVal": (_of(T.BooleanType), "a boolean column"),
            "tVal": (_of(T.TimestampType), "a timestamp column (cast TIMESTAMP_NTZ or DATE to TIMESTAMP)"),
            "vVal": (lambda t: _is_vector_udt(t) or (isinstance(t, T.ArrayType) and isinstance(t.elementType, _NUMERIC)),
                     "a vector column (a Spark ML vector, or an array of numbers)")}


class _Compiler:
    def __init__(self, schema: T.StructType | None, field_of: Callable[[Read], str], binder):
        self.schema = schema
        self.field_of = field_of
        self.let, self.finite, self.coalesce = binder.let, binder.finite, binder.coalesce

    def compile(self, node: Node) -> Column:
        rule = next((r for cls, r in NODE_RULES.items() if isinstance(node, cls)), None)
        if rule is None:
            raise TypeError(f"the Spark backend has no rule for {type(node).__name__}")
        return rule(self, node)

    def arg(self, node: Call, i: int) -> tuple[Column, str]:
        """Argument i compiled, and its cost to copy (LITERAL, READ or COMPUTED)."""
        a = node.args[i]
        return self.compile(a), LITERAL if isinstance(a, Literal) else READ if isinstance(a, Read) else COMPUTED

    def read(self, node: Read) -> Column:
        name = self.field_of(node)
        col = _col(name)
        source_type = None
        if self.schema is not None:
            field = next((f for f in self.schema.fields if f.name == name), None)
            if field is None:
                available = ", ".join(self.schema.fieldNames()) or "none"
                raise DSLInputError(f"column {name!r}, which {node} reads, is not in the input; "
                                    f"columns: {available}")
            accepts, want = _ACCEPTS[node.reader]
            if not accepts(field.dataType):
                raise DSLInputError(f"column {name!r} read by {node} must be {want}, "
                                    f"got {field.dataType.simpleString()}")
            source_type = field.dataType
        if node.reader == "vVal":
            return self.read_vec(col, source_type)
        if node.reader == "nVal":
            col = col.cast("double")
            # Integers and decimals cannot be NaN or infinite; floats can.
            if source_type is None or isinstance(source_type, (T.FloatType, T.DoubleType)):
                col = _finite_ref(col)
            return col
        return col.cast(SPARK_TYPES[node.type])

    def read_vec(self, col: Column, source_type: T.DataType | None) -> Column:
        """An array<double>, null where the column holds null, a null element, NaN or ±inf.
        Without a schema the column is taken for an array of numbers."""
        if source_type is not None and _is_vector_udt(source_type):
            arr, cost = F.when(col.isNotNull(), vector_to_array(col, "float64")), COMPUTED
        else:
            arr, cost = col.cast(SPARK_TYPES["vec"]), READ
        # forall is null for a null element (and no false one), false for NaN: Spark orders
        # NaN above +inf; either way the vector reads as null.
        return self.let(arr, cost, lambda v: F.when(F.forall(v, lambda x: F.abs(x) < F.lit(_INF)), v))

    def output(self, node: Node, c: Column) -> Column:
        """An expression's value as a result column: a vec becomes a Spark ML vector."""
        if node.type != "vec":
            return c
        cost = READ if isinstance(node, Read) else COMPUTED
        return self.let(c, cost, lambda v: F.when(v.isNotNull(), array_to_vector(v)))


def _literal(cp: _Compiler, node: Literal) -> Column:
    return F.lit(node.value).cast(SPARK_TYPES[node.type])


def _unary(cp: _Compiler, node: Unary) -> Column:
    a = cp.compile(node.operand)
    return ~a if node.op == "not" else -a


_ARITH = {
    "%": lambda a, b: F.try_mod(a, b),
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "and": lambda a, b: a & b, "or": lambda a, b: a | b,
}


def _binary(cp: _Compiler, node: Binary) -> Column:
    if node.op in _UNCHECKED:
        return cp.finite(_unchecked(cp, node))
    return _ARITH[node.op](cp.compile(node.left), cp.compile(node.right))


# A chain of + - * / checks for NaN/±inf once, at its top: nanvl is a conditional
# expression, and Spark's subexpression elimination walks nested conditionals twice per
# level (2**n: 20 nested additions took seconds, 25 minutes). Unchecked, IEEE arithmetic
# keeps a non-finite operand non-finite (inf - inf and inf * 0 are NaN), except x / ±inf,
# so a divisor is checked; try_divide still gives null for a zero divisor.
_UNCHECKED = {"+": Column.__add__, "-": Column.__sub__, "*": Column.__mul__, "/": F.try_divide}


def _unchecked(cp: _Compiler, node: Binary) -> Column:
    def operand(n: Node, check: bool) -> Column:
        if not check and isinstance(n, Binary) and n.op in _UNCHECKED:
            return _unchecked(cp, n)
        if not check and isinstance(n, Unary) and n.op == "-":
            return -operand(n.operand, False)
        return cp.compile(n)
    return _UNCHECKED[node.op](operand(node.left, False), operand(node.right, node.op == "/"))


# -- functions ----------------------------------------------------------------------

def _whole(fn):
    # F.floor/F.ceil return a long (saturating); doubles of magnitude >= 2**52 are whole already.
    return lambda x: F.when(F.abs(x) < _BIG, fn(x).cast("double")).otherwise(x)


def _clip(x, lo, hi):
    return F.when(x.isNull() | lo.isNull() | hi.isNull(), _null("num")).otherwise(
        F.least(F.greatest(x, lo), hi))


def _cell(let, v: Column, axis, bits: int) -> Column:
    """geohash.cell_index in Spark: an estimate, clamped, then one exact correction each way."""
    lo, span = axis
    size = 1 << bits
    est = F.least(F.greatest((v - lo) / span * size, F.lit(0.0)), F.lit(float(size - 1))).cast("long")
    return let(est, COMPUTED, lambda k: F.when((k > 0) & (F.lit(lo) + F.lit(span) * k / size > v), k - 1)
               .when((k < size - 1) & (F.lit(lo) + F.lit(span) * (k + 1) / size <= v), k + 1)
               .otherwise(k))


def _geohash(let, lat: Column, lng: Column, precision: int) -> Column:
    lng_bits, lat_bits = geohash.bits_per_axis(precision)
    return let(_cell(let, lng, geohash.LNG, lng_bits), COMPUTED, lambda k_lng: let(
        _cell(let, lat, geohash.LAT, lat_bits), COMPUTED, lambda k_lat: _geohash_chars(
            lat, lng, k_lng, k_lat, precision)))


def _geohash_chars(lat: Column, lng: Column, k_lng: Column, k_lat: Column, precision: int) -> Column:
    """One ``substr`` per character, of an alphabet permuted to interleave its bits."""
    chars = []
    for lng_shift, lng_width, lat_shift, lat_width, alphabet in geohash.char_tables(precision):
        a = F.shiftright(k_lng, lng_shift).bitwiseAND((1 << lng_width) - 1)
        b = F.shiftright(k_lat, lat_shift).bitwiseAND((1 << lat_width) - 1)
        index = F.shiftleft(a, lat_width).bitwiseOR(b).cast("int")
        chars.append(F.substr(F.lit(alphabet), index + 1, F.lit(1)))
    valid = lat.between(-90.0, 90.0) & lng.between(-180.0, 180.0)
    return F.when(valid, F.concat(*chars))


def _call(cp: _Compiler, node: Call) -> Column:
    sig = SIGNATURES[node.name]
    if sig.learned:
        raise DSLUnsupportedError(f"{node.name} is learned from data: use it in a DSLEstimator and "
                                  f"fit it first ({node})")
    return _CALL_RULES[node.name](cp, node)


def _args(cp, node):
    return [cp.compile(a) for a in node.args]


def _one(fn):
    return lambda cp, node: fn(cp.compile(node.args[0]))


def _two(fn):
    return lambda cp, node: fn(cp.compile(node.args[0]), cp.compile(node.args[1]))


def _let_args(cp, node, body):
    """body(*args) with every argument that is used more than once bound once (see the binders)."""
    compiled = [cp.arg(node, i) for i in range(len(node.args))]

    def bind(i, bound):
        if i == len(compiled):
            return body(*bound)
        c, cost = compiled[i]
        return cp.let(c, cost, lambda v: bind(i + 1, bound + [v]))
    return bind(0, [])


def _coalesce(cp, node):
    first, cost = cp.arg(node, 0)
    return cp.coalesce(first, cost, [cp.compile(a) for a in node.args[1:]])


def _bucket(cp, node):
    cuts = [a.value for a in node.args[1:]]

    def body(x):
        case = F.when(x.isNull(), _null("num"))
        for i, c in enumerate(cuts):
            case = case.when(x < c, F.lit(float(i)))
        return case.otherwise(F.lit(float(len(cuts))))
    x, cost = cp.arg(node, 0)
    return cp.let(x, cost, body)


def _region(cp, node):
    precision = int(node.args[2].value) if len(node.args) > 2 else 6
    lat, lat_cost = cp.arg(node, 0)
    lng, lng_cost = cp.arg(node, 1)
    return cp.let(lat, lat_cost, lambda la: cp.let(
        lng, lng_cost, lambda ln: _geohash(cp.let, la, ln, precision)))


# -- vectors: sums are sequential left folds from 0.0, so the Python backend can match them
# bit for bit (it adds in the same order: python_backend.fold_sum).

def _fold_squares(v: Column) -> Column:
    return F.aggregate(v, F.lit(0.0), lambda acc, x: acc + x * x)


def _dot_sum(a: Column, b: Column) -> Column:
    """The sum of a[i] * b[i], null when the lengths differ (zip_with would pad with nulls)."""
    return F.when(F.array_size(a) == F.array_size(b),
                  F.aggregate(F.zip_with(a, b, lambda x, y: x * y), F.lit(0.0), lambda acc, x: acc + x))


def _dot(cp, node):
    return _let_args(cp, node, lambda a, b: cp.finite(_dot_sum(a, b)))


def _norm(cp, node):
    return cp.finite(F.sqrt(_fold_squares(cp.compile(node.args[0]))))


def _cosine(cp, node):
    """dot(a, b) / (norm(a) * norm(b)), as the DSL computes that expression: the divisor
    guarded (null when it overflows), try_divide (null when it is 0), the quotient guarded."""
    def body(a, b):
        divisor = cp.finite(F.sqrt(_fold_squares(a)) * F.sqrt(_fold_squares(b)))
        return cp.finite(F.try_divide(_dot_sum(a, b), divisor))
    return _let_args(cp, node, body)


def _vget(cp, node):
    # get: null past the end under ANSI too (element_at and [] raise there).
    return F.get(cp.compile(node.args[0]), F.lit(int(node.args[1].value)))


def _case(fn):
    """lower/upper. Catalyst rewrites lower(upper(s)) to lower(s) and upper(lower(s)) to upper(s)
    (SimplifyCaseConversionExpressions), also once if(true, upper(s), ..) has folded, which
    is wrong for "Straße" (upper "STRASSE", lower "strasse"); a one-part concat, which
    Catalyst leaves alone, keeps a computed argument out of reach of that rule."""
    def rule(cp, node):
        s, cost = cp.arg(node, 0)
        return fn(s if cost != COMPUTED else F.concat(s))
    return rule


def _round(cp, node):
    d = int(node.args[1].value) if len(node.args) > 1 else 0
    if d >= 0:
        return F.round(cp.compile(node.args[0]), d) + F.lit(0.0)   # + 0.0: -0.0 becomes 0.0
    # Tens, hundreds...: from 2**53 on, Java 17's Double.toString (which Spark's round goes
    # through) is not always the shortest form, so round x / 10**-d and scale back, as the
    # Python backend does; x itself from 2**53 * 10**-d on.
    scale = float(10 ** -d)
    x, cost = cp.arg(node, 0)
    return cp.let(x, cost, lambda v: F.when(F.abs(v) < _WHOLE_16, F.round(v, d))
                  .when(F.abs(v) < _WHOLE_16 * scale, F.round(v / scale, 0) * scale)
                  .otherwise(v) + F.lit(0.0))


_CALL_RULES = {
    "if": lambda cp, node: F.when(cp.compile(node.args[0]), cp.compile(node.args[1]))
                             .otherwise(cp.compile(node.args[2])),
    "coalesce": _coalesce,
    "nFill": _coalesce,
    "sFill": _coalesce,
    "isNull": _one(lambda a: a.isNull()),
    "log": _one(lambda x: F.log(x)),
    "log1p": _one(F.log1p),
    "sqrt": lambda cp, node: cp.finite(F.sqrt(cp.compile(node.args[0]))),
    "exp": lambda cp, node: cp.finite(F.exp(cp.compile(node.args[0]))),
    "abs": _one(F.abs),
    "pow": lambda cp, node: cp.finite(F.pow(cp.compile(node.args[0]), cp.compile(node.args[1]))),
    "sign": _one(F.signum),
    "min": lambda cp, node: (lambda a: a[0] if len(a) == 1 else F.least(*a))(_args(cp, node)),
    "max": lambda cp, node: (lambda a: a[0] if len(a) == 1 else F.greatest(*a))(_args(cp, node)),
    "clip": lambda cp, node: _let_args(cp, node, _clip),
    "round": _round,
    "floor": lambda cp, node: _let_args(cp, node, _whole(F.floor)),
    "ceil": lambda cp, node: _let_args(cp, node, _whole(F.ceil)),
    "lower": _case(F.lower),
    "upper": _case(F.upper),
    "length": _one(lambda s: F.length(s).cast("double")),
    "concat": lambda cp, node: F.concat(*_args(cp, node)),
    "contains": _two(lambda s, t: s.contains(t)),
    "startsWith": _two(lambda s, t: s.startswith(t)),
    "hourOfDay": _one(lambda t: F.floor(F.pmod(F.unix_seconds(t), F.lit(86400)) / 3600).cast("double")),
    "dayOfWeek": _one(lambda t: (F.pmod(F.floor(F.unix_seconds(t) / F.lit(86400.0)) + 3, F.lit(7)) + 1)
                      .cast("double")),
    "regionId": _region,
    "bucket": _bucket,
    "vfill": _coalesce,
    "dot": _dot,
    "norm": _norm,
    "cosine": _cosine,
    "vget": _vget,
}

FUNCTION_RULES = set(_CALL_RULES)

NODE_RULES = {Literal: _literal, Read: lambda cp, n: cp.read(n), Unary: _unary, Binary: _binary,
              Call: _call}


def to_column(expr, schema: T.StructType | None = None,
              field_of: Callable[[Read], str] = default_field) -> Column:
    """Compile an expression (or DSL text) to a Column.

    With ``schema`` (a DataFrame's), every read is checked against it: a missing column
    or a column of the wrong type is a ``DSLInputError`` naming it, before Spark runs.
    A vec expression gives a Spark ML vector column (VectorUDT); ``vVal`` needs the schema
    to read one (without it, it reads an array of numbers).
    """
    node = _checked(expr)
    compiler = _Compiler(schema, field_of, LambdaBinder())
    return compiler.output(node, compiler.compile(node))


def _checked(expr) -> Node:
    node = parse(expr)
    if node.type == "invalid":
        raise node.error
    return node


def with_dsl_columns(df, lambdas: dict, field_of: Callable[[Read], str] = default_field):
    """``df`` plus one column per ``{name: expression}``, all reading ``df``'s columns.

    Values used more than once are computed once, as intermediate columns that are
    dropped again; the plan stays native and fully code-generated.
    """
    binder = ProjectionBinder(set(df.columns) | set(lambdas))
    compiler = _Compiler(df.schema, field_of, binder)
    outputs = {}
    for name, e in lambdas.items():
        node = _checked(e)
        outputs[name] = compiler.output(node, compiler.compile(node))
    for projection in binder.levels():
        df = df.withColumns(projection)
    df = df.withColumns(outputs)
    return df.drop(*[name for name, _, _ in binder.bindings]) if binder.bindings else df
