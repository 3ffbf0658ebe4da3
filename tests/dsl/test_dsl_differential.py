"""Differential tests: the Python backend and the Spark backend give the same answer.

Hypothesis generates well-typed DSL expressions over every non-learned function and
every operator (nested up to depth 5) together with rows full of edge values (null,
NaN, ±inf, ±0.0, 1e308, 5e-324, empty and non-ASCII strings, timestamps at year 1,
just before the epoch and at the end of year 9999). Each hypothesis example is one
batch: N expressions × M rows. The rows become ONE Spark DataFrame and all N
expressions are selected at once, so a batch costs one Spark job; the same rows go
through ``palette.dsl.evaluate`` (compiled once per expression) and the results are
compared cell by cell.

Equality is exact (``==``, so ``-0.0 == 0.0`` as the DSL compares numbers), with one
reasoned exception: ``log``, ``log1p``, ``exp`` and ``pow`` are not correctly rounded
in either backend (Python calls the C library, Spark the JDK's fdlibm-derived math),
and the two differ by one ulp on a few percent of random inputs. So an
expression containing one of them may differ by at most one ulp — and to keep that
rule honest the generator only lets such a value flow into operations that cannot
magnify a one-ulp difference (``-``, ``abs``, ``nFill``, ``coalesce``, the branches of
``if``, ``min``, ``max``, ``clip``); their own arguments are exact expressions. ``sqrt``
is correctly rounded in IEEE 754, so it is compared exactly and may nest anywhere.

Strings use ASCII plus é ß Σ 中 İ and an astral character: Java 17's and Python
3.11's case mappings agree on these (including ß → SS and the final sigma rule,
"ΑΣ" → "ας"), and ``length`` counts code points in both.

Vectors (``vec``) come from two array<double> columns (``v``, ``w``: Python lists, which
may hold None, NaN or ±inf) and one Spark ML vector column (``m``: pyspark dense or
sparse vectors in Python): null, empty, zero, -0.0, huge (products and squares
overflow), tiny (squares underflow to 0), lengths 0 to 5, mostly 3 so that dot and
cosine often see equal lengths. dot, norm, cosine and vget are compared exactly: both
backends add in order (Spark's aggregate, Python's cumsum), and sqrt is correctly rounded.
A vec result is a Spark ML vector in Spark, a float64 array in Python.
"""
from __future__ import annotations

import math
import string
from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.ml.linalg import Vectors

from palette.dsl import parse, to_python
from palette.dsl.spark_backend import to_column
from palette.dsl import builders as B
from palette.dsl.ast import Binary, Call, Literal, Node, Read, Unary
from palette.dsl.functions import SIGNATURES

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

NUM_COLS, STR_COLS, BOOL_COLS, TS_COLS = ("x", "y", "z"), ("a", "b"), ("p", "q"), ("t", "u")
VEC_COLS = ("v", "w", "m")            # m: a Spark ML vector column; v, w: array<double>
SCHEMA = ("id long, x double, y double, z double, a string, b string, p boolean, q boolean, "
          "t timestamp, u timestamp, v array<double>, w array<double>")
ALL_COLS = NUM_COLS + STR_COLS + BOOL_COLS + TS_COLS + VEC_COLS


def spark_schema():
    """SCHEMA plus the vector column (a UDT has no DDL spelling)."""
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql import types as T
    return T.StructType(T._parse_datatype_string(SCHEMA).fields + [T.StructField("m", VectorUDT())])

INEXACT = {"log", "log1p", "exp", "pow"}          # not correctly rounded: ±1 ulp between backends

# Compiling to a Column costs py4j round trips per Spark expression node (a regionId at
# precision 12 alone is ~3,000), rows cost almost nothing: so few expressions, many rows.
EXPRS_PER_BATCH = 12
ROWS_PER_BATCH = 25
BATCHES = 8                                        # per ANSI mode: 8 × 12 × 25 = 2400 cases

