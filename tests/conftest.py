"""One SparkSession for the whole run (pytest-spark's ``spark_session``), local[2], with
the Delta jars from the local Maven repository."""
import pytest


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
