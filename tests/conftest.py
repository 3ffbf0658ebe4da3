"""One SparkSession for the whole run (pytest-spark's ``spark_session``), local[2], with
the Delta jars from the local Maven repository."""
import os
import sys

import pytest

import spark_env

# Python workers (mapInArrow in materialization) run this interpreter, where palette is installed.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
# Every JVM the tests start reads tests/spark_conf/spark-defaults.conf (tiny data's settings)
# and maps the class archive make test built (tests/spark_env.py).
spark_env.configure()


def pytest_collection_modifyitems(config, items):
    """``spark``: every test that needs a JVM — through pytest-spark's ``spark_session``
    (directly or through a fixture that uses it) or by starting Spark itself (a module's
    ``pytestmark``). ``pytest -m "not spark"`` runs the JVM-free half."""
    for item in items:
        if "spark_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    from pytest_spark.config import SparkConfigBuilder

    from palette.spark import delta_conf

    conf = SparkConfigBuilder.get()
    java = f"{SparkConfigBuilder.options.get('spark.driver.extraJavaOptions', '')} {spark_env.archive_flags()}"
    for key, value in {**delta_conf(), "spark.driver.extraJavaOptions": java.strip()}.items():
        conf.set(key, value)
        SparkConfigBuilder.options[key] = value


@pytest.fixture(params=["true", "false"], ids=["ansi", "no-ansi"])
def ansi(request, spark_session):
    """Run a test under spark.sql.ansi.enabled=true and =false."""
    old = spark_session.conf.get("spark.sql.ansi.enabled")
    spark_session.conf.set("spark.sql.ansi.enabled", request.param)
    yield request.param
    spark_session.conf.set("spark.sql.ansi.enabled", old)


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server on a free loopback port for the test session: (url, process).
    ``make test`` installs redis-server from the OS packages."""
    from palette.testing import redis_server as start
    with start() as server:
        yield server


@pytest.fixture
def redis_url(redis_server):
    return redis_server[0]


@pytest.fixture(scope="session")
def kitchen_service():
    """The ETA example's kitchen service (an RPC feature's source, palette.examples.kitchen),
    a real HTTP server in its own process on a free loopback port: its URL."""
    from palette.testing import start_kitchen, stop
    proc, url = start_kitchen()
    yield url
    stop(proc)


@pytest.fixture
def kitchen(kitchen_service):
    """The kitchen service, reset to answering fast, no request of an earlier test still in
    flight, its counters at zero."""
    import time

    from palette.testing import kitchen_mode, kitchen_stats
    kitchen_mode(kitchen_service, "fast", delay_ms=0, slow_ms=2000)
    deadline = time.monotonic() + 15
    while kitchen_stats(kitchen_service)["inflight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    kitchen_mode(kitchen_service, "fast", reset=True)
    return kitchen_service


@pytest.fixture(scope="session")
def eta(spark_session, tmp_path_factory):
    """The ETA pipeline in both spellings, fitted and saved, with Spark's outputs (tests/eta_fixtures.py)."""
    from eta_fixtures import build_eta
    return build_eta(spark_session, tmp_path_factory)


@pytest.fixture(scope="session")
def online_urls(eta, redis_server, spark_session):
    """The ETA features materialized into SQLite and the session's Redis: {"sqlite": url, "redis": url}."""
    from eta_fixtures import materialize_eta
    return materialize_eta(eta, redis_server, spark_session)


@pytest.fixture(scope="session")
def kafka_servers():
    """A real Apache Kafka broker (KRaft, Kafka's own jars fetched by ``make jars``) on free
    loopback ports for the test session: its bootstrap servers."""
    from palette.testing import kafka_server
    with kafka_server() as (servers, _):
        yield servers


@pytest.fixture(scope="session")
def spark_cluster():
    """A Spark standalone cluster on loopback for the test session — a master and two
    workers of one core, each its own JVM from the pinned pyspark's ``spark-class``
    (palette.testing.spark_cluster) — started only by the tests that ask: (master URL, web UI URL)."""
    from palette.testing import spark_cluster as start
    with start() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_cluster():
    """A real Redis Cluster on free loopback ports for the test session: 3 masters and 3
    replicas (redis-server from the OS packages, ``redis-cli --cluster create``), node
    timeout 2 s so a failover takes seconds: a ``palette.testing.RedisClusterNodes``."""
    from palette.testing import redis_cluster as start
    with start(masters=3, replicas=1, node_timeout_ms=2000) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def s3():
    """A real S3-compatible server (SeaweedFS, built by ``make s3``) on free loopback ports for
    the test session, with one bucket and SigV4 credentials: a ``palette.testing.S3Endpoint``."""
    from palette.testing import s3_server
    with s3_server() as endpoint:
        yield endpoint
