"""Scheduled materialization: the latest feature values from Delta into an online store.

Incremental from the Delta version each group last reached in that store (a late row is
picked up by the next run, a killed run is finished by the rerun), ``--full`` to rebuild.
Run it from the CLI or with spark-submit; it logs one line per step to stderr and exits
non-zero on failure, so a scheduler sees both::

    palette materialize --online-store sqlite:////data/online.db            # every group
    palette materialize --online-store redis://cache:6379/0 --group restaurant:batch_fg --full
    spark-submit "$(python -c 'import palette.jobs.materialize as m; print(m.__file__)')" \\
        --online-store redis://cache:6379/0 --store /data/palette
"""
from __future__ import annotations

import argparse
import logging
import sys

from palette.jobs import run_job

log = logging.getLogger("palette.jobs.materialize")


def run(online_store: str, groups: list[str] | None = None, full: bool = False, store_root: str | None = None,
        batch_rows: int | None = None, spark=None) -> dict[str, dict]:
    from palette.spark import session
    from palette.store import FeatureStore

    store = FeatureStore(store_root)
    spark = spark or session(app_name="palette-materialize")
    return store.materialize(groups, online_store=online_store, full=full, spark=spark,
                             **({"batch_rows": batch_rows} if batch_rows else {}))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--online-store", required=True, metavar="URL",
                        help="sqlite:///path/online.db or redis://host:port/db")
    parser.add_argument("--group", action="append", metavar="ENTITY:GROUP",
                        help="a feature group to materialize (repeatable; default: every registered group)")
    parser.add_argument("--full", action="store_true", help="rebuild from the current version instead of "
                        "applying what changed since the last run")
    parser.add_argument("--batch-rows", type=int, default=None, help="rows per write to the store (default 2000)")
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")


def main(argv: list[str] | None = None) -> int:
    def work(args):
        for group, result in run(args.online_store, args.group, args.full, args.store, args.batch_rows).items():
            log.info("materialized %s: %s", group, result)
    return run_job("materialize", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
