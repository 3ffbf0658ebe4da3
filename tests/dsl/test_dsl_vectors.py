"""The vec type: vVal, dot, norm, cosine, vget, vfill, and vectors through if/coalesce/isNull.

Expected values are worked out by hand (or by a plain Python loop, the definition of a
sequential sum) and every case runs through BOTH backends, Spark with
``spark.sql.ansi.enabled`` on and off. Also: which Python values and Spark columns vVal
reads, the type errors, the canonical text, and a vec result as a stage's output — a
Spark ML vector that VectorAssembler takes, a float64 array in Python.
"""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from pyspark.ml.linalg import DenseVector, Vectors, VectorUDT

from palette.dsl import DSLInputError, DSLTypeError, evaluate, parse, to_python
from palette.dsl import builders as B
from palette.dsl.spark_backend import to_column

NAN, INF = math.nan, math.inf
VEC_COLUMNS = ("v", "w", "f", "i", "d", "m")


def vector_schema():
    """v, w: array<double>; f: array<float>; i: array<int>; d: array<decimal(20,3)>; m: a Spark ML vector."""
    from pyspark.sql import types as T
    arr = lambda name, t: T.StructField(name, T.ArrayType(t))         # noqa: E731
    return T.StructType([T.StructField("id", T.LongType()), arr("v", T.DoubleType()), arr("w", T.DoubleType()),
                         arr("f", T.FloatType()), arr("i", T.IntegerType()), arr("d", T.DecimalType(20, 3)),
                         T.StructField("m", VectorUDT())])


class Zero:
    """0.0 of one sign (a num result)."""

    def __init__(self, sign):
        self.sign = sign

    def matches(self, got):
        return type(got) is float and got == 0 and math.copysign(1.0, got) == self.sign

    def __repr__(self):
        return "+0.0" if self.sign > 0 else "-0.0"


PLUS_ZERO, MINUS_ZERO = Zero(1.0), Zero(-1.0)


class Vec:
    """A vec result: these float64 numbers, bit for bit (so -0.0 stays -0.0)."""

    def __init__(self, *values):
        self.values = np.array(values, dtype=np.float64)

    def matches(self, got):
        if hasattr(got, "toArray") and not isinstance(got, np.ndarray):
            got = got.toArray()
        return (isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == self.values.shape
                and got.tobytes() == self.values.tobytes())

    def __repr__(self):
        return f"vec{self.values.tolist()}"


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def matches(expected, got) -> bool:
    if hasattr(expected, "matches"):
        return expected.matches(got)
    if expected is None or got is None:
        return expected is None and got is None
    return type(got) is type(expected) and got == expected


