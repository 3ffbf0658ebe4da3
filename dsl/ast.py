"""The typed, immutable AST of the feature DSL.

Five node classes: ``Literal``, ``Read`` (``nVal("ref")`` and friends), ``Unary``,
``Binary`` and ``Call``. A node computes its type when it is built, so an
ill-typed tree cannot exist; both backends compile these classes and nothing else.

Nodes are also the Python builders: operators build new nodes, and ``==`` / ``!=``
build comparisons whose truth value is structural equality (as in SQLAlchemy), so
``parse(str(e)) == e`` is both an expression and a usable assertion.

>>> from palette.dsl.ast import Read, Literal
>>> e = Read("nVal", "basis:order_size") * 2 + 1
>>> str(e)
'nVal("basis:order_size") * 2 + 1'
>>> e.type
'num'
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Iterator

from palette.refs import Ref, parse_ref

from .errors import DSLLimitError, DSLTypeError
from .functions import (ARITH_OPS, BOOL, BOOL_OPS, COMPARE_OPS, IMPUTE_METHODS, NUM, READERS,
                        SIGNATURES, STR, TS, VEC)

MAX_DEPTH = 100
# Vectors have no operators: what a type error on one suggests instead.
_VEC_HINT = "; vectors have no operators: use dot, norm, cosine or vget"


def _fail(message: str, pos) -> DSLTypeError:
    line, column = pos if pos else (None, None)
    return DSLTypeError(message, line=line, column=column)


@dataclass(frozen=True, eq=False)
class Node:
    pos: tuple[int, int] | None = field(default=None, kw_only=True, repr=False)
    type: str = field(init=False, repr=False)
    depth: int = field(init=False, repr=False)

    def __post_init__(self):
        children = self.children()
        for c in children:
            if c.type == "invalid":     # an ill-typed ==/!= used inside a larger expression
                raise c.error
        depth = 1 + max((c.depth for c in children), default=0)
        if depth > MAX_DEPTH:
            line, column = self.pos if self.pos else (None, None)
            raise DSLLimitError(f"expression nested deeper than {MAX_DEPTH} levels; split it into "
                                "several stages or named columns", line=line, column=column)
        object.__setattr__(self, "depth", depth)
        object.__setattr__(self, "type", self._type_rule())

    # -- structure -------------------------------------------------------
    def children(self) -> tuple["Node", ...]:
        return ()

    def with_children(self, children: tuple["Node", ...]) -> "Node":
        return self

    def _key(self) -> tuple:
        raise NotImplementedError

    def _node_class(self) -> type:
        """The public node class (a comparison built with == is a Binary like a parsed one)."""
        return next(c for c in NODE_CLASSES if isinstance(self, c))

    def equals(self, other: Any) -> bool:
        """Structural equality (positions ignored)."""
        return isinstance(other, Node) and self._node_class() is other._node_class() \
            and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self._node_class().__name__, self._key()))

    def walk(self) -> Iterator["Node"]:
        """Every node of the tree, parents before children."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children()))

    def reads(self) -> list["Read"]:
        """The distinct ``Read`` nodes of the tree, in order of appearance."""
        seen: dict[Any, Read] = {}
        for n in self.walk():
            if isinstance(n, Read):
                seen.setdefault(n._key(), n)
        return list(seen.values())

    def __str__(self) -> str:
        from .text import to_text
        return to_text(self)

    def __repr__(self) -> str:
        return f"<dsl {self.type}: {self}>"

    def __bool__(self):
        raise DSLTypeError("a DSL expression has no truth value: combine conditions with &, | and ~, "
                        "and compare trees with .equals()")

    # -- operators: the Python builders --------------------------------------
    def _bin(self, op, other, swap=False):
        other = lit(other)
        return Binary(op, other, self) if swap else Binary(op, self, other)

    def __add__(self, o): return self._bin("+", o)
    def __radd__(self, o): return self._bin("+", o, True)
    def __sub__(self, o): return self._bin("-", o)
    def __rsub__(self, o): return self._bin("-", o, True)
    def __mul__(self, o): return self._bin("*", o)
    def __rmul__(self, o): return self._bin("*", o, True)
    def __truediv__(self, o): return self._bin("/", o)
    def __rtruediv__(self, o): return self._bin("/", o, True)
    def __mod__(self, o): return self._bin("%", o)
    def __rmod__(self, o): return self._bin("%", o, True)
    def __lt__(self, o): return self._bin("<", o)
    def __le__(self, o): return self._bin("<=", o)
    def __gt__(self, o): return self._bin(">", o)
    def __ge__(self, o): return self._bin(">=", o)
    def __and__(self, o): return self._bin("and", o)
    def __rand__(self, o): return self._bin("and", o, True)
    def __or__(self, o): return self._bin("or", o)
    def __ror__(self, o): return self._bin("or", o, True)
    def __neg__(self): return Unary("-", self)
    def __invert__(self): return Unary("not", self)

    def __eq__(self, o):  # type: ignore[override]
        if not isinstance(o, (Node, bool, int, float, str)):
            return NotImplemented
        return _Comparison("==", self, lit(o))

    def __ne__(self, o):  # type: ignore[override]
        if not isinstance(o, (Node, bool, int, float, str)):
            return NotImplemented
        return _Comparison("!=", self, lit(o))

    def _type_rule(self) -> str:
        raise NotImplementedError


