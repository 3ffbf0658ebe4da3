"""Serving Spark's own models without a JVM: ``load_scorer`` against Spark and onnxruntime.

Two pipelines, fit in Spark on generated data (20,000 rows, 8 numeric features) and
saved with ``model.write().save``:

  * GBT: VectorAssembler + StandardScaler + GBTRegressor (100 trees, depth 5);
  * RF:  VectorAssembler + StandardScaler + RandomForestClassifier (100 trees, depth 5).

For each, in one run:

  (a) ``load_scorer(path).scoreInstance(row)`` over 100,000 calls (``--rows`` overrides)
      cycling through 1,000 request dicts; per-call p50 / p99 in µs (goal: GBT p50 <= 30);
  (b) Spark's own ``transform`` of a one-row DataFrame (createDataFrame + transform +
      collect), median of 20 after warm-up; the ratio (b) / (a) p50 (goal >= 5,000);
  (c) onnxruntime on the same fitted pipeline converted by ``onnxmltools.convert_sparkml``
      (inputs as float32 tensors, the only type its Spark converters take), per-call p50
      with the request dict turned into tensors inside the timed call, as a server must;
      the ratio (a) / (c) (we aim for <= 2) and the largest prediction difference from
      Spark on the 1,000 rows, for both it and us;
  (d) ``scoreBatch`` of batches of 1,000 dicts: rows/s, against (a)'s rows/s.

Before timing, every scorer is compared with Spark's transform on the 1,000 rows.

    .venv/bin/python benchmarks/run.py --only spark_model_serving [--rows N]
"""
from __future__ import annotations

import random
import tempfile
import time

from _common import goal_text, heading, median, spark_session, timed
from dsl_single_row import latencies_us

DEFAULT_CALLS = 100_000
TRAIN_ROWS = 20_000
REQUEST_ROWS = 1_000
N_FEATURES = 8
SPARK_REPEATS = 20
BATCH = 1_000
FEATURES = [f"f{i}" for i in range(N_FEATURES)]

GOALS = {"gbt_p50_us": ("<=", 30.0), "gbt_spark_over_p50": (">=", 5000.0),
         "rf_spark_over_p50": (">=", 5000.0), "gbt_ours_over_onnx_p50": ("<=", 2.0),
         "rf_ours_over_onnx_p50": ("<=", 2.0), "gbt_max_rel_diff": ("<=", 1e-9), "rf_prediction_mismatches": ("==", 0)}


def training_data(spark):
    from pyspark.sql import functions as F

    cols = [(F.randn(11 + i) * (1 + i) + i).alias(f) for i, f in enumerate(FEATURES)]
    df = spark.range(0, TRAIN_ROWS, 1, 4).select(*cols)
    signal = (F.col("f0") * 2 - F.col("f1") + F.sin(F.col("f2")) * 3 + F.col("f3") * F.col("f4") / 10
              + F.when(F.col("f5") > 5, 4.0).otherwise(0.0))
    return (df.withColumn("label", signal + F.randn(99))
              .withColumn("cls", (signal + F.randn(98) > 4).cast("double")))


def request_rows(n: int, seed: int = 5) -> list[dict]:
    rnd = random.Random(seed)
    return [{"request_id": i, **{f: rnd.gauss(i, 1 + i) for i, f in enumerate(FEATURES)}} for i in range(n)]


def pipelines():
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.ml.regression import GBTRegressor

    def prefix():
        return [VectorAssembler(inputCols=FEATURES, outputCol="raw"),
                StandardScaler(inputCol="raw", outputCol="features", withMean=True)]
    return {
        "gbt": Pipeline(stages=prefix() + [GBTRegressor(labelCol="label", maxIter=100, maxDepth=5, seed=1)]),
        "rf": Pipeline(stages=prefix() + [RandomForestClassifier(labelCol="cls", numTrees=100, maxDepth=5,
                                                                 seed=1)]),
    }


def spark_predictions(spark, model, rows) -> list:
    df = spark.createDataFrame([tuple(r[c] for c in ["request_id", *FEATURES]) for r in rows],
                               "request_id long, " + ", ".join(f"{f} double" for f in FEATURES))
    out = {r["request_id"]: r["prediction"] for r in model.transform(df).select("request_id", "prediction").collect()}
    return [out[r["request_id"]] for r in rows]


def spark_one_row_s(spark, model, rows) -> float:
    schema = "request_id long, " + ", ".join(f"{f} double" for f in FEATURES)

    def once(row):
        model.transform(spark.createDataFrame([tuple(row[c] for c in ["request_id", *FEATURES])], schema)) \
            .select("prediction").collect()
    for r in rows[:3]:
        once(r)
    return median([timed(lambda: once(rows[i])) for i in range(SPARK_REPEATS)])


def onnx_scorer(spark, model, name):
    """(score(row) -> prediction, note) with onnxruntime, or (None, why not)."""
    try:
        import numpy as np
        import onnxruntime as ort
        from onnxmltools import convert_sparkml
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as e:
        return None, f"not installed ({e.name}): pip install 'palette-ml[bench]'"
    try:
        onx = convert_sparkml(model, name, [(f, FloatTensorType([None, 1])) for f in FEATURES],
                              spark_session=spark)
    except Exception as e:  # the converter's own failure is a figure of this benchmark
        return None, f"conversion failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1          # one request, one thread: as a serving worker runs it
    sess = ort.InferenceSession(onx.SerializeToString(), options, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    first = out_names.index("prediction") if "prediction" in out_names else 0

    def score(row):
        feed = {f: np.array([[row[f]]], dtype=np.float32) for f in FEATURES}
        return float(np.asarray(sess.run(None, feed)[first]).ravel()[0])
    return score, f"converted; outputs {out_names}"


def max_rel_diff(a: list, b: list) -> float:
    worst = 0.0
    for x, y in zip(a, b):
        if x != y:
            worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-300))
    return worst


