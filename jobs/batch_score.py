"""Batch scoring: a model over a table of requests, predictions into a Delta table.

Each row of ``--input`` (Delta or Parquet) is scored by the model's ``transform`` — its
feature lookups point in time, as of the row's own time column when the model has one —
and written to the Delta table ``--output`` with the requested columns, the
prediction(s), ``run_id``, ``model`` and ``scored_at``. The write is one Delta
transaction that replaces the rows of its own ``--run-id`` (``replaceWhere``): a rerun
of a run id replaces its output, never duplicates it, and other runs' rows are untouched::

    palette job batch-score --model models:/eta@champion --input /data/orders_today \\
        --output /data/eta_predictions --run-id 2026-12-03 --keep order_id,r_id
    spark-submit "$(python -c 'import palette.jobs.batch_score as m; print(m.__file__)')" \\
        --model /models/eta --input /data/orders_today --output /data/eta_predictions --run-id 2026-12-03
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
import time

from palette.jobs import read_data, run_job
from palette.errors import JobError

log = logging.getLogger("palette.jobs.batch_score")
RUN_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


def load_model(model: str):
    """A PipelineModel from a directory or an MLflow model URI."""
    from pyspark.ml import PipelineModel

    from palette.mlflow.uri import is_model_uri, local_model_dir
    return PipelineModel.load(local_model_dir(model) if is_model_uri(model) else model)


def _predictions(model) -> list[str]:
    stages = model.stages if hasattr(model, "stages") else [model]
    cols = [s.getOrDefault("predictionCol") for s in stages if s.hasParam("predictionCol")]
    if not cols:
        raise JobError("the model has no stage with a predictionCol: pass --columns to name what to keep")
    return list(dict.fromkeys(cols))


def run(model: str, input: str, output: str, run_id: str, *, fmt: str | None = None, keep: list[str] | None = None,
        columns: list[str] | None = None, spark=None) -> dict:
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from palette.spark import session

    if not RUN_ID.match(run_id):
        raise JobError(f"--run-id {run_id!r}: use 1-128 letters, digits and _.:@- (a date, a scheduler's run id)")
    started = time.monotonic()
    spark = spark or session(app_name="palette-batch-score")
    requests = read_data(spark, input, fmt)
    fitted = load_model(model)
    outputs = columns or _predictions(fitted)
    keep = keep if keep is not None else [c for c in requests.columns if c not in outputs]
    missing = [c for c in keep if c not in requests.columns]
    if missing:
        raise JobError(f"--keep {', '.join(missing)}: not columns of {input} ({', '.join(requests.columns)})")
    scored = fitted.transform(requests)
    unknown = [c for c in outputs if c not in scored.columns]
    if unknown:
        raise JobError(f"--columns {', '.join(unknown)}: the model does not write them")
    out = scored.select(*keep, *outputs).withColumn("run_id", F.lit(run_id)).withColumn("model", F.lit(model)) \
        .withColumn("scored_at", F.current_timestamp())
    exists = DeltaTable.isDeltaTable(spark, output)
    writer = out.write.format("delta").partitionBy("run_id") if not exists else \
        out.write.format("delta").mode("overwrite").option("replaceWhere", f"run_id = '{run_id}'")
    log.info("batch_score start model=%s input=%s output=%s run_id=%s", model, input, output, run_id)
    writer.save(output)
    history = DeltaTable.forPath(spark, output).history(1).select("version", "operationMetrics").first()
    metrics = history.operationMetrics or {}
    result = {"run_id": run_id, "output": output, "version": history.version,
              "rows": int(metrics.get("numOutputRows", 0)), "replaced": int(metrics.get("numDeletedRows", 0) or 0)
              if exists else 0, "seconds": round(time.monotonic() - started, 1)}
    log.info("batch_score done run_id=%s rows=%s replaced=%s version=%s seconds=%s", run_id, result["rows"],
             result["replaced"], result["version"], result["seconds"])
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a saved model directory or an MLflow model URI "
                        "(models:/eta/1, models:/eta@champion)")
    parser.add_argument("--input", required=True, help="the requests: a Delta or Parquet directory, or a table")
    parser.add_argument("--format", choices=["parquet", "delta", "table"], default=None)
    parser.add_argument("--output", required=True, help="the Delta table the predictions go to")
    parser.add_argument("--run-id", required=True, help="this run's id; a rerun with it replaces its rows")
    parser.add_argument("--keep", type=lambda s: [c for c in s.split(",") if c], default=None,
                        help="input columns to keep beside the predictions (default: all)")
    parser.add_argument("--columns", type=lambda s: [c for c in s.split(",") if c], default=None,
                        help="model output columns to write (default: its prediction columns)")


def main(argv: list[str] | None = None) -> int:
    def work(args):
        print(run(args.model, args.input, args.output, args.run_id, fmt=args.format, keep=args.keep,
                  columns=args.columns))
    return run_job("batch_score", __doc__, add_arguments, work, argv,
                   lambda a: f" run_id={a.run_id}")


if __name__ == "__main__":
    sys.exit(main())
