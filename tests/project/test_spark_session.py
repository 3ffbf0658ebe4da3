"""``palette.spark.session()``: Delta jars from the local Maven repository, a clear error
naming the fetch command when they are missing, and delta-spark's pip path. Each case
runs in a fresh interpreter, since a JVM's jars are fixed when it starts."""
import os
import subprocess
import sys
import textwrap

import pytest

from palette.spark import DeltaJarsMissing, FETCH_COMMAND, delta_jars

pytestmark = pytest.mark.spark          # it starts Spark sessions

WRITE_AND_READ = textwrap.dedent("""
    import sys
    from palette.spark import session
    spark = session(conf={"spark.sql.shuffle.partitions": "1"})
    spark.range(3).write.format("delta").save(sys.argv[1])
    print("rows", spark.read.format("delta").load(sys.argv[1]).count())
""")


def run(code, *args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_missing_jars_name_the_command_that_fetches_them(tmp_path, monkeypatch):
    monkeypatch.setenv("PALETTE_MAVEN_REPO", str(tmp_path / "empty-repo"))
    with pytest.raises(DeltaJarsMissing) as err:
        delta_jars()
    assert FETCH_COMMAND in str(err.value) and "make jars" in str(err.value)
    assert "PALETTE_DELTA_FROM_PIP=1" in str(err.value)
    proc = run("from palette.spark import session; session()", env={"PALETTE_MAVEN_REPO": str(tmp_path / "e")})
    assert proc.returncode != 0 and FETCH_COMMAND in proc.stderr


def test_session_loads_delta_from_the_local_maven_repository(tmp_path):
    proc = run(WRITE_AND_READ, str(tmp_path / "t"), env={"PALETTE_DELTA_FROM_PIP": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rows 3" in proc.stdout


def test_delta_spark_pip_path_without_maven_jars(tmp_path):
    """No jars in the Maven repository: delta-spark's configure_spark_with_delta_pip resolves
    them with Ivy from Maven Central (into its own cache under the test's home)."""
    env = {"PALETTE_DELTA_FROM_PIP": "1", "PALETTE_MAVEN_REPO": str(tmp_path / "no-repo"),
           "SPARK_SUBMIT_OPTS": f"-Divy.home={tmp_path / 'ivy'}"}
    proc = run(WRITE_AND_READ, str(tmp_path / "t"), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rows 3" in proc.stdout
