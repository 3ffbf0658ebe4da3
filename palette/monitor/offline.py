"""Profiles of feature groups' Delta tables by event-time window, in Spark, incrementally.

``profile_groups(spark, store, ["restaurant:batch_fg"], window="1h")`` profiles every
feature of each group (and its event time, for freshness) per window and slice, and
upserts the profiles into ``palette_profiles``. Each partition sorts its rows by window
and builds one partial profile per window and feature from Arrow batches (vectorized
sketch updates; no row-at-a-time Python); partials are merged per window (a shuffle of
sketches, not rows). Nothing but counts reaches the driver.

Incremental: a group's profiles remember the Delta version they were built from. The next
run reads the table's change data feed since then, finds the windows whose rows changed
(inserted, updated or deleted), and re-profiles only those from the current version —
the cost follows the change, not the history. Without a change feed for those versions
(vacuumed), the group is profiled whole, and the log says so.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from palette.errors import InvalidArgument
from palette.registry import parse_age

from .profile import Profile
from .table import KEY, SCHEMA, profiled, profiles_path, summary_row

log = logging.getLogger("palette.monitor")
_W, _S = "__window", "__slice"


@dataclass
class ProfileRun:
    group: str
    version: int
    windows: int              # windows (re)profiled
    rows: int                 # profile rows written
    method: str               # "full", "change data feed", "version diff", "up to date"

    def __str__(self) -> str:
        return f"{self.group}: version {self.version}, {self.windows} windows ({self.method}), {self.rows} profiles"


@contextmanager
def arrow_batches(spark: SparkSession, rows: int = 50_000):
    """Bigger Arrow batches while profiles are computed (fewer, larger vectorized sketch
    updates per partition); the session's setting is restored after."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    old = spark.conf.get(key, None)
    spark.conf.set(key, str(rows))
    try:
        yield
    finally:
        spark.conf.unset(key) if old is None else spark.conf.set(key, old)


def _partials(features: list[tuple[str, str]]):
    """mapInPandas: one partial profile per (window, slice, feature) of a partition."""
    def run(batches):
        acc: dict[tuple, Profile] = {}
        for pdf in batches:
            for (w, s), part in pdf.groupby([_W, _S], sort=False):
                for name, kind in features:
                    p = acc.get((w, s, name))
                    if p is None:
                        p = acc[(w, s, name)] = Profile(kind)
                    p.update(part[name].to_numpy() if kind == "num" else part[name])
        yield pd.DataFrame({_W: [k[0] for k in acc], _S: [k[1] for k in acc], "feature": [k[2] for k in acc],
                            "sketch": [p.to_bytes() for p in acc.values()]})
    return run


def _merge(pdf: pd.DataFrame) -> pd.DataFrame:
    """applyInPandas per (window, slice, feature): the partials merged, with their summary."""
    p = None
    for b in pdf["sketch"]:
        q = Profile.from_bytes(b)
        p = q if p is None else p.merge(q)
    return pd.DataFrame([{_W: pdf[_W].iloc[0], _S: pdf[_S].iloc[0], "feature": pdf["feature"].iloc[0],
                          **summary_row(p), "sketch": p.to_bytes()}])


def profile_frame(df: DataFrame, ts_col: str | None, features: dict[str, str], window: timedelta | None,
                  slices: tuple[str, ...] = ()) -> DataFrame:
    """Profiles of ``df``'s ``features`` (name -> feature type) per event-time window (and
    per value of each ``slices`` column, besides overall): one row per window, slice and
    feature with ``window_start``, ``window_end``, ``slice``, ``feature``, the summary and
    ``sketch`` (``Profile.to_bytes()``). Without ``ts_col``: one profile of all the rows
    (null window bounds)."""
    from palette.feature_types import TYPES
    width = 0 if ts_col is None else int(window.total_seconds() * 1e6)
    if ts_col is not None and width <= 0:
        raise InvalidArgument(f"a profile window must be positive, not {window}")
    cols, kinds = [], []
    for i, (name, t) in enumerate(features.items()):
        c = F.col(f"`{name}`")
        kind = TYPES[t].profile if t in TYPES else "num"
        c = (F.unix_micros(c) / 1e6 if t == "ts" else c.cast("double")) if kind == "num" else c.cast("string")
        cols.append(c.alias(f"f{i}"))
        kinds.append((f"f{i}", kind))
    if ts_col is None:
        start = F.lit(0).cast("long")
    else:
        df = df.where(F.col(f"`{ts_col}`").isNotNull())
        start = F.floor(F.unix_micros(F.col(f"`{ts_col}`")) / width) * width
    base = df.select(start.alias(_W), *cols,
                                                              *[F.col(f"`{s}`").alias(f"s{j}")
                                                                for j, s in enumerate(slices)])
    parts = [base.withColumn(_S, F.lit(""))]
    for j, s in enumerate(slices):
        parts.append(base.withColumn(_S, F.concat(F.lit(f"{s}="), F.coalesce(F.col(f"s{j}").cast("string"),
                                                                              F.lit("null")))))
    rows = parts[0]
    for p in parts[1:]:
        rows = rows.unionByName(p)
    rows = rows.select(_W, _S, *[n for n, _ in kinds]).sortWithinPartitions(_W, _S)
    partial = rows.mapInPandas(_partials(kinds), f"{_W} long, {_S} string, feature string, sketch binary")
    merged = partial.groupBy(_W, _S, "feature").applyInPandas(
        _merge, f"{_W} long, {_S} string, feature string, kind string, rows long, nulls long, null_rate double, "
                "mean double, std double, min double, max double, p50 double, p99 double, distinct double, "
                "sketch binary")
    names = F.create_map(*[x for i, name in enumerate(features) for x in (F.lit(f"f{i}"), F.lit(name))])
    bounds = ([F.lit(None).cast("timestamp").alias("window_start"), F.lit(None).cast("timestamp").alias("window_end")]
              if ts_col is None else [F.timestamp_micros(F.col(_W)).alias("window_start"),
                                      F.timestamp_micros(F.col(_W) + width).alias("window_end")])
    return merged.select(*bounds, F.col(_S).alias("slice"),
                         names[F.col("feature")].alias("feature"), *merged.columns[3:])