def _spark_value(column, v):
    """A row's value as Spark takes it: numpy arrays become lists."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def check(spark, cases):
    """cases: (expression text or node, row (missing columns are null), expected); evaluated
    by the Python backend on the row and by Spark on a DataFrame of all rows."""
    exprs, rows = {}, {}
    for e, row, _ in cases:
        exprs.setdefault(str(parse(e)), parse(e))
        key = repr([(c, row.get(c)) for c in VEC_COLUMNS])
        rows.setdefault(key, (len(rows), row))
    names = {text: f"e{k}" for k, text in enumerate(exprs)}
    data = [(i, *(_spark_value(c, row.get(c)) for c in VEC_COLUMNS)) for i, row in rows.values()]
    df = spark.createDataFrame(data, vector_schema())
    got = {r["id"]: r for r in df.select("id", *[to_column(n, schema=df.schema).alias(names[t])
                                                  for t, n in exprs.items()]).collect()}
    failures = []
    for e, row, expected in cases:
        text = str(parse(e))
        i = rows[repr([(c, row.get(c)) for c in VEC_COLUMNS])][0]
        py = to_python(e)({c: row.get(c) for c in VEC_COLUMNS})
        sp = got[i][names[text]]
        for backend, value in (("python", py), ("spark", sp)):
            if not matches(expected, value):
                failures.append(f"{backend}: {text} with {row} gave {value!r}, expected {expected!r}")
    assert not failures, "\n".join(failures)


def fold(xs) -> float:
    """The definition: 0.0 + xs[0] + xs[1] + ..., in order."""
    acc = 0.0
    for x in xs:
        acc = acc + x
    return acc


# -- the functions, by hand -------------------------------------------------------------------

def test_dot_norm_cosine(spark_session, ansi):
    dot, norm, cos = 'dot(vVal("v"), vVal("w"))', 'norm(vVal("v"))', 'cosine(vVal("v"), vVal("w"))'
    check(spark_session, [
        (dot, {"v": [1.0, 2.0, 3.0], "w": [4.0, -5.0, 6.0]}, 12.0),
        (dot, {"v": [0.1, 0.2], "w": [1.0, 1.0]}, 0.30000000000000004),     # 0.0 + 0.1 + 0.2
        (dot, {"v": [1e16, 1.0, -1e16], "w": [1.0, 1.0, 1.0]}, 0.0),         # in order: 1e16 + 1 rounds to 1e16
        (dot, {"v": [1.0, -1e16, 1e16], "w": [1.0, 1.0, 1.0]}, 0.0),
        (dot, {"v": [1e16, -1e16, 1.0], "w": [1.0, 1.0, 1.0]}, 1.0),
        (dot, {"v": [], "w": []}, 0.0),                                      # empty: the fold's 0.0
        (dot, {"v": [1.0, 2.0], "w": [1.0, 2.0, 3.0]}, None),                # lengths differ
        (dot, {"v": [], "w": [1.0]}, None),
        (dot, {"v": None, "w": [1.0]}, None),
        (dot, {"v": [1.0], "w": None}, None),
        (dot, {"v": [1e200, 1e200], "w": [1e200, 1e200]}, None),             # overflow
        (dot, {"v": [1e200, 1e200], "w": [1e200, -1e200]}, None),            # inf - inf
        (dot, {"v": [1e308, 1e308], "w": [1.0, -1.0]}, 0.0),                 # no overflow on the way
        (dot, {"v": [1e308, 1e308, -1e308], "w": [1.0, 1.0, 1.0]}, None),    # overflows on the way
        (dot, {"v": [5e-324], "w": [0.5]}, PLUS_ZERO),                       # underflow
        (dot, {"v": [-0.0, -0.0], "w": [1.0, 1.0]}, PLUS_ZERO),              # 0.0 + -0.0 = 0.0
        (dot, {"v": [-1.0], "w": [0.0]}, PLUS_ZERO),
        (dot, {"v": [0.0, 0.0], "w": [0.0, 0.0]}, PLUS_ZERO),
        ('dot(vVal("v"), vVal("v"))', {"v": [3.0, 4.0]}, 25.0),
        (norm, {"v": [3.0, 4.0]}, 5.0),
        (norm, {"v": [3.0, -4.0, 0.0, -0.0]}, 5.0),
        (norm, {"v": []}, PLUS_ZERO),
        (norm, {"v": [-0.0]}, PLUS_ZERO),
        (norm, {"v": [0.0, 0.0]}, PLUS_ZERO),
        (norm, {"v": [2.0]}, 2.0),
        (norm, {"v": [1.0, 1.0]}, math.sqrt(2.0)),
        (norm, {"v": [1e200, 1.0]}, None),                                   # the square overflows
        (norm, {"v": [1e153, 1e153]}, math.sqrt(fold([1e153 * 1e153] * 2))),
        (norm, {"v": [1e154, 1e154]}, None),                                 # the sum of squares overflows
        (norm, {"v": [1e-200, 1e-200]}, PLUS_ZERO),                          # squares underflow
        (norm, {"v": None}, None),
        (cos, {"v": [1.0, 0.0], "w": [0.0, 1.0]}, PLUS_ZERO),
        (cos, {"v": [1.0, 2.0], "w": [2.0, 4.0]}, 10.0 / (math.sqrt(5.0) * math.sqrt(20.0))),
        (cos, {"v": [1.0, 2.0], "w": [-1.0, -2.0]}, -5.0 / (math.sqrt(5.0) * math.sqrt(5.0))),
        (cos, {"v": [3.0, 4.0], "w": [3.0, 4.0]}, 1.0),
        (cos, {"v": [0.0, 0.0], "w": [1.0, 1.0]}, None),                     # a zero vector
        (cos, {"v": [-0.0], "w": [1.0]}, None),
        (cos, {"v": [], "w": []}, None),                                     # empty: norms 0
        (cos, {"v": [1e-200], "w": [1e-200]}, None),                         # norms underflow to 0
        (cos, {"v": [1.0, 2.0], "w": [1.0, 2.0, 3.0]}, None),                # lengths differ
        (cos, {"v": None, "w": [1.0]}, None),
        (cos, {"v": [1e200, 0.0], "w": [1e200, 0.0]}, None),                 # dot overflows
        (cos, {"v": [1e200, 0.0], "w": [0.0, 1e200]}, None),                 # squares overflow
        (cos, {"v": [1e150, 0.0], "w": [0.0, 1e160]}, None),                 # a norm overflows
        (cos, {"v": [1e-170, 1e-170], "w": [1e-170, 1e-170]}, None),         # squares underflow: 0 norms
        (cos, {"v": [1e-160, 1e-160], "w": [1e-160, 1e-160]}, 1.0),          # subnormal squares, not 0
        (cos, {"v": [1e-150, 2e-150], "w": [3e-150, 4e-150]},                # tiny but not zero
         fold([1e-150 * 3e-150, 2e-150 * 4e-150])
         / (math.sqrt(fold([1e-150 * 1e-150, 2e-150 * 2e-150])) * math.sqrt(fold([3e-150 * 3e-150, 4e-150 * 4e-150])))),
    ])


def test_vget_vfill_if_coalesce_isnull(spark_session, ansi):
    check(spark_session, [
        ('vget(vVal("v"), 0)', {"v": [1.5, 2.5]}, 1.5),
        ('vget(vVal("v"), 1)', {"v": [1.5, 2.5]}, 2.5),
        ('vget(vVal("v"), 2)', {"v": [1.5, 2.5]}, None),                   # past the end
        ('vget(vVal("v"), 0)', {"v": []}, None),
        ('vget(vVal("v"), 2147483647)', {"v": [1.0]}, None),
        ('vget(vVal("v"), 0)', {"v": None}, None),
        ('vget(vVal("v"), 0)', {"v": [-0.0]}, MINUS_ZERO),                   # the element as it is
        ('vget(vVal("v"), 1)', {"v": [1.0, 1.7976931348623157e308]}, 1.7976931348623157e308),
        ('vget(vVal("v"), 0)', {"v": [NAN, 1.0]}, None),                    # the vector read as null
        ('vget(vVal("v"), 1) * 2', {"v": [1.0, 1e308]}, None),
        ('vfill(vVal("v"), vVal("w"))', {"v": None, "w": [1.0, -0.0]}, Vec(1.0, -0.0)),
        ('vfill(vVal("v"), vVal("w"))', {"v": [], "w": [1.0]}, Vec()),           # empty is not null
        ('vfill(vVal("v"), vVal("w"))', {"v": [INF], "w": [2.0]}, Vec(2.0)),     # ±inf read as null
        ('vfill(vVal("v"), vVal("w"))', {"v": None, "w": None}, None),
        ('vfill(vVal("v"), vVal("m"))', {"v": None, "m": Vectors.sparse(3, {1: 4.0})}, Vec(0.0, 4.0, 0.0)),
        ('if(isNull(vVal("v")), vVal("w"), vVal("v"))', {"v": [1.0], "w": [2.0]}, Vec(1.0)),
        ('if(isNull(vVal("v")), vVal("w"), vVal("v"))', {"v": None, "w": [2.0]}, Vec(2.0)),
        ('if(dot(vVal("v"), vVal("w")) > 0, vVal("v"), vVal("w"))', {"v": [1.0], "w": None}, None),  # null condition
        ('coalesce(vVal("v"), vVal("w"), vVal("m"))', {"m": DenseVector([7.0])}, Vec(7.0)),
        ('coalesce(vVal("v"))', {"v": [1.0, NAN]}, None),
        ('isNull(vVal("v"))', {"v": None}, True),
        ('isNull(vVal("v"))', {"v": []}, False),
        ('isNull(vVal("v"))', {"v": [0.0, NAN]}, True),
        ('isNull(vVal("v"))', {"v": [1.0, None]}, True),                   # a null element: a null vector
        ('isNull(vVal("m"))', {"m": DenseVector([1.0, -INF])}, True),
        ('isNull(vVal("m"))', {"m": Vectors.sparse(2, {})}, False),
        ('vVal("v")', {"v": [1.0, -0.0, 5e-324]}, Vec(1.0, -0.0, 5e-324)),
        ('vVal("m")', {"m": Vectors.sparse(4, {0: -1.0, 3: 2.5})}, Vec(-1.0, 0.0, 0.0, 2.5)),
        ('norm(vfill(vVal("v"), vVal("w")))', {"v": None, "w": [6.0, 8.0]}, 10.0),
    ])


def test_reads_every_numeric_array_and_vectors(spark_session, ansi):
    """array<float>/array<int>/array<decimal> are widened to float64, as nVal widens; a
    float32 NaN or inf makes the vector null; Python takes the values Spark collects."""
    check(spark_session, [
        ('vVal("f")', {"f": np.array([0.1, -2.5], dtype=np.float32)}, Vec(float(np.float32(0.1)), -2.5)),
        ('dot(vVal("f"), vVal("v"))', {"f": np.array([0.5, 0.25], dtype=np.float32), "v": [2.0, 4.0]}, 2.0),
        ('isNull(vVal("f"))', {"f": np.array([1.0, NAN], dtype=np.float32)}, True),
        ('isNull(vVal("f"))', {"f": np.array([1.0, INF], dtype=np.float32)}, True),
        ('vVal("i")', {"i": [3, -2147483648]}, Vec(3.0, -2147483648.0)),
        ('norm(vVal("i"))', {"i": [3, 4]}, 5.0),
        ('vget(vVal("i"), 1)', {"i": [1, None]}, None),
        ('vVal("m")', {"m": DenseVector([1.0, 2.0])}, Vec(1.0, 2.0)),
        ('dot(vVal("m"), vVal("i"))', {"m": Vectors.sparse(3, {2: 2.0}), "i": [5, 6, 7]}, 14.0),
    ])
    from decimal import Decimal
    df = spark_session.createDataFrame([(1, None, None, None, None, [Decimal("1.250"), Decimal("-3.000")], None)],
                                       vector_schema())
    got = df.select(to_column('norm(vVal("d"))', schema=df.schema), to_column('vVal("d")', schema=df.schema)).first()
    assert got[0] == evaluate('norm(vVal("d"))', {"d": [Decimal("1.250"), Decimal("-3.000")]}) == math.sqrt(1.5625 + 9.0)
    assert got[1].toArray().tolist() == [1.25, -3.0]


def test_sequential_sums_are_bit_identical_on_long_vectors(spark_session, ansi):
    """2,000-long vectors of mixed magnitudes: dot and norm are the in-order fold, bit for
    bit, in both backends; numpy's sum and dot (pairwise, SIMD) round differently."""
    rng = np.random.default_rng(11)
    n = 12
    a = rng.normal(size=(n, 2000)) * 10.0 ** rng.uniform(-6, 6, (n, 2000))
    b = rng.normal(size=(n, 2000)) * 10.0 ** rng.uniform(-6, 6, (n, 2000))
    data = [(k, a[k].tolist(), b[k].tolist(), None, None, None, Vectors.dense(b[k])) for k in range(n)]
    df = spark_session.createDataFrame(data, vector_schema())
    exprs = {"dot": 'dot(vVal("v"), vVal("w"))', "dot_m": 'dot(vVal("v"), vVal("m"))', "norm": 'norm(vVal("v"))',
             "cos": 'cosine(vVal("v"), vVal("m"))'}
    got = {r["id"]: r for r in df.select("id", *[to_column(e, schema=df.schema).alias(k)
                                                  for k, e in exprs.items()]).collect()}
    numpy_differs = 0
    for k in range(n):
        want_dot = fold((a[k] * b[k]).tolist())
        want_norm = math.sqrt(fold((a[k] * a[k]).tolist()))
        want_cos = want_dot / (want_norm * math.sqrt(fold((b[k] * b[k]).tolist())))
        row = {"v": a[k], "w": b[k].tolist(), "m": DenseVector(b[k])}
        for name, want in (("dot", want_dot), ("dot_m", want_dot), ("norm", want_norm), ("cos", want_cos)):
            py = evaluate(exprs[name], row)
            assert bits(py) == bits(want) == bits(got[k][name]), (k, name, py, want, got[k][name])
        numpy_differs += float(np.dot(a[k], b[k])) != want_dot
    assert numpy_differs >= n // 2, "the vectors do not tell a sequential sum from numpy's"


