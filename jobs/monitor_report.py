"""Drift and quality of feature groups from their profiles: the last period against the
trailing reference period before it.

Tests every feature (and slice) of each group's current windows against the reference
with the false discovery rate controlled over all the tests (Benjamini-Hochberg), checks
freshness (the newest event against --max-staleness or the group's max_age), null rates
and schema; prints the report, writes --html/--json, and exits 1 on an alert or a breach
so a scheduler can page::

    palette monitor report restaurant:batch_fg --last 1d --reference 7d --html drift.html --store /data/palette
"""
from __future__ import annotations

import argparse
import logging
import sys

from palette.jobs import run_job

log = logging.getLogger("palette.jobs.monitor_report")


def _age(text: str):
    from palette.errors import PaletteError
    from palette.registry import parse_age
    try:
        return parse_age(text)
    except PaletteError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("groups", nargs="+", metavar="GROUP", help="feature groups (entity:group)")
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")
    parser.add_argument("--last", type=_age, default="1d", help="the current period, up to now (default 1d)")
    parser.add_argument("--reference", type=_age, default="7d",
                        help="the reference: this long a period just before the current one (default 7d)")
    parser.add_argument("--every", type=_age, help="test the current period in windows this long (default: whole)")
    parser.add_argument("--window", type=_age, help="read the profiles of this window width (when a group was "
                        "profiled with several)")
    parser.add_argument("--q", type=float, default=0.05, help="false discovery rate of the report (default 0.05)")
    parser.add_argument("--max-staleness", type=_age, help="alert when the newest event is older (default: the "
                        "group's max_age)")
    parser.add_argument("--max-null-rate", type=float, help="alert when a feature's null rate is higher")
    parser.add_argument("--html", metavar="OUT.html", help="write the report as HTML (one file per group: the "
                        "group's name is added before .html when there are several)")
    parser.add_argument("--json", metavar="OUT.json", help="write the report as JSON (likewise)")


def _path(template: str, group: str, many: bool) -> str:
    if not many:
        return template
    stem, dot, suffix = template.rpartition(".")
    return f"{stem}-{group.replace(':', '-')}.{suffix}" if dot else f"{template}-{group.replace(':', '-')}"


def main(argv: list[str] | None = None) -> int:
    def work(args):
        from palette.monitor.groups import group_report
        from palette.spark import session
        from palette.store import FeatureStore
        store = FeatureStore(args.store)
        for gid in args.groups:
            store.group(gid)
        spark = session(app_name="palette-monitor-report")
        code = 0
        for gid in args.groups:
            report = group_report(spark, store, gid, last=args.last, reference=args.reference, every=args.every,
                                  q=args.q, max_staleness=args.max_staleness, max_null_rate=args.max_null_rate,
                                  window=args.window)
            print(report)
            for path in (args.html, args.json):
                if path:
                    report.write(_path(path, gid, len(args.groups) > 1))
            if not report.ok:
                log.error("%s: %d alert(s) or breach(es)", gid, len(report.breaches))
            code = max(code, report.exit_code)
        return code
    return run_job("monitor_report", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
