"""Errors are part of the language (DSL.md): where, what, and what would be right.

Parse and type errors carry line, column and a caret under the source line; limits give
DSLLimitError, never RecursionError; the DSL never evaluates Python; rows and
DataFrames that do not provide what an expression reads are DSLInputError; what cannot
run here (learned functions, palette lookups) is DSLUnsupportedError.
"""
from __future__ import annotations

import ast as pyast
import inspect
import sys
from decimal import Decimal

import pytest

from palette.dsl import (DSLError, DSLInputError, DSLLimitError, DSLSyntaxError, DSLTypeError,
                         DSLUnsupportedError, evaluate, parse, to_python)
from palette.dsl.spark_backend import to_column
from palette.dsl import builders as B
from palette.dsl.functions import SIGNATURES


def caret_column(err: DSLError, source_line: str) -> int:
    """The 1-based column the caret of str(err) points at, under the shown source line."""
    lines = str(err).splitlines()
    i = lines.index("  " + source_line)
    caret = lines[i + 1]
    assert caret.strip() == "^", caret
    return len(caret) - 2          # both lines are indented by two spaces


# -- parse errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, line, column, words", [
    ('nVal("x") + * 2', 1, 13, ["unexpected '*'"]),
    ('nVal("x") $ 2', 1, 11, ["unexpected character '$'"]),
    ("nVal('x')", 1, 6, ["double quotes"]),
    ("1 < 2 < 3", 1, 7, ["unexpected '<'"]),
    ('nFill(\n  nVal("x"),\n  $\n)', 3, 3, ["unexpected character '$'"]),
    ('nFill(\n  nVal("x"),\n  -1 +\n)', 4, 1, ["unexpected ')'"]),
    ('# a comment line\nnVal("x") +* 2', 2, 12, ["unexpected '*'"]),
    ('concat("a",\n       "b" "c")', 2, 12, ["unexpected", '"c"']),
])
def test_syntax_errors_point_at_the_place(text, line, column, words):
    with pytest.raises(DSLSyntaxError) as info:
        parse(text)
    err = info.value
    assert (err.line, err.column) == (line, column)
    for w in words:
        assert w in err.message
    assert f"line {line}, column {column}" in str(err)
    assert caret_column(err, text.splitlines()[line - 1]) == column
    assert err.source == text


@pytest.mark.parametrize("text", ['nVal("x") +', "nFill(1, ", "(1 + 2", "", "   ", '"unterminated'])
def test_unexpected_end_names_the_end(text):
    with pytest.raises(DSLSyntaxError) as info:
        parse(text)
    err = info.value
    assert err.line is not None and err.column is not None
    lines = text.splitlines() or [""]
    assert 1 <= err.line <= len(lines)
    assert 1 <= err.column <= len(lines[err.line - 1]) + 1
    assert "^" in str(err)
    assert "end of" in err.message or "unexpected" in err.message


def test_error_position_after_a_multi_line_expression():
    text = 'if(nVal("x") > 0,\n   "pos",\n   nVal("x"))'
    with pytest.raises(DSLTypeError) as info:
        parse(text)
    err = info.value
    assert (err.line, err.column) == (3, 4)
    assert caret_column(err, '   nVal("x"))') == 4
    assert "argument 3 of if" in err.message and "str" in err.message and "num" in err.message


# -- type errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, suggestion", [
    ("nFil", "nFill"), ("lenght", "length"), ("LOG", "log"), ("startswith", "startsWith"),
    ("regionID", "regionId"), ("coalese", "coalesce"), ("sqr", "sqrt"), ("dayofweek", "dayOfWeek"),
    ("hourOfday", "hourOfDay"), ("bucke", "bucket"),
])
def test_unknown_function_suggests_the_closest_name(name, suggestion):
    text = f'{name}(nVal("x"))'
    with pytest.raises(DSLTypeError) as info:
        parse(text)
    err = info.value
    assert f"unknown function {name!r}" in err.message
    assert f"did you mean {suggestion!r}" in err.message        # the closest name comes first
    assert (err.line, err.column) == (1, 1)


