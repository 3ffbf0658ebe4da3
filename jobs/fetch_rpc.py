"""Fetch RPC history: an RPC group's fetcher called as of past times, from the executors, into its Delta table.

For times serving never saw (a new model's training set): every distinct (key, time) of
the requests is fetched "as of" that time, at most --rate calls per second in all, with the
group's timeout and fallbacks (kept apart, as served ones are). Only for a fetcher declared
``as_of=True``; for another, its history is what serving fetched (``palette backfill-rpc``)::

    palette fetch-rpc restaurant:kitchen_rpc --requests /data/orders --ts-col order_ts --rate 200
"""
from __future__ import annotations

import argparse
import logging
import sys

from palette.jobs import read_data, run_job

log = logging.getLogger("palette.jobs.fetch_rpc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("group", metavar="ENTITY:GROUP", help="an RPC feature group whose fetcher answers as of a time")
    parser.add_argument("--requests", required=True, help="a Delta table, Parquet or catalog table holding the "
                        "entity's key columns and the time column")
    parser.add_argument("--ts-col", required=True, help="the time to fetch each key as of")
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second, in all (default 100)")
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")


def main(argv: list[str] | None = None) -> int:
    def work(args):
        from palette.rpc.backfill import fetch_history
        from palette.spark import session
        from palette.store import FeatureStore
        spark = session(app_name="palette-fetch-rpc")
        result = fetch_history(args.group, read_data(spark, args.requests), ts_col=args.ts_col, rate=args.rate,
                               store=FeatureStore(args.store))
        log.info("fetched %s: %s calls (%s fallbacks kept apart), %s new rows, version %s", args.group,
                 result["fetches"], result["fallbacks"], result["inserted"], result["version"])
    return run_job("fetch_rpc", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
