"""A Spark application (``spark-submit`` it with a small driver and a low
``spark.driver.maxResultSize``) that runs the materialize, consistency and parity jobs over
one group of N keys: data-sized work must stay on the executors, only summaries may reach
the driver. Prints one JSON line: each job's exit code and the settings it ran under.

    spark-submit --conf spark.driver.maxResultSize=8m --conf spark.driver.memory=512m \\
        bounded_driver_app.py WORKDIR REDIS_URL N
"""
import json
import sys
from datetime import datetime, timedelta

from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_type

from palette import Entity, FeatureGroup, FeatureStore, PaletteTransformer
from palette.jobs import consistency, materialize, parity
from palette.logs.writer import FEATURE
from palette.spark import session

GROUP = "item:stats_fg"


def feature_logs(spark, n: int, base: datetime):
    """One logged read per key, served the value the store holds: every read matches."""
    i = F.col("id")
    values = {"column": F.lit("score"), "group": F.lit(GROUP), "feature": F.lit("score"),
              "key": F.concat(F.lit("k"), i.cast("string")), "type": F.lit("num"), "num": i * 0.5,
              "event_time": F.lit(base) - F.make_dt_interval(secs=i % 1000)}
    entry = F.struct(*[values.get(f.name, F.lit(None)).cast(f.dataType).alias(f.name)
                       for f in from_arrow_type(FEATURE).fields])
    return spark.range(n).select(F.concat(F.lit("q"), i.cast("string")).alias("request_id"),
                                 F.lit(base + timedelta(hours=1)).alias("request_time"), F.lit("1").alias("version"),
                                 F.lit(None).cast("string").alias("keys"), F.array(entry).alias("features"),
                                 *[F.lit("{}").alias(c) for c in ("request", "inputs", "prediction")],
                                 F.lit((base + timedelta(hours=1)).date()).alias("date"), F.lit("m").alias("model"))


def main(workdir: str, redis_url: str, n: int) -> dict:
    spark = session()
    base = datetime.utcnow().replace(microsecond=0) - timedelta(days=1)
    store = FeatureStore(f"{workdir}/store")
    store.register(Entity("item", {"item_id": "str"}), FeatureGroup("item", "stats_fg", {"score": "num"}))
    i = F.col("id")
    store.ingest(spark.range(n).select(F.concat(F.lit("k"), i.cast("string")).alias("item_id"),
                                       (F.lit(base) - F.make_dt_interval(secs=i % 1000)).alias("event_ts"),
                                       (i * 0.5).alias("score")), GROUP)
    feature_logs(spark, n, base).write.partitionBy("date", "model").parquet(f"{workdir}/logs")
    spark.range(n).select(F.concat(F.lit("k"), i.cast("string")).alias("item_id"),
                          F.current_timestamp().alias("ts")).write.parquet(f"{workdir}/requests")
    PaletteTransformer({"score": f"@palette:{GROUP}:score:item_id"}, timestampCol="ts",
                       storeRoot=store.root).write().save(f"{workdir}/model")
    return {
        "maxResultSize": spark.conf.get("spark.driver.maxResultSize"),
        "driver_memory": spark.conf.get("spark.driver.memory"),
        "master": spark.sparkContext.master,
        "materialize": materialize.main(["--online-store", redis_url, "--full", "--store", store.root]),
        "consistency": consistency.main(["--logs", f"{workdir}/logs", "--store", store.root, "--min-match-rate", "1",
                                         "--json", f"{workdir}/consistency.json"]),
        "parity": parity.main(["--model", f"{workdir}/model", "--data", f"{workdir}/requests", "--online-store",
                               redis_url, "--sample", "5000", "--json", f"{workdir}/parity.json"]),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))), flush=True)
