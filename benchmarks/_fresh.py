"""Helpers for the store benchmarks (``pit_lookup``, ``ingest``): a fresh JVM, timing, scratch space.

Not a benchmark itself (``run.py`` skips modules whose name starts with ``_``).

``spark.driver.memory`` only applies if it is set before the JVM starts. When ``run.py``
has already started Spark for another module (with ``_common.SPARK_CONF``), a store
benchmark reruns itself in a fresh interpreter with its own settings and hands its
figures back as JSON, so the numbers do not depend on which modules ran before it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def spark_running() -> bool:
    if "pyspark" not in sys.modules:
        return False
    from pyspark import SparkContext
    return SparkContext._active_spark_context is not None


def rerun_fresh(module: str, rows: int | None) -> dict:
    """Run ``benchmarks/<module>.py`` in a new interpreter (new JVM) and return its figures."""
    with tempfile.TemporaryDirectory(prefix=f"palette-{module}-") as tmp:
        out = Path(tmp) / "figures.json"
        cmd = [sys.executable, str(HERE / f"{module}.py"), "--json", str(out)]
        if rows:
            cmd += ["--rows", str(rows)]
        print(f"(Spark is already running in this process; running {module} in a fresh JVM so its "
              f"driver memory setting applies)", flush=True)
        sys.stdout.flush()
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


def cli(module: str, main) -> None:
    """``python benchmarks/<module>.py [--rows N] [--json FILE]``."""
    ap = argparse.ArgumentParser(prog=f"{module}.py")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    figures = main(rows=args.rows)
    if args.json:
        Path(args.json).write_text(json.dumps(figures))


def session(conf: dict, master: str = "local[2]"):
    from palette.spark import session as palette_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = palette_session(app_name="palette-bench-store", master=master, conf=conf)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def scratch(prefix: str) -> Path:
    """A scratch folder for generated tables (under $PALETTE_BENCH_TMP, else the system temp)."""
    base = os.environ.get("PALETTE_BENCH_TMP") or tempfile.gettempdir()
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def noop_write(df) -> None:
    """Evaluate every column of ``df`` without collecting it."""
    df.write.format("noop").mode("overwrite").save()


class JvmClock:
    """Wall seconds and CPU seconds of the Spark JVM (all its threads: tasks, GC, JIT) for one call.

    On a shared machine wall time depends on what else runs; the JVM's CPU time much less so,
    which makes CPU ratios the steadier cross-check of wall-time ratios. Linux only (reads
    /proc); elsewhere the CPU figure is NaN."""

    def __init__(self, spark):
        name = spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getName()
        self.stat = Path(f"/proc/{name.split('@')[0]}/stat")
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def cpu(self) -> float:
        try:
            fields = self.stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / self.tick     # utime + stime

    def __call__(self, fn) -> tuple[float, float]:
        c0, t0 = self.cpu(), time.perf_counter()
        fn()
        return time.perf_counter() - t0, self.cpu() - c0
