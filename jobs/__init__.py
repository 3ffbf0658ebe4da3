"""Scheduled Spark jobs, each runnable as ``palette job NAME ...`` (or ``palette NAME``)
and under ``spark-submit`` (``python -m palette.jobs.NAME``'s file):

- ``ingest``: a source into a feature group's Delta table (idempotent MERGE);
- ``materialize``: the latest values from Delta into an online store (incremental);
- ``train``: a pipeline fitted on point-in-time features with a time-based split,
  evaluated against a baseline and logged to MLflow (optionally registered);
- ``batch_score``: a model over a table of requests, predictions into a Delta table
  (a rerun of a run id replaces its own output);
- ``parity``: a model's ``transform()`` against its serving path (exit 1 on a mismatch);
- ``ingest_logs``: served-feature logs into Delta;
- ``consistency``: logged reads replayed through the offline store (exit 1 on a breach);
- ``stream``: stream feature groups from their sources into Delta and an online store;
- ``backfill``: a stream group recomputed from its event history;
- ``backfill_rpc``: RPC groups' served fetches, from the feature logs into Delta;
- ``fetch_rpc``: an RPC group's fetcher called as of past times, into Delta;
- ``monitor_profile``: feature groups' tables profiled by window into palette_profiles;
- ``monitor_report``: their drift, freshness and null rates (exit 1 on an alert);
- ``embeddings_compress``: an embedding's top-k entities, quantized, as a new version, with its price;
- ``embeddings_compare``: a new embedding version's stability and its models' change (exit 1 on a breach).

Every job logs one line per step to stderr, exits 0 on success, 1 on failure (with the
reason logged) and 2 on bad arguments, and is safe to rerun.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Callable
from palette.errors import JobError

# name -> module: one registry, for ``palette job NAME`` and the docs.
JOBS = {"ingest": "ingest", "materialize": "materialize", "train": "train", "batch_score": "batch_score",
        "parity": "parity", "ingest_logs": "ingest_logs", "consistency": "consistency", "stream": "stream",
        "backfill": "backfill", "backfill_rpc": "backfill_rpc", "fetch_rpc": "fetch_rpc",
        "monitor_profile": "monitor_profile", "monitor_report": "monitor_report",
        "embeddings_compress": "embeddings_compress", "embeddings_compare": "embeddings_compare"}


def job_module(name: str):
    """The module of job ``name`` (``batch-score`` and ``batch_score`` alike)."""
    key = name.replace("-", "_")
    if key not in JOBS:
        raise JobError(f"unknown job {name!r}; the jobs are: {', '.join(JOBS)}")
    return importlib.import_module(f"{__name__}.{JOBS[key]}")


def run_job(name: str, doc: str, add_arguments: Callable[[argparse.ArgumentParser], None],
            work: Callable[[argparse.Namespace], object], argv: list[str] | None = None,
            describe: Callable[[argparse.Namespace], str] = lambda args: "") -> int:
    """A job's entry point: log lines on stderr, arguments parsed and checked, and any
    failure logged with its reason and exit code 1, so a scheduler sees both. ``work``
    may return an int exit code of its own (a parity check that found mismatches: 1).
    ``doc`` is the job module's docstring: its first line describes the job in ``--help``,
    its first ``palette ...`` line is the example there."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    lines = doc.replace("``", "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("palette ")), None)
    example = None
    if start is not None:
        end = start
        while lines[end].rstrip().endswith("\\") and end + 1 < len(lines):
            end += 1
        example = "\n  ".join(line.strip() for line in lines[start:end + 1])
    parser = argparse.ArgumentParser(prog=f"palette {name.replace('_', '-')}", description=lines[0],
                                     epilog=f"example:\n  {example}" if example else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        code = work(args)
    except Exception as e:                       # the scheduler gets the reason and a non-zero code
        logging.getLogger(f"palette.jobs.{name}").error("%s failed%s: %s", name, describe(args), e)
        return 1
    return code if type(code) is int else 0


def read_data(spark, data: str, fmt: str | None = None):
    """A Delta table (a directory with ``_delta_log``, or ``fmt="delta"``), a Parquet
    directory or file — a local path or a URI Spark reads (``s3a://…``) — or a table name
    of the catalog."""
    from delta.tables import DeltaTable

    from palette import uris
    if fmt is None:
        fmt = "delta" if DeltaTable.isDeltaTable(spark, data) else \
            "parquet" if not uris.is_local(data) or os.path.exists(uris.local_path(data)) else "table"
    if fmt == "table":
        if not spark.catalog.tableExists(data):
            raise JobError(f"{data}: no such file, directory or table")
        return spark.table(data)
    return spark.read.format(fmt).load(data)


__all__ = ["JOBS", "job_module", "run_job", "read_data"]