def lit(value: Any) -> Node:
    """A literal from a Python value (nodes pass through)."""
    if isinstance(value, Node):
        return value
    return Literal(value)


@dataclass(frozen=True, eq=False, repr=False)
class Literal(Node):
    value: float | str | bool

    def __post_init__(self):
        v = self.value
        if isinstance(v, bool) or isinstance(v, str):
            pass
        elif isinstance(v, (int, float)):
            v = float(v)
            if not math.isfinite(v):
                raise _fail(f"a number literal must be finite, got {self.value!r}", self.pos)
            object.__setattr__(self, "value", v)
        else:
            raise _fail(f"unsupported literal {self.value!r} of type {type(v).__name__}: "
                        "use a number, a string or true/false", self.pos)
        super().__post_init__()

    def _type_rule(self):
        return BOOL if isinstance(self.value, bool) else STR if isinstance(self.value, str) else NUM

    def _key(self):
        # -0.0 and 0.0 are different literals; bool and float never compare equal here.
        v = self.value
        return (self.type, math.copysign(1.0, v) if self.type == NUM else None, v)


@dataclass(frozen=True, eq=False, repr=False)
class Read(Node):
    """``nVal(ref)``, ``sVal(ref)``, ``bVal(ref)``, ``tVal(ref)`` or ``vVal(ref)``."""
    reader: str
    ref: str
    parsed: Ref = field(init=False, repr=False)

    def __post_init__(self):
        if self.reader not in READERS:
            raise _fail(f"unknown reader {self.reader!r}; use one of {', '.join(READERS)}", self.pos)
        try:
            parsed = parse_ref(self.ref)
        except ValueError as e:
            raise _fail(str(e), self.pos) from None
        object.__setattr__(self, "parsed", parsed)
        object.__setattr__(self, "ref", str(parsed))
        super().__post_init__()

    def _type_rule(self):
        return READERS[self.reader]

    def _key(self):
        return (self.reader, self.ref)


@dataclass(frozen=True, eq=False, repr=False)
class Unary(Node):
    op: str          # "-" or "not"
    operand: Node

    def children(self):
        return (self.operand,)

    def with_children(self, children):
        return Unary(self.op, children[0], pos=self.pos)

    def _type_rule(self):
        want = {"-": NUM, "not": BOOL}.get(self.op)
        if want is None:
            raise _fail(f"unknown unary operator {self.op!r}", self.pos)
        if self.operand.type != want:
            hint = _VEC_HINT if self.operand.type == VEC else ""
            raise _fail(f"operator {self.op!r} needs a {want} operand, got {self.operand.type}: {self}{hint}",
                        self.pos)
        return want

    def _key(self):
        return (self.op, self.operand)


@dataclass(frozen=True, eq=False, repr=False)
class Binary(Node):
    op: str
    left: Node
    right: Node

    def children(self):
        return (self.left, self.right)

    def with_children(self, children):
        return Binary(self.op, children[0], children[1], pos=self.pos)

    def _type_rule(self):
        lt, rt = self.left.type, self.right.type
        hint = _VEC_HINT if VEC in (lt, rt) else ""
        if self.op in ARITH_OPS:
            if lt != NUM or rt != NUM:
                raise _fail(f"operator {self.op!r} needs num operands, got {lt} and {rt}{hint}", self.pos)
            return NUM
        if self.op in COMPARE_OPS:
            if lt == VEC or rt == VEC:
                raise _fail(f"operator {self.op!r} does not compare vec values{hint}", self.pos)
            if lt != rt:
                raise _fail(f"operator {self.op!r} compares values of one type, got {lt} and {rt}",
                            self.pos)
            allowed = (NUM, STR, TS, BOOL) if self.op in ("==", "!=") else (NUM, STR, TS)
            if lt not in allowed:
                raise _fail(f"operator {self.op!r} does not order {lt} values", self.pos)
            return BOOL
        if self.op in BOOL_OPS:
            if lt != BOOL or rt != BOOL:
                raise _fail(f"operator {self.op!r} needs bool operands, got {lt} and {rt}{hint}", self.pos)
            return BOOL
        raise _fail(f"unknown operator {self.op!r}", self.pos)

    def _key(self):
        return (self.op, self.left, self.right)


