"""Text to AST: a lark LALR parser over ``grammar.lark``.

>>> from palette.dsl import parse
>>> e = parse('nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1)')
>>> e.type, str(e)
('num', 'nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1)')
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from .ast import Binary, Call, Literal, Node, Read, Unary
from .errors import DSLError, DSLLimitError, DSLSyntaxError
from .functions import READERS

MAX_LENGTH = 10_000

_TOKEN_NAMES = {"LPAR": "'('", "RPAR": "')'", "COMMA": "','", "MINUS": "'-'", "NUMBER": "a number",
                "STRING": "a string", "NAME": "a name", "COMP_OP": "a comparison", "ADD_OP": "'+' or '-'",
                "MUL_OP": "'*', '/' or '%'", "TRUE": "true", "FALSE": "false", "NOT": "not",
                "AND": "and", "OR": "or", "$END": "the end of the expression"}


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = files(__package__).joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=True)


def _pos(meta_or_token):
    return (meta_or_token.line, meta_or_token.column)


@v_args(meta=True, inline=True)
class _ToAST(Transformer_NonRecursive):
    def number(self, meta, tok):
        return Literal(float(tok), pos=_pos(tok))

    def string(self, meta, tok):
        return Literal(json.loads(tok), pos=_pos(tok))

    def true(self, meta):
        return Literal(True, pos=_pos(meta))

    def false(self, meta):
        return Literal(False, pos=_pos(meta))

    def call(self, meta, name: Token, *args):
        args = tuple(a for a in args if a is not None)
        if str(name) in READERS:
            if len(args) != 1 or not (isinstance(args[0], Literal) and args[0].type == "str"):
                raise DSLSyntaxError(f'{name} takes one string literal, the reference: {name}("basis:x")',
                                     line=name.line, column=name.column)
            return Read(str(name), args[0].value, pos=_pos(name))
        return Call(str(name), args, pos=_pos(name))

    def neg(self, meta, operand):
        return Unary("-", operand, pos=_pos(meta))

    def not_(self, meta, operand):
        return Unary("not", operand, pos=_pos(meta))

    def arith(self, meta, left, op, right):
        return Binary(str(op), left, right, pos=_pos(op))

    compare = arith

    def and_(self, meta, left, right):
        return Binary("and", left, right, pos=_pos(meta))

    def or_(self, meta, left, right):
        return Binary("or", left, right, pos=_pos(meta))


def _syntax_error(err: UnexpectedInput, text: str) -> DSLSyntaxError:
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        hint = " (strings use double quotes)" if ch == "'" else ""
        msg = f"unexpected character {ch!r}{hint}"
    elif isinstance(err, UnexpectedEOF):
        msg = "unexpected end of expression"
    elif isinstance(err, UnexpectedToken):
        found = "end of expression" if err.token.type == "$END" else repr(str(err.token))
        expected = sorted({_TOKEN_NAMES.get(t, t) for t in err.expected})
        msg = f"unexpected {found}; expected {', '.join(expected)}"
    else:
        msg = str(err)
    line, column = getattr(err, "line", None), getattr(err, "column", None)
    if line is None or line < 1:      # at end of input lark may not know; point past the last char
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    return DSLSyntaxError(msg, line=line, column=column, source=text)


def parse(text: str) -> Node:
    """Parse DSL text into a typed AST; raises ``DSLError`` with line, column and caret."""
    if isinstance(text, Node):
        return text
    if not isinstance(text, str):
        raise DSLSyntaxError(f"a DSL expression must be text or an expression, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise DSLLimitError(f"expression is {len(text):,} characters long; the limit is {MAX_LENGTH:,}")
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(e, text) from None
    try:
        return _ToAST().transform(tree)
    except VisitError as e:
        inner = e.orig_exc
        if isinstance(inner, DSLError):
            raise inner.with_source(text) from None
        raise