# -- what vVal reads ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, want", [
    ([1.0, 2.0], [1.0, 2.0]),
    ((1, 2.5), [1.0, 2.5]),
    ([np.float32(0.5), np.int64(3), 2], [0.5, 3.0, 2.0]),
    (np.array([1.5, -0.0], dtype=np.float32), [1.5, -0.0]),
    (np.array([1.5, 2.0], dtype=np.float16), [1.5, 2.0]),
    (np.array([1, 2], dtype=np.int32), [1.0, 2.0]),
    (np.array([1, 2], dtype=np.uint8), [1.0, 2.0]),
    (np.array([1.0, 2], dtype=object), [1.0, 2.0]),
    (np.array([], dtype=np.float64), []),
    ([], []),
    (DenseVector([1.0, 2.0]), [1.0, 2.0]),
    (Vectors.sparse(3, {1: 2.0}), [0.0, 2.0, 0.0]),
    ("palette-sparse", [0.0, 5.0, 0.0, 0.0]),
])
def test_python_reads_vectors(value, want):
    if isinstance(value, str):
        from palette.transformers.runtime.vectors import SparseVector
        value = SparseVector(4, (1,), (5.0,))
    got = evaluate('vVal("v")', {"v": value})
    assert type(got) is np.ndarray and got.dtype == np.float64 and got.ndim == 1
    assert got.tobytes() == np.array(want, dtype=np.float64).tobytes()