def _changed_windows(spark: SparkSession, path: str, ts_col: str, since: int, version: int,
                     width: int) -> tuple[list[int] | None, str]:
    try:
        changes = (spark.read.format("delta").option("readChangeFeed", "true")
                   .option("startingVersion", since + 1).option("endingVersion", version).load(path))
        starts = changes.where(F.col(f"`{ts_col}`").isNotNull()).select(
            (F.floor(F.unix_micros(F.col(f"`{ts_col}`")) / width) * width).alias("w")).distinct().collect()
        return sorted(r.w for r in starts), "change data feed"
    except Exception as e:                        # a version without change data (vacuumed, or CDF off)
        log.info("no change data feed for versions %d..%d of %s (%s): profiling it whole", since + 1, version, path,
                 str(e).splitlines()[0][:160])
        return None, "full"


def _runs_path(table: str) -> str:
    return f"{table}_runs"


def _last_versions(spark: SparkSession, table: str, window: timedelta) -> dict[str, int]:
    """The Delta version each subject's offline profiles of this window were built from."""
    from delta.tables import DeltaTable
    runs = _runs_path(table)
    if not DeltaTable.isDeltaTable(spark, runs):
        return {}
    rows = (spark.read.format("delta").load(runs).where(F.col("window_seconds") == int(window.total_seconds()))
            .groupBy("subject").agg(F.max("version").alias("v")).collect())
    return {r.subject: r.v for r in rows}


def _record_runs(spark: SparkSession, table: str, window: timedelta, versions: dict[str, int]) -> None:
    """Remember the version each subject was profiled from: one MERGE for all of them."""
    from delta.tables import DeltaTable

    from palette.offline import ensure_table
    runs = _runs_path(table)
    rows = spark.createDataFrame([(s, int(window.total_seconds()), v) for s, v in sorted(versions.items())],
                                 "subject string, window_seconds long, version long").withColumn(
        "run_at", F.current_timestamp())
    ensure_table(spark, runs, rows.schema)
    DeltaTable.forPath(spark, runs).alias("t").merge(
        rows.alias("s"), "t.subject = s.subject AND t.window_seconds = s.window_seconds") \
        .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()


def upsert(spark: SparkSession, table: str, rows: DataFrame, replace: str | None = None) -> None:
    """Upsert profile rows into the profiles table (created when missing). ``replace``: a
    SQL condition on the table's rows (``t.``) that a rerun owns — those it does not write
    again are deleted (a window whose rows were all deleted)."""
    from delta.tables import DeltaTable

    from palette.offline import ensure_table
    ensure_table(spark, table, spark.createDataFrame([], SCHEMA).schema)
    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in KEY)
    merge = DeltaTable.forPath(spark, table).alias("t").merge(rows.alias("s"), on) \
        .whenMatchedUpdateAll().whenNotMatchedInsertAll()
    if replace:
        merge = merge.whenNotMatchedBySourceDelete(replace)
    merge.execute()


