"""What a micro-batch (or a backfill) does with its events: the same steps either way.

Windowed groups (``apply_tiles``), given the tiles a batch computed (full aggregates of
each tile, as Spark's stateful aggregation emits them in update mode):

1. MERGE the tiles into the group's tile table (``FeatureStore.tiles_path``) on (keys,
   tile): an upsert of whole values, so replaying a batch changes nothing;
2. when an online store is given, write each touched key's timeline (from its last
   window on, computed from the stored tiles) from the executors, latest by event time —
   before the Delta MERGE below, so serving sees a value one MERGE sooner;
3. for the keys touched, recompute the values at every boundary from the earliest tile
   touched on, from the stored tiles, and MERGE them into the group's Delta table on
   (keys, event time) — again whole values.

Latest-value groups (``apply_latest``): the latest row per key written online, then the
events' rows (of events sharing key and time, the greatest values, the offline
tie-break) MERGEd into the group's table.

Every step is idempotent, so a batch replayed after a crash (Spark re-runs the batch its
checkpoint did not commit) leaves what one run leaves.
"""
from __future__ import annotations

import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from palette import offline
from palette.materialize import _TS, ENTRIES, EVENTS_TO, as_written, crash_point, write_online
from palette.online import open_store
from palette.registry import Entity, FeatureGroup

from .tiles import (TILE, boundary_points, longest, offline_rows, partial_columns, timeline_points,
                    window_values)


def _nullable(t: T.DataType) -> T.DataType:
    """``t`` with every nested field and element nullable (Delta keeps no nested NOT NULL)."""
    if isinstance(t, T.StructType):
        return T.StructType([T.StructField(f.name, _nullable(f.dataType), True) for f in t.fields])
    if isinstance(t, T.ArrayType):
        return T.ArrayType(_nullable(t.elementType), True)
    if isinstance(t, T.MapType):
        return T.MapType(t.keyType, _nullable(t.valueType), True)
    return t


def _tile_schema(tiles: DataFrame, entity: Entity) -> T.StructType:
    keys = set(entity.join_keys)
    return T.StructType([T.StructField(f.name, _nullable(f.dataType), f.name not in keys and f.name != TILE)
                         for f in tiles.schema.fields])


def _timelines(values: DataFrame, entity: Entity, group: FeatureGroup) -> DataFrame:
    """Per key: its timeline entries (sorted by point) and the last boundary, as ``write_online`` takes them."""
    keys = [f"`{k}`" for k in entity.join_keys]
    features = [f.name for f in group.features]
    return as_written(values.groupBy(*keys).agg(
        F.sort_array(F.collect_list(F.struct(F.col(TILE), *[F.col(f"`{f}`") for f in features]))).alias(ENTRIES),
        (F.max(TILE) + F.lit(group.hop_micros)).alias(_TS),
        (F.max(TILE) - F.lit(longest(group) - group.hop_micros)).alias(EVENTS_TO)))


def timeline_rows(spark: SparkSession, store, entity: Entity, group: FeatureGroup,
                  tiles: DataFrame | None = None) -> DataFrame:
    """Every key's timeline (of ``tiles``, default: the group's stored tiles)."""
    if tiles is None:
        tiles = offline.read_table(spark, store.tiles_path(group.id))
    points = timeline_points(tiles, entity, group)
    return _timelines(window_values(tiles, points, entity, group), entity, group)