def test_python_reads_a_copy():
    """The value never aliases the row's array: a caller mutating its input later (or a
    later stage mutating the output) changes neither."""
    src = np.array([1.0, 2.0])
    got = evaluate('vVal("v")', {"v": src})
    src[0] = 9.0
    assert got.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("value", [None, [1.0, NAN], [INF], [-INF, 0.0], [1.0, None], np.array([NAN]),
                                   np.array([1e300], dtype=np.longdouble) * 1e300, [10 ** 400], DenseVector([NAN]),
                                   np.array([1.0, None], dtype=object)])
def test_python_reads_as_null(value):
    assert evaluate('vVal("v")', {"v": value}) is None
    assert evaluate('isNull(vVal("v"))', {"v": value}) is True


@pytest.mark.parametrize("value", ["1,2", b"12", 3.0, 3, True, {"a": 1.0}, [1.0, "2"], [True, 1.0], [[1.0]],
                                   np.array([True, False]), np.array([[1.0, 2.0]]), np.float64(1.0),
                                   np.array(["a"]), np.array([1 + 2j])])
def test_python_rejects_what_is_not_a_vector(value):
    with pytest.raises(DSLInputError, match=r"field 'v' read by vVal\(\"v\"\) must be a vector \(vVal\)"):
        evaluate('vVal("v")', {"v": value})


