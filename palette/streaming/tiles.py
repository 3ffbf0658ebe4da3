"""Windowed aggregations on Spark: events into tiles, tiles into values — native Columns only.

One set of rules, run by the streaming job (Spark's stateful aggregation, one micro-batch
at a time) and by a backfill (the same aggregation on the event history); see
``palette.windows`` for the semantics.

- ``tile_aggregation``: the grouping and partial aggregates of a tile — ``groupBy(keys,
  window(event time, hop))`` with, per aggregation, its partials (a count, a sum, a count of
  values, a minimum, a maximum, the (event time, value) of the latest event).
- ``window_values``: a group's values at boundary points, from tiles: per key, the tiles
  and the points unioned and ordered by start, each aggregation combined over its window
  with a ``RANGE`` frame (``sum``, ``min``, ``max`` of the partials), so a point's value
  reads ``over / hop`` tiles at most and nothing is exploded per event.
- The points: ``boundary_points`` — where a value can change: a tile entering a window
  (its start) and leaving it (its start + ``over``, per distinct window length) — give the
  rows of the offline table; ``timeline_points`` keep, per key, those from its last window
  on and the one in effect before: the online timeline, every entry an offline row.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from palette.registry import Entity, FeatureGroup
from palette.windows import HLL_BITS, Aggregation

TILE = "__tile"          # a tile's start, µs since the epoch (a point's, in values)


def _partial_names(a: Aggregation) -> list[str]:
    return {"count": ["n"], "sum": ["sum"], "mean": ["sum", "nn"], "min": ["min"], "max": ["max"],
            "last": ["last"], "approx_count_distinct": ["hll"]}[a.op]


def partial_columns(group: FeatureGroup) -> list[str]:
    """The tile table's partial columns, in order."""
    return [f"{a.name}__{p}" for a in group.aggregations for p in _partial_names(a)]


def _partials(a: Aggregation, ts: Column) -> list[Column]:
    col = None if a.column is None else F.col(f"`{a.column}`")
    exprs = {
        "n": lambda: F.count(F.lit(1)),
        "sum": lambda: F.sum(col.cast("double")),
        "nn": lambda: F.count(col),
        "min": lambda: F.min(col),
        "max": lambda: F.max(col),
        # The latest event's value (nulls skipped); of events at one instant, the greatest value.
        "last": lambda: F.max(F.when(col.isNotNull(), F.struct(F.unix_micros(ts).alias("t"), col.alias("v")))),
        # A tile's HyperLogLog: the distinct (register, rank) pairs of its values (at most
        # 2^HLL_BITS x 53, whatever the number of events); a window keeps each register's maximum.
        "hll": lambda: F.collect_set(F.when(col.isNotNull(), _register_rank(col))),
    }
    return [exprs[p]().alias(f"{a.name}__{p}") for p in _partial_names(a)]


def _register_rank(col: Column) -> Column:
    """A value's HyperLogLog register (the hash's first HLL_BITS bits) and rank (the
    position of the first 1 bit in the rest, at most 64 - HLL_BITS + 1)."""
    h = F.xxhash64(col)
    rest = F.shiftleft(h, HLL_BITS)
    zeros = F.when(rest == 0, F.lit(64)).otherwise(F.lit(64) - F.length(F.bin(rest)))
    return F.struct(F.shiftrightunsigned(h, 64 - HLL_BITS).cast("int").alias("r"),
                    F.least(zeros + 1, F.lit(64 - HLL_BITS + 1)).cast("int").alias("v"))


def _hll_estimate(pairs: Column) -> Column:
    """The HyperLogLog estimate of (register, rank) pairs: each register's largest rank (the
    pairs sorted, each kept when the next names another register: arrays zipped, never
    indexed per element), the raw estimate, linear counting below 2.5 m; rounded. Registers
    are summed in order, so the result is the same wherever it is computed."""
    m = float(1 << HLL_BITS)
    ordered = F.array_sort(pairs)
    following = F.concat(F.slice(ordered, 2, F.greatest(F.size(ordered) - 1, F.lit(0))),
                         F.array(F.lit(None).cast("struct<r:int,v:int>")))
    ranks = F.filter(F.zip_with(ordered, following,
                                lambda cur, nxt: F.when(nxt.isNull() | (nxt.getField("r") != cur.getField("r")),
                                                        cur.getField("v"))),
                     lambda v: v.isNotNull())
    total = F.aggregate(ranks, F.lit(0.0), lambda acc, v: acc + F.pow(F.lit(2.0), -v))
    zeros = F.lit(m) - F.size(ranks)
    raw = F.lit(0.7213 / (1 + 1.079 / m) * m * m) / (total + zeros)
    estimate = F.when((raw <= 2.5 * m) & (zeros > 0), F.lit(m) * F.log(F.lit(m) / zeros)).otherwise(raw)
    return F.round(estimate).cast("double")