def batch_rows_per_s(scorer, rows, calls: int) -> float:
    batches = [rows[i:i + BATCH] for i in range(0, len(rows), BATCH)]
    scorer.scoreBatch(batches[0])                         # warm-up
    n, t0 = 0, time.perf_counter()
    while n < calls:
        for b in batches:
            scorer.scoreBatch(b)
            n += len(b)
    return n / (time.perf_counter() - t0)


def main(rows: int | None = None) -> dict:
    calls = rows or DEFAULT_CALLS
    heading(f"spark_model_serving: GBT and RF pipelines scored without a JVM ({calls:,} calls)")
    from palette.transformers import load_scorer

    spark = spark_session()
    train = training_data(spark).cache()
    train.count()
    requests = request_rows(REQUEST_ROWS)
    fig = {"calls": calls}
    with tempfile.TemporaryDirectory(prefix="palette-serving-") as tmp:
        for name, pipeline in pipelines().items():
            t0 = time.perf_counter()
            model = pipeline.fit(train)
            path = f"{tmp}/{name}"
            model.write().save(path)
            scorer = load_scorer(path)
            print(f"\n{name}: {' + '.join(type(s).__name__ for s in model.stages)}; fit and saved in "
                  f"{time.perf_counter() - t0:.0f} s")

            expected = spark_predictions(spark, model, requests)
            ours = [scorer.scoreInstance(r)["prediction"] for r in requests]
            batch = [r["prediction"] for r in scorer.scoreBatch(requests)]
            onnx, note = onnx_scorer(spark, model, name)
            theirs = [onnx(r) for r in requests] if onnx else None
            if name == "gbt":
                fig["gbt_max_rel_diff"] = max_rel_diff(expected, ours)
                print(f"  largest relative difference from Spark on {REQUEST_ROWS:,} rows: palette "
                      f"{fig['gbt_max_rel_diff']:.1e}; scoreBatch vs scoreInstance "
                      f"{max_rel_diff(ours, batch):.1e}")
            else:
                fig["rf_prediction_mismatches"] = sum(a != b for a, b in zip(expected, ours)) + \
                    sum(a != b for a, b in zip(ours, batch))
                print(f"  predicted labels differing from Spark on {REQUEST_ROWS:,} rows: palette "
                      f"{fig['rf_prediction_mismatches']}")
            if theirs is not None:
                diff = max(abs(a - b) for a, b in zip(expected, theirs))
                wrong = sum(1 for a, b in zip(expected, theirs) if abs(a - b) > 1e-6 * max(1.0, abs(a)))
                fig[f"{name}_onnx_max_abs_diff"] = diff
                print(f"  onnxruntime ({note}): largest difference from Spark {diff:.3g}; "
                      f"{wrong:,} of {REQUEST_ROWS:,} predictions off by more than 1e-6 relative")
            else:
                print(f"  onnxruntime: {note}")

            lat = latencies_us(scorer.scoreInstance, requests, calls)
            spark_s = spark_one_row_s(spark, model, requests)
            fig[f"{name}_p50_us"], fig[f"{name}_p99_us"] = lat["p50"], lat["p99"]
            fig[f"{name}_spark_one_row_ms"] = spark_s * 1000
            fig[f"{name}_spark_over_p50"] = spark_s * 1e6 / lat["p50"]
            print(f"  (a) scoreInstance: p50 {lat['p50']:.2f} µs, p99 {lat['p99']:.2f} µs, loop mean "
                  f"{lat['loop_mean']:.2f} µs" + (f"  ({goal_text(lat['p50'], *GOALS['gbt_p50_us'])})"
                                                  if name == "gbt" else ""))
            print(f"  (b) Spark one-row transform: median {spark_s * 1000:.1f} ms; / (a) p50 = "
                  f"{fig[f'{name}_spark_over_p50']:,.0f}  "
                  f"({goal_text(fig[f'{name}_spark_over_p50'], *GOALS[f'{name}_spark_over_p50'])})")
            if onnx:
                olat = latencies_us(onnx, requests, calls)
                fig[f"{name}_onnx_p50_us"] = olat["p50"]
                fig[f"{name}_ours_over_onnx_p50"] = lat["p50"] / olat["p50"]
                print(f"  (c) onnxruntime: p50 {olat['p50']:.2f} µs, p99 {olat['p99']:.2f} µs; (a) / (c) = "
                      f"{fig[f'{name}_ours_over_onnx_p50']:.2f}  "
                      f"({goal_text(fig[f'{name}_ours_over_onnx_p50'], *GOALS[f'{name}_ours_over_onnx_p50'])})")
            rps = batch_rows_per_s(scorer, requests, max(calls, 10 * BATCH))
            fig[f"{name}_batch_rows_per_s"] = rps
            fig[f"{name}_batch_over_single"] = rps * lat["loop_mean"] / 1e6
            print(f"  (d) scoreBatch of {BATCH:,}: {rps:,.0f} rows/s, {fig[f'{name}_batch_over_single']:.1f}x "
                  f"scoreInstance's {1e6 / lat['loop_mean']:,.0f} rows/s")
    train.unpersist()
    return fig


if __name__ == "__main__":
    import sys

    sys.exit("run it with: .venv/bin/python benchmarks/run.py --only spark_model_serving")