class _Comparison(Binary):
    """What ``==`` / ``!=`` on nodes return: a DSL comparison whose truth value is
    structural equality, so ``assert parse(str(e)) == e`` works."""

    def __bool__(self):
        same = self.left.equals(self.right)
        return same if self.op == "==" else not same

    def __post_init__(self):
        # Comparing trees of different types is a plain "not equal", not a type error.
        try:
            super().__post_init__()
        except DSLTypeError as e:
            object.__setattr__(self, "depth", 1 + max(self.left.depth, self.right.depth))
            object.__setattr__(self, "type", "invalid")
            object.__setattr__(self, "error", e)

    def _key(self):
        return (self.op, self.left, self.right)


@dataclass(frozen=True, eq=False, repr=False)
class Call(Node):
    name: str
    args: tuple[Node, ...]

    def __post_init__(self):
        object.__setattr__(self, "args", tuple(lit(a) for a in self.args))
        super().__post_init__()

    def children(self):
        return self.args

    def with_children(self, children):
        return Call(self.name, tuple(children), pos=self.pos)

    @property
    def signature(self):
        return SIGNATURES[self.name]

    def _key(self):
        return (self.name, self.args)

    def _type_rule(self):
        sig = SIGNATURES.get(self.name)
        if sig is None:
            known = list(SIGNATURES) + list(READERS)
            close = difflib.get_close_matches(self.name, known, n=3, cutoff=0.5)
            if not close:
                close = [k for k in known if k.lower() == self.name.lower()]
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
                f"; known functions: {', '.join(sorted(known))}"
            raise _fail(f"unknown function {self.name!r}{hint}", self.pos)
        n = len(self.args)
        if not sig.min_args <= n <= sig.max_args:
            want = (f"at least {sig.min_args}" if sig.variadic else
                    str(sig.min_args) if sig.min_args == sig.max_args else
                    f"{sig.min_args} to {int(sig.max_args)}")
            plural = "" if want in ("1", "at least 1") else "s"
            raise _fail(f"function {self.name} takes {want} argument{plural}, "
                        f"got {n}: {sig.usage()}", self.pos)
        generic = None
        for i, arg in enumerate(self.args):
            p = sig.param(i)
            where = f"argument {i + 1} of {self.name}"
            if p == "any":
                continue
            if p == "T":
                if generic is None:
                    generic = arg.type
                elif arg.type != generic:
                    raise _fail(f"{where} must be {generic} like the arguments before it, got "
                                f"{arg.type}: {sig.usage()}", arg.pos or self.pos)
                continue
            if p.endswith("_lit"):
                _check_literal(p, arg, where, sig, self.pos)
                continue
            if arg.type != p:
                raise _fail(f"{where} must be {p}, got {arg.type} ({arg}): {sig.usage()}",
                            arg.pos or self.pos)
        if self.name == "bucket":
            cuts = [a.value for a in self.args[1:]]
            if any(b <= a for a, b in zip(cuts, cuts[1:])):
                raise _fail(f"bucket cut points must be strictly ascending, got {cuts}", self.pos)
        return generic if sig.returns == "T" else sig.returns


def _check_literal(p: str, arg: Node, where: str, sig, pos):
    if not isinstance(arg, Literal):
        raise _fail(f"{where} must be a literal, got the expression {arg}: {sig.usage()}", arg.pos or pos)
    if p == "method_lit":
        if arg.value not in IMPUTE_METHODS:
            raise _fail(f"{where} must be one of {', '.join(map(repr, IMPUTE_METHODS))}, "
                        f"got {arg.value!r}", arg.pos or pos)
        return
    if arg.type != NUM:
        raise _fail(f"{where} must be a number literal, got {arg}", arg.pos or pos)
    if p == "int_lit":
        lo, hi = sig.literal_range
        if arg.value != int(arg.value) or not lo <= arg.value <= hi:
            raise _fail(f"{where} must be a whole number from {lo} to {hi}, got {arg}",
                        arg.pos or pos)


NODE_CLASSES = (Literal, Read, Unary, Binary, Call)
