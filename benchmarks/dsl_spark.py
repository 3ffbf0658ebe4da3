"""Spark throughput of a DSL stage against the same logic hand-written, and a Python UDF.

The stage is the tutorial's imputation stage (three ``nFill`` and a ``regionId``), over
generated rows (default 5,000,000) with ~10% nulls and ~2% NaN in every double column,
and ~1% of coordinates out of range. The input is cached and materialized first, so
generation is not timed. Three ways, in one run:

  (a) ``DSLTransformer.transform``;
  (b) the same with ``pyspark.sql.functions`` as a competent PySpark user writes it:
      ``coalesce(nanvl(x, null), -1)`` and a native geohash built from column arithmetic;
  (c) plain (pickled, non-Arrow) Python ``@udf``s computing the same four outputs.

Each run forces every output column without collecting:
``df.select(outputs).write.format("noop").mode("overwrite").save()``. One warm-up of
each way, then 5 rounds of (a, b, c) interleaved, so that noise on a shared machine
hits all three alike; the figure is the median per way. Ratios are what to read:
DSL / hand-written (goal <= 1.15) and UDF / DSL (goal >= 5). As a cross-check against
drift, DSL / hand-written is also given per round (the two ran back to back) and as
the median of those paired ratios.

Before timing, the three ways are run on a 20,000-row sample and compared exactly.

    .venv/bin/python benchmarks/run.py --only dsl_spark [--rows N]
"""
from __future__ import annotations

import contextlib
import io
import math
import re

from _common import OUTPUTS, goal_text, heading, imputation_stage, median, spark_session, timed

DEFAULT_ROWS = 5_000_000
SAMPLE_ROWS = 20_000
ROUNDS = 5
BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"

# figure -> (op, target), for run.py's summary
GOALS = {"dsl_over_handwritten": ("<=", 1.15), "udf_over_dsl": (">=", 5.0), "sample_mismatches": ("==", 0)}


# -- input ----------------------------------------------------------------------------

def generate(spark, n: int, seed: int = 42, partitions: int | None = None):
    """n rows: id, prep_time, n_meal, n_busy, lat, lng (doubles with nulls and NaN)."""
    from pyspark.sql import functions as F

    partitions = partitions or 2 * spark.sparkContext.defaultParallelism
    null = F.lit(None).cast("double")
    nan = F.lit(float("nan"))
    uniforms = [F.rand(seed + i).alias(f"u{i}") for i in range(9)]
    raw = spark.range(0, n, 1, partitions).select("id", *uniforms)

    def holes(value, u):          # ~10% null, ~2% NaN
        return F.when(F.col(u) < 0.10, null).when(F.col(u) < 0.12, nan).otherwise(value)

    def coordinate(u_value, u_holes, half_span):   # uniform in range, ~1% just outside it
        inside = F.col(u_value) * (2 * half_span) - half_span
        outside = F.signum(F.col(u_value) - 0.5) * (half_span + 1 + F.col(u_value) * 10)
        return holes(F.when(F.col(u_holes) > 0.99, outside).otherwise(inside), u_holes)

    return raw.select(
        "id",
        holes(F.abs(F.randn(seed + 100)) * 8 + 12, "u0").alias("prep_time"),
        holes(F.floor(F.col("u5") * 30).cast("double"), "u1").alias("n_meal"),
        holes(F.floor(F.col("u6") * 15).cast("double"), "u2").alias("n_busy"),
        coordinate("u7", "u3", 90.0).alias("lat"),
        coordinate("u8", "u4", 180.0).alias("lng"),
    )


# -- (b) hand-written pyspark.sql.functions ---------------------------------------------

def _fill(name: str, default: float):
    from pyspark.sql import functions as F

    return F.coalesce(F.nanvl(F.col(name), F.lit(None).cast("double")), F.lit(default))


def _cell(v, lo: float, span: float, bits: int):
    """Per-axis geohash cell index: floor((v - lo) / span * 2**bits), clamped to the grid."""
    from pyspark.sql import functions as F

    n = 1 << bits
    return F.least(F.greatest(F.floor((v - lo) / span * n), F.lit(0)), F.lit(n - 1))


