"""Object storage: a real S3-compatible server (SeaweedFS on loopback, the session's ``s3``
fixture), reached by a plain S3 client and by Spark through hadoop-aws (``s3a://``)."""
import os
import subprocess
import sys
import uuid

import pytest


def _client(s3, secret_key=None):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=s3.endpoint, region_name=s3.region, aws_access_key_id=s3.access_key,
                        aws_secret_access_key=secret_key or s3.secret_key,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def _status(error) -> int:
    return error.response["ResponseMetadata"]["HTTPStatusCode"]


def test_requests_signed_with_a_wrong_secret_are_refused(s3):
    from botocore.exceptions import ClientError
    key = f"auth/{uuid.uuid4().hex}"
    _client(s3).put_object(Bucket=s3.bucket, Key=key, Body=b"kept")
    forged = _client(s3, secret_key=s3.secret_key[::-1])
    for call in (lambda: forged.get_object(Bucket=s3.bucket, Key=key),
                 lambda: forged.put_object(Bucket=s3.bucket, Key=key, Body=b"overwritten")):
        with pytest.raises(ClientError) as refused:
            call()
        assert _status(refused.value) == 403
        assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert _client(s3).get_object(Bucket=s3.bucket, Key=key)["Body"].read() == b"kept"


def test_put_if_absent_writes_a_new_key_and_refuses_an_existing_one(s3):
    """S3 conditional writes (``If-None-Match: *``), which delta-rs commits with: the server
    creates a new key and answers 412 for an existing one, leaving it as it was."""
    from botocore.exceptions import ClientError
    client, key = _client(s3), f"conditional/{uuid.uuid4().hex}"
    client.put_object(Bucket=s3.bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=s3.bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert _status(refused.value) == 412
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == b"first"


@pytest.mark.spark
def test_spark_writes_appends_and_time_travels_a_delta_table_on_s3a(spark_session, s3):
    from palette.spark import configure_s3a
    configure_s3a(spark_session, s3.endpoint, s3.access_key, s3.secret_key)
    name = f"delta/{uuid.uuid4().hex}"
    path = s3.uri(name)
    spark_session.range(5).selectExpr("id", "id * 10 AS value").write.format("delta").save(path)
    spark_session.range(5, 8).selectExpr("id", "id * 10 AS value").write.format("delta").mode("append").save(path)

    latest = spark_session.read.format("delta").load(path)
    assert sorted(tuple(r) for r in latest.collect()) == [(i, i * 10) for i in range(8)]
    first = spark_session.read.format("delta").option("versionAsOf", 0).load(path)
    assert sorted(r.id for r in first.collect()) == list(range(5))
    history = spark_session.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    assert sorted(r.version for r in history) == [0, 1]
    log = _client(s3).list_objects_v2(Bucket=s3.bucket, Prefix=f"{name}/_delta_log/")["Contents"]
    assert {f"{name}/_delta_log/{v:020d}.json" for v in (0, 1)} <= {o["Key"] for o in log}


@pytest.mark.spark
def test_a_session_reaches_the_server_named_by_the_aws_environment_variables(s3):
    """``palette.spark.session()`` in a process whose environment names the server (what a
    job run with ``AWS_ENDPOINT_URL`` and keys does) writes and reads Delta on ``s3a://``."""
    path = s3.uri(f"env/{uuid.uuid4().hex}")
    code = ("import sys; from palette.spark import session; spark = session(); "
            "spark.range(3).write.format('delta').save(sys.argv[1]); "
            "print(spark.read.format('delta').load(sys.argv[1]).count())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out = subprocess.run([sys.executable, "-c", code, path], env={**env, **s3.env()}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "3"
