"""Every Python block of every page in docs/ runs as written: a page's blocks in order, in
one Python session (``tests/docs_runner.py``: the pages one after another in one process of
their own, each with a fresh namespace, an emptied working directory — the JVM's too, since
Spark resolves relative paths against it — and the environment reset), the JVM started once.

Pages that work on the ETA example say so and use what ``make demo`` leaves in
``demo-out/`` (the store, the online store, the model, the orders, the served log); here
that directory comes from the same ``palette.examples.demo.run``, on 2,000 orders and a GBT
of 10 trees, and is linked into the pages' working directory.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docs_runner import python_blocks

pytestmark = pytest.mark.spark          # the pages run Spark (and read what make demo left)

DOCS = Path(__file__).resolve().parents[2] / "docs"
RUNNER = Path(__file__).resolve().parents[1] / "docs_runner.py"
# what the pages' comments say their blocks print: checked, not only that they ran
PRINTS = {
    "dsl.md": ["-60.0", "| 750.0|"],
    "embeddings.md": ["restaurant:dish_emb@v1", "restaurant:dish_emb v1 -> v2: ", "wrote restaurant:dish_emb@v3"],
    "feature-store.md": ["{'version': 1, 'inserted': 3, 'updated': 0, 'source_rows': 3}",
                         "{'version': 1, 'inserted': 0, 'updated': 0, 'source_rows': 3}",
                         "|  r1|2024-01-02 12:00:00|     10.0|   thai|", "|  r3|2024-01-03 00:00:00|-1.0|",
                         "feature='prep_time'", "models=('models/prep',)"],
    "mlflow.md": ["[28.4285714"],
    "monitoring.md": ["36000 3.09 True", "['order_size', 'order_size_f']", "up to date", "True True",
                      "false discovery rate controlled at q=0.05"],
    "online-store.md": ["'mode': 'up to date'", "{'r_id': 'r1', 'order_size': 3,", "'prediction': "],
    "parity.md": ["parity PASS: demo-out/model: 500 rows", "1 passed",
                  "'queue_minutes__event_time', 'delivery_minutes']"],
    "rpc-features.md": ["rpc", "['queue', 'r_id']", "{'r_id': 'r7', 'queue': -1.0}", "{'inserted': 0, 'updated': 0}",
                        "1.0 0.0 0.0"],
    "serving.md": ["{'r_id': 'r1', 'order_size': 3,", "[2 rows x 16 columns]"],
    "streaming.md": ["[('n_orders', 'num'), ('avg_size', 'num')]", "[('12:01', 1.0), ('12:03', 2.0), ('12:05', 3.0)]",
                     "{'tiles': 10, 'rows': 0, 'online': 0,", "(10.0, 1.9)"],
}
PAGES = sorted(p.name for p in DOCS.glob("*.md") if python_blocks(p.read_text()))


def test_the_pages_with_python_blocks_are_the_ones_this_suite_knows():
    # a page that gains its first block is picked up by the parametrization below; this
    # catches one that loses all of them (its examples turned into ```text, say)
    assert PAGES == sorted(PRINTS)


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory, spark_session):
    import mlflow

    from palette.examples import demo

    before = os.environ.get("MLFLOW_TRACKING_URI"), mlflow.get_tracking_uri()
    world = tmp_path_factory.mktemp("world") / "demo-out"
    result = demo.run(str(world), orders=2000, trees=10)
    assert result["parity_ok"] and result["logged"] == result["http_requests"] > 0
    assert {"order_size", "order_size_f"} <= set(result["monitoring"]["busy"]["alerted"])   # the planted busy hour
    yield world
    if before[0] is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before[0]
    mlflow.set_tracking_uri(before[1])


@pytest.fixture(scope="module")
def pages_run(demo_out, tmp_path_factory):
    """Every page, run once by the runner in one working directory holding ``demo-out``:
    each page's output and outcome."""
    workdir = tmp_path_factory.mktemp("pages")
    (workdir / "demo-out").symlink_to(demo_out, target_is_directory=True)
    results = workdir.parent / f"{workdir.name}-results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PALETTE_STORE", "PALETTE_ONLINE"))}
    done = subprocess.run([sys.executable, str(RUNNER), *[str(DOCS / p) for p in PAGES], "--results", str(results)],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=2400)
    assert results.exists(), f"the docs runner exited {done.returncode}:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    outcome = json.loads(results.read_text())
    output = {}
    for page in PAGES:
        start = done.stdout.find(f"--- {page} python block 1\n")
        end = done.stdout.find(f"=== {page}: ", max(start, 0))
        output[page] = done.stdout[start:end] if start >= 0 and end >= 0 else ""
    return outcome, output, done.stderr


@pytest.mark.parametrize("page", PAGES)
def test_the_python_blocks_of_a_docs_page_run_as_written(page, pages_run):
    outcome, output, stderr = pages_run
    text = (DOCS / page).read_text()
    assert outcome.get(page) == "ok", f"docs/{page}: {outcome.get(page)}\n{output[page][-6000:]}\n{stderr[-3000:]}"
    assert f"{page}: {len(python_blocks(text))} blocks ran" in output[page]
    missing = [line for line in PRINTS[page] if line not in output[page]]
    assert not missing, f"docs/{page} printed:\n{output[page][-6000:]}\nwithout: {missing}"