def handwritten(df, keep=(), precision: int = 6):
    """The stage's four outputs (after the columns ``keep``) with built-in functions: no UDF."""
    from pyspark.sql import functions as F

    total = 5 * precision
    lng_bits, lat_bits = total - total // 2, total // 2   # geohash starts with longitude
    lat = F.nanvl(F.col("lat"), F.lit(None).cast("double"))
    lng = F.nanvl(F.col("lng"), F.lit(None).cast("double"))
    cells = df.withColumns({"_lat": lat, "_lng": lng}).withColumns({
        "_k_lng": _cell(F.col("_lng"), -180.0, 360.0, lng_bits),
        "_k_lat": _cell(F.col("_lat"), -90.0, 180.0, lat_bits)})
    # Interleave the bits: global bit g (0 = most significant) comes from lng when g is even.
    h = F.lit(0).cast("long")
    for g in range(total):
        k, bit = (F.col("_k_lng"), lng_bits - 1 - g // 2) if g % 2 == 0 else (F.col("_k_lat"), lat_bits - 1 - g // 2)
        h = h.bitwiseOR(F.shiftleft(F.shiftright(k, bit).bitwiseAND(1), total - 1 - g))
    hashed = cells.withColumn("_h", h)
    chars = [F.substr(F.lit(BASE32), F.shiftright(F.col("_h"), 5 * (precision - 1 - j)).bitwiseAND(31).cast("int") + 1,
                      F.lit(1)) for j in range(precision)]
    valid = F.col("_lat").between(-90.0, 90.0) & F.col("_lng").between(-180.0, 180.0)
    return hashed.select(*keep, _fill("prep_time", -1.0).alias("prep_time"), _fill("n_meal", -1.0).alias("n_meal"),
                         _fill("n_busy", -1.0).alias("n_busy"), F.when(valid, F.concat(*chars)).alias("region_id"))


# -- (c) Python UDFs ----------------------------------------------------------------------

def udf_outputs(df, keep=()):
    from pyspark.sql import functions as F
    from pyspark.sql.functions import udf
    from pyspark.sql.types import DoubleType, StringType

    @udf(returnType=DoubleType())
    def fill(x):
        return -1.0 if x is None or math.isnan(x) else x

    @udf(returnType=StringType())
    def region_id(lat, lng):
        from palette.dsl.geohash import encode
        if lat is None or lng is None or math.isnan(lat) or math.isnan(lng):
            return None
        return encode(lat, lng, 6)

    return df.select(*keep, fill("prep_time").alias("prep_time"), fill("n_meal").alias("n_meal"),
                     fill("n_busy").alias("n_busy"), region_id(F.col("lat"), F.col("lng")).alias("region_id"))


def dsl_outputs(df, stage, keep=()):
    return stage.transform(df).select(*keep, *OUTPUTS)


# -- checks and timing ----------------------------------------------------------------------

def _mismatches(a: list, b: list) -> dict:
    """Per output column, rows whose values differ (exactly; None equals None)."""
    assert [r["id"] for r in a] == [r["id"] for r in b]
    return {c: sum(1 for ra, rb in zip(a, b) if ra[c] != rb[c]) for c in OUTPUTS}


def check_sample(spark, stage, n: int) -> int:
    """Run the three ways on an n-row sample and compare their outputs exactly, row by row."""
    sample = generate(spark, n, seed=7)
    got = {name: sorted((r.asDict() for r in build(sample, keep=("id",)).collect()), key=lambda r: r["id"])
           for name, build in (("dsl", lambda d, keep: dsl_outputs(d, stage, keep)),
                               ("handwritten", handwritten), ("udf", udf_outputs))}
    dsl = got["dsl"]
    null_regions = sum(1 for r in dsl if r["region_id"] is None)
    filled = sum(1 for r in dsl for c in OUTPUTS[:3] if r[c] == -1.0)
    nan = sum(1 for r in dsl for c in OUTPUTS[:3] if r[c] is None or math.isnan(r[c]))
    print(f"sample check on {n:,} rows (DSL output: {filled:,} values filled with -1, "
          f"{null_regions:,} null region_id, {nan} null/NaN fills):")
    total = 0
    for other in ("handwritten", "udf"):
        mm = _mismatches(dsl, got[other])
        bad = sum(mm.values())
        total += bad
        detail = ", ".join(f"{c} {k}" for c, k in mm.items() if k) or "all 4 columns equal on every row"
        print(f"  DSL vs {other:<11}: {'OK' if bad == 0 else 'DIFFER'} ({detail})")
    return total


def codegen_summary(df) -> str:
    """Whole-stage-codegen subtrees of df's plan and their largest generated method (bytes).
    Above 8,000 bytes the JIT does not compile a method; at 64 KB Spark falls back to
    interpreting the expressions."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        df.explain("codegen")
    sizes = re.findall(r"maxMethodCodeSize:(\d+)", buf.getvalue())
    return f"{len(sizes)} codegen subtree(s), largest method {max(map(int, sizes), default=0):,} bytes"


def noop_write(df) -> None:
    df.write.format("noop").mode("overwrite").save()


def main(rows: int | None = None) -> dict:
    n = rows or DEFAULT_ROWS
    heading(f"dsl_spark: imputation stage over {n:,} rows (Spark, local[2])")
    spark = spark_session()
    print(f"Spark {spark.version}, {spark.sparkContext.defaultParallelism} cores, "
          f"ANSI {spark.conf.get('spark.sql.ansi.enabled')}, "
          f"Python UDF via Arrow {spark.conf.get('spark.sql.execution.pythonUDF.arrow.enabled', 'false')}")
    stage = imputation_stage()

    mismatches = check_sample(spark, stage, SAMPLE_ROWS)

    data = generate(spark, n).cache()
    t_gen = timed(data.count)
    print(f"input: {n:,} rows in {data.rdd.getNumPartitions()} partitions, cached and materialized "
          f"in {t_gen:.1f} s (not timed below)")

    ways = {
        "dsl": lambda: noop_write(dsl_outputs(data, stage)),
        "handwritten": lambda: noop_write(handwritten(data)),
        "udf": lambda: noop_write(udf_outputs(data)),
    }
    labels = {"dsl": "(a) DSLTransformer.transform", "handwritten": "(b) hand-written functions",
              "udf": "(c) Python @udf"}
    print(f"plans: DSL {codegen_summary(dsl_outputs(data, stage))}; "
          f"hand-written {codegen_summary(handwritten(data))}")
    warm = {name: timed(run) for name, run in ways.items()}
    print("warm-up: " + ", ".join(f"{k} {v:.2f} s" for k, v in warm.items()))
    times = {name: [] for name in ways}
    for r in range(ROUNDS):
        for name, run in ways.items():
            times[name].append(timed(run))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    data.unpersist()

    med = {name: median(ts) for name, ts in times.items()}
    print(f"\nmedian of {ROUNDS} runs (after 1 warm-up), all 4 outputs written to the noop sink:")
    for name in ways:
        print(f"  {labels[name]:<30} {med[name]:8.2f} s  {n / med[name] / 1e6:6.2f} M rows/s  "
              f"runs: {', '.join(f'{t:.2f}' for t in times[name])}")
    dsl_hw = med["dsl"] / med["handwritten"]
    udf_dsl = med["udf"] / med["dsl"]
    # Cross-check against drift on a shared machine: the ratio within each round, where the
    # two ran back to back, then the median of those.
    paired = median([a / b for a, b in zip(times["dsl"], times["handwritten"])])
    per_round = ", ".join(f"{a / b:.2f}" for a, b in zip(times["dsl"], times["handwritten"]))
    print(f"  DSL / hand-written = {dsl_hw:.3f}   ({goal_text(dsl_hw, *GOALS['dsl_over_handwritten'])}); "
          f"per round {per_round}, median {paired:.3f}")
    print(f"  UDF / DSL          = {udf_dsl:.2f}    ({goal_text(udf_dsl, *GOALS['udf_over_dsl'])})")
    return {"rows": n, "dsl_s": med["dsl"], "handwritten_s": med["handwritten"], "udf_s": med["udf"],
            "dsl_over_handwritten": dsl_hw, "dsl_over_handwritten_paired": paired, "udf_over_dsl": udf_dsl,
            "sample_mismatches": mismatches}


if __name__ == "__main__":
    import sys

    sys.exit("run it with: .venv/bin/python benchmarks/run.py --only dsl_spark")
