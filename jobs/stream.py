"""The streaming job: stream feature groups from their sources into Delta and an online store.

One Structured Streaming query per group (``palette.streaming.start``), each with its own
checkpoint under ``--checkpoint``; runs until stopped (SIGTERM stops the queries between
micro-batches), or with ``--once`` processes what the sources hold and exits. A line per
micro-batch on stderr (with its lag: when it finished minus the newest event time it
wrote), and the query's progress (rows/s, watermark, late events dropped, lag) every
``--progress-seconds``, also as Prometheus text in ``--metrics-file``::

    palette stream --group restaurant:orders_fg --checkpoint /data/checkpoints \\
        --online-store sqlite:////data/online.db --trigger "5 seconds"
    spark-submit "$(python -c 'import palette.jobs.stream as m; print(m.__file__)')" \\
        --group restaurant:orders_fg --checkpoint s3a://bucket/checkpoints --online-store redis://cache:6379/0
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

from palette.jobs import run_job

log = logging.getLogger("palette.jobs.stream")


def progress(query) -> dict | None:
    """The last micro-batch's figures: rows/s in and processed, its duration, the event-time
    watermark, events dropped as later than the lateness (all state operators), and the
    end-to-end lag of the last batch that wrote events (``palette.streaming.last_batch``)."""
    from palette import streaming
    p = query.lastProgress
    if not p:
        return None
    dropped = sum(int(op.get("numRowsDroppedByWatermark", 0)) for op in p.get("stateOperators", []))
    wrote = streaming.last_batch(query) or {}
    return {"batch": p.get("batchId"), "input_rows_per_second": round(p.get("inputRowsPerSecond") or 0, 1),
            "processed_rows_per_second": round(p.get("processedRowsPerSecond") or 0, 1),
            "batch_ms": (p.get("durationMs") or {}).get("triggerExecution"),
            "watermark": (p.get("eventTime") or {}).get("watermark"), "late_events_dropped": dropped,
            "lag_seconds": wrote.get("lag_seconds"), "last_write": wrote.get("finished")}


_METRICS = [("input_rows_per_second", "gauge", "events read per second in the last micro-batch"),
            ("processed_rows_per_second", "gauge", "events processed per second in the last micro-batch"),
            ("batch_ms", "gauge", "the last micro-batch's duration in milliseconds"),
            ("late_events_dropped", "gauge", "events of the last micro-batch dropped as later than the lateness"),
            ("lag_seconds", "gauge", "when the last batch that wrote finished, minus the newest event time it wrote"),
            ("last_write", "gauge", "when the last batch that wrote finished (seconds since the epoch)")]


def write_metrics(path: str, figures: dict[str, dict]) -> None:
    """Each group's ``progress`` in the Prometheus text format (``palette_stream_*{group=...}``),
    replacing ``path`` atomically: for node_exporter's textfile collector or any scraper."""
    lines = []
    for name, kind, help_text in _METRICS:
        lines += [f"# HELP palette_stream_{name} {help_text}", f"# TYPE palette_stream_{name} {kind}"]
        for group, f in sorted(figures.items()):
            if f and f.get(name) is not None:
                lines.append(f'palette_stream_{name}{{group="{group}"}} {f[name]}')
    tmp = f"{path}.tmp"
    with open(tmp, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def run(groups: list[str], checkpoint: str, online_store: str | None = None, trigger: str = "10 seconds",
        once: bool = False, store_root: str | None = None, progress_seconds: float = 30.0,
        metrics_file: str | None = None, spark=None) -> list:
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
    def report(log_it: bool) -> None:
        figures = {g: progress(q) for g, q in zip(groups, queries)}
        for g, f in figures.items():
            if f and log_it:
                log.info("stream %s: %s", g, json.dumps(f))
        if metrics_file:
            write_metrics(metrics_file, figures)
    while any(q.isActive for q in queries) and not stop.wait(progress_seconds if not once else 0.5):
        report(True)
    for q in queries:                       # SIGTERM: each stops once its batch in flight is written
        streaming.stop(q)
    report(False)
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
    parser.add_argument("--metrics-file", default=None, metavar="PATH",
                        help="also write the progress there in the Prometheus text format, at each report "
                             "(e.g. for node_exporter's textfile collector: a .prom file in its directory)")
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")


def main(argv: list[str] | None = None) -> int:
    def work(args):
        run(args.group, args.checkpoint, args.online_store, args.trigger, args.once, args.store,
            args.progress_seconds, args.metrics_file)
    return run_job("stream", __doc__, add_arguments, work, argv)


if __name__ == "__main__":
    sys.exit(main())
