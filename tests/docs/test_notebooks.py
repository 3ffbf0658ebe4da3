"""The notebooks: each ``.ipynb`` is its jupytext ``.py`` twin (same cells, in order), and
each runs top to bottom in a real Jupyter kernel (nbclient) on small data, asserting its
own results as it goes (point in time by hand, skill over the baseline, parity)."""
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark          # the notebooks run Spark

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
_spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
SOURCES = build.sources()


def test_there_are_the_three_notebooks():
    assert [p.stem for p in SOURCES] == ["dsl_quickstart", "embeddings", "uber_eats_eta"]


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_ipynb_is_in_sync_with_its_py_twin(source):
    import nbformat
    twin = source.with_suffix(".ipynb")
    assert twin.exists(), f"{twin.name} is missing: run make notebooks"
    committed = nbformat.read(twin, as_version=4)
    expected = build.read(source)
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in expected.cells], \
        f"{twin.name} differs from {source.name}: run make notebooks"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{twin.name} was committed without running it"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_runs_top_to_bottom(source, tmp_path):
    nb = build.execute(source, env={"PALETTE_EXAMPLE_ORDERS": "2000", "PALETTE_EXAMPLE_TREES": "10",
                                    "PALETTE_EXAMPLE_DIR": str(tmp_path)})
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    if source.stem == "embeddings":
        assert sum("image/png" in o.get("data", {}) for o in outputs) == 2          # the stability and memory plots
        assert "of predictions changed" in "".join(o.get("text", "") for o in outputs)
    if source.stem == "uber_eats_eta":
        assert any("image/png" in o.get("data", {}) for o in outputs)          # the evaluation plots
        text = "".join(o.get("text", "") for o in outputs)
        assert "parity            PASS" in text and "point in time: 200 orders checked" in text