def test_unknown_function_without_a_close_name_lists_them():
    with pytest.raises(DSLTypeError) as info:
        parse("qqqqzzzz(1)")
    for name in ("nFill", "regionId", "concat"):
        assert name in info.value.message


@pytest.mark.parametrize("text, words", [
    ('nFill(nVal("x"))', ["nFill", "2 arguments", "got 1"]),
    ('nFill(nVal("x"), 1, 2)', ["nFill", "2 arguments", "got 3"]),
    ("coalesce()", ["coalesce", "at least 1", "got 0"]),
    ("min()", ["min", "at least 1", "got 0"]),
    ("concat()", ["concat", "at least 1", "got 0"]),
    ('regionId(nVal("x"))', ["regionId", "2 to 3", "got 1"]),
    ('round(nVal("x"), 1, 2)', ["round", "1 to 2", "got 3"]),
    ('bucket(nVal("x"))', ["bucket", "at least 2", "got 1"]),
    ("isNull()", ["isNull", "1 argument", "got 0"]),
])
def test_wrong_arity_names_the_function_and_counts(text, words):
    with pytest.raises(DSLTypeError) as info:
        parse(text)
    for w in words:
        assert w in info.value.message, info.value.message


@pytest.mark.parametrize("text, words", [
    ('nFill(nVal("x"), "a")', ["argument 2 of nFill", "num", "str"]),
    ('sFill(sVal("a"), 1)', ["argument 2 of sFill", "str", "num"]),
    ('log(sVal("a"))', ["argument 1 of log", "num", "str"]),
    ('length(nVal("x"))', ["argument 1 of length", "str", "num"]),
    ('hourOfDay(nVal("x"))', ["argument 1 of hourOfDay", "ts", "num"]),
    ('contains(sVal("a"), true)', ["argument 2 of contains", "str", "bool"]),
    ('if(nVal("x"), 1, 2)', ["argument 1 of if", "bool", "num"]),
    ('if(true, 1, "a")', ["argument 3 of if", "num", "str"]),
    ('coalesce(nVal("x"), sVal("a"))', ["argument 2 of coalesce", "num", "str"]),
    ('min(1, "a")', ["argument 2 of min", "num", "str"]),
    ('regionId(nVal("x"), sVal("a"))', ["argument 2 of regionId", "num", "str"]),
    ('nVal("x") + "a"', ["'+'", "num", "str"]),
    ('sVal("a") * 2', ["'*'", "str", "num"]),
    ('sVal("a") < true', ["'<'", "str", "bool"]),
    ("true < false", ["'<'", "bool"]),
    ('tVal("t") == nVal("x")', ["'=='", "ts", "num"]),
    ('nVal("x") and true', ["'and'", "num", "bool"]),
    ('true or "a"', ["'or'", "bool", "str"]),
    ("not 1", ["'not'", "bool", "num"]),
    ('-"a"', ["'-'", "num", "str"]),
])
def test_wrong_types_name_the_function_argument_and_types(text, words):
    with pytest.raises(DSLTypeError) as info:
        parse(text)
    err = info.value
    for w in words:
        assert w in err.message, err.message
    assert err.line == 1 and err.column is not None
    assert caret_column(err, text) == err.column


