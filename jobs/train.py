"""Training: a pipeline fitted on point-in-time features, evaluated, logged to MLflow.

The rows (a Delta table or Parquet: one row per event, with its time and its label) are
split by time: everything before ``--split-at`` (default: the instant that leaves the
last ``--test-fraction`` of the period) trains, the rest evaluates. The pipeline is fitted
on the training window only — learned statistics (a DSL ``impute`` median, a scaler's
mean) see no later row — and every feature lookup is point in time, as of each row's own
time, at Delta versions pinned before the fit. The model is evaluated on the later rows
against a trivial baseline (the training mean for a regression: RMSE, MAE; the majority
class for a classifier: AUC against 0.5, accuracy), and logged to MLflow with its params,
metrics and lineage (``palette.mlflow.log_model``), optionally registered::

    palette job train --pipeline palette.examples.eta:pipeline --data /data/orders \\
        --label delivery_minutes --timestamp-col order_ts --test-fraction 0.25 \\
        --experiment eta --register eta --alias champion
    spark-submit "$(python -c 'import palette.jobs.train as m; print(m.__file__)')" \\
        --pipeline my_pipeline.yaml --data /data/orders --label eta --timestamp-col order_ts

Prints the run id, the model URI and the figures as one JSON line on stdout. A rerun is a
new MLflow run (and a new registered version); nothing is overwritten.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import datetime

from palette.jobs import read_data, run_job
from palette.errors import JobError

log = logging.getLogger("palette.jobs.train")


def _time_split(df, timestamp_col: str, split_at: datetime | None, test_fraction: float):
    from pyspark.sql import functions as F
    bounds = df.agg(F.min(timestamp_col).alias("lo"), F.max(timestamp_col).alias("hi")).first()
    if bounds.lo is None:
        raise JobError(f"the data has no rows with a {timestamp_col}")
    if split_at is None:
        if not 0 < test_fraction < 1:
            raise JobError(f"--test-fraction must be between 0 and 1, not {test_fraction}")
        split_at = bounds.lo + (bounds.hi - bounds.lo) * (1 - test_fraction)
    train = df.where(F.col(timestamp_col) < F.lit(split_at))
    test = df.where(F.col(timestamp_col) >= F.lit(split_at))
    return train, test, bounds.lo, split_at, bounds.hi


def _is_classifier(model) -> bool:
    from pyspark.ml.classification import ClassificationModel
    return isinstance(model.stages[-1] if hasattr(model, "stages") else model, ClassificationModel)


def evaluate(model, train, test, label: str) -> dict[str, float]:
    """The model's figures on ``test`` and a trivial baseline's (fitted on ``train``)."""
    from pyspark.ml.evaluation import BinaryClassificationEvaluator, RegressionEvaluator
    from pyspark.sql import functions as F
    scored = model.transform(test).cache()
    if _is_classifier(model):
        majority = train.groupBy(label).count().orderBy(F.desc("count")).first()[0]
        auc = BinaryClassificationEvaluator(labelCol=label).evaluate(scored)
        accuracy = scored.select(F.avg((F.col("prediction") == F.col(label)).cast("double"))).first()[0]
        baseline = scored.select(F.avg((F.lit(majority) == F.col(label)).cast("double"))).first()[0]
        out = {"auc": auc, "baseline_auc": 0.5, "accuracy": accuracy, "baseline_accuracy": baseline}
    else:
        mean = train.select(F.avg(label)).first()[0]
        with_base = scored.withColumn("_baseline", F.lit(float(mean)))
        out = {}
        for metric in ("rmse", "mae", "r2"):
            out[metric] = RegressionEvaluator(labelCol=label, metricName=metric).evaluate(scored)
            out[f"baseline_{metric}"] = RegressionEvaluator(labelCol=label, predictionCol="_baseline",
                                                            metricName=metric).evaluate(with_base)
        out["skill"] = 1 - out["rmse"] / out["baseline_rmse"] if out["baseline_rmse"] else 0.0
    scored.unpersist()
    return out


def _params(pipeline) -> dict[str, str]:
    """The params each stage was given explicitly, as MLflow params (``3.GBTRegressor.maxIter``)."""
    out = {}
    for i, stage in enumerate(pipeline.getStages()):
        for param, value in stage.extractParamMap().items():
            if stage.isSet(param) and param.name not in ("storeRoot", "deltaVersions"):
                out[f"{i}.{type(stage).__name__}.{param.name}"] = str(value)[:500]
    return out


def run(pipeline: str, data: str, label: str, timestamp_col: str, *, fmt: str | None = None,
        split_at: datetime | None = None, test_fraction: float = 0.25, store_root: str | None = None,
        experiment: str | None = None, tracking_uri: str | None = None, register: str | None = None,
        alias: str | None = None, run_name: str | None = None, pipeline_args: dict | None = None,
        spark=None) -> dict:
    import mlflow

    from palette.jobs.pipelines import build_pipeline
    from palette.mlflow import log_model
    from palette.spark import session
    from palette.store import FeatureStore
    from palette.transformers.palette_stage import HasPaletteLookup

    started = time.monotonic()
    spark = spark or session(app_name="palette-train")
    df = read_data(spark, data, fmt)
    for column in (label, timestamp_col):
        if column not in df.columns:
            raise JobError(f"--data {data} has no column {column!r}; it has {', '.join(df.columns)}")
    if not dict(df.dtypes)[timestamp_col].startswith("timestamp"):
        raise JobError(f"--timestamp-col {timestamp_col} is {dict(df.dtypes)[timestamp_col]}, not a timestamp")
    store_root = FeatureStore(store_root).root
    estimator = build_pipeline(pipeline, store_root, label, pipeline_args)
    train, test, first, split, last = _time_split(df, timestamp_col, split_at, test_fraction)
    train, test = train.cache(), test.cache()
    n_train, n_test = train.count(), test.count()
    if not n_train or not n_test:
        raise JobError(f"the split at {split} leaves {n_train} training and {n_test} test rows "
                         f"(the data spans {first} to {last}): move --split-at / --test-fraction")
    log.info("train start pipeline=%s rows=%d/%d window=[%s, %s) test=[%s, %s]", pipeline, n_train, n_test,
             first, split, split, last)
    for stage in estimator.getStages():
        if isinstance(stage, HasPaletteLookup) and stage.paletteRefs():
            stage.pinVersions(spark)              # the versions fit reads, saved and logged with the model
    t0 = time.monotonic()
    model = estimator.fit(train)
    fit_seconds = time.monotonic() - t0
    log.info("fitted in %.1f s; evaluating on %d rows after %s", fit_seconds, n_test, split)
    metrics = evaluate(model, train, test, label)
    log.info("metrics %s", json.dumps({k: round(v, 4) for k, v in metrics.items()}))

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    if experiment:
        mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name) as active:
        mlflow.log_params({"pipeline": pipeline, **{f"pipeline_arg.{k}": v for k, v in (pipeline_args or {}).items()},
                           "data": data, "label": label, "timestamp_col": timestamp_col,
                           "split_at": split.isoformat(), "train_rows": n_train, "test_rows": n_test,
                           **_params(estimator)})
        mlflow.log_metrics({**metrics, "fit_seconds": fit_seconds})
        info = log_model(model, "model", registered_model_name=register, training_window=(first, split),
                         timestamp_col=timestamp_col, spark=spark, input_schema=df.schema, reference_data=train,
                         lineage_extra={"training_data": data, "test_window": {"start": split.isoformat(),
                                                                               "end": last.isoformat()}})
        run_id = active.info.run_id
    version = info.registered_model_version
    if register and alias:
        mlflow.MlflowClient().set_registered_model_alias(register, alias, version)
    train.unpersist()
    test.unpersist()
    result = {"run_id": run_id, "model_uri": info.model_uri,
              "registered": f"models:/{register}/{version}" if register else None,
              "alias": f"models:/{register}@{alias}" if register and alias else None,
              "train_rows": n_train, "test_rows": n_test, "split_at": split.isoformat(), "metrics": metrics,
              "seconds": round(time.monotonic() - started, 1)}
    log.info("train done run=%s model=%s registered=%s seconds=%s", run_id, info.model_uri, result["registered"],
             result["seconds"])
    return result


def _pipeline_arg(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=VALUE, e.g. max_iter=100")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipeline", required=True,
                        help="module:function, file.py:function, or a pipeline.yaml/.json of stages "
                             "(see palette.jobs.pipelines)")
    parser.add_argument("--pipeline-arg", action="append", default=[], metavar="NAME=VALUE", type=_pipeline_arg,
                        help="a keyword argument for the builder function (repeatable; VALUE is read as JSON "
                             "when it parses, else kept as text): --pipeline-arg max_iter=100")
    parser.add_argument("--data", required=True, help="the labeled rows: a Delta or Parquet directory, or a table")
    parser.add_argument("--format", choices=["parquet", "delta", "table"], default=None)
    parser.add_argument("--label", required=True, help="the label column")
    parser.add_argument("--timestamp-col", required=True, help="each row's event time: lookups are as of it, and "
                        "the split is by it")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--split-at", type=datetime.fromisoformat, default=None, metavar="ISO_TIME",
                       help="rows before it train, the others evaluate (UTC)")
    split.add_argument("--test-fraction", type=float, default=0.25,
                       help="evaluate on the last fraction of the period (default 0.25)")
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")
    parser.add_argument("--experiment", default=None, help="MLflow experiment name (default: MLflow's)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default $MLFLOW_TRACKING_URI)")
    parser.add_argument("--register", default=None, metavar="NAME", help="register the model under NAME")
    parser.add_argument("--alias", default=None, help="point this alias (e.g. champion) at the new version")
    parser.add_argument("--run-name", default=None)


def main(argv: list[str] | None = None) -> int:
    def work(args):
        if args.alias and not args.register:
            raise JobError("--alias needs --register NAME")
        result = run(args.pipeline, args.data, args.label, args.timestamp_col, fmt=args.format,
                     split_at=args.split_at, test_fraction=args.test_fraction, store_root=args.store,
                     experiment=args.experiment, tracking_uri=args.tracking_uri, register=args.register,
                     alias=args.alias, run_name=args.run_name, pipeline_args=dict(args.pipeline_arg))
        print(json.dumps(result, default=str))
    return run_job("train", __doc__, add_arguments, work, argv, lambda a: f" pipeline={a.pipeline}")


if __name__ == "__main__":
    sys.exit(main())
