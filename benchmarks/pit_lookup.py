"""Point-in-time lookup: ``PaletteTransformer.transform`` against the rank-over-inequality-join plan.

Data (generated with ``spark.range`` and ``rand``; nothing is built on the driver):

  * entity ``customer`` (key ``cust_id``, int), ``K = rows / 10`` keys (100,000 at full size);
  * group ``customer:activity``: ``spend``, ``visits`` (num), no max age,
    6 x rows feature rows (6,000,000): every key has the same number of rows, at
    distinct random instants spread over 2024;
  * group ``customer:profile``: ``score`` (num), ``tier`` (str), max age 30 days,
    4 x rows feature rows (4,000,000);
  * ~5% null feature values; training rows: ``order_id``, ``cust_id`` (2% of them keys with no
    features at all), ``order_ts`` uniform over 2024, ``label``; stored as Parquet.

The feature tables are written straight to the store's Delta table paths (no MERGE), so
this measures lookups, not ingest. A half-size set (rows/2 training rows, 5 x rows feature
rows, same keys: half the history per key) is built next to the full one.

Timed (each run forces every column with a ``noop`` write, nothing is collected):

  (a) ``PaletteTransformer.transform`` (union + running ``last(ignorenulls)`` window per group),
      at full and at half size; the scaling ratio full/half should be <= 2.2;
  (b) the plan of Feast's Spark offline store and Hopsworks: per group, join the rows to the
      feature rows on key AND feature_ts <= row_ts (AND feature_ts >= row_ts - max_age), then
      ``row_number() over (partition by row id order by feature_ts desc)`` and keep rank 1.
      Written here as the cheapest faithful form: a LEFT join that carries the features (Feast
      joins the rank-1 keys back to the joined rows and then to the entity rows, two more joins).
      palette should be >= 1.5x faster.

Rounds interleave (a) and (b) so that noise on the shared machine hits both alike; figures are
medians. Before timing, both plans run on a 2% sample of the training rows against the full
feature tables and are compared row by row.

    .venv/bin/python benchmarks/run.py --only pit_lookup [--rows N]
    .venv/bin/python benchmarks/pit_lookup.py [--rows N]       # alone
"""
from __future__ import annotations

import statistics
import time
from datetime import datetime, timezone

from _fresh import JvmClock, cli, noop_write, remove, rerun_fresh, scratch, session, spark_running, timed

DEFAULT_ROWS = 1_000_000
ROUNDS = 3
SPARK_CONF = {"spark.driver.memory": "10g", "spark.sql.shuffle.partitions": "8"}
START_US = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1_000_000)
YEAR_US = 366 * 86_400 * 1_000_000
SAMPLE_EVERY = 50

GOALS = {"palette_full_over_half": ("<=", 2.2), "rank_over_palette": (">=", 1.5), "sample_mismatches": ("==", 0),
         "cpu_palette_full_over_half": ("<=", 2.2), "cpu_rank_over_palette": (">=", 1.5)}

ENTITY = ("customer", {"cust_id": "int"})
# group name -> (features, max age, feature rows per training row)
GROUPS = {
    "activity": ({"spend": "num", "visits": "num"}, None, 6),
    "profile": ({"score": "num", "tier": "str"}, "30d", 4),
}
FEATURES = {f: f"@palette:customer:{g}:{f}:cust_id" for g, (feats, _, _) in GROUPS.items() for f in feats}


# -- data -------------------------------------------------------------------------------