@pytest.mark.parametrize("text, words", [
    ('round(nVal("x"), nVal("d"))', ["argument 2 of round", "literal"]),
    ('round(nVal("x"), 1.5)', ["argument 2 of round", "whole number", "-15", "15"]),
    ('round(nVal("x"), 16)', ["argument 2 of round", "-15 to 15", "16"]),
    ('round(nVal("x"), -16)', ["argument 2 of round", "-15 to 15"]),
    ('round(nVal("x"), "2")', ["argument 2 of round", "number literal"]),
    ('round(nVal("x"), 1 + 1)', ["argument 2 of round", "literal"]),
    ("regionId(1, 2, 0)", ["argument 3 of regionId", "1 to 12"]),
    ("regionId(1, 2, 13)", ["argument 3 of regionId", "1 to 12"]),
    ('regionId(1, 2, nVal("p"))', ["argument 3 of regionId", "literal"]),
    ('bucket(nVal("x"), nVal("y"))', ["argument 2 of bucket", "literal"]),
    ('bucket(nVal("x"), 2, 1)', ["bucket", "strictly ascending"]),
    ('bucket(nVal("x"), 1, 1)', ["bucket", "strictly ascending"]),
    ('bucket(nVal("x"), 0, -0.0)', ["bucket", "strictly ascending"]),
    ('bucket(nVal("x"), "a")', ["argument 2 of bucket", "number literal"]),
    ('impute(nVal("x"), "avg")', ["argument 2 of impute", "'mean'", "'median'", "'mode'", "'avg'"]),
    ('bucketize(nVal("x"), 1)', ["argument 2 of bucketize", "2 to 1000"]),
])
def test_literal_only_arguments(text, words):
    with pytest.raises(DSLTypeError) as info:
        parse(text)
    for w in words:
        assert w in info.value.message, info.value.message


def test_builders_report_the_same_type_errors():
    with pytest.raises(DSLTypeError, match="argument 2 of nFill must be num, got str"):
        B.nFill(B.nVal("x"), "a")
    with pytest.raises(DSLTypeError, match="must be a literal"):
        B.round_(B.nVal("x"), B.nVal("d"))
    with pytest.raises(DSLTypeError, match="unknown function 'nope'"):
        from palette.dsl.ast import Call
        Call("nope", (B.nVal("x"),))
    with pytest.raises(DSLTypeError, match="needs num operands"):
        B.nVal("x") + "a"
    with pytest.raises(DSLTypeError, match="finite"):
        B.nVal("x") + float("nan")
    with pytest.raises(DSLTypeError, match="finite"):
        B.nVal("x") * float("inf")
    with pytest.raises(DSLTypeError):
        B.nVal("x") + None
    with pytest.raises(DSLTypeError, match="no truth value"):     # a condition is no Python bool
        bool(B.nVal("x") > 1)


@pytest.mark.parametrize("text", ["1e400", "-1e400"])
def test_number_literals_must_be_finite(text):
    with pytest.raises(DSLTypeError, match="finite"):
        parse(text)


@pytest.mark.parametrize("text, words", [
    ("nVal(1)", ["nVal", "string literal"]),
    ('nVal("x", "y")', ["nVal", "string literal"]),
    ("sVal()", ["sVal", "string literal"]),
    ('nVal(sVal("a"))', ["nVal", "string literal"]),
    ('nVal("a:b:c")', ["malformed reference", "a:b:c"]),
    ('nVal("a b")', ["malformed reference"]),
    ('nVal("@basis:")', ["malformed reference"]),
    ('nVal("")', ["malformed reference"]),
])
def test_readers_take_one_well_formed_reference(text, words):
    with pytest.raises(DSLError) as info:
        parse(text)
    assert isinstance(info.value, (DSLSyntaxError, DSLTypeError))
    for w in words:
        assert w in info.value.message
    assert info.value.line == 1


def test_parse_rejects_what_is_not_text():
    for value in (123, None, b'nVal("x")', ["1"]):
        with pytest.raises(DSLSyntaxError, match="must be text"):
            parse(value)


# -- limits -----------------------------------------------------------------------------

def _no_recursion_error(fn):
    try:
        return fn()
    except RecursionError:             # pragma: no cover - the failure being tested for
        pytest.fail("RecursionError instead of a DSLLimitError")


