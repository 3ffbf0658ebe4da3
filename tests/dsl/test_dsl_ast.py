"""The AST, its canonical text, and completeness of both backends.

The lists of node classes and functions are computed from the modules, so a node class
or a function added without a rule in each backend fails here.
"""
from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest

import palette.dsl.ast as dsl_ast
from palette.dsl import DSLUnsupportedError, NODE_CLASSES, evaluate, parse, python_backend, to_python
from palette.dsl.spark_backend import to_column
from palette.dsl import builders as B
from palette.dsl.ast import Binary, Call, Literal, Node, Read, Unary
from palette.dsl.functions import ARITH_OPS, BOOL_OPS, COMPARE_OPS, READERS, SIGNATURES

NON_LEARNED = sorted(n for n, s in SIGNATURES.items() if not s.learned)
LEARNED = sorted(n for n, s in SIGNATURES.items() if s.learned)


def _node_subclasses():
    """Every Node subclass defined in palette.dsl.ast (including private ones)."""
    return [c for _, c in inspect.getmembers(dsl_ast, inspect.isclass)
            if issubclass(c, Node) and c is not Node and c.__module__ == dsl_ast.__name__]


def _spark_backend():
    pytest.importorskip("pyspark")
    from palette.dsl import spark_backend
    return spark_backend


# -- completeness ---------------------------------------------------------------------------

def test_node_classes_lists_every_node_class():
    public = {c for c in _node_subclasses() if not c.__name__.startswith("_")}
    assert public == set(NODE_CLASSES)
    assert NODE_CLASSES        # not vacuous


@pytest.mark.parametrize("backend", ["python", "spark"])
def test_every_node_class_has_a_rule(backend):
    rules = (python_backend if backend == "python" else _spark_backend()).NODE_RULES
    for cls in NODE_CLASSES:
        assert cls in rules, f"the {backend} backend has no rule for {cls.__name__}"
    for cls in _node_subclasses():         # private subclasses are handled by a parent's rule
        assert any(issubclass(cls, k) for k in rules), f"{cls.__name__} has no {backend} rule"


@pytest.mark.parametrize("backend", ["python", "spark"])
def test_every_function_has_a_rule_in_both_backends(backend):
    rules = (python_backend if backend == "python" else _spark_backend()).FUNCTION_RULES
    assert NON_LEARNED and LEARNED                 # the enumeration is not vacuous
    missing = [n for n in NON_LEARNED if n not in rules]
    assert not missing, f"the {backend} backend has no rule for {missing}"
    assert not set(rules) - set(SIGNATURES), "rules for functions that do not exist"
    assert not set(rules) & set(LEARNED), "learned functions must be fitted, not run"


LEARNED_EXAMPLES = {"impute": 'impute(nVal("x"), "median")', "standardize": 'standardize(nVal("x"))',
                    "minMaxScale": 'minMaxScale(nVal("x"))', "bucketize": 'bucketize(nVal("x"), 10)'}


@pytest.mark.parametrize("name", LEARNED)
def test_learned_functions_are_rejected_by_both_backends(name, spark_session):
    text = LEARNED_EXAMPLES[name]
    assert parse(text).type == "num"            # well-typed: only running it is refused
    with pytest.raises(DSLUnsupportedError, match=name):
        to_python(text)
    with pytest.raises(DSLUnsupportedError, match=name):
        to_column(text)


def test_every_function_has_a_builder_and_documentation():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "dsl.md").read_text()
    for name in SIGNATURES:
        builder = getattr(B, name, None) or getattr(B, name + "_", None)
        assert builder is not None, f"no builder for {name}"
        assert f"{name}(" in docs, f"{name} is not documented in docs/dsl.md"
    for reader in READERS:
        assert getattr(B, reader) is not None


def test_every_operator_has_a_text_form_and_a_builder():
    x, y, p, q = B.nVal("x"), B.nVal("y"), B.bVal("p"), B.bVal("q")
    built = {"+": x + y, "-": x - y, "*": x * y, "/": x / y, "%": x % y, "<": x < y, "<=": x <= y,
             ">": x > y, ">=": x >= y, "==": x == y, "!=": x != y, "and": p & q, "or": p | q}
    assert set(built) == set(ARITH_OPS + COMPARE_OPS + BOOL_OPS)
    for op, e in built.items():
        assert isinstance(e, Binary) and e.op == op
        assert parse(str(e)).op == op
    assert (~p).op == "not" and (-x).op == "-"


