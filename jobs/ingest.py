"""Scheduled ingest: load a source into a feature group's Delta table (idempotent MERGE).

Run it from the CLI or with spark-submit; it logs one line per step to stderr and exits
non-zero on failure, so a scheduler sees both::

    palette ingest --group restaurant:batch_fg --source /data/prep_times --format parquet
    spark-submit "$(python -c 'import palette.jobs.ingest as m; print(m.__file__)')" \\
        --group restaurant:batch_fg --source /data/prep_times --store /data/palette

Rerunning the same ingest writes no new rows.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from palette.jobs import run_job
from palette.errors import JobError

log = logging.getLogger("palette.jobs.ingest")
FORMATS = ("parquet", "delta", "csv", "json", "orc")


def read_source(spark, source: str, fmt: str, schema=None):
    if fmt not in FORMATS:
        raise JobError(f"unknown source format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "csv":
        # The group's schema, with header names checked against it (not trusted by position).
        reader = spark.read.option("header", True).option("enforceSchema", False)
        return reader.schema(schema).csv(source) if schema is not None else reader.csv(source)
    if "/" not in source and "." in source and fmt == "delta":
        return spark.table(source)
    return spark.read.format(fmt).load(source)


def run(group: str, source: str, fmt: str = "parquet", store_root: str | None = None, spark=None) -> dict:
    from palette import offline
    from palette.spark import session
    from palette.store import FeatureStore

    started = time.monotonic()
    store = FeatureStore(store_root)
    g = store.group(group)
    spark = spark or session(app_name=f"palette-ingest-{group}")
    log.info("ingest start group=%s source=%s format=%s store=%s", group, source, fmt, store.root)
    df = read_source(spark, source, fmt, offline.table_schema(store.entity(g.entity), g))
    result = store.ingest(df, group)
    result["seconds"] = round(time.monotonic() - started, 3)
    log.info("ingest done group=%s version=%s source_rows=%s inserted=%s updated=%s seconds=%s", group,
             result["version"], result["source_rows"], result["inserted"], result["updated"], result["seconds"])
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group", required=True, help="entity:feature_group to ingest into")
    parser.add_argument("--source", required=True, help="path (or table name for --format delta)")
    parser.add_argument("--format", default="parquet", choices=FORMATS)
    parser.add_argument("--store", default=None, help="feature store root (default $PALETTE_STORE_ROOT)")


def main(argv: list[str] | None = None) -> int:
    return run_job("ingest", __doc__, add_arguments,
                   lambda a: run(a.group, a.source, a.format, a.store), argv, lambda a: f" group={a.group}")


if __name__ == "__main__":
    sys.exit(main())
