"""Online/offline consistency measured from served traffic (Chronon's approach).

Every logged feature read — a key, the request's time, the value the online store gave
and its event time — is replayed through the point-in-time offline lookup
(``palette.offline.point_in_time_lookup``, as a training set is built) at the request's time. Per day,
model and feature:

- ``match_rate``: the offline value equals the served one (both null counts as a match);
- ``missing_online_rate``: served null where offline has a value;
- ``missing_offline_rate``: served a value where offline has none;
- ``mismatch_rate``: both present, different (floats beyond ``rtol``);
- ``rpc_fallback_rate``: an RPC group's fallback was served (its service failed); these
  are kept apart from the lookups (``palette.rpc.backfill``), so they are counted here,
  not compared — neither store skew nor logic skew;
- ``mean_abs_diff`` / ``max_abs_diff`` over numeric mismatches' differences;
- ``age_p50_s`` / ``age_p95_s`` / ``age_max_s``: how old the served value was at serving
  time (request time - its event time): freshness.

>>> report = check_consistency(spark, "/logs/served", store_root="/data/palette")   # doctest: +SKIP
>>> print(report); report.append_to("/data/palette/consistency")               # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from palette.errors import InvalidArgument
from palette.feature_types import KEYS, SLOTS, TYPES
from palette.reports import Limit, Measure, Report, html
from palette.reports.text import fmt, table

from .training import LogError, read_logs

METRICS = ["rows", "match_rate", "missing_online_rate", "missing_offline_rate", "mismatch_rate", "rpc_fallback_rate",
           "mean_abs_diff", "max_abs_diff", "age_p50_s", "age_p95_s", "age_max_s"]
RATES = {"min_match_rate": ("match_rate", ">="), "max_missing_online_rate": ("missing_online_rate", "<="),
         "max_missing_offline_rate": ("missing_offline_rate", "<="), "max_mismatch_rate": ("mismatch_rate", "<="),
         "max_age_p95_s": ("age_p95_s", "<="), "max_rpc_fallback_rate": ("rpc_fallback_rate", "<=")}


def _served(records: DataFrame) -> DataFrame:
    f = F.col("f")
    online = None                              # the value in the slot of its type, as a string
    for name in SLOTS:
        value = f[name].cast("string")
        is_it = f.type.startswith("vector(") if name == "vector" else f.type == name
        online = F.when(is_it, value) if online is None else online.when(is_it, value)
    return records.select("request_id", "model", "request_time", F.explode("features").alias("f")).select(
        "request_id", "model", "request_time", f.column.alias("column"), f.group.alias("group"),
        f.feature.alias("feature"), f.key.alias("key"), f.type.alias("type"), f.num.alias("online_num"),
        online.alias("online"), f.event_time.alias("event_time"),
        f.fallback.alias("fallback"))


def _replayed(served: DataFrame, store) -> DataFrame:
    """``served`` plus ``offline`` (as a string) and ``offline_num``: each row's feature
    looked up offline as of its request time. The rows stay on the executors: only the
    groups and features read (a handful) reach the driver; keys are decoded in Spark."""
    from palette.offline import point_in_time_lookup

    parts = []
    for row in served.select("group").distinct().collect():
        gid = row.group
        group = store.group(gid)
        entity = store.entity(group.entity)
        names, types = list(entity.join_keys), list(entity.join_keys.values())
        if len(names) > 1:
            raise LogError(f"feature group {gid} has a composite entity key ({', '.join(names)}): the consistency "
                           "check replays single-column keys only")
        rows = served.where(F.col("group") == gid).where(F.col("key").isNotNull())
        key = F.col("key") if types[0] == "str" else F.col("key").try_cast(KEYS[types[0]].spark)
        features = [r.feature for r in rows.select("feature").distinct().collect()]
        outputs = {f"__offline_{i}": f"@palette:{gid}:{feat}:{names[0]}" for i, feat in enumerate(features)}
        looked = point_in_time_lookup(rows.withColumn(names[0], key), store, outputs, ts_col="request_time")
        pick = None
        for i, feat in enumerate(features):
            value = F.col(f"__offline_{i}")
            if TYPES[group.feature(feat).type].dim is not None:       # a Spark ML vector: as the served doubles
                from pyspark.ml.functions import vector_to_array
                value = F.when(value.isNotNull(), vector_to_array(value))
            pick = (F.when(F.col("feature") == feat, value.cast("string")) if pick is None
                    else pick.when(F.col("feature") == feat, value.cast("string")))
        num = F.when(F.col("type") == "num", pick.cast("double"))
        parts.append(looked.select(*served.columns, pick.alias("offline"), num.alias("offline_num")))
    unknown = served.where(F.col("key").isNull()).select(*served.columns, F.lit(None).cast("string").alias("offline"),
                                                         F.lit(None).cast("double").alias("offline_num"))
    out = unknown
    for p in parts:
        out = out.unionByName(p)
    return out


def measure(replayed: DataFrame, rtol: float = 1e-9) -> DataFrame:
    """The metrics per day, model and feature of replayed rows."""
    on, off = F.col("online"), F.col("offline")
    diff = F.abs(F.col("online_num") - F.col("offline_num"))
    same_num = diff <= F.lit(rtol) * F.abs(F.col("offline_num"))
    equal = F.when(F.col("type") == "num", (F.col("online_num") == F.col("offline_num")) | same_num).otherwise(on == off)
    kind = (F.when(F.col("fallback").isNotNull(), "rpc_fallback")
            .when(on.isNull() & off.isNull(), "match").when(on.isNull(), "missing_online")
            .when(off.isNull(), "missing_offline").when(equal, "match").otherwise("mismatch"))
    age = F.unix_micros(F.col("request_time")) / 1e6 - F.unix_micros(F.col("event_time")) / 1e6
    rows = replayed.select(F.to_date("request_time").alias("date"), "model", "group", "feature", "column",
                           kind.alias("kind"), F.when(kind == "mismatch", diff).alias("diff"), age.alias("age"))
    n = F.count(F.lit(1))
    rate = lambda k: F.sum(F.when(F.col("kind") == k, 1).otherwise(0)) / n       # noqa: E731
    return rows.groupBy("date", "model", "group", "feature").agg(
        n.alias("rows"), rate("match").alias("match_rate"), rate("missing_online").alias("missing_online_rate"),
        rate("missing_offline").alias("missing_offline_rate"), rate("mismatch").alias("mismatch_rate"),
        rate("rpc_fallback").alias("rpc_fallback_rate"),
        F.mean("diff").alias("mean_abs_diff"), F.max("diff").alias("max_abs_diff"),
        F.percentile_approx("age", 0.5).alias("age_p50_s"), F.percentile_approx("age", 0.95).alias("age_p95_s"),
        F.max("age").alias("age_max_s")).orderBy("date", "model", "group", "feature")


@dataclass
class ConsistencyReport(Report):
    """The measured rows (one per day, model and feature) and the limits they are judged
    by (``check``); a ``palette.reports.Report``: text, JSON, HTML (match rate per feature
    over the days), MLflow, exit code."""
    kind = "consistency"
    title = "palette online/offline consistency"
    rows: list[dict]
    since: datetime | None = None
    until: datetime | None = None
    limits: dict[str, Limit] = field(default_factory=dict)       # metric -> the limit every row must keep

    def check(self, **thresholds: float | None) -> list[Measure]:
        """Judge every row by these limits (``min_match_rate``, ``max_missing_online_rate``,
        ``max_missing_offline_rate``, ``max_mismatch_rate``, ``max_age_p95_s``,
        ``max_rpc_fallback_rate``; None: not judged) and return the breaches."""
        for name, limit in thresholds.items():
            if name not in RATES:
                raise InvalidArgument(f"unknown consistency threshold {name!r}; use one of {', '.join(RATES)}")
            if limit is not None:
                metric, op = RATES[name]
                self.limits[metric] = Limit(op, limit)
        return self.breaches

    def measures(self) -> list[Measure]:
        return [Measure(metric, f"{r['date']} {r['model']} {r['group']}:{r['feature']}", r[metric], limit)
                for metric, limit in self.limits.items() for r in self.rows]

    def headline(self) -> str:
        span = "" if self.since is None and self.until is None else \
            f" from {self.since or 'the first log'} until {self.until or 'the last'}"
        return f"{len(self.rows)} feature-days{span}"

    def _table(self) -> tuple[list[str], list[list[str]]]:
        head = ["date", "model", "feature", "rows", "match", "miss online", "miss offline", "mismatch",
                "rpc fallback", "max diff", "age p95 s"]
        body = [[str(r["date"]), r["model"], f"{r['group']}:{r['feature']}", f"{r['rows']:,}",
                 f"{r['match_rate']:.2%}", f"{r['missing_online_rate']:.2%}", f"{r['missing_offline_rate']:.2%}",
                 f"{r['mismatch_rate']:.2%}", f"{r['rpc_fallback_rate']:.2%}", fmt(r["max_abs_diff"]),
                 fmt(r["age_p95_s"], ".0f")] for r in self.rows]
        return head, body

    def body_lines(self) -> list[str]:
        head, body = self._table()
        return [table(body, head, rule=False)]

    def body_html(self) -> str:
        days = sorted({str(r["date"]) for r in self.rows})
        series: dict[str, list] = {}
        for r in self.rows:
            name = f"{r['model']} {r['group']}:{r['feature']}"
            series.setdefault(name, [None] * len(days))[days.index(str(r["date"]))] = r["match_rate"]
        limit = self.limits.get("match_rate")
        plot = html.lines(days, series, "match rate per feature and day", "match rate per day",
                          limit=None if limit is None else limit.value) if len(days) > 1 else html.bars(
            list(series), {"match rate": [v[0] for v in series.values()]}, "match rate per feature", "match rate")
        head, body = self._table()
        return f'<h2>Per day, model and feature</h2><div class="plots">{plot}</div>' + html.table(head, body)

    def figures(self) -> dict[str, float]:
        n = sum(r["rows"] for r in self.rows) or 1
        return {"rows": float(n), "match_rate": sum(r["match_rate"] * r["rows"] for r in self.rows) / n}

    def json_body(self) -> dict:
        return {"since": self.since, "until": self.until, "rows": self.rows}

    def append_to(self, spark: SparkSession, table: str) -> None:
        """Upsert the rows into a Delta table, one row per day, model and feature: a rerun
        over the same logs replaces its own rows, never duplicates them."""
        from delta.tables import DeltaTable

        df = spark.createDataFrame(self.rows).withColumn("computed_at", F.current_timestamp())
        if not DeltaTable.isDeltaTable(spark, table):
            df.limit(0).write.format("delta").save(table)
        on = " AND ".join(f"t.`{c}` = s.`{c}`" for c in ("date", "model", "group", "feature"))
        DeltaTable.forPath(spark, table).alias("t").merge(df.alias("s"), on) \
            .whenMatchedUpdateAll().whenNotMatchedInsertAll().withSchemaEvolution().execute()


def check_consistency(spark: SparkSession, logs: str | DataFrame, *, store_root: str | None = None,
                since: datetime | None = None, until: datetime | None = None, model: str | None = None,
                rtol: float = 1e-9) -> ConsistencyReport:
    """Replay the logged reads (from ``since``, before ``until``) through the offline
    store at ``store_root`` and measure, per day, model and feature (see the module)."""
    from palette.store import FeatureStore

    records = read_logs(spark, logs)
    if since is not None:
        records = records.where(F.col("request_time") >= F.lit(since))
    if until is not None:
        records = records.where(F.col("request_time") < F.lit(until))
    if model is not None:
        records = records.where(F.col("model") == model)
    served = _served(records).cache()
    try:
        if served.limit(1).count() == 0:
            raise LogError("no logged feature reads in the logs for that window and model")
        rows = [r.asDict() for r in measure(_replayed(served, FeatureStore(store_root)), rtol).collect()]
    finally:
        served.unpersist()
    return ConsistencyReport(rows, since, until)


__all__ = ["check_consistency", "measure", "ConsistencyReport", "METRICS"]
