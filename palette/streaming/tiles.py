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
from palette.windows import Aggregation

TILE = "__tile"          # a tile's start, µs since the epoch (a point's, in values)


def _partial_names(a: Aggregation) -> list[str]:
    return {"count": ["n"], "sum": ["sum"], "mean": ["sum", "nn"], "min": ["min"], "max": ["max"],
            "last": ["last"]}[a.op]


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
    }
    return [exprs[p]().alias(f"{a.name}__{p}") for p in _partial_names(a)]


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