@pytest.mark.parametrize("text", [
    "-(" * 5000 + "1" + ")" * 5000,                    # 15,001 characters
    "1" + " " * 10_000,
    '"' + "a" * 10_000 + '"',
    "abs(" * 2500 + "1" + ")" * 2500,
])
def test_longer_than_10000_characters(text):
    assert len(text) > 10_000
    with pytest.raises(DSLLimitError, match="10,000"):
        _no_recursion_error(lambda: parse(text))


def test_exactly_10000_characters_is_fine():
    text = "1" + " " * 9_999
    assert len(text) == 10_000
    assert parse(text).value == 1.0


@pytest.mark.parametrize("text", [
    "-(" * 3000 + "1" + ")" * 3000,                    # deep, but under 10,000 characters
    "abs(" * 150 + "1" + ")" * 150,
    "abs(" * 1800 + "1" + ")" * 1800,
    "- " * 150 + 'nVal("x")',
    "not " * 2400 + "true",
    "1" + " + 1" * 2400,                              # left-deep
    "1 - (" * 1600 + "1" + ")" * 1600,                # right-deep
    "if(true, " * 700 + "1" + ", 0)" * 700,
    'concat("a", ' * 700 + '"b"' + ")" * 700,
])
def test_nesting_deeper_than_100_from_text(text):
    assert len(text) <= 10_000
    with pytest.raises(DSLLimitError, match="deeper than 100") as info:
        _no_recursion_error(lambda: parse(text))
    assert info.value.line == 1 and info.value.column is not None


def test_deep_parentheses_are_not_a_recursion_error():
    text = "(" * 4000 + "1" + ")" * 4000
    try:
        _no_recursion_error(lambda: parse(text))
    except DSLLimitError:
        pass


def _chain(n, wrap):
    e = B.nVal("x")
    for _ in range(n):
        e = wrap(e)
    return e


@pytest.mark.parametrize("wrap", [B.abs_, lambda e: -e, lambda e: e + 1, lambda e: 1 - e,
                                  lambda e: B.nFill(e, 0), lambda e: B.if_(e > 0, e, 0)],
                         ids=["abs", "neg", "plus", "minus", "nFill", "if"])
def test_nesting_deeper_than_100_from_builders(wrap):
    with pytest.raises(DSLLimitError, match="deeper than 100"):
        _no_recursion_error(lambda: _chain(150, wrap))
    with pytest.raises(DSLLimitError):
        _no_recursion_error(lambda: _chain(5000, wrap))


def test_depth_100_is_the_limit_and_works():
    ok = _chain(99, lambda e: -e)                      # 99 minus signs over a read: depth 100
    assert ok.depth == 100
    assert evaluate(ok, {"x": 2.0}) == -2.0
    assert parse(str(ok)).equals(ok)
    text = "-(" * 99 + 'nVal("x")' + ")" * 99
    assert parse(text).depth == 100
    with pytest.raises(DSLLimitError):
        parse("-(" * 100 + 'nVal("x")' + ")" * 100)
    with pytest.raises(DSLLimitError):
        -ok


def test_limits_do_not_depend_on_the_recursion_limit():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        with pytest.raises(DSLLimitError):
            _no_recursion_error(lambda: parse("abs(" * 1800 + "1" + ")" * 1800))
        e = _chain(99, B.abs_)
        assert evaluate(e, {"x": -3.0}) == 3.0
    finally:
        sys.setrecursionlimit(old)


# -- the DSL never evaluates Python ----------------------------------------------------------

@pytest.mark.parametrize("text", ['__import__("os")', 'eval("1")', 'exec("import os")', 'open("/etc/passwd")',
                                  'getattr(nVal("x"), "real")', 'compile("1", "f", "eval")',
                                  'globals()', 'breakpoint()'])
def test_python_builtins_are_unknown_functions(text):
    with pytest.raises(DSLTypeError, match="unknown function"):
        parse(text)