def apply_tiles(spark: SparkSession, store, entity: Entity, group: FeatureGroup, updated: DataFrame,
                online_store: str | None = None, run: int | None = None, streaming: bool = False) -> dict:
    """Steps 1-3 of the module docstring for the tiles ``updated``; returns counts (``rows``:
    boundary rows inserted or changed in Delta; ``online``: keys written) and ``newest``,
    the start of the newest tile (µs).
    ``streaming``: a micro-batch (its MERGEs skip the pre-join that drops identical rows)."""
    keys = list(entity.join_keys)
    partials = partial_columns(group)
    # Materialized once (a micro-batch's plan cannot be cached as it is: its stateful
    # aggregation would run again), read by the MERGE and by the touched keys.
    updated = updated.localCheckpoint(eager=True)
    try:
        n, lo, hi = updated.agg(F.count(F.lit(1)), F.min(TILE), F.max(TILE)).first()
        if not n:
            return {"tiles": 0, "rows": 0, "online": 0, "newest": None}
        # Every read and MERGE below is bounded below by a literal time (the batch's oldest
        # tile, less what its windows reach back), so Delta skips the files of older tiles
        # and rows by their statistics: a batch's cost follows the batch, not the table.
        tiles_path = store.tiles_path(group.id)
        offline.ensure_table(spark, tiles_path, _tile_schema(updated, entity))
        offline.merge(spark, tiles_path, updated, keys, TILE, partials, n, skip_identical=not streaming,
                      since=F.lit(lo))
        crash_point("stream_tiles_written")
        touched = updated.groupBy(*[f"`{k}`" for k in keys]).agg(F.min(TILE).alias("__lo"))
        reach = 2 * longest(group) + 2 * group.hop_micros
        tiles = (offline.read_table(spark, tiles_path).where(F.col(TILE) >= F.lit(lo - reach))
                 .join(F.broadcast(touched), keys)
                 .where(F.col(TILE) >= F.col("__lo") - F.lit(reach)).drop("__lo")).cache()
        try:
            written = 0
            if online_store is not None:         # first: what serving reads is fresh one MERGE sooner
                written = _write(spark, store, entity, group, timeline_rows(spark, store, entity, group, tiles),
                                 online_store, run)
                crash_point("stream_online_written")
            points = (boundary_points(tiles, entity, group).join(F.broadcast(touched), keys)
                      .where(F.col(TILE) >= F.col("__lo")).drop("__lo"))
            rows = offline_rows(window_values(tiles, points, entity, group), group).cache()
            table = store.table_path(group.id)
            offline.ensure_table(spark, table, offline.table_schema(entity, group))
            merged = offline.merge(spark, table, rows, keys, group.timestamp_col,
                                   [f.name for f in group.features], rows.count(), skip_identical=not streaming,
                                   since=F.timestamp_micros(F.lit(lo)))
            rows.unpersist()
            crash_point("stream_delta_written")
        finally:
            tiles.unpersist()
        return {"tiles": n, "rows": merged["inserted"] + merged["updated"], "online": written, "newest": hi}
    finally:
        updated.unpersist()


def latest_events(events: DataFrame, entity: Entity, group: FeatureGroup) -> DataFrame:
    """Events as rows of a latest-value group's table: one per (keys, event time), the greatest values."""
    keys = [F.col(f"`{k}`") for k in entity.join_keys]
    ts = group.source.timestamp_col
    features = [f.name for f in group.features]
    rows = events.groupBy(*keys, F.col(f"`{ts}`").alias(group.timestamp_col)).agg(
        F.max(F.struct(*[F.col(f"`{f}`") for f in features])).alias("__v"))
    return rows.select(*keys, F.col(group.timestamp_col), *[F.col(f"__v.`{f}`").alias(f) for f in features])


def apply_latest(spark: SparkSession, store, entity: Entity, group: FeatureGroup, events: DataFrame,
                 online_store: str | None = None, run: int | None = None, txn: tuple[str, int] | None = None) -> dict:
    """A latest-value group's events into its table, and the latest row per key online;
    returns counts and ``newest``, the newest event time (µs).
    ``txn``: a micro-batch's (writer id, batch id): its rows are appended once, by Delta's
    idempotent writes (``txnAppId``/``txnVersion``: a re-run batch is skipped), instead of
    MERGEd — no scan of the table, which grows with the stream."""
    rows = latest_events(events, entity, group).cache()
    try:
        n, newest = rows.agg(F.count(F.lit(1)), F.max(F.unix_micros(F.col(group.timestamp_col)))).first()
        if not n:
            return {"rows": 0, "online": 0, "newest": None}
        written = 0
        if online_store is not None:
            latest = as_written(offline.latest_rows(rows, entity, group), group)
            written = _write(spark, store, entity, group, latest, online_store, run)
            crash_point("stream_online_written")
        table = store.table_path(group.id)
        offline.ensure_table(spark, table, offline.table_schema(entity, group))
        if txn is None:
            merged = offline.merge(spark, table, rows, list(entity.join_keys), group.timestamp_col,
                                   [f.name for f in group.features], n)
            added = merged["inserted"] + merged["updated"]
        else:
            before = offline.current_version(spark, table)
            rows.select(*offline.table_schema(entity, group).fieldNames()).write.format("delta").mode("append") \
                .option("txnAppId", txn[0]).option("txnVersion", txn[1]).save(table)
            added = n if offline.current_version(spark, table) > before else 0
        crash_point("stream_delta_written")
        return {"rows": added, "online": written, "newest": newest}
    finally:
        rows.unpersist()


def _write(spark, store, entity, group, rows: DataFrame, online_store: str, run: int | None) -> int:
    online = open_store(online_store)
    try:
        layout = online.setup(entity, group)
    finally:
        online.close()
    run = int(time.time() * 1000) if run is None else run
    return int(write_online(spark, rows, online_store, layout, entity, group, run)["rows"])


__all__ = ["apply_tiles", "apply_latest", "timeline_rows", "latest_events"]
