"""Online/offline consistency from served traffic: logged reads replayed offline.

Replays the feature reads ``palette serve --log-dir`` logged through the point-in-time
offline lookup at each request's time, prints per day, model and feature the match rate,
missing online / offline, differences and the served values' age, upserts them into a
Delta table (``--table``), writes HTML (``--html``), and exits 1 when a threshold is
breached::

    palette consistency --logs /logs/served --since 2026-12-02 --table /data/palette/consistency \\
        --min-match-rate 0.99 --max-age-p95-s 3600 --html consistency.html
"""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timezone

from palette.jobs import run_job

log = logging.getLogger("palette.jobs.consistency")


def _instant(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time (2026-12-02, "
                                         "2026-12-02T06:00)") from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logs", required=True, help="the feature logs: palette serve's --log-dir, or the Delta "
                        "table palette ingest-logs writes")
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")
    parser.add_argument("--since", type=_instant, help="requests at or after this instant (UTC unless given)")
    parser.add_argument("--until", type=_instant, help="requests before this instant")
    parser.add_argument("--model", help="one served model's requests only")
    parser.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance for numbers (default 1e-9)")
    parser.add_argument("--table", help="upsert the results into this Delta table (one row per day, model, feature)")
    parser.add_argument("--html", metavar="OUT.html", help="write the report as HTML there")
    parser.add_argument("--json", metavar="OUT.json", help="write the report as JSON there")
    from palette.logs.consistency import RATES
    for name, (metric, op) in RATES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=float,
                            help=f"fail unless every feature's {metric} {op} this")


def main(argv: list[str] | None = None) -> int:
    def work(args):
        from palette.logs.consistency import check_consistency
        from palette.spark import session
        spark = session(app_name="palette-consistency")
        report = check_consistency(spark, args.logs, store_root=args.store, since=args.since, until=args.until,
                             model=args.model, rtol=args.rtol)
        from palette.logs.consistency import RATES
        report.check(**{name: getattr(args, name) for name in RATES})
        print(report)
        if args.table:
            report.append_to(spark, args.table)
            log.info("upserted %d rows into %s", len(report.rows), args.table)
        for path in (args.html, args.json):
            if path:
                report.write(path)
        if not report.ok:
            log.error("consistency below the thresholds: %d breach(es)", len(report.breaches))
        return report.exit_code
    return run_job("consistency", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