# -- builders and the parser make the same trees ------------------------------------------------

x, y, z = B.nVal("x"), B.nVal("y"), B.nVal("z")
a, b = B.sVal("a"), B.sVal("b")
p, q = B.bVal("p"), B.bVal("q")

SAME = [
    (B.nFill(B.nVal("restaurant:batch_fg:prep_time:r_id"), -1),
     'nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1)'),
    (B.nFill(B.nVal("@palette:restaurant:batch_fg:prep_time:r_id"), -1),
     'nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1.0)'),
    (B.nVal("@basis:order_size") * 2 + 1, 'nVal("basis:order_size") * 2 + 1'),
    (B.if_(B.nVal("basis:order_size") > 3, B.nFill(B.nVal("basis:tip"), 0) * 2, 0),
     'if(nVal("basis:order_size") > 3, nFill(nVal("basis:tip"), 0) * 2, 0)'),
    (B.regionId(B.nVal("lat"), B.nVal("lng"), 7), 'regionId(nVal("lat"), nVal("lng"), 7)'),
    (B.round_(x, -2), 'round(nVal("x"), -2)'),
    (B.min_(x, 1, y), 'min(nVal("x"), 1, nVal("y"))'),
    (B.max_(x), 'max(nVal("x"))'),
    (B.concat(a, "-", b), 'concat(sVal("a"), "-", sVal("b"))'),
    (B.bucket(x, -1, 0, 2.5), 'bucket(nVal("x"), -1, 0, 2.5)'),
    (B.coalesce(B.tVal("t"), B.tVal("u")), 'coalesce(tVal("t"), tVal("u"))'),
    (B.isNull(a) & ~p | q, 'isNull(sVal("a")) and not bVal("p") or bVal("q")'),
    (p & (q | p), 'bVal("p") and (bVal("q") or bVal("p"))'),
    (3 - x, '3 - nVal("x")'),
    (1 / (x + 1), '1 / (nVal("x") + 1)'),
    (-x, '-nVal("x")'),
    (B.abs_(x) % 2, 'abs(nVal("x")) % 2'),
    (B.startsWith(B.lower(a), "x"), 'startsWith(lower(sVal("a")), "x")'),
    (B.dayOfWeek(B.tVal("t")) + B.hourOfDay(B.tVal("t")), 'dayOfWeek(tVal("t")) + hourOfDay(tVal("t"))'),
]


@pytest.mark.parametrize("built, text", SAME, ids=[t for _, t in SAME])
def test_builders_and_parse_give_equal_trees(built, text):
    parsed = parse(text)
    assert parsed.equals(built) and built.equals(parsed)
    assert str(parsed) == str(built)
    assert parse(str(built)).equals(built)
    assert parsed.type == built.type
    assert hash(parsed) == hash(built)


def test_builder_comparisons_round_trip_through_text():
    for e in (x > 1, x <= y, a < b, B.tVal("t") >= B.tVal("u")):
        assert parse(str(e)).equals(e)


def test_builder_equality_comparisons_round_trip_through_text():
    for e in (x == 1, x != 2, p == q, (x == y) & p, B.if_(a == b, 1, 2)):
        assert parse(str(e)).equals(e), str(e)


def test_positions_and_whitespace_do_not_matter():
    e = parse('nFill(nVal("x"),-1)')
    assert e.equals(parse('  nFill (\n nVal( "x" ) ,\n\t-1 )  # a comment'))
    assert parse("1+2").equals(parse("1 + 2"))
    assert e.pos == (1, 1) and e.args[1].pos == (1, 17)


def test_equality_is_structural():
    assert not parse("1 + 2").equals(parse("2 + 1"))
    assert not parse("1").equals(parse("true"))
    assert not parse("0.0").equals(parse("-0.0"))            # different literals
    assert not parse('nVal("x")').equals(parse('nVal("y")'))
    assert not parse('nVal("x")').equals(parse('sVal("x")'))
    assert not parse('round(nVal("x"))').equals(parse('round(nVal("x"), 0)'))
    assert len({parse("1 + 2"), parse("1+2"), parse("(1) + (2)")}) == 1


