"""Scheduled Spark jobs, each runnable as ``palette <job> ...`` and under ``spark-submit``:
``ingest`` (a source into a feature group's Delta table), ``materialize`` (the latest
values from Delta into an online store), ``parity`` (a model's ``transform()`` against
its serving path), ``ingest_logs`` (served-feature logs into Delta) and ``consistency``
(logged reads replayed through the offline store)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable


def run_job(name: str, description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
            work: Callable[[argparse.Namespace], object], argv: list[str] | None = None,
            describe: Callable[[argparse.Namespace], str] = lambda args: "") -> int:
    """A job's entry point: log lines on stderr, arguments parsed and checked, and any
    failure logged with its reason and exit code 1, so a scheduler sees both. ``work``
    may return an int exit code of its own (a parity check that found mismatches: 1)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog=f"palette {name}", description=description)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        code = work(args)
    except Exception as e:                       # the scheduler gets the reason and a non-zero code
        logging.getLogger(f"palette.jobs.{name}").error("%s failed%s: %s", name, describe(args), e)
        return 1
    return code if type(code) is int else 0


__all__ = ["run_job"]
