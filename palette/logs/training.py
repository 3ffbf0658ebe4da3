"""Feature logs on Spark: read them, append them to a Delta table, build training sets.

A log record (``writer.SCHEMA``) holds a request's looked-up features as a list of
structs; ``training_set`` pivots them into one column per feature (and
``<column>__event_time``), with the request's own fields and the prediction, joined with
labels that arrived later. No point-in-time rebuild beats it for fidelity: these are the
values the model saw.
"""
from __future__ import annotations


from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from palette.errors import PaletteError

_ID = ["request_id", "model"]


class LogError(PaletteError, ValueError):
    """Feature logs that cannot be read or joined as asked."""


def read_logs(spark: SparkSession, logs: str | DataFrame) -> DataFrame:
    """The records under ``logs``: the serving process's Parquet files (a directory with
    ``date=``/``model=`` folders) or the Delta table ``ingest_logs`` writes, or a DataFrame
    of them; with the fields of the current format (``_current``)."""
    if isinstance(logs, DataFrame):
        return _current(logs)
    from delta.tables import DeltaTable
    from pyspark.errors import AnalysisException
    if DeltaTable.isDeltaTable(spark, str(logs)):
        return _current(spark.read.format("delta").load(str(logs)))
    try:                                          # a local folder or a URI (s3a://…): Spark lists it
        return _current(spark.read.option("mergeSchema", "true").parquet(str(logs)))   # older files lack newer fields
    except AnalysisException:
        raise LogError(f"{logs}: no feature logs there (palette serve --log-dir writes them)") from None


def _current(records: DataFrame) -> DataFrame:
    """Records as this palette writes them: a feature entry of a log written before RPC
    features has no ``fallback`` (none was served), so it gets a null one."""
    if "fallback" in records.schema["features"].dataType.elementType.names:
        return records
    return records.withColumn("features", F.transform(
        "features", lambda f: f.withField("fallback", F.lit(None).cast("string"))))


def ingest_logs(spark: SparkSession, logs: str, table: str) -> dict:
    """Append the records under ``logs`` that ``table`` (a Delta table, created partitioned by
    date and model) does not hold yet: a MERGE on request id and model, so a rerun over the
    same files adds nothing. Returns {"read": records read, "added": records added}."""
    from delta.tables import DeltaTable

    df = read_logs(spark, logs)
    if not DeltaTable.isDeltaTable(spark, table):
        df.limit(0).write.format("delta").partitionBy("date", "model").save(table)
    target = DeltaTable.forPath(spark, table)
    before = spark.read.format("delta").load(table).count()
    (target.alias("t").merge(df.alias("s"), "t.request_id = s.request_id AND t.model = s.model AND t.date = s.date")
     .whenNotMatchedInsertAll().withSchemaEvolution().execute())       # a newer palette logs more fields
    after = spark.read.format("delta").load(table).count()
    return {"read": df.count(), "added": after - before}


def features_wide(records: DataFrame) -> DataFrame:
    """One row per logged request: ``request_id``, ``model``, and per logged feature column
    its value and ``<column>__event_time``."""
    exploded = records.select(*_ID, F.explode("features").alias("f")).where(F.col("f.column").isNotNull())
    kinds = exploded.select("f.column", "f.type").distinct().collect()
    aggs = []
    for row in sorted(kinds, key=lambda r: r.column):
        this = F.col("f.column") == row.column
        aggs.append(F.first(F.when(this, F.col(f"f.{row.type}")), ignorenulls=True).alias(row.column))
        aggs.append(F.first(F.when(this, F.col("f.event_time")), ignorenulls=True).alias(f"{row.column}__event_time"))
    if not aggs:
        return records.select(*_ID).distinct()
    return exploded.groupBy(*_ID).agg(*aggs)


def training_set(spark: SparkSession, logs: str | DataFrame, labels: DataFrame, *, on: str = "request_id",
                 model: str | None = None, request_fields: list[str] | tuple = ()) -> DataFrame:
    """Logged requests joined with their labels: request id, model, version, request time,
    the prediction served (JSON), each of ``request_fields`` (strings, read from the logged
    request), and every logged feature with its event time; then ``labels``' columns,
    joined on ``on`` — ``request_id`` or a request field (``order_id``, say) that
    ``labels`` holds too. Requests without a label are left out."""
    records = read_logs(spark, logs)
    if model is not None:
        records = records.where(F.col("model") == model)
    if on not in labels.columns:
        raise LogError(f"the labels have no column {on!r} to join on; they have {', '.join(labels.columns)}")
    fields = list(dict.fromkeys([*request_fields, *([] if on == "request_id" else [on])]))
    base = records.select(*_ID, "version", "request_time", "prediction",
                          *[F.get_json_object("request", f"$.{f}").alias(f) for f in fields])
    out = base.join(features_wide(records), _ID, "left")
    if on != "request_id":
        out = out.withColumn(on, F.col(on).cast(labels.schema[on].dataType))
    return out.join(labels, on)


__all__ = ["read_logs", "ingest_logs", "training_set", "features_wide", "LogError"]
