"""Stability of a new embedding version before it reaches a model: drift, neighbours, eigenspace instability and the change of the models that read it.

Per entity and overall: cosine drift after Procrustes alignment, 10-NN overlap, the
eigenspace instability measure (Leszczynski et al., MLSys 2020); for every saved model
the registry knows reads the group (or --model), the share of its predictions on
--requests that change when its inputs switch versions (JVM-free, no retraining). Prints
the report, writes --html/--json, exits 1 when a limit is breached so a scheduler can
hold the rollout::

    palette embeddings compare restaurant:dish_emb --from 1 --to 2 --requests /data/held_out --online-store redis://cache:6379/0 --max-change-rate 0.05 --html stability.html --store /data/palette
"""
from __future__ import annotations

import argparse
import sys

from palette.jobs import run_job


def add_requests(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", help="held-out requests (Delta, Parquet or a table): rows as the model is "
                        "sent them, with the label column to measure its metric")
    parser.add_argument("--label", help="the label column of --requests (RMSE, or AUC for a classifier)")
    parser.add_argument("--sample", type=int, default=10_000, help="requests scored (default 10,000)")
    parser.add_argument("--online-store", help="where the models' other features are read (their serving store)")
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")
    parser.add_argument("--html", metavar="OUT.html")
    parser.add_argument("--json", metavar="OUT.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("group", help="the embedding group (entity:group)")
    parser.add_argument("--from", dest="old", type=int, required=True, help="the version models read now")
    parser.add_argument("--to", dest="new", type=int, required=True, help="the new version")
    parser.add_argument("--feature", help="the vector feature (when the group holds several)")
    parser.add_argument("--model", action="append", help="a saved model or MLflow URI to measure (repeatable; "
                        "default: the models the registry records reading the group)")
    parser.add_argument("--k", type=int, default=10, help="neighbours compared (default 10)")
    parser.add_argument("--queries", type=int, default=10_000, help="query entities of the k-NN overlap")
    parser.add_argument("--max-drift", type=float, help="limit on the 95th percentile of the aligned drift")
    parser.add_argument("--min-knn-overlap", type=float, help="limit on the mean k-NN overlap")
    parser.add_argument("--max-eis", type=float, help="limit on the eigenspace instability")
    parser.add_argument("--max-change-rate", type=float, help="limit on each model's share of changed predictions")
    add_requests(parser)


def held_out(spark, path: str | None, sample: int) -> list[dict] | None:
    if path is None:
        return None
    from palette.jobs import read_data
    return read_data(spark, path).limit(sample).toArrow().to_pylist()


def write_report(report, args) -> int:
    print(report)
    for path in (args.html, args.json):
        if path:
            report.write(path)
    return report.exit_code


def main(argv: list[str] | None = None) -> int:
    def work(args):
        from palette.embeddings.comparison import compare
        from palette.spark import session
        from palette.store import FeatureStore
        store = FeatureStore(args.store)
        spark = session(app_name="palette-embeddings-compare")
        report = compare(spark, store, args.group, args.old, args.new, feature=args.feature, models=args.model,
                         requests=held_out(spark, args.requests, args.sample), online_store=args.online_store,
                         label=args.label, k=args.k, sample=args.queries,
                         **{k: getattr(args, k) for k in ("max_drift", "min_knn_overlap", "max_eis", "max_change_rate")
                            if getattr(args, k) is not None})
        return write_report(report, args)
    return run_job("embeddings_compare", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
