"""A stream group's events as a Spark DataFrame: streaming (the job) or batch (a backfill),
from the group's ``StreamSource`` — a Delta table of events, JSON lines files, or a Kafka
topic of JSON payloads — with the declared schema, and bad events counted, not fatal.

An event whose entity key or event time is null (or whose Kafka payload is not JSON of the
schema: Spark's reader then gives nulls) cannot be placed and is dropped.
"""
from __future__ import annotations

import os
import re

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from palette.errors import JobError
from palette.offline import spark_type
from palette.registry import Entity, FeatureGroup
from palette.windows import StreamSource

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def event_schema(source: StreamSource) -> T.StructType:
    return T.StructType([T.StructField(c, spark_type(t), True)
                         for c, t in source.schema.items()])


def _options(source: StreamSource) -> dict[str, str]:
    """The source's reader options, ``${VAR}`` replaced by the environment's value (secrets
    are named in the registry, never stored in it)."""
    def value(v: str) -> str:
        def sub(m):
            if m.group(1) not in os.environ:
                raise JobError(f"the stream source's option refers to ${{{m.group(1)}}}, which is not set in "
                               "the environment: export it before starting the job")
            return os.environ[m.group(1)]
        return _ENV.sub(sub, v)
    return {k: value(v) for k, v in source.options.items()}


def read_events(spark: SparkSession, entity: Entity, group: FeatureGroup, streaming: bool,
                max_per_trigger: int | None = None) -> DataFrame:
    """The group's events (the schema's columns), streaming or as a batch."""
    source = group.source
    schema = event_schema(source)
    reader = spark.readStream if streaming else spark.read
    options = _options(source)
    if source.format == "delta":
        if streaming and max_per_trigger:
            options.setdefault("maxFilesPerTrigger", str(max_per_trigger))
        df = reader.format("delta").options(**options).load(source.path)
        missing = [f.name for f in schema.fields if f.name not in df.columns]
        if missing:
            raise JobError(f"the events table {source.path} of {group.id} has no column {', '.join(missing)}: "
                           "the source's schema must name the table's columns")
        df = df.select(*[F.col(f"`{f.name}`").cast(f.dataType).alias(f.name) for f in schema.fields])
    elif source.format == "files":
        if streaming and max_per_trigger:
            options.setdefault("maxFilesPerTrigger", str(max_per_trigger))
        df = reader.schema(schema).options(**options).json(source.path)
    else:
        options = {"kafka.bootstrap.servers": source.servers, "subscribe": source.topic,
                   "startingOffsets": "earliest", **options}
        if streaming and max_per_trigger:
            options.setdefault("maxOffsetsPerTrigger", str(max_per_trigger))
        if not streaming:
            options.pop("maxOffsetsPerTrigger", None)
        raw = reader.format("kafka").options(**options).load()
        df = raw.select(F.from_json(F.col("value").cast("string"), schema).alias("e")).select("e.*")
    placed = F.col(f"`{source.timestamp_col}`").isNotNull()
    for k in entity.join_keys:
        placed = placed & F.col(f"`{k}`").isNotNull()
    return df.where(placed)


__all__ = ["read_events", "event_schema"]
