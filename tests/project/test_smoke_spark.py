from palette.dsl.spark_backend import to_column


def test_delta_round_trip(spark_session, tmp_path):
    path = str(tmp_path / "t")
    spark_session.range(5).write.format("delta").save(path)
    assert spark_session.read.format("delta").load(path).count() == 5


def test_to_column_runs(spark_session, ansi):
    df = spark_session.createDataFrame([(1.0,), (None,)], "x double")
    got = [r[0] for r in df.select(to_column('nFill(nVal("x"), -1) / 0')).collect()]
    assert got == [None, None]