def profile_groups(spark: SparkSession, store, groups: list[str], window: str | timedelta = "1h",
                   full: bool = False) -> list[ProfileRun]:
    """Profile each group's Delta table by event-time ``window`` into the profiles table
    (only the windows changed since the last run, unless ``full``). The groups' profiles
    are written in one MERGE, then the versions they were built from in another: a run
    cut short between the two profiles the same windows again next time."""
    from delta.tables import DeltaTable

    from palette.offline import current_version, read_table

    window = parse_age(window)
    width = int(window.total_seconds() * 1e6)
    table = profiles_path(store.root)
    last_versions = {} if full else _last_versions(spark, table, window)
    done: dict[str, tuple[int, str]] = {}           # group -> (version, method)
    parts, owned = [], []
    for gid in groups:
        group = store.group(gid)
        path = store.table_path(gid)
        if not DeltaTable.isDeltaTable(spark, path):
            raise InvalidArgument(f"feature group {gid} has no table at {path} yet: ingest it (or backfill it) "
                                  "before profiling it")
        version = current_version(spark, path)
        last = last_versions.get(gid)
        if last is not None and last >= version:
            done[gid] = (version, "up to date")
            continue
        starts, method = (None, "full") if last is None else _changed_windows(
            spark, path, group.timestamp_col, last, version, width)
        df = read_table(spark, path, version=version)
        missing = [c for c in group.slices if c not in df.columns]
        if missing:
            raise InvalidArgument(f"feature group {gid} slices by {', '.join(missing)}, which its table does not "
                                  f"have; slice by a feature or a join key: {', '.join(df.columns)}")
        if starts is not None:
            df = df.where((F.floor(F.unix_micros(F.col(f"`{group.timestamp_col}`")) / width) * width).isin(starts))
        features = {f.name: f.type for f in profiled(group)}
        features.setdefault(group.timestamp_col, "ts")
        parts.append(profile_frame(df, group.timestamp_col, features, window, group.slices).select(
            F.lit(gid).alias("subject"), F.lit("offline").alias("source"), "*").withColumn(
            "source_version", F.lit(version).cast("long")).withColumn("computed_at", F.current_timestamp()))
        condition = (f"t.subject = '{gid}' AND t.source = 'offline' AND "
                     f"unix_seconds(t.window_end) - unix_seconds(t.window_start) = {int(window.total_seconds())}")
        if starts is not None:
            condition += f" AND unix_micros(t.window_start) IN ({', '.join(str(x) for x in starts)})"
        if starts is None or starts:                # a rerun owns these rows: those not written again go
            owned.append(f"({condition})")
        done[gid] = (version, method)
    counts = {}
    if parts:
        rows = parts[0]
        for part in parts[1:]:
            rows = rows.unionByName(part)
        rows = rows.cache()
        try:
            with arrow_batches(spark):
                counts = {r.subject: (r.windows, r.rows) for r in rows.groupBy("subject").agg(
                    F.countDistinct("window_start").alias("windows"), F.count(F.lit(1)).alias("rows")).collect()}
            if counts or owned:
                upsert(spark, table, rows, replace=" OR ".join(owned) or None)
        finally:
            rows.unpersist()
    fresh = {gid: version for gid, (version, method) in done.items() if method != "up to date"}
    if fresh:
        _record_runs(spark, table, window, fresh)
    runs = [ProfileRun(gid, version, *counts.get(gid, (0, 0)), method) for gid, (version, method) in done.items()]
    for run in runs:
        log.info("profiled %s", run)
    return runs


def ingest_served(spark: SparkSession, store, logs: str) -> dict[str, int]:
    """Served profiles (``palette serve --log-dir``) into the profiles table, one row per
    model, window and column (every process's file of a window merged). Incremental: only
    windows with a file newer than the last ingest of that model are read again; a rerun
    with nothing new writes nothing. Returns the rows written per model."""
    from datetime import datetime, timezone

    from palette import uris

    from .model_report import profiles_dir
    from .served import read_served
    from .table import summary_row
    directory = profiles_dir(logs)
    table = profiles_path(store.root)
    written, last_ingests = {}, _last_versions(spark, table, timedelta(0))   # microseconds of the last ingest
    for model in (name for name, folder, _ in uris.entries(directory) if folder):
        subject = f"served:{model}"
        last = last_ingests.get(subject) or 0
        files = [(name, mtime) for name, folder, mtime in uris.entries(uris.join(directory, model))
                 if not folder and name.endswith(".json")]
        newest = max((mtime for _, mtime in files), default=0)
        changed = sorted({name.split("-", 2)[0] for name, mtime in files if mtime > last})
        rows = []
        for w in read_served(directory, model):
            if f"{w['window_start']:%Y%m%dT%H%M%SZ}" not in changed:
                continue
            for name, p in w["profiles"].items():
                rows.append({"subject": model, "source": "served", "feature": name, "slice": "",
                             "window_start": w["window_start"], "window_end": w["window_end"], **summary_row(p),
                             "sketch": p.to_bytes(), "source_version": None,
                             "computed_at": datetime.now(timezone.utc)})
        if rows:
            upsert(spark, table, spark.createDataFrame(rows, SCHEMA))
        _record_runs(spark, table, timedelta(0), {subject: newest})
        written[model] = len(rows)
        log.info("served profiles of %s: %d rows from %d changed windows", model, len(rows), len(changed))
    return written