@pytest.mark.parametrize("text", ["a.b", 'nVal("x").real', 'nVal("x").__class__', "os.system", 'nVal("x")[0]',
                                  "lambda: 1", "1; 2", "[1, 2]", '{"a": 1}', "x = 1", "import os",
                                  "1 if true else 2", "f'{1}'", "nVal(\"x\") ** 2", "a | b", "1 && 2"])
def test_python_syntax_is_a_syntax_error(text):
    with pytest.raises(DSLSyntaxError):
        parse(text)


def test_strings_holding_python_are_just_strings():
    code = "__import__('os').system('echo pwned')"
    assert evaluate(parse(f'"{code}"'), {}) == code
    assert evaluate('concat(sVal("a"), "")', {"a": code}) == code


def test_no_eval_in_the_implementation():
    import palette.dsl.ast
    import palette.dsl.parser
    import palette.dsl.python_backend
    import palette.dsl.spark_backend
    import palette.dsl.text
    for module in (palette.dsl.ast, palette.dsl.parser, palette.dsl.python_backend,
                   palette.dsl.spark_backend, palette.dsl.text):
        tree = pyast.parse(inspect.getsource(module))
        for node in pyast.walk(tree):
            if isinstance(node, pyast.Call):
                f = node.func
                if isinstance(f, pyast.Name):          # builtins
                    assert f.id not in ("eval", "exec", "compile", "__import__"), \
                        f"{module.__name__} calls {f.id}"
                if isinstance(f, pyast.Attribute):     # SQL text would be a second language
                    assert f.attr not in ("expr", "selectExpr", "sql"), f"{module.__name__} calls {f.attr}"


# -- Python backend: rows -------------------------------------------------------------------

def test_missing_field_names_it_and_lists_the_fields_present():
    with pytest.raises(DSLInputError) as info:
        evaluate('nVal("x") + nVal("y")', {"y": 1.0, "b": "s", "a": None})
    msg = info.value.message
    assert "'x'" in msg and 'nVal("x")' in msg
    assert "a, b, y" in msg


def test_missing_basis_field_names_the_field():
    with pytest.raises(DSLInputError, match="'order_size'"):
        evaluate('nVal("basis:order_size") * 2', {"size": 3})


def test_missing_field_in_a_branch_not_taken_is_still_an_error():
    with pytest.raises(DSLInputError, match="'x'"):
        evaluate('if(true, 1, nVal("x"))', {})
    with pytest.raises(DSLInputError, match="'x'"):
        evaluate('coalesce(1, nVal("x"))', {"y": 1})
    with pytest.raises(DSLInputError, match="fields present: none"):
        evaluate('false and bVal("p")', {})


@pytest.mark.parametrize("text, value, expected", [
    ('nVal("x")', "1", "a number"),
    ('nVal("x")', True, "a number"),
    ('nVal("x")', False, "a number"),
    ('nVal("x")', [1.0], "a number"),
    ('nVal("x")', 1 + 2j, "a number"),
    ('sVal("x")', 1, "a string"),
    ('sVal("x")', b"abc", "a string"),
    ('bVal("x")', 1, "a boolean"),
    ('bVal("x")', "true", "a boolean"),
    ('tVal("x")', "2020-01-01", "a datetime"),
    ('tVal("x")', 1577836800, "a datetime"),
])
def test_wrong_value_type_names_the_field_and_the_expected_type(text, value, expected):
    with pytest.raises(DSLInputError) as info:
        evaluate(text, {"x": value})
    msg = info.value.message
    assert "'x'" in msg and expected in msg and type(value).__name__ in msg


def test_wrong_value_type_is_an_error_even_where_it_would_not_be_used():
    with pytest.raises(DSLInputError):
        evaluate('if(false, nVal("x"), 0)', {"x": "oops"})


def test_accepted_number_inputs():
    f = to_python('nVal("x")')
    assert f({"x": 3}) == 3.0 and type(f({"x": 3})) is float
    assert f({"x": Decimal("2.5")}) == 2.5
    assert f({"x": 10 ** 400}) is None                  # overflows a double: like inf, null
    assert f({"x": float("nan")}) is None