def _feature_rows(spark, group: str, n: int, keys: int, seed: int):
    """n rows, n / keys per key, each key's rows at distinct instants spread over the year."""
    from pyspark.sql import functions as F

    per_key = n // keys
    step = YEAR_US // per_key            # row j of a key falls at a random instant in slot j
    slot = F.floor(F.col("id") / keys)
    ts = F.timestamp_micros(F.lit(START_US) + slot * step + (F.rand(seed) * step).cast("long"))
    holes = lambda value, s: F.when(F.rand(s) < 0.05, F.lit(None)).otherwise(value)  # noqa: E731
    values = {
        "spend": holes(F.round(F.rand(seed + 1) * 100, 2), seed + 11),
        "visits": holes(F.floor(F.rand(seed + 2) * 20).cast("double"), seed + 12),
        "score": holes(F.randn(seed + 3), seed + 13),
        "tier": holes(F.element_at(F.array(*[F.lit(t) for t in ("bronze", "silver", "gold", "platinum")]),
                                   (F.floor(F.rand(seed + 4) * 4) + 1).cast("int")), seed + 14),
    }
    feats = GROUPS[group][0]
    return (spark.range(0, n, 1, max(2, n // 750_000))
            .select((F.col("id") % keys).alias("cust_id"), ts.alias("event_ts"),
                    *[values[f].alias(f) for f in feats]))


def _training_rows(spark, n: int, keys: int, seed: int):
    from pyspark.sql import functions as F

    return spark.range(0, n, 1, max(2, n // 250_000)).select(
        F.col("id").alias("order_id"),
        (F.rand(seed) * keys * 1.02).cast("long").alias("cust_id"),     # ~2% keys without features
        F.timestamp_micros(F.lit(START_US) + (F.rand(seed + 1) * YEAR_US).cast("long")).alias("order_ts"),
        F.round(F.rand(seed + 2) * 60, 1).alias("label"))


def build(spark, folder, n_train: int, keys: int, seed: int) -> dict:
    """A store root with both groups' Delta tables and a Parquet training set; returns paths."""
    from palette import offline
    from palette.registry import Entity, FeatureGroup
    from palette.store import FeatureStore

    root = folder / "store"
    store = FeatureStore(str(root))
    entity = Entity(ENTITY[0], ENTITY[1])
    groups = {g: FeatureGroup("customer", g, feats, max_age=age) for g, (feats, age, _) in GROUPS.items()}
    store.register(entity, *groups.values())
    for i, (g, group) in enumerate(groups.items()):
        path = store.table_path(group.id)
        schema = offline.table_schema(entity, group)
        offline.ensure_table(spark, path, schema)
        rows = _feature_rows(spark, g, GROUPS[g][2] * n_train, keys, seed + 100 * i)
        rows.select(*schema.names).write.format("delta").mode("append").save(path)
    train = folder / "train.parquet"
    _training_rows(spark, n_train, keys, seed + 1000).write.parquet(str(train))
    return {"root": str(root), "train": str(train), "tables": {g: store.table_path(gr.id) for g, gr in groups.items()},
            "max_age": {g: gr.max_age for g, gr in groups.items()}}


# -- the two plans ----------------------------------------------------------------------

def palette_plan(spark, data: dict, train=None):
    from palette import PaletteTransformer

    tx = PaletteTransformer(FEATURES, timestampCol="order_ts", storeRoot=data["root"])
    return tx.transform(train if train is not None else spark.read.parquet(data["train"]))


def rank_plan(spark, data: dict, train=None, partition: str = "row_id"):
    """Feast / Hopsworks: inequality join, then rank 1 per training row, one group after another.

    ``partition="row_id"`` ranks per row id (Feast's entity_row_unique_id); ``"key_ts"``
    per (key, row time) as Hopsworks does, which lets Spark skip re-shuffling the join output."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    out = train if train is not None else spark.read.parquet(data["train"])
    cols = list(out.columns)
    for g, path in data["tables"].items():
        feats = list(GROUPS[g][0])
        f = spark.read.format("delta").load(path).select(
            F.col("cust_id").alias("_f_key"), F.col("event_ts").alias("_f_ts"), *feats)
        cond = (out["cust_id"] == f["_f_key"]) & (f["_f_ts"] <= out["order_ts"])
        age = data["max_age"][g]
        if age is not None:
            cond = cond & (f["_f_ts"] >= out["order_ts"] - F.make_dt_interval(
                secs=F.lit(int(age.total_seconds()))))
        by = ["order_id"] if partition == "row_id" else ["cust_id", "order_ts"]
        w = Window.partitionBy(*by).orderBy(F.col("_f_ts").desc())
        out = (out.join(f, cond, "left")
               .withColumn("_rank", F.row_number().over(w)).where("_rank = 1")
               .select(*cols, *feats))
        cols += feats
    return out


def compare(palette_df, rank_df) -> tuple[int, int]:
    """(rows compared, rows that differ in any column or exist on one side only)."""
    from pyspark.sql import functions as F

    cols = [c for c in palette_df.columns if c != "order_id"]
    a = palette_df.select("order_id", F.struct(*cols).alias("a"))
    b = rank_df.select("order_id", F.struct(*cols).alias("b"))
    j = a.join(b, "order_id", "full_outer")
    r = j.agg(F.count("*").alias("n"), F.sum((~F.col("a").eqNullSafe(F.col("b"))).cast("long")).alias("bad"),
              *[F.sum(F.col(f"a.{c}").isNull().cast("long")).alias(f"null_{c}") for c in FEATURES]).first()
    nulls = ", ".join(f"{c} {r['null_' + c]:,}" for c in FEATURES)
    print(f"  {r['n']:,} rows; null feature values in palette's output: {nulls}")
    return r["n"], r["bad"] or 0


# -- the benchmark ----------------------------------------------------------------------

def main(rows: int | None = None) -> dict:
    if spark_running():
        return rerun_fresh("pit_lookup", rows)
    n = rows or DEFAULT_ROWS
    keys = max(100, n // 10)
    half = n // 2
    print(f"\n== pit_lookup: point-in-time lookup, {n:,} training rows vs {10 * n:,} feature rows "
          f"(2 groups, 4 features, {keys:,} keys) " + "=" * 4, flush=True)
    spark = session(SPARK_CONF)
    print(f"Spark {spark.version}, local[{spark.sparkContext.defaultParallelism}], driver memory "
          f"{spark.conf.get('spark.driver.memory')}, shuffle partitions "
          f"{spark.conf.get('spark.sql.shuffle.partitions')}, AQE {spark.conf.get('spark.sql.adaptive.enabled')}")
    folder = scratch("palette-pit-")
    try:
        t0 = time.perf_counter()
        data = {"full": build(spark, folder / "full", n, keys, seed=1),
                "half": build(spark, folder / "half", half, keys, seed=2)}
        print(f"generated in {time.perf_counter() - t0:.0f} s (not timed): full = {n:,} training rows, "
              f"{6 * n:,} + {4 * n:,} feature rows; half = {half:,} training rows, {6 * half:,} + {4 * half:,} "
              f"feature rows; {keys:,} keys in both; scratch {folder}")

        print(f"sample check: both plans on every {SAMPLE_EVERY}th training row against the full tables")
        sample = spark.read.parquet(data["full"]["train"]).where(f"order_id % {SAMPLE_EVERY} = 0")
        compared, mismatches = compare(palette_plan(spark, data["full"], sample),
                                       rank_plan(spark, data["full"], sample))
        _, mismatches_hw = compare(palette_plan(spark, data["full"], sample),
                                   rank_plan(spark, data["full"], sample, partition="key_ts"))
        print(f"  palette vs rank (row id): {'identical' if mismatches == 0 else f'{mismatches:,} rows DIFFER'}; "
              f"palette vs rank (key, ts): {'identical' if mismatches_hw == 0 else f'{mismatches_hw:,} rows DIFFER'}")

        ways = {
            "palette_full": lambda: noop_write(palette_plan(spark, data["full"])),
            "rank_full": lambda: noop_write(rank_plan(spark, data["full"])),
            "rank_kt_full": lambda: noop_write(rank_plan(spark, data["full"], partition="key_ts")),
            "palette_half": lambda: noop_write(palette_plan(spark, data["half"])),
            "rank_half": lambda: noop_write(rank_plan(spark, data["half"])),
        }
        clock = JvmClock(spark)
        warm, warm_cpu = clock(ways["palette_half"])
        print(f"warm-up (palette, half size): {warm:.1f} s, JVM CPU {warm_cpu:.1f} s")
        wall, cpu = {k: [] for k in ways}, {k: [] for k in ways}
        for r in range(ROUNDS):
            for k, run in ways.items():
                w, c = clock(run)
                wall[k].append(w)
                cpu[k].append(c)
            print(f"round {r + 1} (wall s / JVM CPU s): " + ", ".join(
                f"{k} {wall[k][-1]:.1f}/{cpu[k][-1]:.1f}" for k in ways), flush=True)
        med = {k: statistics.median(v) for k, v in wall.items()}
        mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    finally:
        remove(folder)

    fig = {
        "rows": n,
        "palette_full_s": med["palette_full"], "palette_half_s": med["palette_half"],
        "rank_full_s": med["rank_full"], "rank_half_s": med["rank_half"], "rank_kt_full_s": med["rank_kt_full"],
        "palette_full_over_half": med["palette_full"] / med["palette_half"],
        "rank_full_over_half": med["rank_full"] / med["rank_half"],
        "rank_over_palette": med["rank_full"] / med["palette_full"],
        "rank_kt_over_palette": med["rank_kt_full"] / med["palette_full"],
        "rank_over_palette_half": med["rank_half"] / med["palette_half"],
        "cpu_palette_full_over_half": mcpu["palette_full"] / mcpu["palette_half"],
        "cpu_rank_over_palette": mcpu["rank_full"] / mcpu["palette_full"],
        "cpu_rank_kt_over_palette": mcpu["rank_kt_full"] / mcpu["palette_full"],
        "sample_mismatches": mismatches + mismatches_hw,
    }
    print(f"\nmedian of {ROUNDS} rounds, every output column written to the noop sink "
          "(wall seconds; in brackets the Spark JVM's CPU seconds):")
    print(f"  {'':<34}{'full':>16}{'half':>16}{'full/half':>16}")
    for label, k in (("(a) PaletteTransformer.transform", "palette"), ("(b) rank, partition by row id", "rank"),
                     ("(b') rank, partition by key, ts", "rank_kt")):
        f, fc = med[f"{k}_full"], mcpu[f"{k}_full"]
        if f"{k}_half" in med:
            h, hc = med[f"{k}_half"], mcpu[f"{k}_half"]
            print(f"  {label:<34}{f:7.1f} s ({fc:5.1f}){h:7.1f} s ({hc:5.1f}){f / h:9.2f} ({fc / hc:4.2f})")
        else:
            print(f"  {label:<34}{f:7.1f} s ({fc:5.1f}){'-':>16}{'-':>16}")
    print(f"  palette full/half = {fig['palette_full_over_half']:.2f} (CPU {fig['cpu_palette_full_over_half']:.2f})"
          f"  goal <= 2.2: {'met' if fig['palette_full_over_half'] <= 2.2 else 'MISSED'}")
    print(f"  palette / rank    = {1 / fig['rank_over_palette']:.3f}: palette {fig['rank_over_palette']:.2f}x faster "
          f"(CPU {fig['cpu_rank_over_palette']:.2f}x)  goal >= 1.5x: "
          f"{'met' if fig['rank_over_palette'] >= 1.5 else 'MISSED'}")
    print(f"  against rank partitioned by (key, ts): {fig['rank_kt_over_palette']:.2f}x (CPU "
          f"{fig['cpu_rank_kt_over_palette']:.2f}x); at half size against rank by row id: "
          f"{fig['rank_over_palette_half']:.2f}x")
    return fig

if __name__ == "__main__":
    cli("pit_lookup", main)
