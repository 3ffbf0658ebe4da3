"""Backfill RPC groups: what serving fetched, from the served-feature logs into each group's Delta table.

Each logged fetch becomes a row (key, the request's time, the values, ``rpc_fallback``);
a rerun over the same logs adds nothing. Fallbacks are kept apart: stored, counted, and
skipped by lookups. Then point-in-time lookups (training sets, ``palette consistency``)
read exactly what was served::

    palette backfill-rpc restaurant:kitchen_rpc --logs /logs/served
    spark-submit "$(python -c 'import palette.jobs.backfill_rpc as m; print(m.__file__)')" \\
        restaurant:kitchen_rpc --logs /logs/served --from 2026-12-01
"""
from __future__ import annotations

import argparse
import logging
import sys

from palette.jobs import run_job

log = logging.getLogger("palette.jobs.backfill_rpc")


def run(groups: list[str], logs: str, start: str | None = None, end: str | None = None,
        store_root: str | None = None, spark=None) -> dict:
    from palette.rpc.backfill import backfill_rpc
    from palette.spark import session
    from palette.store import FeatureStore

    store = FeatureStore(store_root)
    spark = spark or session(app_name="palette-backfill-rpc")
    return {g: backfill_rpc(g, logs, store=store, spark=spark, start=start, end=end) for g in groups}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("group", nargs="+", metavar="ENTITY:GROUP", help="RPC feature groups")
    parser.add_argument("--logs", required=True, help="the served-feature logs: palette serve's --log-dir, or the "
                        "Delta table palette ingest-logs writes")
    parser.add_argument("--from", dest="start", default=None, metavar="TIME", help="requests at or after (ISO 8601)")
    parser.add_argument("--to", dest="end", default=None, metavar="TIME", help="requests before (ISO 8601)")
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")


def main(argv: list[str] | None = None) -> int:
    def work(args):
        for group, result in run(args.group, args.logs, args.start, args.end, args.store).items():
            log.info("backfilled %s: %s fetches (%s fallbacks kept apart), %s new rows, version %s", group,
                     result["fetches"], result["fallbacks"], result["inserted"], result["version"])
    return run_job("backfill_rpc", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
