"""The offline store: one Delta table per feature group, and point-in-time lookups.

A feature group's table holds its entity's join key column(s), the event timestamp and
one column per feature. Ingestion is a Delta MERGE on (keys, event timestamp): a rerun
changes nothing, a late correction replaces the row it corrects, and concurrent
ingests into one table retry on Delta's optimistic-concurrency conflicts instead of
losing or duplicating rows.

Point-in-time lookup (``as_of_join``): each input row gets, per feature group, the
latest feature row with ``event_ts <= row_ts`` (and within the group's max age). It is
computed as one sort, not a join, for every group looked up by the same key: the input
rows and the feature rows are unioned, partitioned by key, ordered by time, and every
input row takes the last feature row before it (``last(..., ignorenulls)`` over a
running window). Nothing is multiplied by the length of a key's history, and every
input row comes out exactly once.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .errors import FeatureLookupError, IngestError
from .feature_types import KEYS, TYPES
from .lookup_plan import GroupRead, max_age_micros, plan_reads
from .refs import parse_ref
from .registry import Entity, FeatureGroup
from .rpc.fetcher import RPC_FALLBACK

log = logging.getLogger("palette.offline")

_SQL_TYPES = {"double": T.DoubleType(), "string": T.StringType(), "boolean": T.BooleanType(),
              "timestamp": T.TimestampType(), "bigint": T.LongType(), "float": T.FloatType(),
              "array<float>": T.ArrayType(T.FloatType()), "array<double>": T.ArrayType(T.DoubleType())}
KEY_SPARK_TYPES = {name: _SQL_TYPES[t.spark] for name, t in KEYS.items()}


def spark_type(name: str) -> T.DataType:
    """The Spark type of a feature type (``palette.feature_types``) or key type."""
    return _SQL_TYPES[(TYPES.get(name) or KEYS[name]).spark]
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_NUMERIC = _INTEGRAL + (T.FloatType, T.DoubleType, T.DecimalType)


def table_schema(entity: Entity, group: FeatureGroup) -> T.StructType:
    """Keys, event time, features; an RPC group's table adds ``rpc_fallback``: why a row's
    values are fallbacks served when its service failed (null: fetched), kept apart from
    lookups (``palette.rpc.backfill``)."""
    fields = [T.StructField(k, KEY_SPARK_TYPES[t], False) for k, t in entity.join_keys.items()]
    fields.append(T.StructField(group.timestamp_col, T.TimestampType(), False))
    fields += [T.StructField(f.name, spark_type(f.type), True) for f in group.features]
    if group.kind == "rpc":
        fields.append(T.StructField(RPC_FALLBACK, T.StringType(), True))
    return T.StructType(fields)


def _type_ok(actual: T.DataType, want: T.DataType) -> bool:
    if isinstance(want, T.ArrayType):                      # a vector: an array of numbers
        return isinstance(actual, T.ArrayType) and isinstance(actual.elementType, _NUMERIC)
    if isinstance(want, T.DoubleType):
        return isinstance(actual, _NUMERIC)
    if isinstance(want, T.LongType):
        return isinstance(actual, _INTEGRAL)
    return type(actual) is type(want)


# Delta's optimistic-concurrency conflicts (and two writers creating one table at once),
# matched by name: they arrive as Py4J/pyspark errors.
_CONFLICTS = ("Concurrent", "ProtocolChanged", "MetadataChanged", "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION")


def _is_conflict(e: Exception) -> bool:
    text = f"{type(e).__name__} {e}"
    return any(c in text for c in _CONFLICTS)


def ensure_table(spark: SparkSession, path: str, schema: T.StructType, retries: int = 8) -> None:
    """Create the group's Delta table if it is missing; add columns for newly registered features.
    A concurrent ingest creating the same table (or adding the same columns) is waited for."""
    from delta.tables import DeltaTable

    for attempt in range(retries + 1):
        creating = False
        try:
            if not DeltaTable.isDeltaTable(spark, path):
                creating = True
                # The change data feed lets materialization read just what changed since its last run.
                (DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
                 .property("delta.enableChangeDataFeed", "true").execute())
                return
            existing = set(spark.read.format("delta").load(path).columns)
            new = [f for f in schema.fields if f.name not in existing]
            if new:
                cols = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in new)
                spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({cols})")
            return
        except Exception as e:
            # Losing a race to create the table fails in several ways (protocol changed, location
            # not empty, log already exists, ...): whatever the message, if the table exists now,
            # go on with it.
            lost_race = creating and DeltaTable.isDeltaTable(spark, path)
            if not (_is_conflict(e) or lost_race) or attempt == retries:
                raise
            wait = 0.2 * 2 ** attempt
            log.warning("concurrent creation of %s, checking again in %.1fs (attempt %d)", path, wait, attempt + 1)
            time.sleep(wait)


def conform(df: DataFrame, entity: Entity, group: FeatureGroup) -> tuple[DataFrame, int]:
    """Check a DataFrame against the group; return it in the table's column order and
    types, and its number of rows. Raises IngestError naming every problem; runs Spark
    jobs only for the null (and row count) and duplicate checks."""
    schema = table_schema(entity, group)
    want = {f.name: f.dataType for f in schema.fields}
    if group.kind == "rpc" and RPC_FALLBACK not in df.columns:      # history from elsewhere: fetched values
        df = df.withColumn(RPC_FALLBACK, F.lit(None).cast("string"))
    have = {f.name: f.dataType for f in df.schema.fields}
    problems = []
    missing = [c for c in want if c not in have]
    extra = [c for c in have if c not in want]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if extra:
        problems.append(f"columns not in {group.id}: {', '.join(extra)} (register them as features first, "
                        "or drop them)")
    wrong = [f"{c} is {have[c].simpleString()}, expected {t.simpleString()}"
             for c, t in want.items() if c in have and not _type_ok(have[c], t)]
    if wrong:
        problems.append("wrong types: " + "; ".join(wrong))
    if problems:
        raise IngestError(f"cannot ingest into {group.id}: " + ". ".join(problems) + ". Nothing was written.")
    required = list(entity.join_keys) + [group.timestamp_col]
    nulls = df.agg(F.count(F.lit(1)).alias("__rows"),
                   *[F.sum(F.col(c).isNull().cast("long")).alias(c) for c in required]).first()
    bad = [f"{nulls[c]:,} rows with a null {c}" for c in required if nulls[c]]
    if bad:
        raise IngestError(f"cannot ingest into {group.id}: {', '.join(bad)}. Nothing was written.")
    _check_vectors(df, group, required)
    dups = df.groupBy(*required).count().where("count > 1")
    example = dups.limit(3).collect()
    if example:
        shown = "; ".join(", ".join(f"{c}={r[c]}" for c in required) for r in example)
        raise IngestError(f"cannot ingest into {group.id}: several rows share one ({', '.join(required)}), "
                          f"e.g. {shown}. Keep one row per key and timestamp. Nothing was written.")
    return df.select([F.col(c).cast(t).alias(c) for c, t in want.items()]), nulls["__rows"]


def _check_vectors(df: DataFrame, group: FeatureGroup, required: list[str]) -> None:
    """Every vector holds its dimension of finite numbers, within float32's range unless
    float64 (or is null; an embedding version holds a vector for every row): one Spark
    job, the first offending rows named."""
    from .feature_types import FLOAT32_MAX
    checks = []
    for f in group.features:
        t = TYPES[f.type]
        if t.dim is None:
            continue
        c = F.col(f"`{f.name}`")
        top = float("inf") if t.storage == "float64" else FLOAT32_MAX
        bad = F.when(F.size(c) != t.dim, F.concat(F.lit(f"{f.name} has "), F.size(c).cast("string"),
                                                    F.lit(f" values, not {t.dim}")))
        bad = bad.when(F.exists(c, lambda x: x.isNull() | F.isnan(x) | (F.abs(x) > top)),
                       F.lit(f"{f.name} holds a NaN, an infinity, a null or a number beyond float32"))
        if group.kind == "embedding":
            checks.append(F.when(c.isNull(), F.lit(f"{f.name} is null (an embedding version holds a vector for "
                                                   "each of its keys: leave a key out instead)")).otherwise(bad))
        else:
            checks.append(F.when(c.isNotNull(), bad))
    if not checks:
        return
    problem = F.coalesce(*checks) if len(checks) > 1 else checks[0]
    found = df.select(*required, problem.alias("__problem")).where("__problem IS NOT NULL")
    example = found.limit(3).collect()
    if example:
        shown = "; ".join(", ".join(f"{c}={r[c]}" for c in required) + f": {r['__problem']}" for r in example)
        raise IngestError(f"cannot ingest into {group.id}: {found.count():,} rows hold vectors that are not "
                          f"{'/'.join(str(TYPES[f.type].dim) for f in group.features if TYPES[f.type].dim)} finite "
                          f"numbers, e.g. {shown}. Fix or drop them. Nothing was written.")


def changed_rows(source: DataFrame, target: DataFrame, keys: list[str], ts_col: str,
                 features: list[str]) -> DataFrame:
    """The rows of ``source`` that are new to ``target`` or differ from the row they match
    on (keys, ts): what a MERGE has to write. Rows identical to the table are dropped, so a
    rerun leaves Delta nothing to do (a MERGE whose source is empty commits nothing,
    while an identical matched row would still make it rewrite the row's whole file)."""
    on = [*keys, ts_col]
    t = target.select(*[F.col(f"`{c}`").alias(f"__t_{c}") for c in [*on, *features]])
    cond = [source[f"`{c}`"] == t[f"`__t_{c}`"] for c in on]
    differs = F.lit(False)
    for f in features:
        differs = differs | ~source[f"`{f}`"].eqNullSafe(t[f"`__t_{f}`"])
    return (source.join(t, cond, "left").where(t[f"`__t_{ts_col}`"].isNull() | differs)
            .select(*[source[f"`{c}`"] for c in source.columns]))


def merge(spark: SparkSession, path: str, source: DataFrame, keys: list[str], ts_col: str,
          features: list[str], source_rows: int, retries: int = 8, skip_identical: bool = True,
          since: Column | None = None) -> dict:
    """MERGE ``source`` into the table on (keys, ts): insert new rows, update rows whose values
    changed, leave identical rows alone — a rerun commits nothing. Retries on
    concurrent-modification conflicts. ``skip_identical=False`` leaves out the join that
    drops rows identical to the table first (a stream's micro-batches are mostly new
    values: one scan of the table instead of two; a replay then rewrites, not skips).
    ``since``: a literal at or below every source row's ``ts``; the MERGE then reads only
    the table's files that hold later rows (Delta skips the others by their statistics)."""
    from delta.tables import DeltaTable

    on = " AND ".join(f"t.`{c}` = s.`{c}`" for c in [*keys, ts_col])
    if since is not None:
        on = F.expr(on) & (F.col(f"t.`{ts_col}`") >= since)
    changed = " OR ".join(f"NOT (t.`{f}` <=> s.`{f}`)" for f in features)
    for attempt in range(retries + 1):
        try:
            table = DeltaTable.forPath(spark, path)
            before = table.history(1).first()["version"]
            todo = changed_rows(source, table.toDF(), keys, ts_col, features) if skip_identical else source
            counts = (table.alias("t").merge(todo.alias("s"), on)
                      .whenMatchedUpdate(condition=changed, set={f: f"s.`{f}`" for f in features})
                      .whenNotMatchedInsertAll().execute()).first()
            break
        except Exception as e:   # Delta's conflicts arrive as Py4J/pyspark errors; match by name
            if not _is_conflict(e) or attempt == retries:
                raise
            wait = 0.2 * 2 ** attempt
            log.warning("concurrent write to %s, retrying MERGE in %.1fs (attempt %d)", path, wait, attempt + 1)
            time.sleep(wait)
    inserted, updated = int(counts["num_inserted_rows"]), int(counts["num_updated_rows"])
    version = DeltaTable.forPath(spark, path).history(1).first()["version"] if inserted or updated else before
    return {"version": version, "inserted": inserted, "updated": updated, "source_rows": source_rows}


def read_table(spark: SparkSession, path: str, version: int | None = None, timestamp: str | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    elif timestamp is not None:
        reader = reader.option("timestampAsOf", timestamp)
    return reader.load(path)


def current_version(spark: SparkSession, path: str) -> int:
    from delta.tables import DeltaTable
    return DeltaTable.forPath(spark, path).history(1).first()["version"]


# -- lookups ----------------------------------------------------------------------------

_T, _SIDE, _FT, _ROW = "__palette_ts", "__palette_side", "__palette_fts", "__palette_row"


@dataclass
class Side:
    """One planned read (``palette.lookup_plan.GroupRead``) and its table, at the version read."""
    read: GroupRead
    table: DataFrame


def key_columns(df: DataFrame, read: GroupRead) -> list[Column]:
    """The input's join key columns, cast to the entity key types (in the entity's key order);
    errors name both columns and types."""
    out = []
    for join_key, (table_key, key_type) in zip(read.join_keys, read.entity.join_keys.items()):
        field = next((f for f in df.schema.fields if f.name == join_key), None)
        if field is None:
            raise FeatureLookupError(f"join key column {join_key!r} for {read.group.id} is not in the input; "
                                     f"columns: {', '.join(df.columns)}")
        want = KEY_SPARK_TYPES[key_type]
        if not _type_ok(field.dataType, want):
            raise FeatureLookupError(f"join key column {join_key!r} is {field.dataType.simpleString()}, but entity "
                                     f"{read.entity.name!r} key {table_key!r} is {want.simpleString()}: cast it first")
        out.append(F.col(f"`{join_key}`").cast(want))
    return out


def _within(feature_ts: Column, row_ts: Column, group: FeatureGroup) -> Column:
    """``palette.lookup_plan.within_max_age`` as a Column."""
    max_age = max_age_micros(group)
    if max_age is None:
        return F.lit(True)
    return F.unix_micros(row_ts) - F.unix_micros(feature_ts) <= max_age


def _packed(group: FeatureGroup, features) -> Column:
    """The group's event time and wanted features as one struct; ordering by it breaks
    ties between rows of one key and time (the greatest values win)."""
    feats = sorted(set(features))
    return F.struct(F.col(group.timestamp_col).alias(_FT), *[F.col(f"`{f}`") for f in feats])


def _feature_rows(table: DataFrame, entity: Entity, group: FeatureGroup, features, keys: list[str]) -> DataFrame:
    """The table's rows with a key and a time (ingest guarantees both; a table written
    otherwise may lack them, and such rows match nothing)."""
    table_keys = list(entity.join_keys)
    present = F.col(group.timestamp_col).isNotNull()
    if group.kind == "rpc":                   # fallbacks served while the service failed: kept apart
        present = present & F.col(RPC_FALLBACK).isNull()
    for k in table_keys:
        present = present & F.col(f"`{k}`").isNotNull()
    return table.where(present).select(*[F.col(f"`{tk}`").alias(k) for tk, k in zip(table_keys, keys)],
                                       F.col(group.timestamp_col).alias(_T),
                                       _packed(group, features).alias("__palette_f"))


def latest_rows(table: DataFrame, entity: Entity, group: FeatureGroup) -> DataFrame:
    """The latest row per key of a group's table (keys, timestamp, every feature), with the
    lookups' tie-break: of rows sharing key and time, the greatest values. What the online
    store holds for the table."""
    features = [f.name for f in group.features]
    keys = list(entity.join_keys)
    latest = _feature_rows(table, entity, group, features, keys).groupBy(*keys).agg(F.max("__palette_f").alias("f"))
    return latest.select(*[F.col(f"`{k}`") for k in keys], F.col(f"f.{_FT}").alias(group.timestamp_col),
                         *[F.col(f"f.`{f}`").alias(f) for f in features])


def as_of_join(df: DataFrame, keys: list[Column], ts_col: str | None, sides: list[Side]) -> DataFrame:
    """``df`` plus every side's outputs, looked up by the join key columns ``keys``: point in
    time as of ``ts_col`` (within each group's max age), or, with ``ts_col`` None, the latest
    value per key (max age not applied: there is no row time to measure it against).

    Point in time is one sort for all the sides: the input rows and every side's feature
    rows are unioned, partitioned by key and ordered by time (feature rows first at equal
    times), and each input row takes, per side, the last feature row before it
    (``last(..., ignorenulls)`` over a running window). Nothing is multiplied by the
    length of a key's history, and every input row comes out exactly once.
    """
    k = [f"__palette_key{i}" for i in range(len(keys))]
    f = [f"__palette_f{i}" for i in range(len(sides))]
    rows = [_feature_rows(s.table, s.read.entity, s.read.group, s.read.features, k) for s in sides]
    if ts_col is None:
        out = df.withColumns(dict(zip(k, keys)))
        for name, feature_rows in zip(f, rows):
            latest = feature_rows.groupBy(*k).agg(F.max("__palette_f").alias(name))
            out = out.join(latest, on=k, how="left")
    else:
        # The input row travels packed in one struct: a feature row then carries one null
        # field for it, not one per input column, through the shuffle and the sort.
        out = df.select(*[c.alias(n) for c, n in zip(keys, k)], F.col(f"`{ts_col}`").cast("timestamp").alias(_T),
                        F.lit(1).alias(_SIDE), F.struct(*[F.col(f"`{c}`") for c in df.columns]).alias(_ROW))
        for name, feature_rows in zip(f, rows):
            feature_rows = feature_rows.withColumnRenamed("__palette_f", name).withColumn(_SIDE, F.lit(0))
            out = out.unionByName(feature_rows, allowMissingColumns=True)
        w = (Window.partitionBy(*k).orderBy(F.col(_T).asc_nulls_first(), F.col(_SIDE), *f)
             .rowsBetween(Window.unboundedPreceding, Window.currentRow))
        out = out.withColumns({name: F.last(name, ignorenulls=True).over(w) for name in f}).where(F.col(_SIDE) == 1)
        out = out.select(f"{_ROW}.*", *[F.when(_within(F.col(f"{name}.{_FT}"), F.col(_T), side.read.group),
                                               F.col(name)).alias(name) for name, side in zip(f, sides)])
    outputs = {o: F.col(f"{name}.`{feat}`") for name, side in zip(f, sides) for o, feat in side.read.outputs}
    out = out.withColumns(outputs)
    return out.select(*[c for c in df.columns if c not in outputs], *outputs)


def point_in_time_lookup(df: DataFrame, store, outputs: dict[str, str], ts_col: str | None = None,
           versions: dict[str, int] | None = None, resolve=None) -> DataFrame:
    """``df`` plus one column per ``{output column: palette ref}``, as planned by
    ``palette.lookup_plan.plan_reads``.

    All groups looked up by the same join key column(s) are fetched in one pass (one
    sort); each group's features come from one read of its table. Each output column
    carries metadata ``{"palette": {"ref": ..., "version": ...}}``: the Delta version read,
    so a training set can be rebuilt exactly (pin it with ``versions``). A vector feature
    comes out as a Spark ML vector (``VectorUDT``, float64: what ``VectorAssembler`` takes
    and what the JVM-free runtime's float64 arrays hold). ``resolve`` resolves refs
    (default ``store.resolve``; a stage passes one that keeps its pinned embedding versions).
    """
    from delta.tables import DeltaTable

    versions = versions or {}
    spark = df.sparkSession
    if ts_col is not None and ts_col not in df.columns:
        raise FeatureLookupError(f"timestamp column {ts_col!r} is not in the input; columns: {', '.join(df.columns)}")
    passes: dict[tuple, list[Side]] = {}        # (join columns, key types) -> the reads keyed by them
    tables: dict[str, tuple[DataFrame, int]] = {}
    meta = {}
    vectors, unk = set(), {}
    for read in plan_reads(outputs, resolve or store.resolve):
        gid = read.group.id
        if gid not in tables:
            path = store.table_path(gid)
            if not DeltaTable.isDeltaTable(spark, path):
                raise FeatureLookupError(f"feature group {gid} has no data yet ({path} is not a Delta table): "
                                         "ingest into it first")
            version = versions.get(gid)
            if version is None:
                version = current_version(spark, path)
            tables[gid] = (read_table(spark, path, version=version), version)
        table, version = tables[gid]
        passes.setdefault((read.join_keys, read.key_types), []).append(Side(read, table))
        for out, feature in read.outputs:
            meta[out] = {"palette": {"ref": str(parse_ref(outputs[out])), "version": version}}
            dim = TYPES[read.group.feature(feature).type].dim
            if dim is not None:                 # its size, as VectorSizeHint gives it (VectorAssembler reads it)
                vectors.add(out)
                meta[out]["ml_attr"] = {"num_attrs": dim}
                if read.group.unk_vector(feature) is not None:
                    unk[out] = read.group.unk_vector(feature)
    for sides in passes.values():
        df = as_of_join(df, key_columns(df, sides[0].read), ts_col, sides)
    if vectors:
        from pyspark.ml.functions import array_to_vector
    def column(out: str) -> Column:
        c = F.col(f"`{out}`")
        if out in unk:                          # a key the embedding version does not hold: its UNK vector
            return array_to_vector(F.coalesce(c, F.array(*[F.lit(x).cast("float") for x in unk[out]])))
        return F.when(c.isNotNull(), array_to_vector(c)) if out in vectors else c      # (it fails on a null)
    return df.withColumns({out: column(out).alias(out, metadata=meta[out]) for out in outputs})


def provided_refs(schema: T.StructType) -> dict[str, str]:
    """{palette ref: column} for columns an earlier lookup added (from their metadata)."""
    out = {}
    for f in schema.fields:
        ref = (f.metadata or {}).get("palette", {}).get("ref")
        if ref:
            out[ref] = f.name
    return out
