"""Profile feature groups' Delta tables by event-time window into palette_profiles.

Profiles every feature of each group (and its event time, for freshness) per window and
per declared slice, incrementally: only windows whose rows changed since the last run
(the table's change data feed) are profiled again. Safe to rerun::

    palette monitor profile restaurant:batch_fg region:service_fg --window 1h --store /data/palette

With ``--served DIR`` (``palette serve``'s ``--log-dir``), the served profiles written there
are appended to the same table (source ``served``, subject the model's name), each window
once, every process's file merged.
"""
from __future__ import annotations

import argparse
import logging
import sys

from palette.errors import JobError
from palette.jobs import run_job

log = logging.getLogger("palette.jobs.monitor_profile")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("groups", nargs="*", metavar="GROUP", help="feature groups (entity:group)")
    parser.add_argument("--window", default="1h", help="event-time window of each profile (default 1h)")
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")
    parser.add_argument("--full", action="store_true", help="profile every window again, not only changed ones")
    parser.add_argument("--served", metavar="DIR", help="also ingest the served profiles under this --log-dir")


def main(argv: list[str] | None = None) -> int:
    def work(args):
        from palette.monitor.offline import profile_groups
        from palette.spark import session
        from palette.store import FeatureStore
        store = FeatureStore(args.store)
        if not args.groups and not args.served:
            raise JobError("name feature groups to profile, or --served DIR to ingest served profiles")
        for gid in args.groups:
            store.group(gid)                           # unknown groups fail before Spark starts
        spark = session(app_name="palette-monitor-profile")
        for run in profile_groups(spark, store, args.groups, window=args.window, full=args.full):
            print(run)
        if args.served:
            from palette.monitor.offline import ingest_served
            for model, n in ingest_served(spark, store, args.served).items():
                print(f"served:{model}: {n} profile rows")
        return 0
    return run_job("monitor_profile", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
