"""The DSL's function table: arity and type rule of every function.

A parameter is a type name (``num``, ``str``, ``bool``, ``ts``, ``vec``), ``any``, ``T``
(all ``T`` arguments share one type, which is also the result type when the
function returns ``T``), or a literal constraint (``int_lit``, ``num_lit``,
``method_lit``) that the argument must be a literal of. The last parameter repeats
when the function is variadic.
"""
from __future__ import annotations

from dataclasses import dataclass

NUM, STR, BOOL, TS, VEC = "num", "str", "bool", "ts", "vec"
IMPUTE_METHODS = ("mean", "median", "mode")
VGET_MAX = 2 ** 31 - 1        # vget's index: a Java array index


@dataclass(frozen=True)
class Signature:
    name: str
    params: tuple[str, ...]
    returns: str
    min_args: int
    variadic: bool = False
    learned: bool = False          # learned by DSLEstimator.fit
    literal_range: tuple[float, float] | None = None   # for int_lit parameters

    @property
    def max_args(self) -> float:
        return float("inf") if self.variadic else len(self.params)

    def param(self, i: int) -> str:
        return self.params[min(i, len(self.params) - 1)]

    def usage(self) -> str:
        names = [p if not p.endswith("_lit") else f"<{p[:-4]}>" for p in self.params]
        opt = names[self.min_args:]
        req = names[: self.min_args]
        text = ", ".join(req)
        if opt:
            text += "".join(f"[, {o}]" for o in opt)
        if self.variadic:
            text += ", ..."
        return f"{self.name}({text})"


def _sig(name, params, returns, min_args=None, **kw):
    return Signature(name, tuple(params), returns, len(params) if min_args is None else min_args, **kw)


SIGNATURES: dict[str, Signature] = {s.name: s for s in [
    _sig("if", ["bool", "T", "T"], "T"),
    _sig("coalesce", ["T"], "T", min_args=1, variadic=True),
    _sig("isNull", ["any"], BOOL),
    _sig("nFill", [NUM, NUM], NUM),
    _sig("sFill", [STR, STR], STR),
    _sig("log", [NUM], NUM),
    _sig("log1p", [NUM], NUM),
    _sig("sqrt", [NUM], NUM),
    _sig("exp", [NUM], NUM),
    _sig("abs", [NUM], NUM),
    _sig("pow", [NUM, NUM], NUM),
    _sig("sign", [NUM], NUM),
    _sig("min", [NUM], NUM, min_args=1, variadic=True),
    _sig("max", [NUM], NUM, min_args=1, variadic=True),
    _sig("clip", [NUM, NUM, NUM], NUM),
    _sig("round", [NUM, "int_lit"], NUM, min_args=1, literal_range=(-15, 15)),
    _sig("floor", [NUM], NUM),
    _sig("ceil", [NUM], NUM),
    _sig("lower", [STR], STR),
    _sig("upper", [STR], STR),
    _sig("length", [STR], NUM),
    _sig("concat", [STR], STR, min_args=1, variadic=True),
    _sig("contains", [STR, STR], BOOL),
    _sig("startsWith", [STR, STR], BOOL),
    _sig("hourOfDay", [TS], NUM),
    _sig("dayOfWeek", [TS], NUM),
    _sig("regionId", [NUM, NUM, "int_lit"], STR, min_args=2, literal_range=(1, 12)),
    # Vectors (vec): a sequence of finite float64 numbers, of any length (0 included).
    _sig("vfill", [VEC, VEC], VEC),
    _sig("dot", [VEC, VEC], NUM),
    _sig("norm", [VEC], NUM),
    _sig("cosine", [VEC, VEC], NUM),
    _sig("vget", [VEC, "int_lit"], NUM, literal_range=(0, VGET_MAX)),
    # bucket(x, c1, c2, ...): the 0-based index of x among ascending cut points;
    # what a fitted bucketize(x, n) becomes.
    _sig("bucket", [NUM, "num_lit"], NUM, min_args=2, variadic=True),
    # Learned functions: DSLEstimator.fit replaces them with plain expressions.
    _sig("impute", [NUM, "method_lit"], NUM, min_args=1, learned=True),
    _sig("standardize", [NUM], NUM, learned=True),
    _sig("minMaxScale", [NUM], NUM, learned=True),
    _sig("bucketize", [NUM, "int_lit"], NUM, learned=True, literal_range=(2, 1000)),
]}

# Readers: nVal("ref") etc. read a reference as a typed value.
READERS = {"nVal": NUM, "sVal": STR, "bVal": BOOL, "tVal": TS, "vVal": VEC}

ARITH_OPS = ("+", "-", "*", "/", "%")
COMPARE_OPS = ("<", "<=", ">", ">=", "==", "!=")
BOOL_OPS = ("and", "or")
