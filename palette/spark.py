"""A local SparkSession with Delta Lake enabled, loading the Delta jars offline.

The Delta jars are fetched once with Maven into the local Maven repository
(``~/.m2/repository``, or ``$PALETTE_MAVEN_REPO``); Spark then loads them from
there with ``spark.jars`` and never goes to the network::

    mvn -q dependency:get -Dartifact=io.delta:delta-spark_2.13:4.0.1

(``make jars`` runs exactly that.) Someone with internet and no Maven can set
``PALETTE_DELTA_FROM_PIP=1`` and get delta-spark's own
``configure_spark_with_delta_pip`` path, which resolves the same jars with Ivy.

Object storage (S3 and S3-compatible servers): ``make jars`` also fetches
``org.apache.hadoop:hadoop-aws`` at the Hadoop version pyspark bundles, with its AWS SDK
bundle, and the session puts them on the classpath, so ``s3a://bucket/path`` works for
Delta tables. When ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``
are set (``AWS_REGION`` optional), ``session()`` points S3A at that endpoint with those
keys and path-style addressing; ``configure_s3a(spark, endpoint, key, secret)`` does the
same on a running session. Without the variables, S3A uses AWS's own credential chain.

>>> from palette.spark import session
>>> spark = session()                                   # doctest: +SKIP
>>> spark.range(3).write.format("delta").save("/tmp/t")  # doctest: +SKIP
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import DeltaJarsMissing, InvalidS3Endpoint

DELTA_VERSION = "4.0.1"
SCALA_VERSION = "2.13"
# (groupId path, artifactId) of the jars Spark needs beyond its own.
_DELTA_ARTIFACTS = (
    ("io/delta", f"delta-spark_{SCALA_VERSION}"),
    ("io/delta", "delta-storage"),
)
FETCH_COMMAND = f"mvn -q dependency:get -Dartifact=io.delta:delta-spark_{SCALA_VERSION}:{DELTA_VERSION}"
SPARK_VERSION = "4.0.0"      # of Spark's own Kafka source (4.0.1's token provider is not on Maven Central here)
KAFKA_VERSION = "4.1.1"      # Apache Kafka's broker (KRaft), for tests and the example
# Maven coordinates fetched with their runtime dependencies: the classpath each needs.
CLASSPATHS = {
    "spark-kafka": [f"org.apache.spark:spark-sql-kafka-0-10_{SCALA_VERSION}:{SPARK_VERSION}"],
    "kafka-broker": [f"org.apache.kafka:kafka_{SCALA_VERSION}:{KAFKA_VERSION}",
                     f"org.apache.kafka:kafka-tools:{KAFKA_VERSION}"],
}


def hadoop_version() -> str:
    """The Hadoop version pyspark bundles (its ``hadoop-client-api`` jar): hadoop-aws must match it."""
    import importlib.util
    import re

    jars = Path(importlib.util.find_spec("pyspark").origin).parent / "jars"
    found = [m.group(1) for j in jars.glob("hadoop-client-api-*.jar") if (m := re.match(r"hadoop-client-api-(.+)\.jar$", j.name))]
    if not found:
        raise DeltaJarsMissing(f"no hadoop-client-api jar in {jars}: is pyspark installed whole?")
    return found[0]


def _coordinates(name: str) -> list[str]:
    """Maven coordinates of a classpath: ``CLASSPATHS``, and S3A's ``hadoop-aws`` (with its
    AWS SDK bundle) at pyspark's Hadoop version."""
    return CLASSPATHS.get(name) or [f"org.apache.hadoop:hadoop-aws:{hadoop_version()}"]


def s3a_jars() -> list[str]:
    """hadoop-aws and the AWS SDK bundle as fetched by ``fetch_jars``; [] when not fetched
    (or fetched for another Hadoop version)."""
    jars = classpath("hadoop-aws")
    return jars if any(Path(j).name == f"hadoop-aws-{hadoop_version()}.jar" for j in jars) else []