def test_wrong_value_is_an_error_whatever_branch_is_taken():
    with pytest.raises(DSLInputError, match="must be a vector"):
        evaluate('if(true, 1, vget(vVal("v"), 0))', {"v": "no"})


def test_a_long_vector_in_an_error_is_shortened():
    with pytest.raises(DSLInputError) as info:
        evaluate('vVal("v")', {"v": ["x"] * 10_000})
    assert len(str(info.value)) < 500


def test_spark_column_types(spark_session):
    df = spark_session.createDataFrame([], "s string, x double, b array<boolean>, a array<string>, "
                                           "n array<array<double>>, t array<timestamp>")
    for col, found in (("s", "string"), ("x", "double"), ("b", "array<boolean>"), ("a", "array<string>"),
                       ("n", "array<array<double>>"), ("t", "array<timestamp>")):
        with pytest.raises(DSLInputError, match=rf"column '{col}' read by vVal\(\"{col}\"\) must be a vector column "
                                                rf"\(a Spark ML vector, or an array of numbers\), got {re_escape(found)}"):
            to_column(f'norm(vVal("{col}"))', schema=df.schema)
    with pytest.raises(DSLInputError, match=r"column 'zz', which vVal\(\"zz\"\) reads, is not in the input"):
        to_column('vVal("zz")', schema=df.schema)
    with pytest.raises(DSLInputError, match="must be a numeric column, got array<double>"):
        to_column('nVal("v")', schema=vector_schema())


def re_escape(s):
    import re
    return re.escape(s)


def test_without_a_schema_an_array_column_is_read(spark_session):
    df = spark_session.createDataFrame([([3.0, 4.0],), (None,), ([1.0, float("nan")],)], "v array<double>")
    assert [r[0] for r in df.select(to_column('norm(vVal("v"))')).collect()] == [5.0, None, None]