def test_reference_spellings_are_normalized():
    assert parse('nVal("@basis:x")').equals(parse('nVal("basis:x")'))
    assert parse('nVal("@palette:e:g:f:k")').equals(parse('nVal("e:g:f:k")'))
    assert not parse('nVal("basis:x")').equals(parse('nVal("x")'))   # a basis field vs a column
    assert str(parse('nVal("@basis:x")')) == 'nVal("basis:x")'


# -- canonical text ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, node", [
    ("-1", Literal(-1.0)),
    ("-1.5e3", Literal(-1500.0)),
    ("-0.0", Literal(-0.0)),
    ("- 1", Unary("-", Literal(1.0))),
    ("-(1)", Unary("-", Literal(1.0))),
    ("--1", Unary("-", Literal(-1.0))),
    ("2 - -1", Binary("-", Literal(2.0), Literal(-1.0))),
    ("2--1", Binary("-", Literal(2.0), Literal(-1.0))),
    ("2-1", Binary("-", Literal(2.0), Literal(1.0))),
    ('nVal("x")-1', Binary("-", Read("nVal", "x"), Literal(1.0))),
    ("2*-1", Binary("*", Literal(2.0), Literal(-1.0))),
    ('-nVal("x") * 2', Binary("*", Unary("-", Read("nVal", "x")), Literal(2.0))),
    ('-(nVal("x") * 2)', Unary("-", Binary("*", Read("nVal", "x"), Literal(2.0)))),
    (".5", Literal(0.5)),
    ("5.", Literal(5.0)),
    ("1E5", Literal(1e5)),
    ("1e+308", Literal(1e308)),
    ("5e-324", Literal(5e-324)),
])
def test_negative_literals_and_unary_minus(text, node):
    e = parse(text)
    assert e.equals(node), (str(e), str(node))
    assert parse(str(node)).equals(node)


def test_a_negated_literal_keeps_its_parentheses():
    assert str(Unary("-", Literal(1.0))) == "-(1)"
    assert str(Literal(-1.0)) == "-1"
    assert str(Unary("-", Literal(-1.0))) == "-(-1)"
    assert str(Literal(-0.0)) == "-0.0"
    assert str(-B.lit(2)) == "-(2)"
    assert evaluate(-B.lit(2), {}) == -2.0
    assert str(2 - B.lit(-1)) == "2 - -1"


@pytest.mark.parametrize("value, text", [(-1.0, "-1"), (2.0, "2"), (0.0, "0"), (-0.0, "-0.0"), (0.5, "0.5"),
                                         (2.0 ** 53 - 1, "9007199254740991"), (2.0 ** 53, "9007199254740992.0"),
                                         (1e300, "1e+300"), (5e-324, "5e-324")])
def test_numbers_print_whole_when_whole_and_always_read_back(value, text):
    assert str(Literal(value)) == text
    back = parse(text)
    assert back.value == value and math.copysign(1.0, back.value) == math.copysign(1.0, value)


@pytest.mark.parametrize("built, text", [
    ((x + y) * z, '(nVal("x") + nVal("y")) * nVal("z")'),
    (x + y * z, 'nVal("x") + nVal("y") * nVal("z")'),
    (x - (y - z), 'nVal("x") - (nVal("y") - nVal("z"))'),
    ((x - y) - z, 'nVal("x") - nVal("y") - nVal("z")'),
    (x / (y / z), 'nVal("x") / (nVal("y") / nVal("z"))'),
    (x % (y * z), 'nVal("x") % (nVal("y") * nVal("z"))'),
    (x % y * z, 'nVal("x") % nVal("y") * nVal("z")'),
    (-(x + y), '-(nVal("x") + nVal("y"))'),
    (-x * y, '-nVal("x") * nVal("y")'),
    (x * -y, 'nVal("x") * -nVal("y")'),
    (-(-x), '--nVal("x")'),
    (~(p & q), 'not (bVal("p") and bVal("q"))'),
    (~p & q, 'not bVal("p") and bVal("q")'),
    ((p | q) & p, '(bVal("p") or bVal("q")) and bVal("p")'),
    (p | q & p, 'bVal("p") or bVal("q") and bVal("p")'),
    (~(~p), 'not not bVal("p")'),
    (~(x > y), 'not nVal("x") > nVal("y")'),
    ((x > y) & (y >= z), 'nVal("x") > nVal("y") and nVal("y") >= nVal("z")'),
    (Binary("!=", x > y, B.lit(True)), '(nVal("x") > nVal("y")) != true'),
    (Binary("==", B.lit(True), x < y), 'true == (nVal("x") < nVal("y"))'),
    ((x + 1) > (y * 2), 'nVal("x") + 1 > nVal("y") * 2'),
])
def test_precedence_and_parentheses(built, text):
    assert str(built) == text
    assert parse(text).equals(built)


