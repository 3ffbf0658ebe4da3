"""Materialization: the latest row per key of each Delta table, into an online store.

``FeatureStore.materialize`` and ``palette materialize`` run this; ``jobs/materialize.py``
is its ``spark-submit`` entry point.

Per group, from the version the online store last reached (its watermark) to the
table's current version ``v``:

1. **What changed.** When every commit since the watermark only inserted rows (by the
   commits' own operation metrics: an ingest that matched nothing, an append), the
   latest inserted row per key, straight from the Change Data Feed: nothing else of the
   table is read, and the store's latest-wins write keeps whichever of it and the stored
   row is newer. Otherwise, the keys of every row inserted, updated or deleted in versions
   after the watermark, with the largest event time among their changed rows: from
   Delta's Change Data Feed (on for every table palette creates), or, on a table without
   it, from the difference of the two versions. Increments follow Delta versions, not
   event times, so a row that arrives late with an old event time is picked up by the
   next run (an event-time watermark would skip it).
2. **The latest rows.** For those keys (for every key with ``full=True``, or on the
   first run), the latest row at version ``v`` — the tie-break of the offline lookups —
   or none when every row of the key was deleted.
3. **Write.** Executors write the rows in batches straight to the store (``mapInArrow``;
   nothing is collected to the driver). A row replaces the stored one when its event time
   is at least the stored one's, or at most the largest changed event time of its key (so
   a corrected or deleted row is replaced by the next-latest one); a key with no row left
   is removed on the same condition. A row the store holds newer (written by a stream)
   is left alone.
4. **Watermark.** Only after every write succeeded, the watermark moves to ``v``, in the
   online store itself. A run killed at any point moved nothing: the rerun starts from
   the same watermark, and re-applying rows is harmless, because writes are
   latest-by-event-time and a rerun computes the same rows.

A full run also removes keys the table no longer holds (those the run did not write).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from . import offline
from .errors import MaterializeError
from .online import GroupLayout, open_store
from .registry import Entity, FeatureGroup

log = logging.getLogger("palette.materialize")

BATCH_ROWS = 2_000
BROADCAST_KEYS = 2_000_000      # changed keys up to this many are broadcast to the table scan
_BOUND, _DELETE, _TS = "__palette_bound", "__palette_delete", "__palette_ts"
ENTRIES = "__palette_entries"         # a windowed group's timeline (palette.streaming.apply)
EVENTS_TO = "__palette_events_to"     # ... and the boundary its newest events end at (its freshness)


def crash_point(name: str, group: int | None = None) -> None:
    """Kill the whole job here when ``$PALETTE_CRASH_AT`` names this point, with SIGKILL:
    the driver's process group (``group``, when called on an executor) and this process's
    own (an executor's: PySpark's worker daemon and every worker). The crash-safety tests
    kill a materialization at chosen points, for real; unset, this does nothing."""
    if name in os.environ.get("PALETTE_CRASH_AT", "").split(","):
        if group is not None:
            os.killpg(group, signal.SIGKILL)
        os.killpg(os.getpgid(0), signal.SIGKILL)


RECENT_COMMITS = 32     # commits read with the version: an increment over fewer needs no second read


def table_identity(spark: SparkSession, path: str) -> tuple[str, int, list]:
    """(Delta table id, current version, its latest commits: version, operation, parameters
    and metrics, newest first): a recreated table has a new id. The id is read off the
    first commit of the log when it is still there (``DESCRIBE DETAIL`` rebuilds the
    table's state to answer, seconds on a large table), else from the detail."""
    from delta.tables import DeltaTable
    table = DeltaTable.forPath(spark, path)
    commits = _commits(table, RECENT_COMMITS)
    table_id = _first_commit_table_id(path)
    if table_id is None:
        table_id = table.detail().select("id").first()["id"]
    return table_id, commits[0]["version"], commits


def _commits(table, limit: int) -> list:
    return table.history(limit).select("version", "operation", "operationParameters", "operationMetrics").collect()


def _first_commit_table_id(path: str) -> str | None:
    """The table id in the metaData action of the log's version 0, for a table on the local
    file system whose first commit was not cleaned up; else None."""
    import json
    from urllib.parse import urlsplit
    parts = urlsplit(path)
    if parts.scheme not in ("", "file"):
        return None
    first = os.path.join(parts.path if parts.scheme else path, "_delta_log", f"{0:020d}.json")
    try:
        with open(first) as f:
            for line in f:
                action = json.loads(line)
                if "metaData" in action:
                    return action["metaData"]["id"]
    except (OSError, ValueError, KeyError):
        return None
    return None


def _changed_keys(spark: SparkSession, path: str, entity: Entity, group: FeatureGroup, since: int,
                  version: int) -> tuple[DataFrame, str]:
    """(keys changed in versions since+1..version with their largest changed event time,
    how it was found)."""
    keys = [F.col(f"`{k}`") for k in entity.join_keys]
    ts = F.col(f"`{group.timestamp_col}`")
    try:
        changes = (spark.read.format("delta").option("readChangeFeed", "true")
                   .option("startingVersion", since + 1).option("endingVersion", version).load(path))
        changes.select(*keys, ts).rdd.getNumPartitions()   # plans the scan: fails when a version has no CDF
        method = "change data feed"
    except Exception as e:                       # arrives as a Py4J/pyspark AnalysisException
        log.info("group=%s: no change data feed for versions %d..%d (%s); diffing the two versions instead",
                 group.id, since + 1, version, str(e).splitlines()[0][:160])
        before = offline.read_table(spark, path, version=since)
        after = offline.read_table(spark, path, version=version)
        changes = after.exceptAll(before).unionByName(before.exceptAll(after))
        method = "version diff"
    present = ts.isNotNull()
    for k in keys:
        present = present & k.isNotNull()
    changed = (changes.where(present)
               .groupBy(*keys).agg(F.max(F.unix_micros(ts)).alias(_BOUND)))
    return changed, method


def inserts_only(spark: SparkSession, path: str, since: int, version: int, recent: list = ()) -> bool:
    """Whether every commit after ``since`` up to ``version`` only added rows (an ingest
    whose MERGE matched nothing, an append, a compaction), by the commits' own operation
    metrics (``recent`` when it reaches back far enough); False when one may have changed
    or removed a row, or cannot tell."""
    from delta.tables import DeltaTable
    commits = [c for c in recent if since < c["version"] <= version]
    if len(commits) != version - since:
        commits = [c for c in _commits(DeltaTable.forPath(spark, path), version - since)
                   if since < c["version"] <= version]
    if len(commits) != version - since:
        return False
    for c in commits:
        op, params, metrics = c["operation"], c["operationParameters"] or {}, c["operationMetrics"] or {}
        if op == "MERGE":
            changed = ("numTargetRowsUpdated", "numTargetRowsDeleted", "numTargetRowsCopied", "numTargetFilesRemoved")
            if any(metrics.get(m) != "0" for m in changed):
                return False
        elif op in ("WRITE", "STREAMING UPDATE"):
            if params.get("mode", params.get("outputMode")) != "Append":
                return False
        elif op != "OPTIMIZE":                     # a compaction rewrites files, never rows
            return False
    return True


def _inserted_rows(spark: SparkSession, path: str, entity: Entity, group: FeatureGroup, since: int,
                   version: int) -> DataFrame:
    """The latest of the rows inserted after ``since`` per key, from the change data feed
    alone (no scan of the table): when no row was changed or removed, the latest row of a
    key is either the one stored online or the latest inserted one, and the store's
    latest-wins write keeps whichever is newer."""
    changes = (spark.read.format("delta").option("readChangeFeed", "true")
               .option("startingVersion", since + 1).option("endingVersion", version).load(path)
               .where(F.col("_change_type") == "insert").drop("_change_type", "_commit_version", "_commit_timestamp"))
    return _with_micros(offline.latest_rows(changes, entity, group), group)


def rows_to_write(spark: SparkSession, path: str, entity: Entity, group: FeatureGroup, version: int,
                  since: int | None, recent: list = ()) -> tuple[DataFrame, str, list[DataFrame]]:
    """What a run writes, one row per key: keys, the event time (µs), the features, the
    bound it may replace up to and whether it removes the key; how the changes were found;
    and the cached DataFrames to unpersist after the run. An increment that only inserted
    rows is read off the change data feed alone; any other increment reads only the
    table's rows of the changed keys (a broadcast semi-join when they are few). Either way
    its cost follows the change, not the table."""
    keys = list(entity.join_keys)
    if since is None:
        table = offline.read_table(spark, path, version=version)
        return as_written(offline.latest_rows(table, entity, group), group), "full", []
    if inserts_only(spark, path, since, version, recent):
        try:
            latest = _inserted_rows(spark, path, entity, group, since, version)
            latest.rdd.getNumPartitions()                  # plans the scan: fails when a version has no CDF
            return as_written(latest), "change data feed, inserts only", []
        except Exception as e:                             # a Py4J/pyspark AnalysisException
            log.info("group=%s: no change data feed for versions %d..%d (%s)", group.id, since + 1, version,
                     str(e).splitlines()[0][:160])
    changed, method = _changed_keys(spark, path, entity, group, since, version)
    table = offline.read_table(spark, path, version=version)
    cached = changed.cache()
    changed = F.broadcast(cached) if cached.count() <= BROADCAST_KEYS else cached
    affected = table.join(changed.select(*[F.col(f"`{k}`") for k in keys]), on=keys, how="left_semi")
    latest = _with_micros(offline.latest_rows(affected, entity, group), group)
    rows = changed.join(latest, on=keys, how="left")
    return (rows.withColumn(_BOUND, F.greatest(F.col(_BOUND), F.coalesce(F.col(_TS), F.col(_BOUND))))
                .withColumn(_DELETE, F.col(_TS).isNull())
                .withColumn(_TS, F.coalesce(F.col(_TS), F.col(_BOUND)))), method, [cached]


def as_written(latest: DataFrame, group: FeatureGroup | None = None) -> DataFrame:
    """Latest rows as ``write_online`` takes them, each replacing what is stored up to its own
    event time and removing nothing (with ``group``: its timestamp column turned to µs first)."""
    if group is not None:
        latest = _with_micros(latest, group)
    return latest.withColumn(_BOUND, F.col(_TS)).withColumn(_DELETE, F.lit(False))


def _with_micros(latest: DataFrame, group: FeatureGroup) -> DataFrame:
    return latest.withColumn(_TS, F.unix_micros(F.col(f"`{group.timestamp_col}`"))).drop(group.timestamp_col)


def _values(col) -> list:
    """A column's values as Python objects; a vector column's as numpy slices (no Python
    float per element)."""
    import pyarrow as pa
    if not (pa.types.is_list(col.type) and pa.types.is_floating(col.type.value_type)):
        return col.to_pylist()
    flat = col.values.to_numpy(zero_copy_only=False)
    offsets = col.offsets.to_numpy()
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    return [flat[offsets[i]:offsets[i + 1]] if valid[i] else None for i in range(len(col))]


class _Writer:
    """Runs on the executors (``mapInArrow``): encodes rows and writes them in batches."""

    def __init__(self, url: str, layout: GroupLayout, keys: list[str], features: list[tuple[str, str]],
                 run: int, batch_rows: int, written=None):
        self.url, self.layout_json, self.keys = url, layout.to_json(), keys
        self.features, self.run, self.batch_rows = features, run, batch_rows
        self.driver_group = os.getpgid(0)          # for crash_point: executors run in other groups
        self.written = written                     # an accumulator: rows written, for progress logs

    def __call__(self, batches):
        import pyarrow as pa

        from palette.online import GroupLayout as Layout
        from palette.online.writes import BatchWriter
        from palette.streaming.tiles import TILE

        layout = Layout.from_json(self.layout_json)
        order = [name for name, _ in layout.features]
        wanted = dict(self.features)
        store = open_store(self.url)
        writer = BatchWriter(store, layout, self.run, self.batch_rows,
                             after_batch=lambda: crash_point("materialize_batch", self.driver_group))
        try:
            with writer:
                for batch in batches:
                    cols = {name: _values(batch.column(name)) for name in batch.schema.names}
                    n = batch.num_rows
                    keys = [cols[k] for k in self.keys]
                    if layout.hop_micros:              # a windowed group: each key's timeline
                        hop = layout.hop_micros
                        for i, entries in enumerate(cols[ENTRIES]):
                            timeline = [(e[TILE] + hop, tuple(e.get(f) for f in order)) for e in entries]
                            writer.add(tuple(c[i] for c in keys), cols[_TS][i], timeline, seen=cols[EVENTS_TO][i])
                        continue
                    writer.add_columns(keys, cols[_TS], [cols[f] if f in wanted else [None] * n for f in order],
                                       bounds=cols[_BOUND], removes=cols[_DELETE])
        finally:
            store.close()
            if self.written is not None:
                self.written.add(writer.written)
        written, newest = writer.written, writer.newest
        yield pa.RecordBatch.from_pydict({"rows": [written], "newest": [newest]},
                                         schema=pa.schema([("rows", pa.int64()), ("newest", pa.int64())]))


def _progress(spark: SparkSession, group_id: str, started: float, written, stop: threading.Event,
              every: float = 10.0):
    """Log, every ``every`` seconds, the rows written so far (by finished tasks) and the rate."""
    tracker = spark.sparkContext.statusTracker()
    while not stop.wait(every):
        done = total = 0
        for sid in tracker.getActiveStageIds():
            info = tracker.getStageInfo(sid)
            if info is not None:
                done, total = done + info.numCompletedTasks, total + info.numTasks
        seconds = time.monotonic() - started
        log.info("materialize group=%s running %.0fs: %d rows written (%.0f rows/s), %d of %d tasks of the "
                 "current stage done", group_id, seconds, written.value, written.value / seconds, done, total)


def write_online(spark: SparkSession, rows: DataFrame, online_store: str, layout: GroupLayout, entity: Entity,
                 group: FeatureGroup, run: int, batch_rows: int = BATCH_ROWS, cached=()) -> dict:
    """Write ``rows`` (keys, ``_TS``, and the features with ``_BOUND`` and ``_DELETE``, or a
    windowed group's ``ENTRIES``) from the executors; returns ``{"rows", "newest"}`` (one
    summary row, summed on the executors, reaches the driver). Unpersists ``cached`` afterwards."""
    started = time.monotonic()
    written = spark.sparkContext.accumulator(0)
    writer = _Writer(online_store, layout, list(entity.join_keys),
                     [(f.name, f.type) for f in group.features], run, batch_rows, written)
    stop = threading.Event()
    ticker = threading.Thread(target=_progress, args=(spark, group.id, started, written, stop), daemon=True)
    ticker.start()
    try:
        done = rows.mapInArrow(writer, "rows long, newest long").agg(F.sum("rows").alias("rows"),
                                                                   F.max("newest").alias("newest")).first()
    finally:
        stop.set()
        for df in cached:
            df.unpersist()
    return {"rows": done["rows"] or 0, "newest": done["newest"]}


def check_groups(store, group_ids: list[str], online_store: str) -> None:
    """Before anything is written: every group is registered, the online store answers,
    and the layout it holds for each group is one the group's definition can extend."""
    if not group_ids:
        raise MaterializeError(f"no feature group is registered in {store.root}: nothing to materialize")
    defined = [(store.entity(store.group(g).entity), store.group(g)) for g in group_ids]
    rpc = [g.id for _, g in defined if g.kind == "rpc"]
    if rpc:
        raise MaterializeError(f"{', '.join(rpc)} {'is an RPC group' if len(rpc) == 1 else 'are RPC groups'}: "
                               "served models fetch its values at request time, so there is nothing to "
                               "materialize; leave it out. Nothing was written.")
    online = open_store(online_store)
    try:
        for entity, group in defined:
            GroupLayout.of(entity, group, online.layout(group.id, refresh=True))
    finally:
        online.close()


def materialize_group(spark: SparkSession, store, group_id: str, online_store: str, full: bool = False,
                      batch_rows: int = BATCH_ROWS) -> dict:
    """Materialize one group into the online store at ``online_store``; see the module
    docstring. Returns ``{"rows", "version", "mode", "seconds"}``."""
    from delta.tables import DeltaTable

    started = time.monotonic()
    group = store.group(group_id)
    group_id = group.id                                  # an embedding's name: its newest version
    entity = store.entity(group.entity)
    path = store.table_path(group_id)
    if not DeltaTable.isDeltaTable(spark, path):
        raise MaterializeError(f"feature group {group_id} has no data yet ({path} is not a Delta table): "
                               "ingest into it first. Nothing was written.")
    online = open_store(online_store)
    try:
        layout = online.setup(entity, group)            # an incompatible layout fails here, before any write
        table_id, version, recent = table_identity(spark, path)
        mark = online.watermark(group_id)
        since = None
        if mark is not None and not full:
            if mark.get("table_id") != table_id or mark.get("version", -1) > version:
                log.warning("materialize group=%s: the Delta table was recreated since the last run; full rebuild",
                            group_id)
            elif mark["version"] == version:
                log.info("materialize group=%s: already at version %d, nothing to do", group_id, version)
                return {"rows": 0, "version": version, "mode": "up to date",
                        "seconds": round(time.monotonic() - started, 3)}
            else:
                since = mark["version"]
        try:
            if group.windowed:                   # every key's timeline, from the tiles (palette.streaming)
                from .streaming.apply import timeline_rows
                since, method, cached = None, "timelines from tiles", []
                rows = timeline_rows(spark, store, entity, group)
            else:
                rows, method, cached = rows_to_write(spark, path, entity, group, version, since, recent)
        except Exception as e:
            if since is None:
                raise
            log.warning("materialize group=%s: cannot read versions %d..%d (%s); full rebuild",
                        group_id, since, version, str(e).splitlines()[0][:160])
            since, (rows, method, cached) = None, rows_to_write(spark, path, entity, group, version, None)
        # The run stamps every key it writes or sees; a full run then removes the older
        # stamps. Increasing across runs whatever the Delta versions (a recreated table
        # starts again at 0): the clock, and past the last run's stamp.
        run = max(int(time.time() * 1000), int((mark or {}).get("run", 0)) + 1)
        log.info("materialize group=%s start: versions %s..%d (%s) into %s", group_id,
                 "start" if since is None else since + 1, version, method, online.url)
        totals = write_online(spark, rows, online_store, layout, entity, group, run, batch_rows, cached)
        if since is None:
            removed = online.purge(layout, run)
            log.info("materialize group=%s: removed %d keys the table no longer holds", group_id, removed)
        crash_point("materialize_before_watermark")
        newest = [t for t in (totals["newest"], None if since is None else (mark or {}).get("newest_event_micros"))
                  if t is not None]
        online.set_watermark(group_id, {"version": version, "table_id": table_id, "table": path,
                                        "rows": int(totals["rows"]), "run": run,
                                        "newest_event_micros": max(newest) if newest else None,
                                        "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        seconds = time.monotonic() - started
        result = {"rows": int(totals["rows"]), "version": version, "mode": method, "seconds": round(seconds, 3)}
        log.info("materialize group=%s done: %d rows at %.0f rows/s, version %d", group_id,
                 result["rows"], result["rows"] / max(seconds, 1e-9), version)
        return result
    finally:
        online.close()