# -- values --------------------------------------------------------------------------

EDGE_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 1.005, 3.0, -7.0, 10.0, 1e308, -1e308,
               1.7976931348623157e308, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 1e-12,
               2.0 ** 52, 2.0 ** 53 + 2, -(2.0 ** 63), 4.27043903341005e17, 90.0, -90.0, 180.0,
               -180.0, 45.0, 22.5, 57.64911, 10.40744, 37.7749, -122.4194, 709.0, 710.0, 86400.0]
# literals must be finite; rows also carry null, NaN and ±inf
ROW_FLOATS = EDGE_FLOATS + [None, None, math.nan, math.inf, -math.inf]

ALPHABET = string.ascii_letters[:6] + "XYZ xyz019_-.:\"\\" + "éßΣ中İ" + "\U0001F600"
EDGE_STRINGS = ["", "a", "A", "abc", "ABC", "ß", "Straße", "ΑΣ", "aΣ b", "é", "中文", "İ", " ",
                "\"q\"", "back\\slash", "\U0001F600x", "x:y"]

EDGE_TIMES = [datetime(1, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
              datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
              datetime(2000, 2, 29, 12, tzinfo=UTC), datetime(2024, 3, 10, 23, 30,
                                                             tzinfo=timezone(timedelta(hours=5, minutes=30))),
              datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=-8)))]

finite = st.floats(allow_nan=False, allow_infinity=False)
literal_num = st.one_of(st.sampled_from(EDGE_FLOATS), finite,
                        st.floats(-200, 200).map(lambda v: round(v, 3)))
row_num = st.one_of(st.sampled_from(ROW_FLOATS), st.floats(-200, 200),
                    st.floats(-200, 200).map(lambda v: round(v, 2)), st.floats())
any_str = st.one_of(st.sampled_from(EDGE_STRINGS), st.text(ALPHABET, max_size=6))
row_str = st.one_of(st.none(), any_str)
row_bool = st.sampled_from([None, True, False])
row_ts = st.one_of(st.none(), st.sampled_from(EDGE_TIMES),
                   st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31), timezones=st.just(UTC)))

NAN, INF = math.nan, math.inf
EDGE_VECS = [None, [], [0.0, 0.0, 0.0], [-0.0, -0.0, -0.0], [-0.0, 0.0, -0.0], [1.0, 2.0, 3.0],
             [3.0, -4.0, 0.0], [-1.0, 0.5, 2.0], [0.1, 0.2, 0.3], [1e308, 1e308, 1e308],
             [1e200, -1e200, 1e200], [1.7976931348623157e308, -1.7976931348623157e308, 1.0],
             [1e-200, -1e-200, 1e-200], [5e-324, 5e-324, -5e-324], [1e16, 1.0, -1e16],
             [1.0, NAN, 2.0], [INF, 0.0, 0.0], [0.0, -INF, 1.0], [1.0, None, 2.0], [2.5], [1.0, -2.0],
             [1.0, 2.0, 3.0, 4.0, 5.0]]
vec_elem = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(-200, 200), finite,
                     st.floats(-200, 200).map(lambda v: round(v, 2)))
row_list = st.one_of(st.sampled_from(EDGE_VECS), st.lists(vec_elem, min_size=3, max_size=3),
                     st.lists(vec_elem, min_size=0, max_size=5))


@st.composite
def row_ml_vector(draw):
    """A pyspark ML vector (dense or sparse; NaN and ±inf included) or None."""
    items = draw(row_list)
    if items is None:
        return None
    items = [NAN if x is None else x for x in items]
    if draw(st.booleans()):
        return Vectors.sparse(len(items), {i: x for i, x in enumerate(items) if x != 0})
    return Vectors.dense(items)


