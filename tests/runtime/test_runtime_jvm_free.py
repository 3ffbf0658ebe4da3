"""The serving path runs where pyspark cannot be imported and java is not on PATH."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
from pyspark.ml import Pipeline

from palette.nospark import sitecustomize
from palette import DSLEstimator, DSLTransformer, impute, nFill, nVal, regionId, sVal, concat

BLOCKER = sitecustomize("the serving path must not import it")


def run_without_spark(code: str) -> str:
    """Run code in a fresh interpreter that cannot import pyspark and has no java on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME", "PYSPARK_PYTHON")}
    python_dir = os.path.dirname(sys.executable)
    env["PATH"] = python_dir  # no java here (checked below)
    proc = subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_blocker_really_blocks():
    out = run_without_spark("""
        import shutil
        try:
            import pyspark
            print("imported")
        except ImportError:
            print("blocked")
        print(shutil.which("java"))
    """)
    assert out.split() == ["blocked", "None"]


def test_core_imports_do_not_load_pyspark():
    out = run_without_spark("""
        import sys
        import palette, palette.dsl, palette.transformers
        from palette import nVal, nFill, regionId, evaluate, load_scorer
        print(evaluate(nFill(nVal("basis:x"), -1), {"x": None}))
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j")))
    """)
    assert out.split("\n")[:2] == ["-1.0", "[]"]


def test_saved_pipeline_scores_without_jvm(spark_session, tmp_path):
    df = spark_session.createDataFrame(
        [("r1", 57.64911, 10.40744, 3.0, None), ("r2", 37.7749, -122.4194, None, "x"), ("r3", None, 1.0, 1.0, "yy")],
        "r_id string, lat double, lng double, order_size double, note string")
    model = Pipeline(stages=[
        DSLTransformer(lambdas={"region_id": regionId(nVal("lat"), nVal("lng"))}),
        DSLEstimator(lambdas={"size": impute(nVal("basis:order_size")), "tag": concat(sVal("r_id"), "-", sVal("region_id"))}),
    ]).fit(df)
    path = str(tmp_path / "m")
    model.write().save(path)
    expected = [{k: r[k] for k in ("region_id", "size", "tag")} for r in model.transform(df).collect()]
    rows = [r.asDict() for r in df.collect()]
    out = run_without_spark(f"""
        import json
        from palette.transformers import load_scorer
        scorer = load_scorer({path!r})
        rows = json.loads({json.dumps(json.dumps(rows))})
        print(json.dumps([{{k: r[k] for k in ("region_id", "size", "tag")}} for r in scorer.scoreBatch(rows)]))
    """)
    assert json.loads(out) == expected


def test_unsupported_stage_fails_at_load_naming_it(spark_session, tmp_path):
    from pyspark.ml.feature import SQLTransformer
    path = str(tmp_path / "p")
    from pyspark.ml import PipelineModel
    PipelineModel(stages=[DSLTransformer(lambdas={"a": "1 + 1"}),
                          SQLTransformer(statement="SELECT * FROM __THIS__")]).write().save(path)
    out = run_without_spark(f"""
        from palette.transformers import load_scorer, UnsupportedStageError
        try:
            load_scorer({path!r})
        except UnsupportedStageError as e:
            print(e)
    """)
    assert "org.apache.spark.ml.feature.SQLTransformer" in out
    assert "palette.transformers.dsl_stage.DSLTransformer" in out   # lists what is supported


def _set_format_version(stage_dir, version):
    part = next((stage_dir / "metadata").glob("part-*"))
    meta = json.loads(part.read_text())
    meta["paletteFormatVersion"] = version
    part.write_text(json.dumps(meta) + "\n")
    for crc in (stage_dir / "metadata").glob(".*.crc"):      # Hadoop would refuse the edited file
        crc.unlink()


def test_artifact_of_a_newer_palette_fails_at_load_asking_for_an_upgrade(spark_session, tmp_path):
    from pyspark.ml import PipelineModel

    from palette import ArtifactError
    from palette.transformers import load_scorer
    path = tmp_path / "p"
    PipelineModel(stages=[DSLTransformer(lambdas={"a": "1 + 1"})]).write().save(str(path))
    assert load_scorer(path).scoreInstance({}) == {"a": 2.0}
    (stage_dir,) = (path / "stages").iterdir()
    _set_format_version(stage_dir, 99)
    with pytest.raises(ArtifactError, match="palette format version 99.*upgrade palette"):
        load_scorer(path)
    with pytest.raises(ArtifactError, match="palette format version 99.*upgrade palette"):
        PipelineModel.load(str(path))
    _set_format_version(stage_dir, None)
    with pytest.raises(ArtifactError, match="no valid paletteFormatVersion"):
        load_scorer(path)
