"""The Spark settings of every JVM the tests start, and the class archive they map.

Settings: ``tests/spark_conf/spark-defaults.conf`` (tiny data's settings; read it for why),
given to every pyspark-launched JVM — the suite's own session, the docs runner, the notebook
kernels, the jobs the tests run as processes — by ``--properties-file`` in
``PYSPARK_SUBMIT_ARGS``. ``SPARK_CONF_DIR`` names an *empty* directory: Spark puts the conf
directory on the JVM's class path, and class-data sharing refuses a class path with a
non-empty directory in it. A test that runs ``spark-submit`` itself passes the same file
(``submit``).

The archive: a cold JVM spends most of its first half minute loading and linking Spark's,
Delta's and Scala's classes. A dynamic class-data-sharing archive (JDK 13+,
``-XX:ArchiveClassesAtExit``) of the classes a typical palette workload loads lets later JVMs
map them instead: a session, a Delta write and two MERGEs in 15 s against 23 s here. It is
only valid for this JDK, these jars and this class path, so ``make test`` builds it on the
machine that runs the tests (``python tests/spark_env.py``, about 90 s, outside the timed
suite, again when the packages change); a JVM whose class path differs ignores it silently.
"""
import os
import shutil
import sys
import tempfile
from pathlib import Path

DEFAULTS = Path(__file__).resolve().parent / "spark_conf" / "spark-defaults.conf"
HOME = Path(sys.prefix) / "palette-spark-classes"        # in the virtualenv: its jars, its archive
ARCHIVE = HOME / "classes.jsa"
EMPTY_CONF_DIR = HOME / "conf"
PROPERTIES = HOME / "tests.conf"                        # the settings, with the archive's flags
_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"             # a mismatched archive is ignored, not reported
_JAVA_OPTIONS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")
# Spark's own defaults for generated code, which spark-defaults.conf turns off for tiny data: for
# a test that needs whole-stage code generation, or data big enough to gain from it.
CODEGEN = {"spark.sql.codegen.wholeStage": "true", "spark.sql.codegen.factoryMode": "FALLBACK"}


def archive_flags() -> str:
    """The JVM flags that map the archive (none when it was not built)."""
    return f"-XX:SharedArchiveFile={ARCHIVE} {_QUIET}" if ARCHIVE.exists() else ""


def submit(command: list[str]) -> list[str]:
    """A test's own ``spark-submit`` command with the tests' settings (spark-submit does not
    read ``PYSPARK_SUBMIT_ARGS``): its drivers and the cluster's executors map the archive
    too, their class path being the same (S3A's jars, the empty conf directory, pyspark's jars)."""
    return [command[0], "--properties-file", str(PROPERTIES), *command[1:]]


def configure(archive_flag: str | None = None, properties: Path = PROPERTIES) -> None:
    """Point this process's (and its children's) pyspark launches at the tests' settings,
    written to ``properties`` with ``archive_flag`` (default: map the archive, when it was
    built) on the drivers' and executors' JVMs."""
    if archive_flag is None:
        archive_flag = archive_flags()
    EMPTY_CONF_DIR.mkdir(parents=True, exist_ok=True)
    lines = DEFAULTS.read_text().splitlines()
    if archive_flag:
        lines = [f"{line} {archive_flag}" if line.startswith(_JAVA_OPTIONS) else line for line in lines]
    fd, tmp = tempfile.mkstemp(dir=HOME)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, properties)                         # concurrent sessions read a whole file
    os.environ["SPARK_CONF_DIR"] = str(EMPTY_CONF_DIR)
    os.environ["PYSPARK_SUBMIT_ARGS"] = f"--properties-file {properties} pyspark-shell"


def workload(spark, work: str) -> None:
    """What most test JVMs do: Delta writes, MERGEs, time travel and a stream; windows,
    joins, Parquet and Arrow; a GBT pipeline fitted, saved; a linear regression."""
    from delta.tables import DeltaTable
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import GBTRegressor, LinearRegression
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    rows = spark.range(2000).select(F.col("id"), (F.col("id") % 50).cast("string").alias("key"),
                                    F.timestamp_seconds(F.col("id") * 60).alias("ts"), (F.col("id") * 0.5).alias("x"))
    rows.write.format("delta").partitionBy("key").save(f"{work}/t")
    for _ in range(2):
        (DeltaTable.forPath(spark, f"{work}/t").alias("t").merge(rows.alias("s"), "t.id = s.id AND t.key = s.key")
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    table = spark.read.format("delta").option("versionAsOf", 1).load(f"{work}/t")
    w = Window.partitionBy("key").orderBy(F.col("ts").cast("long")).rangeBetween(-3600, -1)
    features = table.withColumn("n", F.count("*").over(w))
    latest = table.groupBy("key").agg(F.max("ts").alias("ts"))
    joined = features.join(F.broadcast(latest), ["key", "ts"], "left").join(table.select("id", F.col("x").alias("x2")), "id")
    joined.write.mode("overwrite").parquet(f"{work}/p")
    frame = spark.read.parquet(f"{work}/p").withColumn("y", F.col("id") * 2.0).fillna(0)
    frame.toPandas()
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=["x", "x2", "n"], outputCol="f"),
                                GBTRegressor(featuresCol="f", labelCol="y", maxIter=3)])
    model = pipeline.fit(frame)
    model.write().overwrite().save(f"{work}/model")
    LinearRegression(featuresCol="f", labelCol="y", maxIter=3).fit(model.stages[0].transform(frame))
    query = (spark.readStream.format("delta").load(f"{work}/t").writeStream
             .foreachBatch(lambda batch, _: batch.groupBy("key").count().collect())
             .option("checkpointLocation", f"{work}/cp").trigger(availableNow=True).start())
    query.awaitTermination()
    spark.sql(f"DESCRIBE HISTORY delta.`{work}/t`").collect()


if __name__ == "__main__":
    from palette.spark import session
    ARCHIVE.unlink(missing_ok=True)
    configure(f"-XX:ArchiveClassesAtExit={ARCHIVE} {_QUIET}", HOME / "dump.conf")
    work = tempfile.mkdtemp(prefix="palette-class-archive-")
    try:
        spark = session(app_name="palette-class-archive")
        jvm = spark.sparkContext._gateway.proc
        workload(spark, work)
        spark.stop()
        jvm.stdin.close()                               # the gateway JVM exits on EOF, writing the archive
        jvm.wait(timeout=600)                           # (several seconds): make must not start tests before
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not ARCHIVE.exists():
        sys.exit(f"the JVM exited {jvm.returncode} without writing {ARCHIVE}")
    print(f"{ARCHIVE}: {ARCHIVE.stat().st_size / 2**20:.0f} MiB", file=sys.stderr)
