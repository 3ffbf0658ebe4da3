"""Models saved by every Spark version whose artifacts we serve score as that Spark scored
them: ``tests/fixtures/spark_artifacts/<version>/<name>/model`` is what that pyspark's
``write().save()`` wrote, ``transform.json`` its own transform of fixed rows (both made by
``make_artifacts.py``). Nothing here needs Spark: no pyspark import, no JVM, no session.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from palette.transformers import load_scorer
from palette.transformers.runtime.vectors import SparseVector

from _stage_parity import check_batch, compare_rows

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "spark_artifacts"
CASES = sorted(ROOT.glob("*/*/transform.json"))
VERSIONS = sorted({p.parent.parent.name for p in CASES})
REL = 1e-9


def _value(v):
    if isinstance(v, dict):
        return SparseVector(v["size"], tuple(v["indices"]), tuple(v["values"]))
    if isinstance(v, list):
        return np.array(v, dtype=np.float64)
    return v


def _inputs(record: dict) -> list[dict]:
    return [{k: _value(v) for k, v in r.items()} for r in record["inputs"]]


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.parent.name}/{p.parent.name}" for p in CASES])
def test_artifact_scores_as_the_spark_that_saved_it(case):
    record = json.loads(case.read_text())
    scorer = load_scorer(case.parent / "model")
    expected = {r["rid"]: {c: _value(v) for c, v in r.items()} for r in record["outputs"]}
    inputs = _inputs(record)
    singles = compare_rows(scorer, inputs, expected, record["columns"], record["exact"], REL)
    assert len(singles) == len(expected)
    check_batch(scorer, inputs, singles, record["columns"])


def test_every_minor_version_of_the_major_we_pin():
    """The pinned 4.0.x and the newest 4.1, 4.2 and 4.3 releases, each with the same models."""
    pin = re.search(r"pyspark>=(\d+)\.(\d+)[^,\n]*,<(\d+)\.(\d+)", (ROOT.parents[2] / "setup.cfg").read_text())
    assert pin and any(v.startswith(f"{pin[1]}.{pin[2]}.") for v in VERSIONS), VERSIONS
    assert {v.rsplit(".", 1)[0] for v in VERSIONS} >= {"4.0", "4.1", "4.2", "4.3"}, VERSIONS
    names = {v: sorted(p.parent.name for p in CASES if p.parent.parent.name == v) for v in VERSIONS}
    assert len({tuple(n) for n in names.values()}) == 1, names
    for v in VERSIONS:
        assert not list((ROOT / v).rglob("*.crc")) and not list((ROOT / v).rglob("_SUCCESS"))


def test_serving_doc_lists_the_tested_versions():
    doc = (ROOT.parents[2] / "docs" / "serving.md").read_text()
    for v in VERSIONS:
        assert f"`{v}`" in doc, f"docs/serving.md does not list Spark {v}, whose artifacts are tested"


def test_artifacts_score_without_pyspark_or_java():
    """Every artifact loads and scores in a process where pyspark and py4j cannot be
    imported and java is not on PATH."""
    code = f"""
import sys
sys.modules.update(dict.fromkeys(["pyspark", "py4j"]))      # import pyspark now raises ImportError
import json, shutil
from pathlib import Path
from palette.transformers import load_scorer
scored = 0
for case in sorted(Path({str(ROOT)!r}).glob("*/*/transform.json")):
    record = json.loads(case.read_text())
    scored += len(load_scorer(case.parent / "model").scoreBatch(record["inputs"]))
print(scored, shutil.which("java"))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME")}
    env["PATH"] = os.path.dirname(sys.executable)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    expected = sum(len(json.loads(p.read_text())["outputs"]) for p in CASES)
    assert proc.stdout.split() == [str(expected), "None"]
