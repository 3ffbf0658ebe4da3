"""No driver collect of data-sized results: the materialize, consistency and parity jobs
over one group of 1M keys, in an application submitted to the standalone cluster with a
512 MB driver and ``spark.driver.maxResultSize=8m`` (tests/scale/bounded_driver_app.py).
Collecting the keys, the logged reads or the per-partition results to the driver would
exceed the limit and fail the job."""
import json
import os
import subprocess

import pytest

from palette.testing import submit_command
import spark_env

pytestmark = pytest.mark.spark
KEYS = 1_000_000


@pytest.fixture
def redis_db(redis_url):
    """A database of the session's Redis of its own, emptied afterwards: a million keys
    are not left in the others' way."""
    import redis
    url = redis_url.rsplit("/", 1)[0] + "/9"
    yield url
    redis.Redis.from_url(url).flushdb()


def test_jobs_over_a_million_keys_pass_with_a_small_driver(spark_cluster, redis_db, tmp_path):
    import redis
    app = os.path.join(os.path.dirname(__file__), "bounded_driver_app.py")
    done = subprocess.run(spark_env.submit(submit_command(spark_cluster[0], app, [str(tmp_path), redis_db, str(KEYS)], {
        "spark.driver.memory": "512m", "spark.driver.maxResultSize": "8m", "spark.executor.memory": "1g",
        "spark.sql.shuffle.partitions": "8",
        # a million keys: generated code and the server compiler, not what tests/spark_conf gives tiny data
        **spark_env.CODEGEN,
        "spark.driver.extraJavaOptions": f"-XX:+UseG1GC {spark_env.archive_flags()}",
        "spark.executor.extraJavaOptions": f"-XX:+UseG1GC {spark_env.archive_flags()}"})),
        capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads([l for l in done.stdout.splitlines() if l.startswith("{")][-1])
    assert (result["maxResultSize"], result["driver_memory"]) == ("8m", "512m")
    assert result["master"] == spark_cluster[0]
    errors = "\n".join(line for line in done.stderr.splitlines() if " ERROR " in line or "failed" in line)
    assert (result["materialize"], result["consistency"], result["parity"]) == (0, 0, 0), errors[-4000:]

    report = json.loads((tmp_path / "consistency.json").read_text())
    assert [(r["rows"], r["match_rate"]) for r in report["rows"]] == [(KEYS, 1.0)]
    parity = json.loads((tmp_path / "parity.json").read_text())
    assert parity["ok"] is True and parity["rows"] == 5000
    assert redis.Redis.from_url(redis_db).dbsize() >= KEYS
