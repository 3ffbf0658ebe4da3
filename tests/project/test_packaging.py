"""The package installs from a built wheel into a fresh venv, and its JVM-free core works
there with only lark, numpy, pandas and pyarrow."""
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_installs_into_fresh_venv_without_spark(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel = next(dist.glob("palette_ml-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True)
    code = """
import importlib.util, json
from palette import nVal, nFill, regionId
from palette.dsl import evaluate, parse
from palette.transformers import load_scorer
assert importlib.util.find_spec("pyspark") is None, "pyspark must not be a core dependency"
from importlib.resources import files
assert files("palette.dsl").joinpath("grammar.lark").is_file()
print(json.dumps([evaluate(nFill(nVal("x"), -1), {"x": None}),
                  evaluate(regionId(nVal("lat"), nVal("lng")), {"lat": 57.64911, "lng": 10.40744})]))
"""
    out = subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert out.stdout.strip() == '[-1.0, "u4pruy"]'


def test_editable_install_maps_folders_to_one_import_name():
    import palette.dsl
    import palette.jobs
    import palette.parity
    import palette.transformers
    assert Path(palette.dsl.__file__).parent == ROOT / "dsl"
    assert Path(palette.transformers.__file__).parent == ROOT / "transformers"
    assert Path(palette.parity.__file__).parent == ROOT / "parity"
    assert Path(palette.jobs.__file__).parent == ROOT / "jobs"
