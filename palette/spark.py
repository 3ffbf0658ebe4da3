"""A local SparkSession with Delta Lake enabled, loading the Delta jars offline.

The Delta jars are fetched once with Maven into the local Maven repository
(``~/.m2/repository``, or ``$PALETTE_MAVEN_REPO``); Spark then loads them from
there with ``spark.jars`` and never goes to the network::

    mvn -q dependency:get -Dartifact=io.delta:delta-spark_2.13:4.0.1

(``make jars`` runs exactly that.) Someone with internet and no Maven can set
``PALETTE_DELTA_FROM_PIP=1`` and get delta-spark's own
``configure_spark_with_delta_pip`` path, which resolves the same jars with Ivy.

>>> from palette.spark import session
>>> spark = session()                                   # doctest: +SKIP
>>> spark.range(3).write.format("delta").save("/tmp/t")  # doctest: +SKIP
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import DeltaJarsMissing

DELTA_VERSION = "4.0.1"
SCALA_VERSION = "2.13"
# (groupId path, artifactId) of the jars Spark needs beyond its own.
_DELTA_ARTIFACTS = (
    ("io/delta", f"delta-spark_{SCALA_VERSION}"),
    ("io/delta", "delta-storage"),
)
FETCH_COMMAND = f"mvn -q dependency:get -Dartifact=io.delta:delta-spark_{SCALA_VERSION}:{DELTA_VERSION}"


def maven_repo() -> Path:
    return Path(os.environ.get("PALETTE_MAVEN_REPO", Path.home() / ".m2" / "repository"))


def delta_jars() -> list[str]:
    """Paths of the Delta jars in the local Maven repository; raises if missing."""
    repo = maven_repo()
    jars = [repo / group / art / DELTA_VERSION / f"{art}-{DELTA_VERSION}.jar" for group, art in _DELTA_ARTIFACTS]
    missing = [str(j) for j in jars if not j.is_file()]
    if missing:
        raise DeltaJarsMissing(
            f"Delta Lake jars not found: {', '.join(missing)}. Fetch them once with\n"
            f"    {FETCH_COMMAND}\n"
            "(or `make jars`), or set PALETTE_DELTA_FROM_PIP=1 to let delta-spark resolve them from the network."
        )
    return [str(j) for j in jars]


_DELTA_SQL_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

LOCAL_DEFAULTS = {
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.catalogImplementation": "in-memory",
}


def delta_conf() -> dict[str, str]:
    """Spark settings that enable Delta Lake with the locally fetched jars."""
    return {"spark.jars": ",".join(delta_jars()), **_DELTA_SQL_CONF}


def session(app_name: str = "palette", master: str = "local[2]", conf: dict[str, str] | None = None):
    """Return (or reuse) a local SparkSession with Delta Lake enabled.

    ``conf`` adds or overrides Spark settings, e.g. ``{"spark.driver.memory": "4g"}``.
    """
    from pyspark.sql import SparkSession

    # Python workers (materialization's mapInArrow) run this interpreter, where palette
    # is installed, not whatever python3 comes first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).master(master)
    settings = {**LOCAL_DEFAULTS, **(conf or {})}
    if os.environ.get("PALETTE_DELTA_FROM_PIP"):
        from delta import configure_spark_with_delta_pip

        for k, v in {**settings, **_DELTA_SQL_CONF}.items():
            builder = builder.config(k, v)
        return configure_spark_with_delta_pip(builder).getOrCreate()
    for k, v in {**settings, **delta_conf()}.items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


def active_session():
    """The SparkSession in use, or a new one from ``session()`` when there is none: what a
    store method runs on when no ``spark=`` is passed."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() or session()


def fetch_jars() -> list[str]:
    """Fetch the Delta jars into the local Maven repository with ``mvn`` (once)."""
    import shutil
    import subprocess

    try:
        return delta_jars()
    except DeltaJarsMissing:
        pass
    if shutil.which("mvn") is None:
        raise DeltaJarsMissing("mvn is not on PATH: install Maven, or set PALETTE_DELTA_FROM_PIP=1")
    for group, art in _DELTA_ARTIFACTS:
        coords = f"{group.replace('/', '.')}:{art}:{DELTA_VERSION}"
        subprocess.run(["mvn", "-q", "-B", "dependency:get", f"-Dartifact={coords}"], check=True)
    return delta_jars()


if __name__ == "__main__":
    if sys.argv[1:] == ["fetch-jars"]:
        print("\n".join(fetch_jars()))
    else:
        sys.exit("usage: python -m palette.spark fetch-jars")
