"""``make demo``: the ETA story end to end, as the scheduled jobs run it, on embedded defaults.

Simulated sources → ``ingest`` (the batch group into Delta; four weeks of order and
location events into their Delta event tables, streamed once through the stream groups) →
``train`` (point-in-time features, time split, MLflow run, registered as
``models:/eta@champion``) → ``materialize`` (SQLite online store) → ``batch_score`` (the
orders into a Delta table) → the streaming jobs started on the event tables: a burst of
orders and a location event published now reach Delta and SQLite within seconds, and one
order is scored without Spark before and after, with the age of each feature →
``palette serve`` over HTTP with feature logging, the log ingested into Delta → the
kitchen queue (an RPC feature, fetched per request from the kitchen service's client)
backfilled from the log (``palette backfill-rpc``) and checked against it
(``palette consistency``) → the model retrained → ``parity`` (HTML report, logged to the
training run) → monitoring: the groups' tables profiled by day (``palette monitor
profile``), and the served traffic — with a busy hour of bigger orders planted in one
region — against the model's training profile (``palette monitor model``: drift, its
importance-weighted drift, HTML report); then a short summary. Everything
lands under ``--workdir`` (default ``demo-out/``), which a rerun starts afresh; the docs'
examples run against it:

- ``store/`` the feature store (``store/events`` the event tables the streams read),
  ``online.db`` the SQLite online store, ``checkpoints/`` the streams' checkpoints;
- ``mlflow.db`` the MLflow store (``models:/eta@champion``), ``model/`` the same model as a
  plain Spark ML directory;
- ``sources/`` the simulated sources (``sources/orders`` the orders with their labels),
  ``requests/`` 2,000 requests, ``predictions/`` the batch scores;
- ``logs/served`` the served requests' feature log (Delta), ``serve.log`` the service's
  output, ``parity.html`` the report; ``logs/raw/_profiles`` the served profiles,
  ``monitoring.html`` the served traffic against the training profile.

::

    python -m palette.examples.demo --orders 20000 --workdir demo-out
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from datetime import datetime, timedelta, timezone


def run(workdir: str, orders: int = 20000, kitchen: str = "python", trees: int = 50) -> dict:
    """The story (see the module); ``kitchen``: how the kitchen queue is fetched, through
    the kitchen service's Python client (``"python"``) or from the service at a URL;
    ``trees``: the GBT's iterations."""
    import mlflow

    from palette.examples import eta
    from palette.jobs import batch_score, materialize, parity, train
    from palette.spark import session
    from palette.store import FeatureStore
    from palette.logs import check_consistency, ingest_logs
    from palette.mlflow.uri import local_model_dir
    from palette.monitor.model_report import model_report
    from palette.monitor.offline import profile_groups
    from palette.monitor.reference import REFERENCE_FILE
    from palette.rpc import backfill_rpc
    from palette.transformers import load_scorer

    started = time.monotonic()
    workdir = os.path.abspath(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir}/mlflow.db"
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    mlflow.create_experiment("eta", artifact_location=f"file://{workdir}/mlartifacts")
    spark = session(app_name="palette-demo")
    spark.sparkContext.setLogLevel("ERROR")

    now = datetime.utcnow().replace(second=0, microsecond=0)
    sim = eta.simulate(f"{workdir}/sources", orders=orders, seed=7, days=28, start=now - timedelta(days=28),
                       kitchen=True)
    store = FeatureStore(f"{workdir}/store")
    eta.declare(store, kitchen=kitchen)
    checkpoints = f"{workdir}/checkpoints"
    ingested = eta.ingest(spark, store, sim, checkpoint=checkpoints)

    def champion():                                 # trained, registered and promoted in MLflow
        return train.run("palette.examples.eta:kitchen_pipeline", sim.paths["orders"], "delivery_minutes", "order_ts",
                         store_root=store.root, experiment="eta", register="eta", alias="champion",
                         pipeline_args={"max_iter": trees}, spark=spark)

    trained = champion()
    online = f"sqlite:///{workdir}/online.db"
    materialize.run(online, store_root=store.root, spark=spark)
    scores = batch_score.run("models:/eta@champion", sim.paths["orders"], f"{workdir}/predictions",
                             run_id=f"{now:%Y-%m-%d}", keep=["order_id", "r_id", "order_ts"], spark=spark)

    model_dir = f"{workdir}/model"                  # the registered model as a plain directory
    shutil.copytree(local_model_dir("models:/eta@champion"), model_dir)
    shutil.copy(os.path.join(os.path.dirname(local_model_dir("models:/eta@champion")), REFERENCE_FILE), model_dir)
    store.record_model(model_dir)
    scorer = load_scorer(model_dir, online_store=online)
    all_orders = spark.read.parquet(sim.paths["orders"])
    latest = all_orders.orderBy("order_ts", ascending=False).first()
    order = {"r_id": latest.r_id, "order_size": 3}                 # a restaurant with recent orders
    timings = []
    for _ in range(1000):
        t0 = time.perf_counter()
        answer = scorer.scoreInstance(order)
        timings.append(time.perf_counter() - t0)
    timings.sort()

    with eta.streams(spark, store, checkpoints, online):
        live = stream_live(spark, store, scorer, online, order)

    from pyspark.sql import functions as F
    # The served traffic: orders like those the model was trained on (a random sample), then a
    # busy hour in one region — bigger orders than usual, the shift monitoring must find.
    sample = all_orders.orderBy(F.rand(7)).limit(400).collect()
    instances = [{"order_id": r.order_id, "r_id": r.r_id, "order_size": r.order_size} for r in sample]
    busy = busy_hour(scorer, instances)
    http_ms, (_, busy_at) = serve(model_dir, online, workdir, [instances, busy["instances"]])
    instances += busy["instances"]
    logged = ingest_logs(spark, f"{workdir}/logs/raw", f"{workdir}/logs/served")
    # The kitchen queue served with each request, from the log into its Delta table; then the
    # served values against what point-in-time lookups read back, and the model retrained.
    backfilled = backfill_rpc(eta.KITCHEN_GROUP, f"{workdir}/logs/served", store=store, spark=spark)
    consistency = check_consistency(spark, f"{workdir}/logs/served", store_root=store.root)
    queue = next(r for r in consistency.rows if r["group"] == eta.KITCHEN_GROUP and r["feature"] == "queue_minutes")
    retrained = champion()

    requests = f"{workdir}/requests"
    all_orders.select("r_id", "order_size").limit(2000) \
        .withColumn("order_ts", F.lit(now)).write.parquet(requests)
    report = parity.run("models:/eta@champion", requests, online_store=online, report=f"{workdir}/parity.html",
                        mlflow_run=retrained["run_id"], spark=spark)
    profiled = profile_groups(spark, store, sorted(store.registry.groups()), window="1d")
    # The served traffic against the training profile (training-serving skew), then the busy
    # hour's window against the traffic served before it.
    skew = model_report("eta", f"{workdir}/logs/raw", last=timedelta(hours=1))
    busy_end = datetime.fromtimestamp(busy_at - busy_at % PROFILE_WINDOW + PROFILE_WINDOW, timezone.utc)
    monitored = model_report("eta", f"{workdir}/logs/raw", last=timedelta(seconds=PROFILE_WINDOW), now=busy_end,
                             reference="trailing:1h")
    monitored.write_html(f"{workdir}/monitoring.html")
    m = trained["metrics"]
    return {"workdir": workdir, "orders": orders, "ingested": ingested["restaurant:batch_fg"]["source_rows"],
            "events": ingested["restaurant:realtime_fg"]["source_rows"] + ingested["restaurant:location_fg"]["source_rows"],
            "rmse": m["rmse"], "baseline_rmse": m["baseline_rmse"], "model": trained["registered"],
            "run_id": trained["run_id"], "order": order, "prediction": answer["prediction"],
            "live": live, "p50_us": timings[len(timings) // 2] * 1e6, "p99_us": timings[int(len(timings) * 0.99)] * 1e6,
            "batch_rows": scores["rows"], "http_requests": len(instances), "http_p50_ms": http_ms[len(http_ms) // 2],
            "logged": logged["added"], "parity_ok": report.ok, "parity_rows": report.rows,
            "kitchen": {"history": ingested[eta.KITCHEN_GROUP]["fetches"], "backfilled": backfilled["fetches"],
                        "fallbacks": backfilled["fallbacks"], "compared": queue["rows"],
                        "mismatch_rate": queue["mismatch_rate"], "fallback_rate": queue["rpc_fallback_rate"],
                        "retrained": retrained["registered"], "rmse": retrained["metrics"]["rmse"]},
            "monitoring": {"profiles": sum(r.rows for r in profiled), "groups": len(profiled),
                           "region": busy["region"], "planted": len(busy["instances"]), "q": monitored.q,
                           "skew": _drift(skew), "busy": _drift(monitored)},
            "seconds": time.monotonic() - started}


def _drift(report) -> dict:
    """A monitoring report in the summary's words."""
    alerts = sorted((t for t in report.alerts if t.test in ("ks", "chi2")), key=lambda t: -t.effect)
    return {"alerts": len({t.feature for t in report.alerts}), "features": len({t.feature for t in report.tests}),
            "alerted": sorted({t.feature for t in report.alerts}),
            "largest": [f"{t.feature} {t.effect:.2f}" for t in alerts[:4]], "iwd": report.latest_iwd}


def busy_hour(scorer, instances: list[dict], n: int = 100, extra: int = 3) -> dict:
    """A busy hour in one region: ``n`` more orders from the restaurants of the region most
    of ``instances`` came from, each ``extra`` items bigger than that order was — the shift
    the monitoring step must find."""
    regions = {}
    for inst in instances:
        region = scorer.scoreInstance({"r_id": inst["r_id"], "order_size": inst["order_size"]}).get("region_id")
        regions.setdefault(region, []).append(inst)
    region, members = max(((r, m) for r, m in regions.items() if r is not None), key=lambda x: len(x[1]))
    out = [{"order_id": -1 - i, "r_id": members[i % len(members)]["r_id"],
            "order_size": members[i % len(members)]["order_size"] + extra} for i in range(n)]
    return {"region": region, "instances": out}


def stream_live(spark, store, scorer, online: str, order: dict, burst: int = 8) -> dict:
    """With the streams running: publish a burst of ``burst`` orders at the order's
    restaurant (in the 30 s before the current minute's boundary, so the window that is in
    effect now counts them) and a location event, wait until the online store serves both,
    and score ``order`` again. Returns the scores, the seconds from publishing to readable
    online, and each looked-up feature's value and age."""
    from palette.examples import eta
    from palette.online import open_store

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    boundary = now.replace(second=0, microsecond=0)
    location = store.read("restaurant:location_fg", spark).where(f"r_id = '{order['r_id']}'") \
        .orderBy("event_ts", ascending=False).first()
    region = eta.region_of(location.lat, location.long)
    before = scorer.scoreInstance(order)["prediction"]
    orders = [(order["r_id"], region, boundary - timedelta(seconds=2 + 3 * i), 2.0) for i in range(burst)]
    spark.createDataFrame(orders, "r_id string, region_id string, order_ts timestamp, order_size double") \
        .write.format("delta").mode("append").save(store.group("restaurant:realtime_fg").source.path)
    spark.createDataFrame([(order["r_id"], now, location.lat, location.long)],
                          "r_id string, event_ts timestamp, lat double, long double") \
        .write.format("delta").mode("append").save(store.group("restaurant:location_fg").source.path)
    published = time.monotonic()
    reader = open_store(online)
    layouts = {g: reader.layout(g) for g in ("restaurant:realtime_fg", "restaurant:location_fg", "region:service_fg")}
    keys = {"restaurant:realtime_fg": order["r_id"], "restaurant:location_fg": order["r_id"],
            "region:service_fg": region}
    want = {"restaurant:location_fg": _micros(now), "restaurant:realtime_fg": _micros(boundary),
            "region:service_fg": _micros(boundary)}
    readable = {}
    while len(readable) < len(want) and time.monotonic() - published < 120:
        for g, layout in layouts.items():
            (found,) = reader.read([(layout, [keys[g]])])
            if g not in readable and found[0] is not None and found[0][0] >= want[g] and \
                    (g == "restaurant:location_fg" or layout.codec().decode(found[0][1])[0] >= burst):
                readable[g] = time.monotonic() - published
        time.sleep(0.05)
    if len(readable) < len(want):
        raise RuntimeError(f"the streams did not make the published events readable within 120 s: "
                           f"{sorted(set(want) - set(readable))} missing; see the stream's output above")
    after = scorer.scoreInstance(order)["prediction"]
    scored_at = _micros(datetime.now(timezone.utc).replace(tzinfo=None))
    ages = {}
    for g, layout in layouts.items():
        (found,) = reader.read([(layout, [keys[g]])])
        values = layout.codec().decode(found[0][1])
        for (name, _), v in zip(layout.features, values):
            ages[name] = (v, (scored_at - found[0][0]) / 1e6)
    reader.close()
    return {"burst": burst, "region": region, "before": before, "after": after,
            "readable_s": max(readable.values()), "ages": ages}


def _micros(t: datetime) -> int:
    return int(t.replace(tzinfo=timezone.utc).timestamp() * 1_000_000)


PROFILE_WINDOW = 5.0          # seconds: the demo's served profiles, short so that the phases fall in windows of their own


def serve(model_dir: str, online: str, workdir: str, phases: list[list[dict]]) -> tuple[list[float], list[float]]:
    """POST each phase's instances to a ``palette serve`` process (feature logging into
    ``workdir/logs/raw``, every request kept, served profiles per ``PROFILE_WINDOW``; its
    output in ``workdir/serve.log``), each phase from the start of a profile window of its
    own, and stop it, which flushes the log and the profiles. The sorted latencies in
    milliseconds, and the time each phase started."""
    import json
    import urllib.request

    from palette.testing import start_service, stop

    proc, url = start_service(["--model", f"eta={model_dir}", "--online-store", online, "--workers", "1",
                               "--log-dir", f"{workdir}/logs/raw", "--log-sample", "1",
                               "--profile-window", str(PROFILE_WINDOW)], f"{workdir}/serve.log")
    timings, starts = [], []
    try:
        for instances in phases:
            time.sleep(PROFILE_WINDOW - time.time() % PROFILE_WINDOW + 0.05)      # the next window
            starts.append(time.time())
            for instance in instances:
                request = urllib.request.Request(url + "/v1/models/eta:predict", method="POST",
                                                 data=json.dumps({"instances": [instance]}).encode(),
                                                 headers={"Content-Type": "application/json"})
                t0 = time.perf_counter()
                urllib.request.urlopen(request, timeout=10).read()
                timings.append((time.perf_counter() - t0) * 1e3)
    finally:
        stop(proc, timeout=60)
    return sorted(timings), starts


def summary(r: dict) -> str:
    w, live, k, mon = r["workdir"], r["live"], r["kitchen"], r["monitoring"]
    sk, bz = mon["skew"], mon["busy"]
    ages = ", ".join(f"{name} {value:g} ({age:.0f} s old)" for name, (value, age) in live["ages"].items())
    return f"""
palette demo: the Uber Eats ETA example, end to end ({r['seconds']:.0f} s)
  data         {r['orders']:,} orders over 28 days; {r['ingested']:,} batch rows ingested and \
{r['events']:,} events streamed into Delta
  model        {r['model']} (alias champion): RMSE {r['rmse']:.2f} min vs {r['baseline_rmse']:.2f} for the \
training mean, on the last week
  batch score  {r['batch_rows']:,} predictions in {w}/predictions (Delta)
  one order    {r['order']} -> {r['prediction']:.1f} min, without Spark: p50 {r['p50_us']:.0f} µs, \
p99 {r['p99_us']:.0f} µs
  streamed     {live['burst']} orders at {r['order']['r_id']} and its location, published now: readable online \
after {live['readable_s']:.1f} s;
               the order now -> {live['after']:.1f} min (was {live['before']:.1f}); features served: {ages}
  served       {r['http_requests']:,} requests to palette serve over HTTP: p50 {r['http_p50_ms']:.1f} ms; \
{r["logged"]:,} logged requests with their features in {w}/logs/served (Delta)
  rpc feature  the kitchen queue, fetched per request: {k['history']:,} orders' history asked of the service \
as of their time;
               {k['backfilled']:,} served fetches backfilled from the log ({k['fallbacks']} fallbacks kept apart): \
{k['compared']:,} compared, mismatch rate {k['mismatch_rate']:.0%}
               retrained after the backfill: {k['retrained']} (RMSE {k['rmse']:.2f} min), the champion now
  parity       {'PASS' if r['parity_ok'] else 'FAIL'} on {r['parity_rows']:,} requests: {w}/parity.html
  monitoring   {mon['profiles']:,} profiles of {mon['groups']} groups' daily windows (palette_profiles); \
false discovery rate {mon['q']:g}:
               served vs training: {sk['alerts']} of {sk['features']} features differ ({', '.join(sk['largest'])}: \
requests replayed now, not at their order times); IWD {sk['iwd']:.3f}
               {mon['planted']} bigger orders in region {mon['region']} vs the traffic before: {bz['alerts']} alert \
({', '.join(bz['largest'])}); IWD {bz['iwd']:.3f}: {w}/monitoring.html
  MLflow       MLFLOW_TRACKING_URI=sqlite:///{w}/mlflow.db mlflow ui   (run {r['run_id']})
  serve it     MLFLOW_TRACKING_URI=sqlite:///{w}/mlflow.db palette serve --model eta=models:/eta@champion \\
                 --online-store sqlite:///{w}/online.db
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m palette.examples.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--workdir", default="demo-out")
    parser.add_argument("--trees", type=int, default=50, help="the GBT's iterations (default 50)")
    parser.add_argument("--kitchen", default="python", help="fetch the kitchen queue through the kitchen service's "
                        "Python client (python, the default) or from the service at this URL "
                        "(python -m palette.examples.kitchen --port N)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("py4j", "mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    result = run(args.workdir, args.orders, args.kitchen, args.trees)
    print(summary(result))
    return 0 if result["parity_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
