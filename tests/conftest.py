"""One SparkSession for the whole run (pytest-spark's ``spark_session``), local[2], with
the Delta jars from the local Maven repository."""
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

# Python workers (mapInArrow in materialization) run this interpreter, where palette is installed.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    from pytest_spark.config import SparkConfigBuilder

    from palette.spark import delta_conf

    conf = SparkConfigBuilder.get()
    for key, value in delta_conf().items():
        conf.set(key, value)
        SparkConfigBuilder.options[key] = value


@pytest.fixture(params=["true", "false"], ids=["ansi", "no-ansi"])
def ansi(request, spark_session):
    """Run a test under spark.sql.ansi.enabled=true and =false."""
    old = spark_session.conf.get("spark.sql.ansi.enabled")
    spark_session.conf.set("spark.sql.ansi.enabled", request.param)
    yield request.param
    spark_session.conf.set("spark.sql.ansi.enabled", old)


@pytest.fixture(scope="module")
def small_delta_snapshots(spark_session):
    """Tiny tables: rebuild Delta snapshots in 2 partitions, not 50 (speed only; same results)."""
    key = "spark.databricks.delta.snapshotPartitions"
    old = spark_session.conf.get(key, None)
    spark_session.conf.set(key, "2")
    yield
    if old is None:
        spark_session.conf.unset(key)
    else:
        spark_session.conf.set(key, old)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on a free loopback port for the test session: (url, process).
    ``make test`` installs redis-server from the OS packages."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: run `make test` (it installs it), or apt-get install redis-server")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def redis_url(redis_server):
    return redis_server[0]
