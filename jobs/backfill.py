"""Backfill: a stream group's values recomputed from its event history with Spark's batch engine.

The same aggregation as the stream (``palette.streaming.backfill``), late events included,
MERGEd into the group's Delta tables (idempotent: a rerun changes nothing); with
``--online-store`` the values are written there too. Run it after events arrived later
than the lateness, or to start a new group from history::

    palette backfill --group restaurant:orders_fg --from 2026-12-01 --to 2026-12-06
    spark-submit "$(python -c 'import palette.jobs.backfill as m; print(m.__file__)')" \\
        --group restaurant:orders_fg --online-store redis://cache:6379/0
"""
from __future__ import annotations

import argparse
import logging
import sys

from palette.jobs import run_job

log = logging.getLogger("palette.jobs.backfill")


def run(groups: list[str], start: str | None = None, end: str | None = None, online_store: str | None = None,
        store_root: str | None = None, spark=None) -> dict:
    from palette import streaming
    from palette.spark import session
    from palette.store import FeatureStore

    store = FeatureStore(store_root)
    spark = spark or session(app_name="palette-backfill")
    return {g: streaming.backfill(g, start=start, end=end, online_store=online_store, store=store, spark=spark)
            for g in groups}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group", action="append", required=True, metavar="ENTITY:GROUP",
                        help="a stream feature group (repeatable)")
    parser.add_argument("--from", dest="start", default=None, metavar="TIME",
                        help="first event time (ISO 8601, UTC; rounded down to a hop)")
    parser.add_argument("--to", dest="end", default=None, metavar="TIME",
                        help="end of event time, exclusive (rounded up to a hop)")
    parser.add_argument("--online-store", default=None, metavar="URL", help="also write values here")
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")


def main(argv: list[str] | None = None) -> int:
    def work(args):
        for group, result in run(args.group, args.start, args.end, args.online_store, args.store).items():
            log.info("backfilled %s: %s", group, result)
    return run_job("backfill", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
