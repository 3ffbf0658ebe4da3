"""Fitting the DSL's learned functions (impute, standardize, minMaxScale, bucketize).

``fit_lambdas`` computes each learned function's numbers on the training DataFrame
and returns the expressions with those numbers written in as literals: ``impute(x)``
becomes ``nFill(x, 4.25)``, ``bucketize(x, 4)`` becomes ``bucket(x, c1, c2, c3)``. Both
backends then read the same literals, so parity after ``fit`` is exact.

Learned functions nested in learned functions are fitted inside-out: a round fits
every learned call whose arguments hold no learned call, with one Spark job for all
their aggregates (plus one per ``mode``), then substitutes the results.
"""
from __future__ import annotations

import math

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from palette.dsl.ast import Binary, Call, Literal, Node
from palette.dsl.errors import DSLInputError
from palette.dsl.spark_backend import to_column

QUANTILE_ACCURACY = 100_000


def _is_learned(node: Node) -> bool:
    return isinstance(node, Call) and node.signature.learned


def _ready(node: Node) -> bool:
    """A learned call none of whose arguments contain a learned call."""
    return _is_learned(node) and not any(_is_learned(n) for a in node.args for n in a.walk())


def _replace(node: Node, fitted: dict) -> Node:
    if node in fitted:              # dict lookup compares trees structurally
        return fitted[node]
    children = node.children()
    if not children:
        return node
    new = tuple(_replace(c, fitted) for c in children)
    if all(a is b for a, b in zip(new, children)):
        return node
    return node.with_children(new)


def _aggregates(call: Call, x) -> list:
    name = call.name
    if name == "impute":
        method = call.args[1].value if len(call.args) > 1 else "mean"
        if method == "mean":
            return [F.avg(x)]
        if method == "median":
            return [F.percentile_approx(x, 0.5, QUANTILE_ACCURACY)]
        return []                                    # mode: a group-by of its own
    if name == "standardize":
        return [F.avg(x), F.stddev_pop(x)]
    if name == "minMaxScale":
        return [F.min(x), F.max(x)]
    if name == "bucketize":
        n = int(call.args[1].value)
        return [F.percentile_approx(x, [i / n for i in range(1, n)], QUANTILE_ACCURACY)]
    raise KeyError(name)


def _mode(df: DataFrame, x) -> float | None:
    row = (df.select(x.alias("v")).where(F.col("v").isNotNull()).groupBy("v").count()
             .orderBy(F.desc("count"), F.asc("v")).limit(1).first())
    return None if row is None else row["v"]


def _fitted_node(call: Call, stats: list) -> Node:
    x = call.args[0]
    if any(s is None for s in stats):
        raise DSLInputError(f"cannot fit {call}: every value of {x} is null in the training data")
    if call.name == "impute":
        return Call("nFill", (x, Literal(stats[0])))
    if call.name == "standardize":
        mean, std = stats
        if std == 0:
            return Binary("*", Call("abs", (x,)), Literal(0.0))     # 0 for every non-null x
        return Binary("/", Binary("-", x, Literal(mean)), Literal(std))
    if call.name == "minMaxScale":
        lo, hi = stats
        if hi == lo:
            return Binary("*", Call("abs", (x,)), Literal(0.0))
        span = hi - lo
        width = Literal(span) if math.isfinite(span) else Binary("-", Literal(hi), Literal(lo))
        return Binary("/", Binary("-", x, Literal(lo)), width)
    if call.name == "bucketize":
        cuts = sorted(set(stats[0]))
        return Call("bucket", (x, *[Literal(c) for c in cuts]))
    raise KeyError(call.name)


def fit_lambdas(df: DataFrame, lambdas: dict[str, Node], field_of=None) -> dict[str, Node]:
    """The lambdas with every learned function replaced by its fitted expression."""
    kwargs = {"field_of": field_of} if field_of else {}
    exprs = dict(lambdas)
    while True:
        pending: list[Call] = []
        for e in exprs.values():
            for n in e.walk():
                if _ready(n) and not any(n.equals(p) for p in pending):
                    pending.append(n)
        if not pending:
            return exprs
        columns = {id(c): to_column(c.args[0], schema=df.schema, **kwargs) for c in pending}
        aggs, slots = [], {}
        for c in pending:
            parts = _aggregates(c, columns[id(c)])
            slots[id(c)] = (len(aggs), len(parts))
            aggs.extend(p.alias(f"s{len(aggs) + i}") for i, p in enumerate(parts))
        row = df.agg(*aggs).first() if aggs else None
        fitted = {}
        for c in pending:
            start, count = slots[id(c)]
            stats = [row[start + i] for i in range(count)] if count else [_mode(df, columns[id(c)])]
            fitted[c] = _fitted_node(c, stats)
        exprs = {k: _replace(e, fitted) for k, e in exprs.items()}