def test_precedence_changes_the_value():
    row = {"x": 1.0, "y": 2.0, "z": 3.0, "p": True, "q": False}
    assert evaluate("(nVal(\"x\") + nVal(\"y\")) * nVal(\"z\")", row) == 9.0
    assert evaluate("nVal(\"x\") + nVal(\"y\") * nVal(\"z\")", row) == 7.0
    assert evaluate("nVal(\"x\") - (nVal(\"y\") - nVal(\"z\"))", row) == 2.0
    assert evaluate("nVal(\"x\") - nVal(\"y\") - nVal(\"z\")", row) == -4.0
    assert evaluate("not (bVal(\"p\") and bVal(\"q\"))", row) is True
    assert evaluate("not bVal(\"p\") and bVal(\"q\")", row) is False


STRINGS = ['say "hi"', "back\\slash", "line\nbreak", "tab\tand\rcarriage", "é ß Σ 中 😀", "",
           "\u0000\u001f", "/slash/", "'single'", "\\n is not a newline", 'mixed "\\" \n ü',
           "\u2028\u2029", "#not a comment", "nVal(\"x\")"]


@pytest.mark.parametrize("s", STRINGS)
def test_strings_round_trip(s):
    e = B.concat(B.lit(s), B.sVal("a"))
    text = str(e)
    assert "\n" not in text                         # one line of canonical text
    back = parse(text)
    assert back.equals(e)
    assert back.args[0].value == s
    assert evaluate(back, {"a": ""}) == s
    assert evaluate(B.sVal("a") == s, {"a": s}) is True


@pytest.mark.parametrize("text, value", [
    (r'"a\u00e9"', "aé"),
    (r'"\ud83d\ude00"', "😀"),
    (r'"\"\\\/\b\f\n\r\t"', "\"\\/\b\f\n\r\t"),
    ('"é"', "é"),
])
def test_string_escapes(text, value):
    e = parse(text)
    assert e.value == value
    assert parse(str(e)).value == value


def test_string_literals_compile_in_spark(spark_session):
    from pyspark.sql import functions as F
    cols = [to_column(B.lit(s)).alias(f"s{i}") for i, s in enumerate(STRINGS)]
    row = spark_session.range(1).select(*cols).collect()[0]
    assert [row[f"s{i}"] for i in range(len(STRINGS))] == STRINGS


def test_canonical_text_is_stable():
    for _, text in SAME:
        once = str(parse(text))
        assert str(parse(once)) == once


def test_json_encoding_of_canonical_strings_is_the_grammar_encoding():
    # json.dumps(ensure_ascii=False) is what text.py writes; the grammar must read all of it
    for s in STRINGS:
        assert parse(json.dumps(s, ensure_ascii=False)).value == s
        assert parse(json.dumps(s)).value == s       # \uXXXX escapes too


# -- types ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, typ", [
    ('if(true, sVal("a"), "b")', "str"), ('if(true, tVal("t"), tVal("u"))', "ts"),
    ('coalesce(bVal("p"), false)', "bool"), ('length(sVal("a"))', "num"), ("regionId(1, 2)", "str"),
    ('isNull(tVal("t"))', "bool"), ('nVal("x") == 1', "bool"), ('hourOfDay(tVal("t"))', "num"),
    ('bucket(nVal("x"), 1)', "num"), ('concat("a")', "str"), ('contains("a", "b")', "bool"),
])
def test_result_types(text, typ):
    assert parse(text).type == typ
