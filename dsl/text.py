"""Canonical DSL text of an AST: ``parse(to_text(e))`` gives back ``e``.

Parentheses appear only where precedence needs them.
"""
from __future__ import annotations

import json
import math

from .ast import Binary, Call, Literal, Node, Read, Unary

# Binding strength, loosest first; atoms (literals, calls, reads) bind tightest.
_PREC = {"or": 1, "and": 2, "not": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "==": 4, "!=": 4,
         "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}
_UNARY_MINUS, _ATOM = 7, 8


def format_number(v: float) -> str:
    """Whole numbers below 2**53 without a fraction (``-1``, ``2``), the rest as Python's
    shortest round-tripping repr (``0.5``, ``1e+300``, ``-0.0``)."""
    v = float(v)
    if v.is_integer() and abs(v) < 2.0 ** 53 and not (v == 0 and math.copysign(1.0, v) < 0):
        return str(int(v))
    return repr(v)


def _prec(node: Node) -> int:
    if isinstance(node, Binary):
        return _PREC[node.op]
    if isinstance(node, Unary):
        return _PREC["not"] if node.op == "not" else _UNARY_MINUS
    return _ATOM


def _wrap(node: Node, min_prec: int) -> str:
    text = to_text(node)
    return f"({text})" if _prec(node) < min_prec else text


def to_text(node: Node) -> str:
    if isinstance(node, Literal):
        if node.type == "bool":
            return "true" if node.value else "false"
        if node.type == "str":
            return json.dumps(node.value, ensure_ascii=False)
        return format_number(node.value)
    if isinstance(node, Read):
        return f"{node.reader}({json.dumps(node.ref, ensure_ascii=False)})"
    if isinstance(node, Call):
        return f"{node.name}({', '.join(to_text(a) for a in node.args)})"
    if isinstance(node, Unary):
        if node.op == "not":
            return f"not {_wrap(node.operand, _PREC['not'])}"
        operand = node.operand
        # "-1.0" would read back as a negative literal, so a literal operand keeps its parentheses.
        if isinstance(operand, Literal) or _prec(operand) < _UNARY_MINUS:
            return f"-({to_text(operand)})"
        return f"-{to_text(operand)}"
    if isinstance(node, Binary):
        p = _PREC[node.op]
        # Left-associative; comparisons do not chain, so both sides bind tighter.
        left_min = p + 1 if p == 4 else p
        return f"{_wrap(node.left, left_min)} {node.op} {_wrap(node.right, p + 1)}"
    raise TypeError(f"no text rule for DSL node {type(node).__name__}")
