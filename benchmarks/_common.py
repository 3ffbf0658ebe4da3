"""What the benchmark modules share: the stage under test, the Spark session, timing helpers.

Not a benchmark itself (``run.py`` skips modules whose name starts with ``_``).
"""
from __future__ import annotations

import os
import statistics
import sys
import time

# The tutorial's imputation stage (Uber Eats ETA example), reading plain columns.
OUTPUTS = ("prep_time", "n_meal", "n_busy", "region_id")
SPARK_CONF = {"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "4"}


def imputation_lambdas() -> dict:
    from palette import nFill, nVal, regionId

    return {
        "prep_time": nFill(nVal("prep_time"), -1),
        "n_meal": nFill(nVal("n_meal"), -1),
        "n_busy": nFill(nVal("n_busy"), -1),
        "region_id": regionId(nVal("lat"), nVal("lng")),
    }


def imputation_stage():
    from palette import DSLTransformer

    return DSLTransformer(lambdas=imputation_lambdas())


def spark_session():
    """The one local SparkSession of a benchmark run (reused across modules).

    Python UDF workers run ``$PYSPARK_PYTHON``, else whatever ``python3`` is on PATH —
    not this virtualenv, where palette is installed; so point them at this interpreter.
    """
    from palette.spark import session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = session(app_name="palette-bench", conf=SPARK_CONF)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def timed(fn) -> float:
    """Wall-clock seconds of one call of fn()."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(xs) -> float:
    return statistics.median(xs)


def heading(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 72 - len(title)), flush=True)


def goal_text(value: float, op: str, target: float) -> str:
    ok = {"<=": value <= target, ">=": value >= target, "==": value == target}[op]
    return f"goal {op} {target:g}: {'met' if ok else 'MISSED'}"


def own_venv(name: str, module: str, packages: list[str], env: str) -> str:
    """The python of a baseline's own virtualenv (``~/.cache/palette-bench/<name>-venv``,
    ``$<env>`` overrides), made on first use with ``pip install <packages>``: a baseline's
    pins may clash with palette's."""
    import subprocess
    from pathlib import Path
    venv = Path(os.environ.get(env, Path.home() / ".cache" / "palette-bench" / f"{name}-venv"))
    python = venv / "bin" / "python"
    if not python.exists() or subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode:
        print(f"making {name}'s virtualenv in {venv} (pip install {' '.join(packages)}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return str(python)