def s3a_conf(endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1") -> dict[str, str]:
    """Hadoop settings pointing S3A at an S3-compatible ``endpoint`` (``http://host:port``
    or ``https://…``) with static keys and path-style addressing (no per-bucket DNS)."""
    from urllib.parse import urlparse

    scheme = urlparse(endpoint).scheme
    if scheme not in ("http", "https"):
        raise InvalidS3Endpoint(f"S3 endpoint {endpoint!r} must start with http:// or https:// "
                                "(AWS_ENDPOINT_URL, e.g. http://127.0.0.1:8333)")
    return {"fs.s3a.endpoint": endpoint, "fs.s3a.endpoint.region": region,
            "fs.s3a.access.key": access_key, "fs.s3a.secret.key": secret_key,
            "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
            "fs.s3a.path.style.access": "true", "fs.s3a.connection.ssl.enabled": str(scheme == "https").lower()}


def _s3a_from_env() -> dict[str, str]:
    """``spark.hadoop.fs.s3a.*`` from ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_REGION``), when the three are set."""
    env = os.environ
    if not all(env.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")):
        return {}
    conf = s3a_conf(env["AWS_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                    env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1")
    return {f"spark.hadoop.{k}": v for k, v in conf.items()}


def configure_s3a(spark, endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1") -> None:
    """Point a running session's S3A at an S3-compatible server (its Hadoop configuration):
    ``s3a://`` paths opened afterwards go there, signed with these keys."""
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_conf(endpoint, access_key, secret_key, region).items():
        conf.set(key, value)


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


def _classpath_file(name: str) -> Path:
    return maven_repo().parent / "palette-classpaths" / f"{name}.txt"


def classpath(name: str) -> list[str]:
    """The jars of ``CLASSPATHS[name]`` as fetched by ``fetch_jars``; [] when not fetched."""
    f = _classpath_file(name)
    if not f.is_file():
        return []
    jars = [j for j in f.read_text().strip().split(os.pathsep) if j]
    return jars if all(Path(j).is_file() for j in jars) else []


def _fetch_classpath(name: str) -> list[str]:
    """Resolve ``CLASSPATHS[name]`` and its runtime dependencies with Maven (a throwaway
    pom), and remember the classpath."""
    import subprocess
    import tempfile

    deps = "".join(f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>"
                   "</dependency>" for g, a, v in (c.split(":") for c in _coordinates(name)))
    # Only Maven Central: Spark's poms name a mirror of it that may be unreachable.
    settings = ('<settings><mirrors><mirror><id>central</id><mirrorOf>*</mirrorOf>'
                '<url>https://repo.maven.apache.org/maven2</url></mirror></mirrors></settings>')
    pom = ('<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
           f'<groupId>palette</groupId><artifactId>{name}</artifactId><version>0</version>'
           f'<dependencies>{deps}</dependencies></project>')
    out = _classpath_file(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "pom.xml").write_text(pom)
        Path(tmp, "settings.xml").write_text(settings)
        subprocess.run(["mvn", "-q", "-B", "-s", "settings.xml", "dependency:build-classpath", "-Dmdep.includeScope=runtime",
                        f"-Dmdep.outputFile={out}"], cwd=tmp, check=True)
    return classpath(name)


def delta_conf() -> dict[str, str]:
    """Spark settings that enable Delta Lake with the locally fetched jars (and Spark's
    Kafka source and S3A's hadoop-aws, when fetched). hadoop-aws and its 560 MB AWS SDK
    bundle go on the JVMs' class path, not ``spark.jars``, which would copy them to every
    executor of every application."""
    s3a = os.pathsep.join(_not_in_pyspark(s3a_jars()))
    return {"spark.jars": ",".join(delta_jars() + _not_in_pyspark(classpath("spark-kafka"))), **_DELTA_SQL_CONF,
            **({"spark.driver.extraClassPath": s3a, "spark.executor.extraClassPath": s3a} if s3a else {})}


def _not_in_pyspark(jars: list[str]) -> list[str]:
    """The jars pyspark does not ship already (by artifact name): Spark's Kafka source
    brings Hadoop, Scala and compression libraries that must not be loaded twice."""
    import re

    import pyspark
    shipped = {re.sub(r"-\d[^-]*(-.*)?\.jar$", "", j.name) for j in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    return [j for j in jars if re.sub(r"-\d[^-]*(-.*)?\.jar$", "", Path(j).name) not in shipped]


def session(app_name: str = "palette", master: str = "local[2]", conf: dict[str, str] | None = None):
    """Return (or reuse) a local SparkSession with Delta Lake enabled.

    ``conf`` adds or overrides Spark settings, e.g. ``{"spark.driver.memory": "4g"}``.
    """
    from pyspark.sql import SparkSession

    # Python workers (materialization's mapInArrow) run this interpreter, where palette
    # is installed, not whatever python3 comes first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if os.environ.get("PYSPARK_GATEWAY_PORT"):      # under spark-submit: its master, jars and --conf win
        return _submitted_session(app_name, conf)
    builder = SparkSession.builder.appName(app_name).master(master)
    settings = {**LOCAL_DEFAULTS, **_s3a_from_env(), **(conf or {})}
    if os.environ.get("PALETTE_DELTA_FROM_PIP"):
        from delta import configure_spark_with_delta_pip

        for k, v in {**settings, **_DELTA_SQL_CONF}.items():
            builder = builder.config(k, v)
        return configure_spark_with_delta_pip(builder).getOrCreate()
    for k, v in {**settings, **delta_conf()}.items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


def _submitted_session(app_name: str, conf: dict[str, str] | None):
    """The session of a ``spark-submit``-ed job: the command line's settings as given (a
    builder's ``master``/``spark.jars`` would silently override them), palette's app name,
    UTC and Delta's SQL extension only where the command line sets none, S3A's settings from
    the AWS_* environment when it sets no ``spark.hadoop.fs.s3a.*``; ``conf`` as given."""
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    given = SparkConf()                          # what spark-submit passed to the JVM
    builder = SparkSession.builder
    s3a = {} if any(k.startswith("spark.hadoop.fs.s3a.") for k, _ in given.getAll()) else _s3a_from_env()
    defaults = {"spark.app.name": app_name, "spark.sql.session.timeZone": "UTC", **_DELTA_SQL_CONF, **s3a}
    for k, v in {**{k: v for k, v in defaults.items() if not given.contains(k)}, **(conf or {})}.items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


def active_session():
    """The SparkSession in use, or a new one from ``session()`` when there is none: what a
    store method runs on when no ``spark=`` is passed."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() or session()


def fetch_jars() -> list[str]:
    """Fetch the Delta jars, Spark's Kafka source, Kafka's broker and S3A's hadoop-aws into
    the local Maven repository with ``mvn`` (once; a rerun checks and returns)."""
    import shutil
    import subprocess

    if shutil.which("mvn") is None and not (classpath("spark-kafka") and classpath("kafka-broker") and s3a_jars()):
        raise DeltaJarsMissing("mvn is not on PATH: install Maven, or set PALETTE_DELTA_FROM_PIP=1")
    try:
        jars = delta_jars()
    except DeltaJarsMissing:
        for group, art in _DELTA_ARTIFACTS:
            coords = f"{group.replace('/', '.')}:{art}:{DELTA_VERSION}"
            subprocess.run(["mvn", "-q", "-B", "dependency:get", f"-Dartifact={coords}"], check=True)
        jars = delta_jars()
    for name in CLASSPATHS:
        jars += classpath(name) or _fetch_classpath(name)
    return jars + (s3a_jars() or _fetch_classpath("hadoop-aws"))


if __name__ == "__main__":
    if sys.argv[1:] == ["fetch-jars"]:
        print("\n".join(fetch_jars()))
    else:
        sys.exit("usage: python -m palette.spark fetch-jars")
