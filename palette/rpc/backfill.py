"""An RPC group's offline history: what serving fetched, and what its service says about the past.

An RPC group's Delta table (key, event time, features, ``rpc_fallback``) is filled two ways:

- ``backfill_rpc`` (``palette backfill-rpc GROUP --logs DIR``): the served-feature logs are
  the group's history. Each logged fetch becomes a row: the entity key, the **request's
  time** as event time (the fetch ran within the request; so a point-in-time lookup as of
  the request reads exactly what the request was served), every feature the call answered,
  and ``rpc_fallback``: why the values are fallbacks (``timeout``, ``error``, ...), or
  null when they were fetched. MERGEd on (key, event time): a rerun over the same logs adds
  nothing.
- ``fetch_history`` (``palette fetch-rpc``): for times never served (a new model's
  training set), the fetcher itself is called from the executors (``mapInPandas``), with
  the group's timeout and fallbacks and a global rate limit, for a fetcher that answers
  "as of" a past time (``Fetcher(as_of=True)``); one that cannot is refused, saying so.

**Fallbacks are kept apart**: rows with ``rpc_fallback`` set stay in the table (counted,
auditable) but lookups skip them (``palette.offline``), so a model trains on values the
service gave, never on the stand-ins served while it failed. The consistency check
(``palette consistency``) compares every other served value with the lookup and reports
the fallbacks on their own line.
"""
from __future__ import annotations

import time
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from palette.errors import InvalidArgument
from palette.feature_types import KEYS

from .fetcher import RPC_FALLBACK


def _rpc_group(store, group_id: str):
    group = store.group(group_id)
    if group.kind != "rpc":
        raise InvalidArgument(f"{group_id} is a {group.kind} group; backfill-rpc and fetch-rpc fill RPC groups "
                              "(kind='rpc') from what their fetcher answered")
    return group, store.entity(group.entity)


def _decode_key(entity) -> list:
    """The entity's key columns from a log entry's stored key (``online.codec.encode_key``)."""
    names = list(entity.join_keys)
    if len(names) == 1:
        t = entity.join_keys[names[0]]
        return [F.col("key").cast(KEYS[t].spark).alias(names[0])]
    parts = F.from_json(F.col("key"), T.ArrayType(T.StringType()))
    return [parts[i].cast(KEYS[t].spark).alias(n) for i, (n, t) in enumerate(entity.join_keys.items())]


def logged_fetches(spark: SparkSession, logs, group, entity, start: str | None = None,
                   end: str | None = None) -> DataFrame:
    """One row per logged fetch of ``group``: keys, event time (the request's), features,
    ``rpc_fallback``."""
    from palette.logs.training import read_logs
    records = read_logs(spark, logs)
    if start is not None:
        records = records.where(F.col("request_time") >= F.lit(start).cast("timestamp"))
    if end is not None:
        records = records.where(F.col("request_time") < F.lit(end).cast("timestamp"))
    f = F.col("f")
    entries = (records.select("request_time", F.explode("features").alias("f"))
               .where((f.group == group.id) & f.key.isNotNull()))
    values = [F.first(F.when(f.feature == feat.name, f[feat.type]), ignorenulls=True).alias(feat.name)
              for feat in group.features]
    rows = entries.groupBy(f.key.alias("key"), "request_time").agg(*values, F.max(f.fallback).alias(RPC_FALLBACK))
    return rows.select(*_decode_key(entity), F.col("request_time").alias(group.timestamp_col),
                       *[F.col(feat.name) for feat in group.features], F.col(RPC_FALLBACK))


def merge_fetches(spark: SparkSession, store, group, entity, rows: DataFrame) -> dict:
    """MERGE fetched rows (the table's columns) into the RPC group's table; counts."""
    from palette import offline
    path = store.table_path(group.id)
    offline.ensure_table(spark, path, offline.table_schema(entity, group))
    rows = rows.cache()
    try:
        counts = rows.agg(F.count(F.lit(1)).alias("n"), F.count(RPC_FALLBACK).alias("fallbacks")).first()
        result = offline.merge(spark, path, rows, list(entity.join_keys), group.timestamp_col,
                               [f.name for f in group.features] + [RPC_FALLBACK], int(counts["n"]))
    finally:
        rows.unpersist()
    return {**result, "fetches": int(counts["n"]), "fallbacks": int(counts["fallbacks"])}


