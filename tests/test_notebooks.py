"""The runnable notebooks (jupytext percent format) run end to end."""
import runpy
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, spark_session):
    # Each notebook asserts its own results (e.g. Spark/scoreInstance parity) as it runs.
    runpy.run_path(str(path), run_name="__main__")