# -- types and text -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ('vVal("v") + 1', ["operator '+' needs num operands, got vec and num", "use dot, norm, cosine or vget"]),
    ('vVal("v") * vVal("w")', ["operator '*' needs num operands, got vec and vec", "use dot"]),
    ('-vVal("v")', ["operator '-' needs a num operand, got vec", "use dot"]),
    ('vVal("v") == vVal("w")', ["operator '==' does not compare vec values", "use dot"]),
    ('vVal("v") != vVal("w")', ["operator '!=' does not compare vec values"]),
    ('vVal("v") < 1', ["operator '<' does not compare vec values"]),
    ('vVal("v") and true', ["operator 'and' needs bool operands, got vec and bool"]),
    ('not vVal("v")', ["operator 'not' needs a bool operand, got vec"]),
    ('log(vVal("v"))', ["argument 1 of log must be num, got vec", "log(num)"]),
    ('min(vVal("v"), 1)', ["argument 1 of min must be num, got vec"]),
    ('norm(nVal("x"))', ["argument 1 of norm must be vec, got num", "norm(vec)"]),
    ('dot(vVal("v"))', ["function dot takes 2 arguments, got 1", "dot(vec, vec)"]),
    ('cosine(vVal("v"), sVal("s"))', ["argument 2 of cosine must be vec, got str"]),
    ('vfill(vVal("v"), 0)', ["argument 2 of vfill must be vec, got num", "vfill(vec, vec)"]),
    ('if(true, vVal("v"), 0)', ["argument 3 of if must be vec like the arguments before it, got num"]),
    ('coalesce(vVal("v"), nVal("x"))', ["argument 2 of coalesce must be vec"]),
    ('vget(vVal("v"))', ["function vget takes 2 arguments, got 1", "vget(vec, <int>)"]),
    ('vget(vVal("v"), -1)', ["argument 2 of vget must be a whole number from 0 to 2147483647, got -1"]),
    ('vget(vVal("v"), 1.5)', ["must be a whole number from 0 to 2147483647, got 1.5"]),
    ('vget(vVal("v"), 2147483648)', ["must be a whole number from 0 to 2147483647"]),
    ('vget(vVal("v"), nVal("i"))', ["argument 2 of vget must be a literal, got the expression nVal(\"i\")"]),
    ('vget(nVal("x"), 0)', ["argument 1 of vget must be vec, got num"]),
    ('vVal(1)', ["vVal takes one string literal"]),
    ('vval("v")', ["unknown function 'vval'", "'vVal'"]),
])
def test_type_errors(text, words):
    from palette.dsl import DSLError
    with pytest.raises(DSLError) as info:
        parse(text)
    for w in words:
        assert w in info.value.message, info.value.message


def test_builders_raise_the_same_type_errors():
    with pytest.raises(DSLTypeError, match="needs num operands, got vec and num"):
        B.vVal("v") + 1
    with pytest.raises(DSLTypeError, match="does not compare vec values"):
        B.vVal("v") < B.vVal("w")
    with pytest.raises(DSLTypeError, match="whole number from 0"):
        B.vget(B.vVal("v"), -2)
    # == on builders is structural equality as a truth value, a type error as an expression
    assert not (B.vVal("v") == B.vVal("w"))
    assert B.vVal("v") == B.vVal("v")
    with pytest.raises(DSLTypeError, match="does not compare vec values"):
        B.if_(B.vVal("v") == B.vVal("w"), 1, 2)


@pytest.mark.parametrize("built, text", [
    (B.vVal("basis:emb"), 'vVal("basis:emb")'),
    (B.vVal("@palette:user:emb_fg:emb:u_id"), 'vVal("user:emb_fg:emb:u_id")'),
    (B.dot(B.vVal("a"), B.vVal("b")), 'dot(vVal("a"), vVal("b"))'),
    (B.cosine(B.vfill(B.vVal("a"), B.vVal("c")), B.vVal("b")) * 2 + 1,
     'cosine(vfill(vVal("a"), vVal("c")), vVal("b")) * 2 + 1'),
    (B.vget(B.vVal("a"), 3), 'vget(vVal("a"), 3)'),
    (B.norm(B.if_(B.isNull(B.vVal("a")), B.vVal("b"), B.coalesce(B.vVal("a"), B.vVal("b")))),
     'norm(if(isNull(vVal("a")), vVal("b"), coalesce(vVal("a"), vVal("b"))))'),
])
def test_builders_and_text_round_trip(built, text):
    assert str(built) == text
    assert parse(text) == built
    assert parse(str(built)) == built
    assert parse(text).type == built.type


