"""Every function's edge cases from DSL.md, with expected values worked out by hand (or
from published references: geohashes, calendars), each run through BOTH backends.

``check`` evaluates a list of (expression, row, expected) cases with ``evaluate`` and,
in one Spark job per test, with ``to_column`` over a DataFrame of the rows; both must
equal the expected value. Every test runs with ``spark.sql.ansi.enabled`` on and off.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from palette.dsl import parse, to_python
from palette.dsl.spark_backend import to_column

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COLUMNS = ("x", "y", "z", "a", "b", "p", "q", "t", "u")
SCHEMA = ("id long, x double, y double, z double, a string, b string, p boolean, q boolean, "
          "t timestamp, u timestamp")
NAN, INF = math.nan, math.inf


class Approx:
    """For log/exp/pow results: neither backend is correctly rounded (see the differential
    tests); within 2 ulps of the mathematically exact value."""

    def __init__(self, value):
        self.value = value

    def matches(self, got):
        return type(got) is float and abs(got - self.value) <= 2 * math.ulp(self.value)

    def __repr__(self):
        return f"≈{self.value!r}"


class PlusZero:
    """0.0 and not -0.0."""

    def matches(self, got):
        return type(got) is float and got == 0 and math.copysign(1.0, got) == 1.0

    def __repr__(self):
        return "+0.0"


class MinusZero(PlusZero):
    def matches(self, got):
        return type(got) is float and got == 0 and math.copysign(1.0, got) == -1.0

    def __repr__(self):
        return "-0.0"


def _micros(t):
    return (t - EPOCH) // timedelta(microseconds=1)


def matches(expected, got, typ):
    if isinstance(expected, (Approx, PlusZero)):
        return expected.matches(got)
    if expected is None or got is None:
        return expected is None and got is None
    if typ == "ts":
        return _micros(expected) == got
    if typ == "num":
        return type(got) is float and got == expected
    return type(got) is type(expected) and got == expected


def check(spark, cases):
    """cases: (expression text or node, row dict (missing columns are null), expected)."""
    from pyspark.sql import functions as F

    exprs = {}
    for e, _, _ in cases:
        node = parse(e)
        exprs.setdefault(str(node), node)
    rows = {}
    for _, row, _ in cases:
        full = tuple(row.get(c) for c in COLUMNS)
        rows.setdefault(repr(full), (len(rows), full))
    names = {text: f"e{i}" for i, text in enumerate(exprs)}

    df = spark.createDataFrame([(i, *vals) for i, vals in rows.values()], SCHEMA)
    cols = []
    for text, node in exprs.items():
        c = to_column(node, schema=df.schema)
        cols.append((F.unix_micros(c) if node.type == "ts" else c).alias(names[text]))
    got = {r["id"]: r for r in df.select("id", *cols).collect()}

    failures = []
    for e, row, expected in cases:
        node = parse(e)
        text = str(node)
        py = to_python(node)({c: row.get(c) for c in COLUMNS})
        if node.type == "ts" and py is not None:
            py = _micros(py)
        sp = got[rows[repr(tuple(row.get(c) for c in COLUMNS))][0]][names[text]]
        if node.type == "ts" and isinstance(expected, datetime):
            expected = _micros(expected)
        for backend, value in (("python", py), ("spark", sp)):
            if not matches(expected, value, "ts-micros" if node.type == "ts" else node.type):
                failures.append(f"{backend}: {text} with {row} gave {value!r}, expected {expected!r}")
    assert not failures, "\n".join(failures)


def cases_of(expr, table):
    """[(expr, {"x": v}, expected)] for a table of (x, expected)."""
    return [(expr, {"x": v}, want) for v, want in table]


# -- arithmetic -----------------------------------------------------------------------

def test_arithmetic(spark_session, ansi):
    check(spark_session, [
        ("1 + 2", {}, 3.0),
        ('nVal("x") + 1', {"x": None}, None),
        ('nVal("x") + 1', {"x": NAN}, None),           # NaN reads as null
        ('nVal("x") + 1', {"x": INF}, None),           # ±inf read as null
        ('nVal("x") + 1', {"x": -INF}, None),
        ('nVal("x") - nVal("y")', {"x": 1.0, "y": 3.0}, -2.0),
        ("0.1 + 0.2", {}, 0.30000000000000004),
        ("1e308 * 10", {}, None),                      # overflow to inf → null
        ("-1e308 * 10", {}, None),
        ("1e308 + 1e308", {}, None),
        ("-1e308 - 1e308", {}, None),
        ('nVal("x") * nVal("y")', {"x": 1e200, "y": 1e200}, None),
        ('nVal("x") / 2', {"x": 5e-324}, PlusZero()),  # underflow: ties-to-even gives 0
        ('nVal("x") / 2', {"x": 3.0}, 1.5),
        ("1 / 3", {}, 0.3333333333333333),
        ('nVal("x") / nVal("y")', {"x": 1.0, "y": 0.0}, None),
        ('nVal("x") / nVal("y")', {"x": 1.0, "y": -0.0}, None),
        ('nVal("x") / nVal("y")', {"x": 0.0, "y": 0.0}, None),
        ('nVal("x") / nVal("y")', {"x": -1.0, "y": 0.0}, None),
        ('nVal("x") / nVal("y")', {"x": None, "y": 0.0}, None),
        ('nVal("x") / nVal("y")', {"x": 1e308, "y": 1e-308}, None),   # overflow
        ("1 / 0", {}, None),
        ("7 % 3", {}, 1.0),
        ("-7 % 3", {}, -1.0),                          # sign follows the dividend (fmod)
        ("7 % -3", {}, 1.0),
        ("-7 % -3", {}, -1.0),
        ("5.5 % 2", {}, 1.5),
        ("-5.5 % 2", {}, -1.5),
        ("0.5 % 1e308", {}, 0.5),
        ('nVal("x") % nVal("y")', {"x": 5.0, "y": 0.0}, None),
        ('nVal("x") % nVal("y")', {"x": 5.0, "y": -0.0}, None),
        ('nVal("x") % nVal("y")', {"x": None, "y": 2.0}, None),
        ('nVal("x") % nVal("y")', {"x": -0.0, "y": 2.0}, MinusZero()),
        ('nVal("x") % nVal("y")', {"x": 1e308, "y": 3.0}, math.fmod(1e308, 3.0)),
        ("-nVal(\"x\")", {"x": 2.0}, -2.0),
        ("-nVal(\"x\")", {"x": None}, None),
        ("-nVal(\"x\")", {"x": 0.0}, MinusZero()),
        ("--2", {}, 2.0),
        ("2 - -2", {}, 4.0),
        ("-(2) * 3", {}, -6.0),
        ("1 + 2 * 3", {}, 7.0),
        ("(1 + 2) * 3", {}, 9.0),
        ("10 - 4 - 3", {}, 3.0),                       # left-associative
        ("10 - (4 - 3)", {}, 9.0),
        ("2 * 3 % 4", {}, 2.0),
    ])


def test_integer_inputs_are_widened(spark_session, ansi):
    df = spark_session.createDataFrame([(3, 2**62 + 1), (None, -5)], "i int, l long")
    e = parse('nVal("i") / 2 + nVal("l")')
    got = [r[0] for r in df.select(to_column(e, schema=df.schema)).collect()]
    want = [1.5 + float(2**62 + 1), None]
    assert got == want
    assert [to_python(e)({"i": 3, "l": 2**62 + 1}), to_python(e)({"i": None, "l": -5})] == want


# -- comparisons and logic ------------------------------------------------------------------

def test_comparisons(spark_session, ansi):
    t0, t1 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    check(spark_session, [
        ("1 < 2", {}, True),
        ("2 <= 2", {}, True),
        ("2 > 2", {}, False),
        ("2 >= 3", {}, False),
        ("2 == 2", {}, True),
        ("2 != 2", {}, False),
        ('nVal("x") < 1', {"x": None}, None),
        ('nVal("x") == nVal("x")', {"x": None}, None),
        ('nVal("x") == nVal("x")', {"x": NAN}, None),
        ('nVal("x") == nVal("y")', {"x": 0.0, "y": -0.0}, True),
        ('nVal("x") < nVal("y")', {"x": -0.0, "y": 0.0}, False),
        ('nVal("x") < nVal("y")', {"x": 5e-324, "y": 1e-323}, True),
        ('"B" < "a"', {}, True),                       # code points, case-sensitive
        ('"a" < "aa"', {}, True),
        ('"" < "a"', {}, True),
        ('"é" > "z"', {}, True),
        ('"中" > "é"', {}, True),
        ('"\U0001F600" > "\uffff"', {}, True),         # an astral character sorts last
        ('sVal("a") == sVal("b")', {"a": "", "b": ""}, True),
        ('sVal("a") != sVal("b")', {"a": None, "b": ""}, None),
        ("true == true", {}, True),
        ("true != false", {}, True),
        ('bVal("p") == bVal("q")', {"p": False, "q": False}, True),
        ('bVal("p") != false', {"p": None}, None),
        ('tVal("t") < tVal("u")', {"t": t0, "u": t1}, True),
        ('tVal("t") == tVal("u")', {"t": t0, "u": datetime(2024, 1, 1, 5, tzinfo=timezone(timedelta(hours=5)))},
         True),                                        # instants, whatever the offset
        ('tVal("t") >= tVal("u")', {"t": None, "u": t1}, None),
    ])


K = {True: "true", False: "false", None: "null"}
# SQL (Kleene) three-valued logic, written out.
AND = {(True, True): True, (True, False): False, (True, None): None,
       (False, True): False, (False, False): False, (False, None): False,
       (None, True): None, (None, False): False, (None, None): None}
OR = {(True, True): True, (True, False): True, (True, None): True,
      (False, True): True, (False, False): False, (False, None): None,
      (None, True): True, (None, False): None, (None, None): None}
NOT = {True: False, False: True, None: None}


def test_three_valued_logic(spark_session, ansi):
    cases = []
    for (p, q), want in AND.items():
        cases.append(('bVal("p") and bVal("q")', {"p": p, "q": q}, want))
    for (p, q), want in OR.items():
        cases.append(('bVal("p") or bVal("q")', {"p": p, "q": q}, want))
    for p, want in NOT.items():
        cases.append(('not bVal("p")', {"p": p}, want))
        cases.append(('not not bVal("p")', {"p": p}, p))
    # null from a comparison behaves the same as a null read
    cases += [('nVal("x") > 2 and false', {"x": None}, False),
              ('nVal("x") > 2 or true', {"x": None}, True),
              ('nVal("x") > 2 and true', {"x": None}, None),
              ('not nVal("x") > 2', {"x": None}, None),
              ("true or false and false", {}, True),        # and binds tighter than or
              ("not true and false", {}, False),            # (not true) and false
              ("not (true and false)", {}, True)]
    check(spark_session, cases)


# -- conditionals, nulls ---------------------------------------------------------------------

def test_if_coalesce_isnull_fill(spark_session, ansi):
    t0 = datetime(2020, 5, 1, 12, tzinfo=UTC)
    check(spark_session, [
        ('if(bVal("p"), 1, 2)', {"p": True}, 1.0),
        ('if(bVal("p"), 1, 2)', {"p": False}, 2.0),
        ('if(bVal("p"), 1, 2)', {"p": None}, 2.0),          # null condition → else branch
        ('if(nVal("x") > 2, "big", "small")', {"x": 3.0}, "big"),
        ('if(nVal("x") > 2, "big", "small")', {"x": None}, "small"),
        ('if(nVal("x") > 2, "big", "small")', {"x": NAN}, "small"),
        ('if(bVal("p"), nVal("x"), 0)', {"p": True, "x": None}, None),
        ('if(bVal("p"), bVal("q"), true)', {"p": True, "q": None}, None),
        ('if(bVal("p"), tVal("t"), tVal("u"))', {"p": None, "t": None, "u": t0}, t0),
        ('coalesce(nVal("x"), nVal("y"), 3)', {"x": None, "y": 2.0}, 2.0),
        ('coalesce(nVal("x"), nVal("y"), 3)', {"x": NAN, "y": None}, 3.0),
        ('coalesce(nVal("x"), nVal("y"), 3)', {"x": -0.0, "y": 1.0}, MinusZero()),
        ('coalesce(nVal("x"))', {"x": None}, None),
        ('coalesce(sVal("a"), sVal("b"))', {"a": None, "b": None}, None),
        ('coalesce(sVal("a"), "d")', {"a": ""}, ""),
        ('coalesce(bVal("p"), bVal("q"))', {"p": None, "q": False}, False),
        ('coalesce(tVal("t"), tVal("u"))', {"t": None, "u": t0}, t0),
        ('coalesce(nVal("x") / 0, 7)', {"x": 1.0}, 7.0),
        ('isNull(nVal("x"))', {"x": None}, True),
        ('isNull(nVal("x"))', {"x": NAN}, True),
        ('isNull(nVal("x"))', {"x": -INF}, True),
        ('isNull(nVal("x"))', {"x": 0.0}, False),
        ('isNull(nVal("x") / 0)', {"x": 1.0}, True),
        ('isNull(log(nVal("x")))', {"x": -1.0}, True),
        ('isNull(sVal("a"))', {"a": ""}, False),
        ('isNull(sVal("a"))', {"a": None}, True),
        ('isNull(bVal("p"))', {"p": False}, False),
        ('isNull(tVal("t"))', {"t": None}, True),
        ('isNull(bVal("p") and bVal("q"))', {"p": False, "q": None}, False),
        ('nFill(nVal("x"), -1)', {"x": NAN}, -1.0),
        ('nFill(nVal("x"), -1)', {"x": INF}, -1.0),
        ('nFill(nVal("x"), -1)', {"x": None}, -1.0),
        ('nFill(nVal("x"), -1)', {"x": 0.0}, 0.0),
        ('nFill(nVal("x"), nVal("y"))', {"x": None, "y": None}, None),
        ('nFill(nVal("x") / nVal("y"), 0)', {"x": 1.0, "y": 0.0}, 0.0),
        ('sFill(sVal("a"), "unknown")', {"a": None}, "unknown"),
        ('sFill(sVal("a"), "unknown")', {"a": ""}, ""),
    ])


# -- math ----------------------------------------------------------------------------------

def test_log_exp_sqrt_pow(spark_session, ansi):
    check(spark_session, [
        *cases_of('log(nVal("x"))', [(0.0, None), (-0.0, None), (-1.0, None), (1.0, PlusZero()),
                                     (math.e, Approx(1.0)), (5e-324, Approx(-744.4400719213812)),
                                     (1e308, Approx(709.1962086421661)), (None, None), (NAN, None)]),
        *cases_of('log1p(nVal("x"))', [(-1.0, None), (-2.0, None), (0.0, 0.0), (-0.0, MinusZero()),
                                       (1e-20, Approx(1e-20)), (math.e - 1, Approx(1.0)),
                                       (-0.5, Approx(-math.log(2)))]),
        *cases_of('sqrt(nVal("x"))', [(-1.0, None), (-5e-324, None), (4.0, 2.0), (2.0, 1.4142135623730951),
                                      (-0.0, MinusZero()), (1e308, 1e154), (0.25, 0.5)]),
        *cases_of('exp(nVal("x"))', [(0.0, 1.0), (1000.0, None), (710.0, None), (-1000.0, PlusZero()),
                                     (709.0, Approx(8.218407461554972e307)), (1.0, Approx(math.e)),
                                     (-0.0, 1.0)]),
        ("pow(10, 400)", {}, None),
        ("pow(2, 10)", {}, 1024.0),
        ("pow(-8, 3)", {}, -512.0),
        ("pow(-2, 3)", {}, -8.0),
        ("pow(-8, 1/3)", {}, None),
        ("pow(-1, 0.5)", {}, None),
        ("pow(0, -1)", {}, None),
        ("pow(-0.0, -1)", {}, None),
        ("pow(0, 0)", {}, 1.0),
        ("pow(2, -1075)", {}, PlusZero()),
        ("pow(4, 0.5)", {}, 2.0),
        ("pow(10, -2)", {}, Approx(0.01)),
        ('pow(nVal("x"), 2)', {"x": 1e200}, None),
        ('pow(nVal("x"), nVal("y"))', {"x": None, "y": 0.0}, None),
    ])


def test_abs_sign_floor_ceil(spark_session, ansi):
    check(spark_session, [
        *cases_of('abs(nVal("x"))', [(-3.0, 3.0), (3.0, 3.0), (-0.0, PlusZero()), (-1e308, 1e308),
                                     (-5e-324, 5e-324), (None, None)]),
        *cases_of('sign(nVal("x"))', [(-3.0, -1.0), (2.5, 1.0), (0.0, PlusZero()), (-0.0, MinusZero()),
                                      (5e-324, 1.0), (-1e308, -1.0), (None, None)]),
        *cases_of('floor(nVal("x"))', [(2.5, 2.0), (-2.5, -3.0), (-0.5, -1.0), (2.0, 2.0), (1e300, 1e300),
                                       (-1e300, -1e300), (9.3e18, 9.3e18), (-9.3e18, -9.3e18),
                                       (2.0 ** 52 - 0.5, 2.0 ** 52 - 1), (-(2.0 ** 52) + 0.5, -(2.0 ** 52)),
                                       (2.0 ** 63, 2.0 ** 63), (5e-324, 0.0), (-5e-324, -1.0),
                                       (None, None)]),
        *cases_of('ceil(nVal("x"))', [(2.1, 3.0), (-2.5, -2.0), (-0.5, 0.0), (1e300, 1e300),
                                      (-9.3e18, -9.3e18), (2.0 ** 52 - 0.5, 2.0 ** 52),
                                      (-(2.0 ** 52) + 0.5, -(2.0 ** 52) + 1), (5e-324, 1.0),
                                      (None, None)]),
    ])


def test_min_max_clip(spark_session, ansi):
    check(spark_session, [
        ('min(3, nVal("x"), 1)', {"x": None}, 1.0),
        ('min(3, nVal("x"), 1)', {"x": NAN}, 1.0),
        ('min(3, nVal("x"), 1)', {"x": -5.0}, -5.0),
        ('max(3, nVal("x"), 1)', {"x": 5.0}, 5.0),
        ('max(3, nVal("x"), 1)', {"x": None}, 3.0),
        ('max(nVal("x"), nVal("y"))', {"x": None, "y": None}, None),
        ('min(nVal("x"), nVal("y"), nVal("z"))', {"x": None, "y": -INF, "z": None}, None),
        ('min(nVal("x"))', {"x": 2.0}, 2.0),
        ('max(nVal("x"))', {"x": None}, None),
        ('max(nVal("x"), nVal("y"))', {"x": -1e308, "y": 5e-324}, 5e-324),
        ('min(nVal("x"), nVal("y"))', {"x": -1e308, "y": 5e-324}, -1e308),
        ("clip(15, 0, 10)", {}, 10.0),
        ("clip(-5, 0, 10)", {}, 0.0),
        ("clip(5, 0, 10)", {}, 5.0),
        ("clip(5, 10, 0)", {}, 0.0),                         # lo > hi gives hi
        ('clip(nVal("x"), 0, 10)', {"x": None}, None),
        ('clip(5, nVal("x"), 10)', {"x": None}, None),       # unlike min/max: null if any is null
        ('clip(5, 0, nVal("x"))', {"x": NAN}, None),
        ('clip(nVal("x"), -1, 1)', {"x": 1e308}, 1.0),
    ])


def test_round_half_away_from_zero(spark_session, ansi):
    check(spark_session, [
        *cases_of('round(nVal("x"))', [(2.5, 3.0), (-2.5, -3.0), (0.5, 1.0), (-0.5, -1.0), (1.5, 2.0),
                                       (0.49999999999999994, PlusZero()), (0.4, PlusZero()),
                                       (-0.4, PlusZero()), (-0.0, PlusZero()), (2.4, 2.0), (-2.6, -3.0),
                                       (1e308, 1e308), (5e-324, PlusZero()), (None, None),
                                       (4503599627370495.5, 4503599627370496.0)]),
        # HALF_UP on the shortest decimal form: the double 1.005 is 1.00499999999999989...,
        # but its shortest form "1.005" rounds to 1.01 (Python's round() gives 1.0).
        ('round(nVal("x"), 2)', {"x": 1.005}, 1.01),
        ('round(nVal("x"), 2)', {"x": 2.675}, 2.68),
        ('round(nVal("x"), 2)', {"x": 0.125}, 0.13),         # exact tie; not to even
        ('round(nVal("x"), 2)', {"x": -0.125}, -0.13),
        ('round(nVal("x"), 2)', {"x": -0.001}, PlusZero()),
        ('round(nVal("x"), 1)', {"x": 0.05}, 0.1),
        ('round(nVal("x"), 15)', {"x": 0.1234567890123455}, 0.123456789012346),
        ('round(nVal("x"), 15)', {"x": 5e-324}, PlusZero()),
        ('round(nVal("x"), -2)', {"x": 1234.5}, 1200.0),
        ('round(nVal("x"), -2)', {"x": 1250.0}, 1300.0),
        ('round(nVal("x"), -2)', {"x": -1250.0}, -1300.0),
        ('round(nVal("x"), -2)', {"x": 49.0}, PlusZero()),
        ('round(nVal("x"), -2)', {"x": -49.0}, PlusZero()),
        ('round(nVal("x"), -15)', {"x": 5e14}, 1e15),
        ('round(nVal("x"), -15)', {"x": 1e308}, 1e308),
        ('round(nVal("x"), -15)', {"x": -1.7976931348623157e308}, -1.7976931348623157e308),
        # Whole numbers of 16+ digits: shortest form 427043903341005000 → 427043903341010000
        # (Java 17's Double.toString gives 4.2704390334100499E17 here, which would round down).
        ('round(nVal("x"), -4)', {"x": 4.27043903341005e17}, 4.2704390334101e17),
        ('round(nVal("x"), -1)', {"x": 2.0 ** 53 + 2}, 9007199254740990.0),
        ('round(nVal("x"), 3)', {"x": 2.0 ** 60}, 2.0 ** 60),
    ])


# -- strings ----------------------------------------------------------------------------------

def test_strings(spark_session, ansi):
    check(spark_session, [
        ('lower(sVal("a"))', {"a": "AbC"}, "abc"),
        ('lower(sVal("a"))', {"a": ""}, ""),
        ('lower(sVal("a"))', {"a": None}, None),
        ('lower(sVal("a"))', {"a": "ÉΣ中"}, "éς中"),       # final sigma
        ('lower(sVal("a"))', {"a": "ΣΑ"}, "σα"),
        ('upper(sVal("a"))', {"a": "straße"}, "STRASSE"),  # full case mapping: length changes
        ('upper(sVal("a"))', {"a": "é中"}, "É中"),
        ('upper(sVal("a"))', {"a": None}, None),
        # composition is composition: not simplified to lower("Straße") = "straße"
        ('lower(upper(sVal("a")))', {"a": "Straße"}, "strasse"),
        ('lower(if(true, upper(sVal("a")), ""))', {"a": "Straße"}, "strasse"),
        ('lower(coalesce(upper(sVal("a"))))', {"a": "Straße"}, "strasse"),
        ('upper(lower(sVal("a")))', {"a": "\u1e9e"}, "SS"),  # ẞ → ß → SS
        ('upper(upper(sVal("a")))', {"a": "ß"}, "SS"),
        ('length(sVal("a"))', {"a": ""}, 0.0),
        ('length(sVal("a"))', {"a": "héllo"}, 5.0),
        ('length(sVal("a"))', {"a": "中文"}, 2.0),
        ('length(sVal("a"))', {"a": "\U0001F600"}, 1.0),  # code points, not UTF-16 units
        ('length(sVal("a"))', {"a": None}, None),
        ('length(upper(sVal("a")))', {"a": "ß"}, 2.0),
        ('concat("a", "-", "b")', {}, "a-b"),
        ('concat(sVal("a"), sVal("b"))', {"a": "", "b": ""}, ""),
        ('concat(sVal("a"), sVal("b"))', {"a": "x", "b": None}, None),
        ('concat(sVal("a"), sVal("b"))', {"a": None, "b": ""}, None),
        ('concat(sVal("a"))', {"a": "中"}, "中"),
        ('concat(sFill(sVal("a"), ""), "!")', {"a": None}, "!"),
        ('contains(sVal("a"), sVal("b"))', {"a": "abc", "b": ""}, True),
        ('contains(sVal("a"), sVal("b"))', {"a": "", "b": ""}, True),
        ('contains(sVal("a"), sVal("b"))', {"a": "", "b": "a"}, False),
        ('contains(sVal("a"), sVal("b"))', {"a": "abc", "b": "bc"}, True),
        ('contains(sVal("a"), sVal("b"))', {"a": "ABC", "b": "b"}, False),
        ('contains(sVal("a"), sVal("b"))', {"a": None, "b": ""}, None),
        ('contains(sVal("a"), sVal("b"))', {"a": "x", "b": None}, None),
        ('contains(sVal("a"), sVal("b"))', {"a": "aΣ中b", "b": "Σ中"}, True),
        ('startsWith(sVal("a"), sVal("b"))', {"a": "abc", "b": ""}, True),
        ('startsWith(sVal("a"), sVal("b"))', {"a": "", "b": ""}, True),
        ('startsWith(sVal("a"), sVal("b"))', {"a": "ab", "b": "abc"}, False),
        ('startsWith(sVal("a"), sVal("b"))', {"a": "abc", "b": "bc"}, False),
        ('startsWith(sVal("a"), sVal("b"))', {"a": "Abc", "b": "a"}, False),
        ('startsWith(sVal("a"), sVal("b"))', {"a": None, "b": "a"}, None),
        ('startsWith(sVal("a"), sVal("b"))', {"a": "é", "b": None}, None),
    ])


# -- time -------------------------------------------------------------------------------------

# Weekdays from the calendar: 1970-01-01 was a Thursday, 0001-01-01 (proleptic Gregorian) a
# Monday, 9999-12-31 a Friday, 1900-01-01 a Monday, 2024-03-10 a Sunday, 2000-02-29 a Tuesday.
TIME_CASES = [
    (datetime(1970, 1, 1, tzinfo=UTC), 0.0, 4.0),
    (datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC), 23.0, 3.0),
    (datetime(1969, 12, 31, 0, 0, 0, 1, tzinfo=UTC), 0.0, 3.0),
    (datetime(1, 1, 1, tzinfo=UTC), 0.0, 1.0),
    (datetime(1, 1, 1, 13, 59, 59, 999999, tzinfo=UTC), 13.0, 1.0),
    (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), 23.0, 5.0),
    (datetime(1900, 1, 1, tzinfo=timezone(timedelta(hours=-8))), 8.0, 1.0),
    (datetime(2024, 3, 10, 23, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))), 18.0, 7.0),
    # 01:00 on Monday in +05:30 is 19:30 on Sunday in UTC
    (datetime(2024, 3, 11, 1, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))), 19.0, 7.0),
    (datetime(2000, 2, 29, 12, tzinfo=UTC), 12.0, 2.0),
    (None, None, None),
]


def _time_cases():
    cases = []
    for t, hour, day in TIME_CASES:
        cases.append(('hourOfDay(tVal("t"))', {"t": t}, hour))
        cases.append(('dayOfWeek(tVal("t"))', {"t": t}, day))
        cases.append(('tVal("t")', {"t": t}, t))
    return cases


def test_hour_of_day_and_day_of_week_in_utc(spark_session, ansi):
    check(spark_session, _time_cases())


def test_time_functions_ignore_the_session_time_zone(spark_session):
    old = spark_session.conf.get("spark.sql.session.timeZone")
    spark_session.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    try:
        check(spark_session, _time_cases())
    finally:
        spark_session.conf.set("spark.sql.session.timeZone", old)


# -- regionId ---------------------------------------------------------------------------------

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def reference_geohash(lat, lng, precision):
    """The textbook geohash: bisect each interval, longitude first, taking the upper half
    when v >= mid, which makes cells half-open [lo, hi) and puts lat 90 / lng 180 in the
    last cell. The midpoints are exact doubles for 12 characters (multiples of 180 / 2**30)."""
    lat_lo, lat_hi, lng_lo, lng_hi = -90.0, 90.0, -180.0, 180.0
    bits = []
    for i in range(5 * precision):
        if i % 2 == 0:
            mid = (lng_lo + lng_hi) / 2
            bits.append(lng >= mid)
            lng_lo, lng_hi = (mid, lng_hi) if lng >= mid else (lng_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            bits.append(lat >= mid)
            lat_lo, lat_hi = (mid, lat_hi) if lat >= mid else (lat_lo, mid)
    return "".join(BASE32[int("".join("1" if b else "0" for b in bits[j:j + 5]), 2)]
                   for j in range(0, len(bits), 5))


def test_reference_geohash_matches_published_values():
    # The reference implementation itself, against published geohashes.
    assert reference_geohash(57.64911, 10.40744, 11) == "u4pruydqqvj"      # Wikipedia's example
    assert reference_geohash(37.7749, -122.4194, 6) == "9q8yyk"           # San Francisco
    assert reference_geohash(0.0, 0.0, 12) == "s00000000000"
    assert reference_geohash(90.0, 0.0, 12) == "upbpbpbpbpbp"            # north pole
    assert reference_geohash(-90.0, 0.0, 12) == "h00000000000"           # south pole


def test_region_id_known_points(spark_session, ansi):
    lat, lng = 'nVal("x")', 'nVal("y")'
    g6, g = f"regionId({lat}, {lng})", lambda p: f"regionId({lat}, {lng}, {p})"
    check(spark_session, [
        (g(11), {"x": 57.64911, "y": 10.40744}, "u4pruydqqvj"),
        (g6, {"x": 57.64911, "y": 10.40744}, "u4pruy"),
        (g(3), {"x": 57.64911, "y": 10.40744}, "u4p"),
        (g6, {"x": 37.7749, "y": -122.4194}, "9q8yyk"),
        ("regionId(37.7749, -122.4194)", {}, "9q8yyk"),
        (g(1), {"x": 0.0, "y": 0.0}, "s"),
        (g6, {"x": 0.0, "y": 0.0}, "s00000"),
        (g(12), {"x": -0.0, "y": -0.0}, "s00000000000"),       # -0.0 is 0.0
        (g6, {"x": 90.0, "y": 180.0}, "zzzzzz"),
        (g6, {"x": -90.0, "y": -180.0}, "000000"),
        (g(12), {"x": 90.0, "y": 0.0}, "upbpbpbpbpbp"),
        (g6, {"x": -90.0, "y": 0.0}, "h00000"),
        (g6, {"x": 0.0, "y": 180.0}, "xbpbpb"),
        (g6, {"x": 0.0, "y": -180.0}, "800000"),
        (g(1), {"x": 90.0, "y": -180.0}, "b"),
        (g(1), {"x": -90.0, "y": 180.0}, "p"),
        # exactly on grid lines: the upper cell ([lo, hi))
        (g(1), {"x": 0.0, "y": 45.0}, "t"),
        (g(1), {"x": 0.0, "y": 44.99999999999999}, "s"),
        (g(1), {"x": 45.0, "y": 0.0}, "u"),
        (g(1), {"x": 44.99999999999999, "y": 0.0}, "s"),
        (g(1), {"x": -45.0, "y": -45.0}, "7"),
        # out of range or null
        (g6, {"x": 90.00000000000001, "y": 0.0}, None),
        (g6, {"x": -91.0, "y": 0.0}, None),
        (g6, {"x": 0.0, "y": 180.00000000000003}, None),
        (g6, {"x": 0.0, "y": -180.5}, None),
        (g6, {"x": 1e308, "y": 0.0}, None),
        (g6, {"x": None, "y": 0.0}, None),
        (g6, {"x": 0.0, "y": None}, None),
        (g6, {"x": NAN, "y": 0.0}, None),
        (g6, {"x": 0.0, "y": INF}, None),
        ("regionId(91, 0)", {}, None),
    ])


def _grid_points():
    """Points on and next to the cell edges of every precision, plus the corners."""
    pts = set()
    for bits in (1, 2, 3, 5, 8, 13, 15, 20, 27, 30):
        for k in (0, 1, 2, (1 << bits) // 3, (1 << bits) // 2, (1 << bits) - 1, 1 << bits):
            lng = -180.0 + 360.0 * k / (1 << bits)
            lat = -90.0 + 180.0 * k / (1 << bits)
            for v_lat in (lat, math.nextafter(lat, -INF), math.nextafter(lat, INF)):
                for v_lng in (lng, math.nextafter(lng, INF)):
                    pts.add((v_lat, v_lng))
    pts |= {(57.64911, 10.40744), (37.7749, -122.4194), (-33.8688, 151.2093), (1e-300, -1e-300),
            (-5e-324, 5e-324), (89.99999999999999, 179.99999999999997)}
    return sorted(p for p in pts if -90 <= p[0] <= 90 and -180 <= p[1] <= 180)


def test_region_id_matches_the_reference_on_cell_edges(spark_session, ansi):
    cases = []
    for lat, lng in _grid_points():
        for p in (1, 3, 6, 12):
            cases.append((f'regionId(nVal("x"), nVal("y"), {p})', {"x": lat, "y": lng},
                          reference_geohash(lat, lng, p)))
    check(spark_session, cases)


def test_region_id_prefix_property():
    for lat, lng in _grid_points():
        full = to_python(f"regionId({lat!r}, {lng!r}, 12)")({})
        for p in range(1, 12):
            assert to_python(f"regionId({lat!r}, {lng!r}, {p})")({}) == full[:p]


# -- bucket -----------------------------------------------------------------------------------

def test_bucket(spark_session, ansi):
    b = 'bucket(nVal("x"), 10, 20, 30)'
    check(spark_session, [
        *cases_of(b, [(5.0, 0.0), (10.0, 1.0), (9.999999999999998, 0.0), (25.0, 2.0), (30.0, 3.0),
                      (1e308, 3.0), (-1e308, 0.0), (None, None), (NAN, None), (INF, None)]),
        *cases_of('bucket(nVal("x"), 0)', [(0.0, 1.0), (-0.0, 1.0), (-5e-324, 0.0), (5e-324, 1.0)]),
        *cases_of('bucket(nVal("x"), -1e308, 1e308)', [(1e308, 2.0), (-1e308, 1.0), (0.0, 1.0)]),
        ("bucket(2 * 3, 1, 6, 7)", {}, 2.0),
        ('bucket(nVal("x") * 2, 1, 6, 7)', {"x": 3.0}, 2.0),     # a computed argument
        ('bucket(nVal("x") * 2, 1, 6, 7)', {"x": None}, None),
    ])



# -- long chains ----------------------------------------------------------------------------

def test_long_arithmetic_chains_run_in_spark(spark_session):
    """A sum of 60 features and 99 nested operations (depth 100, the limit). Each step is
    checked for overflow; Spark must not re-walk the chain per step (nested NaN checks once
    made 25 additions take minutes: see the plan-shape test below)."""
    row = {c: None for c in COLUMNS}
    row.update(x=1.5, y=-2.0, z=1e307)
    total = " + ".join(['nVal("x")', 'nVal("y")', 'nVal("z")'] * 20)
    chain = 'nVal("x")' + " + 1" * 99
    mixed = "(" * 33 + 'nVal("x")' + " * 2 - 1) / 2" * 33      # depth 100: x - 16.5
    check(spark_session, [
        (total, row, None),                          # 20 * 1e307 overflows on the way
        (total.replace('nVal("z")', "0"), row, -10.0),
        (chain, row, 100.5),
        (mixed, row, -15.0),
        ('nFill(' + total + ', -1)', row, -1.0),
        ('isNull(nVal("z") * 100' + " + 1" * 97 + ")", row, True),     # depth 100
        ("-(" + 'nVal("x")' + " - 1e308" * 97 + ") / 2", row, None),
    ])


def _nested(template: str, depth: int) -> str:
    e = 'nVal("x")'
    for _ in range(depth):
        e = template.format(e=e)
    return e


def _iterate(f, v, n):
    for _ in range(n):
        v = f(v)
    return v


def doubling_depth(df) -> int:
    """How many times, at most, Spark's subexpression elimination re-walks a subtree of
    df's executed plan, nested: it walks a conditional's always-evaluated input again for
    each branch group that holds it (coalesce and nanvl: their first input twice), so a
    plan of size n costs up to n * 2**depth walks to compile. Higher-order functions are
    not looked into (CodegenFallback)."""
    jvm = df.sparkSession._jvm
    cls = jvm.java.lang.Class.forName
    fallback = cls("org.apache.spark.sql.catalyst.expressions.codegen.CodegenFallback")
    conditional = cls("org.apache.spark.sql.catalyst.expressions.ConditionalExpression")

    def seq(s):
        return [s.apply(i) for i in range(s.size())]

    def depth(e) -> int:
        if fallback.isInstance(e):
            return 0
        children = seq(e.children())
        if not conditional.isInstance(e):
            return max((depth(c) for c in children), default=0)
        again = [g for group in seq(e.branchGroups()) for g in seq(group)]
        first = {c.hashCode() for c in seq(e.alwaysEvaluatedInputs())}
        return max((depth(c) + (c.hashCode() in first and any(c.equals(g) for g in again))
                    for c in children), default=0)

    def plan_depth(p) -> int:
        own = max((depth(e) for e in seq(p.expressions())), default=0)
        return max([own] + [plan_depth(c) for c in seq(p.children())])

    return plan_depth(df._jdf.queryExecution().executedPlan())


NESTED = [   # (expression, x, expected): chains that once took minutes to plan
    (_nested("nFill({e} + 1, 1)", 40), 1.0, 41.0),
    (_nested("nFill({e} + 1, 1)", 40), None, 40.0),
    (_nested('coalesce({e}, nVal("y"))', 40), None, 2.0),
    (_nested("nFill(sqrt({e} + 2), 0)", 32), 1.0, _iterate(lambda v: math.sqrt(v + 2), 1.0, 32)),
    (_nested("clip(nFill({e}, 0) * 3, -1e300, 1e300)", 30), 1.0, 3.0 ** 30),
    ('nFill(' + " + ".join(['nVal("x")'] * 60) + ", -1)", 1.0, 60.0),
]


@pytest.mark.parametrize("path", ["stage", "to_column"])
def test_nested_conditionals_plan_linearly(spark_session, path):
    """Guards and coalesces nested 40 deep: the right value, and a plan whose compile cost
    does not double per level (stages: no re-walked subtree at all; to_column: a chain
    is broken by a lambda every LambdaBinder.CHAIN links)."""
    from palette import DSLTransformer
    from palette.dsl.spark_backend import LambdaBinder

    df = spark_session.createDataFrame([(x,) for x in sorted({x for _, x, _ in NESTED}, key=str)],
                                       "x double").withColumn("y", to_column("2"))
    lambdas = {f"e{i}": e for i, (e, _, _) in enumerate(NESTED)}
    if path == "stage":
        out, limit = DSLTransformer(lambdas=lambdas).transform(df), 1
    else:
        out, limit = df.select("x", *[to_column(e).alias(n) for n, e in lambdas.items()]), LambdaBinder.CHAIN
    got = {r["x"]: r for r in out.collect()}
    for i, (e, x, expected) in enumerate(NESTED):
        assert got[x][f"e{i}"] == expected == to_python(parse(e))({"x": x, "y": 2.0}), (i, x)
    assert doubling_depth(out) <= limit