@st.composite
def rows(draw):
    row = {}
    for c in NUM_COLS:
        row[c] = draw(row_num)
    for c in STR_COLS:
        row[c] = draw(row_str)
    for c in BOOL_COLS:
        row[c] = draw(row_bool)
    for c in TS_COLS:
        row[c] = draw(row_ts)
    row["v"], row["w"], row["m"] = draw(row_list), draw(row_list), draw(row_ml_vector())
    return row


# -- expressions ------------------------------------------------------------------------

NUM_FORMS = ["neg", "+", "-", "*", "/", "%", "nFill", "abs", "sign", "sqrt", "min", "max", "clip",
             "round", "floor", "ceil", "length", "hourOfDay", "dayOfWeek", "bucket", "if", "coalesce",
             "log", "log1p", "exp", "pow"]
# regionId compiles to a large Spark expression (~3,000 py4j calls at precision 12), so
# inside other expressions it is drawn less often; every form is also the root of some
# expression of every run (ROOTS), which guarantees coverage.
STR_FORMS = ["sFill", "lower", "upper", "concat", "if", "coalesce"] * 2 + ["regionId"]
COMPARE = ["<", "<=", ">", ">=", "==", "!="]
BOOL_FORMS = COMPARE + ["and", "or", "not", "isNull", "contains", "startsWith", "if", "coalesce"]
TS_FORMS = ["if", "coalesce"]
VEC_FORMS = ["vfill", "if", "coalesce"]
NUM_FORMS += ["dot", "norm", "cosine", "vget"]
VGET_INDEXES = [0, 0, 1, 1, 2, 3, 4, 2 ** 31 - 1]
ROOTS = [(typ, form) for typ, forms in (("num", NUM_FORMS), ("str", STR_FORMS), ("bool", BOOL_FORMS),
                                        ("ts", TS_FORMS), ("vec", VEC_FORMS)) for form in dict.fromkeys(forms)]