def test_types():
    assert parse('vVal("v")').type == "vec"
    assert parse('vfill(vVal("v"), vVal("w"))').type == "vec"
    assert parse('if(true, vVal("v"), vVal("w"))').type == "vec"
    assert parse('coalesce(vVal("v"))').type == "vec"
    for f in ('dot(vVal("v"), vVal("w"))', 'norm(vVal("v"))', 'cosine(vVal("v"), vVal("w"))', 'vget(vVal("v"), 0)'):
        assert parse(f).type == "num"
    assert parse('isNull(vVal("v"))').type == "bool"
    import palette
    for name in ("vVal", "dot", "norm", "cosine", "vget", "vfill"):
        assert getattr(palette, name) is getattr(B, name)


# -- a vec as a stage's output -----------------------------------------------------------------

def _frame(spark, n=24):
    rng = np.random.default_rng(3)
    from pyspark.sql import types as T
    schema = T.StructType([T.StructField("rid", T.LongType()), T.StructField("x", T.DoubleType()),
                           T.StructField("e", T.ArrayType(T.FloatType())), T.StructField("m", VectorUDT())])
    rows = []
    for k in range(n):
        e = rng.normal(size=4).astype(np.float32).tolist()
        m = Vectors.dense(rng.normal(size=3)) if k % 3 else Vectors.sparse(3, {k % 3: float(k)})
        rows.append((k, float(rng.normal()), e, m))
    return spark.createDataFrame(rows, schema)


LAMBDAS = {"emb": 'vVal("e")', "both": 'vfill(vVal("m"), vVal("e"))', "sim": 'cosine(vVal("e"), vVal("e"))',
           "len": 'norm(vVal("m"))', "first": 'vget(vVal("e"), 0) + nVal("x")'}


def test_a_vec_output_is_a_spark_ml_vector_that_vector_assembler_takes(spark_session, tmp_path):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from palette import DSLTransformer
    from _stage_parity import check_stage

    df = _frame(spark_session)
    dsl = DSLTransformer(lambdas=LAMBDAS)
    out = dsl.transform(df)
    assert isinstance(out.schema["emb"].dataType, VectorUDT) and isinstance(out.schema["both"].dataType, VectorUDT)
    assert isinstance(df.select(to_column('vVal("e")', schema=df.schema).alias("e2")).schema["e2"].dataType, VectorUDT)
    assembler = VectorAssembler(inputCols=["emb", "x", "both", "sim", "len", "first"], outputCol="features")
    model = Pipeline(stages=[dsl, assembler]).fit(df)
    rows = model.transform(df).collect()
    for r in rows:
        f = r["features"].toArray()
        assert f.shape == (4 + 1 + 3 + 1 + 1 + 1,)
        assert f[:4].tolist() == r["emb"].toArray().tolist() == [float(v) for v in r["e"]]
        assert f[5:8].tolist() == r["m"].toArray().tolist()
    # the JVM-free runtime scores the same pipeline to the same numbers, bit for bit
    assert check_stage(model, df, ["emb", "both", "sim", "len", "first", "features"], tmp_path,
                       exact=["emb", "both", "sim", "len", "first", "features"]) == 24


def test_score_instance_gives_float64_arrays(spark_session):
    from palette import DSLTransformer
    t = DSLTransformer(lambdas={"emb": 'vfill(vVal("e"), vVal("d"))', "n": 'norm(vVal("e"))'})
    got = t.scoreInstance({"e": [3.0, 4.0], "d": None})
    assert type(got["emb"]) is np.ndarray and got["emb"].dtype == np.float64 and got["emb"].tolist() == [3.0, 4.0]
    assert got["n"] == 5.0
    assert t.scoreInstance({"e": None, "d": (1, 2)})["emb"].tolist() == [1.0, 2.0]
    assert t.scoreInstance({"e": None, "d": None})["emb"] is None


def test_score_batch_falls_back_to_the_row_path_for_a_bad_vector():
    from palette.dsl.batch_backend import Irregular, to_batch
    from palette.transformers.runtime import Batch
    from palette.transformers.runtime.scorers.dsl import DSLScorer
    rows = [{"v": [1.0, 2.0]}, {"v": "1,2"}]
    with pytest.raises(Irregular):
        to_batch('norm(vVal("v"))')(Batch.of(rows))
    with pytest.raises(DSLInputError, match="must be a vector"):
        DSLScorer.of({"n": 'norm(vVal("v"))'}).score_batch(Batch.of(rows))
    out = DSLScorer.of({"n": 'norm(vVal("v"))', "v2": 'vVal("v")'}).score_batch(Batch.of([{"v": [3.0, 4.0]}, {"v": None}]))
    assert out.values("n") == [5.0, None] and out.values("v2")[0].tolist() == [3.0, 4.0] and out.values("v2")[1] is None