# -- Spark backend: schemas -----------------------------------------------------------------

@pytest.fixture(scope="module")
def df(spark_session):
    return spark_session.createDataFrame([], "x double, n long, s string, flag boolean, t timestamp, d date")


def test_missing_column_lists_the_available_columns(df):
    with pytest.raises(DSLInputError) as info:
        to_column('nVal("x") + nVal("y")', schema=df.schema)
    msg = info.value.message
    assert "'y'" in msg and 'nVal("y")' in msg
    assert "x, n, s, flag, t, d" in msg


@pytest.mark.parametrize("text, column, found", [
    ('nVal("s")', "s", "string"),
    ('nVal("flag")', "flag", "boolean"),
    ('nVal("t")', "t", "timestamp"),
    ('sVal("x")', "x", "double"),
    ('bVal("n")', "n", "bigint"),
    ('tVal("d")', "d", "date"),
    ('tVal("s")', "s", "string"),
])
def test_wrong_column_type_names_both_types(df, text, column, found):
    with pytest.raises(DSLInputError) as info:
        to_column(text, schema=df.schema)
    msg = info.value.message
    reader = text.split("(")[0]
    want = {"nVal": "numeric", "sVal": "string", "bVal": "boolean", "tVal": "timestamp"}[reader]
    assert f"'{column}'" in msg and want in msg and found in msg


def test_column_checks_hold_in_branches_not_taken(df):
    with pytest.raises(DSLInputError, match="'nope'"):
        to_column('if(true, 1, nVal("nope"))', schema=df.schema)


# -- learned functions and palette references ---------------------------------------------

LEARNED = sorted(name for name, sig in SIGNATURES.items() if sig.learned)
LEARNED_EXAMPLES = {"impute": 'impute(nVal("x"))', "standardize": 'standardize(nVal("x"))',
                    "minMaxScale": 'minMaxScale(nVal("x"))', "bucketize": 'bucketize(nVal("x"), 4)'}


def test_every_learned_function_has_an_example():
    assert set(LEARNED) == set(LEARNED_EXAMPLES)


@pytest.mark.parametrize("name", LEARNED)
def test_learned_functions_are_unsupported_in_the_python_backend(name):
    e = parse(LEARNED_EXAMPLES[name])               # well-typed
    with pytest.raises(DSLUnsupportedError, match=name):
        to_python(e)
    with pytest.raises(DSLUnsupportedError, match=name):
        to_python(f'nFill({LEARNED_EXAMPLES[name]}, 0) + 1')


@pytest.mark.parametrize("name", LEARNED)
def test_learned_functions_are_unsupported_in_the_spark_backend(df, name):
    with pytest.raises(DSLUnsupportedError, match=name):
        to_column(LEARNED_EXAMPLES[name], schema=df.schema)
    with pytest.raises(DSLUnsupportedError, match=name):
        to_column(f'if(true, 0, {LEARNED_EXAMPLES[name]})')


@pytest.mark.parametrize("ref", ["@palette:restaurant:batch_fg:prep_time:r_id", "restaurant:batch_fg:prep_time:r_id"])
def test_plain_expressions_cannot_look_up_palette_references(df, ref):
    with pytest.raises(DSLUnsupportedError, match="cannot look up: put the expression in a DSL stage"):
        evaluate(f'nVal("{ref}")', {"prep_time": 1.0, "r_id": 1})
    with pytest.raises(DSLUnsupportedError, match="cannot look up: put the expression in a DSL stage"):
        to_python(f'nFill(nVal("{ref}"), -1)')
    with pytest.raises(DSLUnsupportedError, match="cannot look up: put the expression in a DSL stage"):
        to_column(f'nFill(nVal("{ref}"), -1)', schema=df.schema)