class Gen:
    """Draws one well-typed expression; ``loose`` says whether an inexact (±1 ulp) num
    value may appear here."""

    def __init__(self, draw):
        self.draw = draw

    def pick(self, options):
        return self.draw(st.sampled_from(options))

    def n(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def leaf(self, typ):
        if typ == "num":
            if self.draw(st.booleans()):
                return B.nVal(self.pick(NUM_COLS))
            return Literal(self.draw(literal_num))
        if typ == "str":
            if self.draw(st.booleans()):
                return B.sVal(self.pick(STR_COLS))
            return Literal(self.draw(any_str))
        if typ == "bool":
            if self.draw(st.booleans()):
                return B.bVal(self.pick(BOOL_COLS))
            return Literal(self.draw(st.booleans()))
        if typ == "vec":
            return B.vVal(self.pick(VEC_COLS))
        return B.tVal(self.pick(TS_COLS))

    def expr(self, typ, depth, loose=False, form=None):
        if form is None:
            if depth == 0 or self.n(0, 9) < 3:
                return self.leaf(typ)
            forms = {"num": NUM_FORMS, "str": STR_FORMS, "bool": BOOL_FORMS, "ts": TS_FORMS, "vec": VEC_FORMS}[typ]
            if typ == "num" and not loose:
                forms = [f for f in forms if f not in INEXACT]
            form = self.pick(forms)
        return getattr(self, "_" + typ)(form, depth - 1, loose)

    def many(self, typ, depth, loose, lo=1, hi=3):
        return [self.expr(typ, depth, loose) for _ in range(self.n(lo, hi))]

    def _generic(self, form, typ, d, loose):
        if form == "if":
            return B.if_(self.expr("bool", d), self.expr(typ, d, loose), self.expr(typ, d, loose))
        if form == "coalesce":
            return B.coalesce(*self.many(typ, d, loose))
        raise AssertionError(form)

    def _num(self, form, d, loose):
        e = self.expr
        if form == "neg":
            return -e("num", d, loose)
        if form in ("+", "-", "*", "/", "%"):
            return Binary(form, e("num", d), e("num", d))
        if form == "nFill":
            return B.nFill(e("num", d, loose), e("num", d, loose))
        if form in ("min", "max"):
            return Call(form, tuple(self.many("num", d, loose, 1, 4)))
        if form == "clip":
            return B.clip(e("num", d, loose), e("num", d, loose), e("num", d, loose))
        if form == "abs":
            return B.abs_(e("num", d, loose))
        if form in ("sign", "sqrt", "floor", "ceil", "log", "log1p", "exp"):
            return Call(form, (e("num", d),))
        if form == "pow":
            return B.pow_(e("num", d), e("num", d))
        if form == "round":
            x = e("num", d)
            return B.round_(x) if self.draw(st.booleans()) else B.round_(x, self.n(-15, 15))
        if form == "length":
            return B.length(e("str", d))
        if form in ("hourOfDay", "dayOfWeek"):
            return Call(form, (e("ts", d),))
        if form == "bucket":
            cuts = sorted(set(self.draw(st.lists(literal_num, min_size=1, max_size=4))))
            return B.bucket(e("num", d), *cuts)
        if form in ("dot", "cosine"):
            return Call(form, (e("vec", d), e("vec", d)))
        if form == "norm":
            return B.norm(e("vec", d))
        if form == "vget":
            return B.vget(e("vec", d), self.pick(VGET_INDEXES))
        return self._generic(form, "num", d, loose)

    def _str(self, form, d, loose):
        e = self.expr
        if form == "sFill":
            return B.sFill(e("str", d), e("str", d))
        if form in ("lower", "upper"):
            return Call(form, (e("str", d),))
        if form == "concat":
            return B.concat(*self.many("str", d, False, 1, 4))
        if form == "regionId":
            lat, lng = e("num", d), e("num", d)
            if self.draw(st.booleans()):
                return B.regionId(lat, lng)
            return B.regionId(lat, lng, self.n(1, 12))
        return self._generic(form, "str", d, False)

    def _bool(self, form, d, loose):
        e = self.expr
        if form in COMPARE:
            typ = self.pick(["num", "str", "ts", "bool"] if form in ("==", "!=") else ["num", "str", "ts"])
            return Binary(form, e(typ, d), e(typ, d))
        if form in ("and", "or"):
            return Binary(form, e("bool", d), e("bool", d))
        if form == "not":
            return ~e("bool", d)
        if form == "isNull":
            return B.isNull(e(self.pick(["num", "str", "bool", "ts", "vec"]), d))
        if form in ("contains", "startsWith"):
            return Call(form, (e("str", d), e("str", d)))
        return self._generic(form, "bool", d, False)

    def _ts(self, form, d, loose):
        return self._generic(form, "ts", d, False)

    def _vec(self, form, d, loose):
        if form == "vfill":
            return B.vfill(self.expr("vec", d), self.expr("vec", d))
        return self._generic(form, "vec", d, False)


MAX_DEPTH = 5


@st.composite
def expressions(draw, typ=None, depth=MAX_DEPTH, root=None):
    """An expression; ``root=(type, form)`` fixes the outermost form."""
    if root is not None:
        return Gen(draw).expr(root[0], depth, loose=True, form=root[1])
    typ = typ or draw(st.sampled_from(["num", "num", "num", "str", "str", "bool", "bool", "ts", "vec"]))
    return Gen(draw).expr(typ, depth, loose=True)


# -- comparing ------------------------------------------------------------------------

def _micros(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


def _uses_inexact(e: Node) -> bool:
    return any(isinstance(n, Call) and n.name in INEXACT for n in e.walk())


def _check_python_value(e: Node, v):
    if e.type == "vec":
        assert v is None or (type(v) is np.ndarray and v.dtype == np.float64 and v.ndim == 1), f"{e} gave {v!r}"
        assert v is None or np.isfinite(v).all(), f"{e} gave {v!r}: NaN and ±inf must not escape"
        return
    want = {"num": float, "str": str, "bool": bool, "ts": datetime}[e.type]
    assert v is None or type(v) is want, f"{e} gave {v!r}, not {want.__name__}"
    if e.type == "num" and v is not None:
        assert math.isfinite(v), f"{e} gave {v!r}: NaN and ±inf must be null"


def same(e: Node, py, sp) -> bool:
    if py is None or sp is None:
        return py is None and sp is None
    if e.type == "ts":
        return _micros(py) == sp
    if e.type == "vec":                   # a Spark ML vector; its numbers compare as the DSL's (==)
        return hasattr(sp, "toArray") and py.shape == sp.toArray().shape and bool((py == sp.toArray()).all())
    if e.type == "num":
        if not math.isfinite(sp):
            return False
        if py == sp:
            return True
        return _uses_inexact(e) and abs(py - sp) <= max(math.ulp(py), math.ulp(sp))
    return type(py) is type(sp) and py == sp


def _spark_rows(rows):
    return [(i, *(r.get(c) for c in ALL_COLS)) for i, r in enumerate(rows)]


def _select(df, exprs):
    from pyspark.sql import functions as F
    cols = []
    for i, e in enumerate(exprs):
        c = to_column(e, schema=df.schema)
        if e.type == "ts":            # pyspark cannot collect year-1 timestamps; compare micros
            c = F.unix_micros(c)
        cols.append(c.alias(f"e{i}"))
    return df.select("id", *cols)


def run_batch(spark, exprs, rows, stats):
    compiled = [to_python(e) for e in exprs]
    expected = []
    for e, f in zip(exprs, compiled):
        col = []
        for r in rows:
            v = f(r)
            _check_python_value(e, v)
            col.append(v)
        expected.append(col)
    df = spark.createDataFrame(_spark_rows(rows), spark_schema())
    got = {r["id"]: r for r in _select(df, exprs).collect()}
    assert sorted(got) == list(range(len(rows)))
    failures = []
    for i, e in enumerate(exprs):
        for j, r in enumerate(rows):
            py, sp = expected[i][j], got[j][f"e{i}"]
            if not same(e, py, sp):
                failures.append(f"{e}\n    row {r}\n    python {py!r}  spark {sp!r}")
            stats["cases"] += 1
        for n in e.walk():
            stats[_form(n)] += 1
    if failures:
        by_expr = Counter(f.split("\n")[0] for f in failures)
        pytest.fail(f"{len(failures)} mismatches in {len(by_expr)} expressions, e.g.:\n"
                    + "\n".join(failures[:3]) + "\nby expression:\n"
                    + "\n".join(f"  {n} × {e}" for e, n in by_expr.most_common(10)), pytrace=False)


def _form(n: Node) -> str:
    if isinstance(n, Call):
        return n.name
    if isinstance(n, Binary):
        return n.op
    if isinstance(n, Unary):
        return "unary " + n.op
    if isinstance(n, Read):
        return n.reader
    return "literal " + n.type


ALL_FORMS = ({name for name, sig in SIGNATURES.items() if not sig.learned}
             | {"+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "and", "or", "unary -",
                "unary not", "nVal", "sVal", "bVal", "tVal", "vVal", "literal num", "literal str",
                "literal bool"})

SETTINGS = settings(max_examples=BATCHES, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate],       # no shrinking: reports are per case
                    suppress_health_check=list(HealthCheck))


def test_python_and_spark_agree(spark_session, ansi, capsys):
    stats = Counter()

    def draw_batch(data, roots):
        exprs = [data.draw(expressions(root=r), label=f"e{j}") for j, r in enumerate(roots)]
        rs = data.draw(st.lists(rows(), min_size=ROWS_PER_BATCH, max_size=ROWS_PER_BATCH), label="rows")
        run_batch(spark_session, exprs, rs, stats)
        stats.update(roots)

    @SETTINGS
    @given(st.data())
    def batch(data):
        roots = data.draw(st.lists(st.sampled_from(ROOTS), min_size=EXPRS_PER_BATCH,
                                   max_size=EXPRS_PER_BATCH), label="roots")
        draw_batch(data, roots)

    batch()
    # Every form is the root of at least one expression: top up the forms chance left out.
    missing_roots = [r for r in ROOTS if r not in stats]
    if missing_roots:
        @settings(SETTINGS, max_examples=1)
        @given(st.data())
        def top_up(data):
            draw_batch(data, missing_roots)
        top_up()
    missing = ALL_FORMS - set(stats)
    assert not missing, f"the generator never produced {sorted(missing)}"
    assert stats["cases"] >= 2000
    with capsys.disabled():
        print(f"\n[dsl differential, ansi={ansi}] compared {stats['cases']} cases "
              f"({stats['cases'] // ROWS_PER_BATCH} expressions × {ROWS_PER_BATCH} rows; "
              f"{len(missing_roots)} forms topped up)")


def test_targeted_edges_agree(spark_session, ansi):
    """Every one-argument num function and every operator on every pair of edge values
    (not left to chance): ~50 values, the grid of pairs for the binary operators."""
    vals = [v for v in ROW_FLOATS if v is not None] + [None, 123.456, -0.75, 1.5, 2.675, 0.125,
                                                        1234.5, -1234.5, 9.5e15, 4.711176725e18]
    x, y = B.nVal("x"), B.nVal("y")
    exprs = [Call(f, (x,)) for f in ("abs", "sign", "sqrt", "floor", "ceil", "log", "log1p", "exp")]
    exprs += [-x, B.isNull(x), B.nFill(x, -1), B.clip(x, -1, 1), B.bucket(x, -1, 0, 2.5),
              B.regionId(x, y, 1), B.regionId(x, y, 12), B.regionId(x, y)]
    exprs += [B.round_(x, d) for d in (-15, -10, -4, -2, -1, 0, 1, 2, 3, 15)]
    exprs += [Binary(op, x, y) for op in ("+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=")]
    exprs += [B.pow_(x, y), B.min_(x, y), B.max_(x, y), B.min_(x, y, -0.0), B.max_(-0.0, x, y)]
    rs = []
    for vx in vals:
        for vy in vals:
            rs.append({"x": vx, "y": vy, "z": None, "a": None, "b": None, "p": None, "q": None,
                       "t": None, "u": None})
    stats = Counter()
    run_batch(spark_session, exprs, rs, stats)
    assert stats["cases"] == len(exprs) * len(rs)


def test_vector_edges_agree(spark_session, ansi):
    """Every vector function on every pair of edge vectors (null, empty, zeros, -0.0, NaN,
    ±inf, a null element, overflowing and underflowing products, lengths 1 to 5), read from
    array<double> columns and from a Spark ML vector column (dense and sparse)."""
    v, w, m = B.vVal("v"), B.vVal("w"), B.vVal("m")
    exprs = [B.dot(v, w), B.cosine(v, w), B.norm(v), B.norm(m), B.dot(m, w), B.cosine(w, m), B.dot(v, v),
             B.cosine(v, v), B.vget(v, 0), B.vget(v, 2), B.vget(m, 1), B.vget(v, 2 ** 31 - 1), B.vfill(v, w),
             B.vfill(m, v), B.isNull(v), B.isNull(m), v, m, B.if_(B.isNull(v), w, v), B.coalesce(m, v, w)]
    rs = []
    for i, vv in enumerate(EDGE_VECS):
        for j, ww in enumerate(EDGE_VECS):
            mm = None if vv is None else [NAN if e is None else e for e in vv]
            if mm is not None:
                mm = Vectors.sparse(len(mm), {k: e for k, e in enumerate(mm) if e != 0}) if (i + j) % 2 \
                    else Vectors.dense(mm)
            rs.append({"v": vv, "w": ww, "m": mm})
    stats = Counter()
    run_batch(spark_session, exprs, rs, stats)
    assert stats["cases"] == len(exprs) * len(EDGE_VECS) ** 2


def test_rounding_of_large_numbers_agrees(spark_session, ansi):
    """round with negative d on whole numbers of 16+ digits, where Java 17's
    Double.toString is not always the shortest form (so Spark's BigDecimal rounding and
    Python's shortest repr would disagree without care)."""
    import random
    rnd = random.Random(20240521)
    vals = [4.27043903341005e17, 9.16257995841275e18, 4.711176725e18, 3.198874384318755e18,
            8.9892790601845e16, 1.806114846147485e16, 2.0 ** 53, 2.0 ** 53 - 1, 1e31, 9e30, 1e300,
            1.7976931348623157e308]
    for _ in range(400):
        digits = rnd.randint(1, 17)
        k = rnd.randint(10 ** (digits - 1), 10 ** digits - 1)
        vals.append(float(f"{k}5e{rnd.randint(-2, 16)}"))
        vals.append(rnd.uniform(9e15, 1e22))
    vals += [-v for v in vals]
    x = B.nVal("x")
    exprs = [B.round_(x, d) for d in range(-15, 16)]
    rs = [{"x": v, "y": None, "z": None, "a": None, "b": None, "p": None, "q": None, "t": None,
           "u": None} for v in vals]
    run_batch(spark_session, exprs, rs, Counter())


# -- canonical text ----------------------------------------------------------------------

@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(expressions())
def test_text_round_trip(e):
    text = str(e)
    back = parse(text)
    assert back.equals(e), text
    assert parse(str(e)) == e            # the documented spelling of the same assertion
    assert str(back) == text
    assert back.type == e.type


# -- the Spark plan is native -----------------------------------------------------------

def rich_expression():
    """One expression that uses every non-learned function and every operator."""
    x, y, z = B.nVal("x"), B.nVal("y"), B.nVal("z")
    a, b, p, q, t, u = B.sVal("a"), B.sVal("b"), B.bVal("p"), B.bVal("q"), B.tVal("t"), B.tVal("u")
    v, w, m = B.vVal("v"), B.vVal("w"), B.vVal("m")
    num = (B.nFill(x, 0) + B.log(B.abs_(y)) - B.log1p(z) * B.sqrt(x) / B.exp(y) % B.pow_(x, 2)
           + B.dot(v, w) + B.norm(B.vfill(v, m)) + B.cosine(m, w) + B.vget(B.coalesce(w, v), 1)
           + B.sign(-x) + B.min_(x, y, z) + B.max_(x, y) + B.clip(x, -1, 1) + B.round_(x, 2)
           + B.floor(y) + B.ceil(z) + B.length(B.concat(B.lower(a), B.upper(b), B.sFill(a, "")))
           + B.hourOfDay(B.coalesce(t, u)) + B.dayOfWeek(t) + B.bucket(x, 0, 1))
    return B.if_(((num > 0) & B.contains(a, "x") | ~B.startsWith(b, "y") | (p == q)
                  | B.isNull(B.regionId(x, y)) | (t < u) | (a >= b) | (x != y) | (x <= y) | (y >= x)),
                 B.regionId(x, y, 9), B.sFill(a, "none"))


def test_plan_has_no_python_udfs(spark_session):
    e = rich_expression()
    used = {n.name for n in e.walk() if isinstance(n, Call)}
    assert used == {name for name, sig in SIGNATURES.items() if not sig.learned}
    df = spark_session.createDataFrame(_spark_rows([]), spark_schema())
    plan = df.select(to_column(e, schema=df.schema).alias("r"))._jdf.queryExecution().executedPlan().toString()
    for udf in ("BatchEvalPython", "ArrowEvalPython", "PythonUDF", "pythonUDF"):
        assert udf not in plan, plan
    assert "Project" in plan