def backfill_rpc(group_id: str, logs, *, store=None, spark: SparkSession | None = None, start: str | None = None,
                 end: str | None = None) -> dict:
    """The logged fetches of RPC group ``group_id`` (served-feature logs: the directory
    ``palette serve --log-dir`` writes, or the Delta table ``ingest-logs`` makes) MERGEd
    into its Delta table; ``start``/``end`` bound the request times. Returns ``{"fetches",
    "fallbacks", "inserted", "updated", "version", "source_rows"}``; a rerun inserts nothing.

    >>> backfill_rpc("restaurant:kitchen_rpc", "/logs/eta")          # doctest: +SKIP
    {'fetches': 5120, 'fallbacks': 12, 'inserted': 5120, 'updated': 0, 'version': 3, ...}
    """
    from palette.spark import active_session
    from palette.store import FeatureStore
    store = store or FeatureStore()
    spark = spark or active_session()
    group, entity = _rpc_group(store, group_id)
    return merge_fetches(spark, store, group, entity, logged_fetches(spark, logs, group, entity, start, end))


def fetch_history(group_id: str, requests: DataFrame, *, ts_col: str, rate: float = 100.0, store=None,
                  partitions: int | None = None) -> dict:
    """Call RPC group ``group_id``'s fetcher as of each distinct (key, ``ts_col``) of
    ``requests`` (which holds the entity's key columns), from the executors, at most
    ``rate`` calls per second in all; MERGE the answers into the group's table (event time:
    the time asked). Failed calls are kept apart as fallbacks, as served ones are. Only for
    a fetcher declared ``as_of=True``: another cannot say what it would have answered then.

    >>> fetch_history("restaurant:kitchen_rpc", orders, ts_col="order_ts", rate=200)  # doctest: +SKIP
    """
    from palette.store import FeatureStore
    store = store or FeatureStore()
    group, entity = _rpc_group(store, group_id)
    if not group.fetcher.as_of:
        raise InvalidArgument(f"{group_id}'s fetcher cannot answer as of a past time (it is not declared as_of=True), "
                              "so its history is what serving fetched: palette backfill-rpc from the served-feature "
                              "logs. Declare as_of=True (and {as_of} in its url) if the service can answer for a time")
    if rate <= 0:
        raise InvalidArgument(f"rate={rate}: the calls per second in all, a positive number")
    keys = list(entity.join_keys)
    missing = [c for c in [*keys, ts_col] if c not in requests.columns]
    if missing:
        raise InvalidArgument(f"the requests have no column {', '.join(missing)}; they need the keys of entity "
                              f"{entity.name!r} ({', '.join(keys)}) and the time column {ts_col!r}")
    spark = requests.sparkSession
    todo = requests.select(*keys, F.col(ts_col).cast("timestamp").alias(group.timestamp_col)).dropna().distinct()
    n = partitions or max(1, min(spark.sparkContext.defaultParallelism, int(rate // 5) or 1))
    schema = T.StructType(offline_schema(entity, group).fields)
    definition, ent = group.to_json(), entity.to_json()
    per_partition = rate / n

    def fetch(batches):
        import pandas as pd

        from palette.errors import RpcUnavailable
        from palette.registry import Entity, FeatureGroup

        from .client import RpcClient
        g, e = FeatureGroup.from_json(definition), Entity(**ent)
        client = RpcClient(g, e)
        names = [feat.name for feat in g.features]
        gap, next_at = 1.0 / per_partition, time.monotonic()
        try:
            for pdf in batches:
                out = []
                for row in pdf.itertuples(index=False):
                    wait = next_at - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    next_at = max(next_at, time.monotonic()) + gap
                    key = tuple(getattr(row, k) for k in keys)
                    at = getattr(row, g.timestamp_col)
                    at = at.to_pydatetime() if hasattr(at, "to_pydatetime") else at
                    try:
                        record = client.fetch([key], as_of=_utc(at))[0]
                        reason = None if record is None or record.fallbacks is None else \
                            next(r for r in record.fallbacks if r)
                        values = [None] * len(names) if record is None else list(record[:-1])
                    except RpcUnavailable as err:
                        values, reason = [None] * len(names), err.reason
                    out.append([*key, at, *values, reason])
                yield pd.DataFrame(out, columns=[*keys, g.timestamp_col, *names, RPC_FALLBACK])
        finally:
            client.close()

    rows = todo.repartition(n).mapInPandas(fetch, schema)
    return merge_fetches(spark, store, group, entity, rows)


def offline_schema(entity, group) -> T.StructType:
    from palette.offline import table_schema
    return T.StructType([T.StructField(f.name, f.dataType, True) for f in table_schema(entity, group).fields])


def _utc(at: datetime) -> datetime:
    from datetime import timezone
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


__all__ = ["backfill_rpc", "fetch_history", "logged_fetches", "merge_fetches", "offline_schema"]
