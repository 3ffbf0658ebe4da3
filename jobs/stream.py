"""The streaming job: stream feature groups from their sources into Delta and an online store.

One Structured Streaming query per group (``palette.streaming.start``), each with its own
checkpoint under ``--checkpoint``; runs until stopped (SIGTERM stops the queries between
micro-batches), or with ``--once`` processes what the sources hold and exits. A line per
micro-batch on stderr, and the query's progress (rows/s, watermark, late events dropped)
every ``--progress-seconds``::

    palette stream --group restaurant:orders_fg --checkpoint /data/checkpoints \\
        --online-store sqlite:////data/online.db --trigger "5 seconds"
    spark-submit "$(python -c 'import palette.jobs.stream as m; print(m.__file__)')" \\
        --group restaurant:orders_fg --checkpoint s3a://bucket/checkpoints --online-store redis://cache:6379/0
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from palette.jobs import run_job

log = logging.getLogger("palette.jobs.stream")


def progress(query) -> dict | None:
    """The last micro-batch's figures: rows/s in and processed, its duration, the event-time
    watermark, and events dropped as later than the lateness (all state operators)."""
    p = query.lastProgress
    if not p:
        return None
    dropped = sum(int(op.get("numRowsDroppedByWatermark", 0)) for op in p.get("stateOperators", []))
    return {"batch": p.get("batchId"), "input_rows_per_second": round(p.get("inputRowsPerSecond") or 0, 1),
            "processed_rows_per_second": round(p.get("processedRowsPerSecond") or 0, 1),
            "batch_ms": (p.get("durationMs") or {}).get("triggerExecution"),
            "watermark": (p.get("eventTime") or {}).get("watermark"), "late_events_dropped": dropped}


def run(groups: list[str], checkpoint: str, online_store: str | None = None, trigger: str = "10 seconds",
        once: bool = False, store_root: str | None = None, progress_seconds: float = 30.0, spark=None) -> list:
    from palette import streaming
    from palette.spark import session
    from palette.store import FeatureStore

    store = FeatureStore(store_root)
    spark = spark or session(app_name="palette-stream")
    queries = [streaming.start(g, checkpoint=streaming.checkpoint_path(checkpoint, g),
                               online_store=online_store, trigger=trigger, once=once, store=store, spark=spark)
               for g in groups]
    stop = threading.Event()

    def stop_all(*_):
        stop.set()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop_all)
    while any(q.isActive for q in queries) and not stop.wait(progress_seconds if not once else 0.5):
        for g, q in zip(groups, queries):
            figures = progress(q)
            if figures:
                log.info("stream %s: %s", g, json.dumps(figures))
    for q in queries:                       # SIGTERM: each stops once its batch in flight is written
        streaming.stop(q)
    for q in queries:
        if q.exception() is not None:
            raise q.exception()
    return queries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group", action="append", required=True, metavar="ENTITY:GROUP",
                        help="a stream feature group (repeatable)")
    parser.add_argument("--checkpoint", required=True, metavar="DIR",
                        help="where the queries keep their progress (durable storage in production)")
    parser.add_argument("--online-store", default=None, metavar="URL", help="also write values here")
    parser.add_argument("--trigger", default="10 seconds", help="micro-batch interval (at most the hop)")
    parser.add_argument("--once", action="store_true", help="process what the sources hold, then exit")
    parser.add_argument("--progress-seconds", type=float, default=30.0, help="how often to log progress")
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")


def main(argv: list[str] | None = None) -> int:
    def work(args):
        run(args.group, args.checkpoint, args.online_store, args.trigger, args.once, args.store,
            args.progress_seconds)
    return run_job("stream", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
