"""Feature-log ingestion: the serving process's Parquet logs into a Delta table.

Appends the records the table does not hold yet (a MERGE on request id and model), so a
scheduled rerun over the same directory adds nothing::

    palette ingest-logs --logs /logs/serving --table /data/palette/logs/served
    spark-submit "$(python -c 'import palette.jobs.ingest_logs as m; print(m.__file__)')" \\
        --logs /logs/serving --table /data/palette/logs/served
"""
from __future__ import annotations

import argparse
import logging
import sys

from palette.jobs import run_job

log = logging.getLogger("palette.jobs.ingest_logs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logs", required=True, help="the directory palette serve --log-dir writes")
    parser.add_argument("--table", required=True, help="the Delta table to append to (created if missing)")


def main(argv: list[str] | None = None) -> int:
    def work(args):
        from palette.logs import ingest_logs
        from palette.spark import session
        result = ingest_logs(session(app_name="palette-ingest-logs"), args.logs, args.table)
        log.info("ingested feature logs from %s into %s: %s", args.logs, args.table, result)
    return run_job("ingest-logs", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