def tile_aggregation(events: DataFrame, entity: Entity, group: FeatureGroup) -> DataFrame:
    """Events into tiles: keys, ``TILE`` and the partials (on a stream: a stateful
    aggregation; the caller sets the watermark)."""
    ts = F.col(f"`{group.source.timestamp_col}`")
    keys = [F.col(f"`{k}`") for k in entity.join_keys]
    hop = group.hop_micros
    aggs = [p for a in group.aggregations for p in _partials(a, ts)]
    tiles = events.groupBy(*keys, F.window(ts, f"{hop} microseconds").alias("__window")).agg(*aggs)
    return tiles.select(*keys, F.unix_micros(F.col("__window.start")).alias(TILE), *partial_columns(group))


def boundary_points(tiles: DataFrame, entity: Entity, group: FeatureGroup) -> DataFrame:
    """keys, ``TILE``: the starts of the last tile of each window where a value can change."""
    keys = [F.col(f"`{k}`") for k in entity.join_keys]
    overs = sorted({a.over_micros for a in group.aggregations})
    starts = tiles.select(*keys, F.col(TILE))
    points = starts
    for over in overs:
        points = points.unionByName(starts.select(*keys, (F.col(TILE) + F.lit(over)).alias(TILE)))
    return points.distinct()


def timeline_points(tiles: DataFrame, entity: Entity, group: FeatureGroup) -> DataFrame:
    """``boundary_points`` from each key's last window on (from its last tile's start minus
    the longest window and a hop), and the last point before that: the value in effect there."""
    keys = [k for k in entity.join_keys]
    points = boundary_points(tiles, entity, group)
    cuts = tiles.groupBy(*[f"`{k}`" for k in keys]).agg(
        (F.max(TILE) - F.lit(longest(group) + group.hop_micros)).alias("__cut"))
    points = points.join(cuts, keys)
    before = points.where(F.col(TILE) < F.col("__cut")).groupBy(*[f"`{k}`" for k in keys]).agg(F.max(TILE).alias(TILE))
    return points.where(F.col(TILE) >= F.col("__cut")).drop("__cut").unionByName(before)


def longest(group: FeatureGroup) -> int:
    return max(a.over_micros for a in group.aggregations)


def _combine(a: Aggregation, w) -> Column:
    p = {name: F.col(f"`{a.name}__{name}`") for name in _partial_names(a)}
    if a.op == "count":
        value = F.coalesce(F.sum(p["n"]).over(w), F.lit(0)).cast("double")
    elif a.op == "sum":
        value = F.coalesce(F.sum(p["sum"]).over(w), F.lit(0.0))
    elif a.op == "mean":
        n = F.sum(p["nn"]).over(w)
        value = F.when(n > 0, F.sum(p["sum"]).over(w) / n)
    elif a.op in ("min", "max"):
        value = getattr(F, a.op)(p[a.op]).over(w)
    elif a.op == "approx_count_distinct":
        value = _hll_estimate(F.flatten(F.collect_list(p["hll"]).over(w)))
    else:
        value = F.max(p["last"]).over(w).getField("v")
    return value.alias(a.name)


def window_values(tiles: DataFrame, points: DataFrame, entity: Entity, group: FeatureGroup) -> DataFrame:
    """keys, ``TILE`` (a point: the start of the last tile of the window) and every
    aggregation's value over the window ending at the point's tile end — the value in
    effect from ``TILE + hop`` on."""
    keys = [f"`{k}`" for k in entity.join_keys]
    hop = group.hop_micros
    marked = tiles.withColumn("__point", F.lit(False)).unionByName(
        points.withColumn("__point", F.lit(True)), allowMissingColumns=True)
    values = []
    for a in group.aggregations:
        w = Window.partitionBy(*keys).orderBy(F.col(TILE)).rangeBetween(-(a.over_micros - hop), 0)
        values.append(_combine(a, w))
    return marked.select(*keys, F.col(TILE), F.col("__point"), *values).where(F.col("__point")).drop("__point")


def offline_rows(values: DataFrame, group: FeatureGroup) -> DataFrame:
    """Window values as rows of the group's table: the event time is when they take effect."""
    return (values.withColumn(group.timestamp_col, F.timestamp_micros(F.col(TILE) + F.lit(group.hop_micros)))
            .drop(TILE))


__all__ = ["TILE", "tile_aggregation", "boundary_points", "timeline_points", "window_values", "offline_rows",
           "partial_columns", "longest"]