def test_a_dsl_estimator_fits_learned_functions_of_vectors(spark_session):
    from palette import DSLEstimator
    df = _frame(spark_session)
    model = DSLEstimator(lambdas={"z": 'standardize(norm(vVal("m")))', "e": 'vVal("e")'}).fit(df)
    text = model.getLambdas()["z"]
    assert text.startswith('(norm(vVal("m")) - ')
    got = {r["rid"]: r["z"] for r in model.transform(df).collect()}
    for r in df.collect():
        assert got[r["rid"]] == evaluate(text, {"m": r["m"]})


def test_the_plan_holds_no_python_udf(spark_session):
    from palette import DSLTransformer
    out = DSLTransformer(lambdas=LAMBDAS).transform(_frame(spark_session))
    plan = out._jdf.queryExecution().executedPlan().toString()
    for udf in ("BatchEvalPython", "ArrowEvalPython", "PythonUDF", "pythonUDF"):
        assert udf not in plan, plan


def test_a_dsl_stage_looks_up_a_vector_feature_itself(spark_session, tmp_path):
    """vVal of an embedding feature no earlier stage looked up: the DSL stage looks it up
    (point in time in Spark, a Spark ML vector; latest from the online store without a
    JVM, a float64 array) and both paths give the same numbers, nulls for unknown keys
    included. nVal of it is refused, naming vVal."""
    from datetime import datetime, timedelta

    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler

    from palette import DSLTransformer, Entity, FeatureGroup, FeatureStore
    from palette.errors import FeatureLookupError
    from palette.online import open_store
    from palette.transformers import load_scorer

    dim, n, t0 = 4, 10, datetime(2026, 3, 1)
    root = str(tmp_path / "store")
    store = FeatureStore(root)
    store.register(Entity("restaurant", {"r_id": "str"}),
                   FeatureGroup("restaurant", "dish_emb", {"emb": f"vector({dim})"}, kind="embedding", version=1))
    vecs = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    store.ingest(spark_session.createDataFrame([(f"r{i}", t0, v.tolist()) for i, v in enumerate(vecs)],
                                               "r_id string, event_ts timestamp, emb array<double>"),
                 "restaurant:dish_emb")
    orders = spark_session.createDataFrame(
        [(j, f"r{j % (n + 2)}", t0 + timedelta(days=1), [1.0, 0.0, -0.5, 0.0], float(j)) for j in range(24)],
        "rid long, r_id string, order_ts timestamp, q array<double>, size double")
    ref = "restaurant:dish_emb:emb:r_id"
    dsl = DSLTransformer(lambdas={"n": f'norm(vVal("{ref}"))', "sim": f'cosine(vVal("{ref}"), vVal("basis:q"))',
                                  "e": f'vfill(vVal("{ref}"), vVal("q"))'}, timestampCol="order_ts", storeRoot=root)
    model = Pipeline(stages=[dsl, VectorAssembler(inputCols=["e", "size"], outputCol="features")]).fit(orders)
    expected = {r.rid: r for r in model.transform(orders).collect()}
    assert sum(r.n is None for r in expected.values()) == 4          # r10, r11: unknown restaurants
    model.write().save(str(tmp_path / "m"))
    url = f"sqlite:///{tmp_path}/online.db"
    store.materialize(online_store=url, spark=spark_session)
    scorer = load_scorer(str(tmp_path / "m"), online_store=open_store(url))
    requests = [{"rid": r.rid, "r_id": r.r_id, "q": list(r.q), "size": r.size} for r in orders.collect()]
    for q, many in zip(requests, scorer.scoreBatch(requests)):
        one, want = scorer.scoreInstance(q), expected[q["rid"]]
        for c in ("n", "sim"):
            assert (want[c] is None and one[c] is None and many[c] is None) or want[c] == one[c] == many[c], (c, q)
        assert want.features.toArray().tolist() == one["features"].tolist() == many["features"].tolist()
    with pytest.raises(FeatureLookupError, match=r'read it with vVal\("restaurant:dish_emb:emb:r_id"\)'):
        DSLTransformer(lambdas={"x": f'nVal("{ref}")'}, timestampCol="order_ts", storeRoot=root).transform(orders)
