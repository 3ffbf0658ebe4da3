"""Parity check: a saved model's ``transform()`` against its serving path, as a CI gate.

Scores the rows of a Parquet directory or Delta table both ways (the serving side in a
process without Spark, reading the online store), prints the localized report, writes
it as JSON and HTML on request, and exits 1 when anything differs (or the check cannot
run: the log says which)::

    palette parity --model /models/eta --data /data/orders --sample 100000 \\
        --online-store sqlite:////data/online.db --report parity.html --json parity.json
    spark-submit "$(python -c 'import palette.jobs.parity as m; print(m.__file__)')" \\
        --model /models/eta --data /data/orders --online-store redis://cache:6379/0
"""
from __future__ import annotations

import argparse
import logging
import sys

from palette.jobs import read_data, run_job

log = logging.getLogger("palette.jobs.parity")


def run(model: str, data: str, *, fmt: str | None = None, online_store: str | None = None,
        sample: int | None = None, rtol: float = 1e-9, atol: float = 0.0, report: str | None = None,
        json_path: str | None = None, mlflow_run: str | None = None, spark=None):
    from palette.parity import check_parity
    from palette.spark import session

    spark = spark or session(app_name="palette-parity")
    result = check_parity(model, read_data(spark, data, fmt), online_store=online_store, sample=sample,
                          rtol=rtol, atol=atol)
    if report:
        result.write_html(report)
        log.info("wrote the HTML report to %s", report)
    if json_path:
        result.write_json(json_path)
        log.info("wrote the JSON report to %s", json_path)
    if mlflow_run:
        result.log_to_mlflow(mlflow_run)
        log.info("logged the verdict and reports to MLflow run %s", mlflow_run)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the directory model.write().save() wrote, or an MLflow model URI (models:/eta/1)")
    parser.add_argument("--data", required=True, help="rows to score: a Parquet or Delta directory, or a table name")
    parser.add_argument("--format", choices=["parquet", "delta", "table"], default=None,
                        help="how to read --data (default: Delta when it has _delta_log, else Parquet)")
    parser.add_argument("--online-store", metavar="URL", default=None,
                        help="where the serving side reads features (default $PALETTE_ONLINE_STORE)")
    parser.add_argument("--sample", type=int, default=None, metavar="N", help="check N random rows, not all")
    parser.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance for floats (default 1e-9)")
    parser.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for floats (default 0)")
    parser.add_argument("--report", metavar="OUT.html", help="write the HTML report there")
    parser.add_argument("--json", metavar="OUT.json", help="write the JSON report there")
    parser.add_argument("--mlflow-run", metavar="RUN_ID", help="log the verdict, figures and reports to this MLflow "
                        "run (e.g. the model's training run; $MLFLOW_TRACKING_URI says where)")


def main(argv: list[str] | None = None) -> int:
    def work(args):
        result = run(args.model, args.data, fmt=args.format, online_store=args.online_store, sample=args.sample,
                     rtol=args.rtol, atol=args.atol, report=args.report, json_path=args.json,
                     mlflow_run=args.mlflow_run)
        print(result)
        if not result.ok:
            log.error("parity failed: the two paths differ")
        return result.exit_code
    return run_job("parity", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
