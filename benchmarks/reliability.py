"""Reliability under load, faults and bad input, measured: `make reliability`.

Every scenario runs on loopback with real processes — `palette serve` (2 workers), a real
`redis-server`, SQLite files, the `palette` jobs under a real JVM — and is bounded in time.
The figures go to the console and to docs/reliability.md (scenario, what is expected,
what was measured), rewritten by each run:

  (a) soak: Redis, 1,000 requests/s open loop (vegeta) for SOAK_MINUTES (10; ``--rows N``
      makes it N): errors, p50 / p99 / p99.9 per minute, each worker's RSS and open file
      descriptors per minute (goal: 0 errors, RSS and descriptors flat within 10 %);
  (b) store faults under load, Redis: killed (-9) and restarted, then paused (CLIENT PAUSE)
      longer than the lookup timeout; SQLite: the file corrupted, repaired, removed, put
      back, replaced. Requests to a model that reads the store must get a 503 JSON within
      the configured timeout, requests to a model that does not must all succeed, service
      must be full within 1 s of the store's return, and no worker may die;
  (c) a worker killed (-9) under load: the supervisor starts another; the requests lost
      are those the killed worker held;
  (d) materialization killed (-9, the whole process group with its JVM) at MAT_KILLS (20)
      random moments of incremental and full runs: after each kill, a watermark that moved
      covers data already written (the online store equals the offline view at the
      watermark's version, cell for cell); after a final rerun, the online store equals
      the offline latest view cell for cell;
  (e) racing writers: two ingest jobs into one group at once, and an ingest racing a
      materialization: no row lost, duplicated or torn against an oracle;
  (f) fuzzing (atheris) of the DSL, the request decoders and model loading, FUZZ_SECONDS
      (60) per target: executions and findings (goal 0).

    make reliability                        # .venv/bin/python benchmarks/run.py --only reliability
    .venv/bin/python benchmarks/run.py --only reliability --rows 2     # a 2-minute soak
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _common import heading, spark_session
from _load import percentile, read_results, start_attack, summary, write_targets

SOAK_MINUTES = 10
MAT_KILLS = 20
MAT_KEYS = 200_000
RACES = 3
FUZZ_SECONDS = 60
STORE_TIMEOUT_MS = 100
ROOT = Path(__file__).resolve().parent.parent
GOALS = {"soak_errors": ("==", 0), "soak_rss_growth_pct_max": ("<=", 10.0), "soak_fd_growth": ("<=", 0),
         "redis_fault_plain_errors": ("==", 0), "redis_fault_non_503_errors": ("==", 0),
         "redis_fault_503_max_ms": ("<=", 2.0 * STORE_TIMEOUT_MS), "redis_fault_recovery_s_max": ("<=", 1.0),
         "redis_fault_worker_deaths": ("==", 0), "sqlite_fault_plain_errors": ("==", 0),
         "sqlite_fault_non_503_errors": ("==", 0), "sqlite_fault_recovery_s_max": ("<=", 1.0),
         "sqlite_fault_replace_errors": ("==", 0), "sqlite_fault_worker_deaths": ("==", 0),
         "worker_kill_restart_s": ("<=", 10.0), "worker_kill_errors_after_restart": ("==", 0),
         "materialize_kill_watermark_violations": ("==", 0), "materialize_kill_final_mismatches": ("==", 0),
         "race_ingest_mismatches": ("==", 0), "race_materialize_mismatches": ("==", 0), "fuzz_findings": ("==", 0)}

ROWS: list[tuple[str, str, str]] = []          # (scenario, expected, measured) for the docs page


def report(scenario: str, expected: str, measured: str) -> None:
    ROWS.append((scenario, expected, measured))
    print(f"  {scenario}: {measured}", flush=True)


# -- processes --------------------------------------------------------------------------

def workers(supervisor: int) -> list[int]:
    """The worker processes of a `palette serve` supervisor."""
    try:
        kids = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    except OSError:
        return []
    out = []
    for k in kids:
        try:
            if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes():
                out.append(int(k))
        except OSError:
            pass
    return sorted(out)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def redis_command(port: int, *args: str) -> bytes:
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(payload.encode())
        return s.recv(256)


def at(t0: float, offset: float) -> None:
    """Sleep until ``offset`` seconds after ``t0``."""
    time.sleep(max(0.0, t0 + offset - time.time()))


# -- models -----------------------------------------------------------------------------

def models(spark, workdir: str):
    """(ETA feature store, the ETA model reading it, a model reading no feature)."""
    from online_serving import fitted_eta

    from palette import DSLTransformer, nVal
    from pyspark.ml import Pipeline
    store, _, eta = fitted_eta(spark, workdir, datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None))
    plain = f"{workdir}/plain_model"
    df = spark.createDataFrame([(1,)], "order_size int")
    Pipeline(stages=[DSLTransformer(lambdas={"size2": nVal("basis:order_size") * 2})]).fit(df).write().save(plain)
    return store, eta, plain


def targets(base: str, ids: list[str], workdir: str, name: str) -> str:
    """ETA requests (reading the store) alternating with requests to the plain model."""
    reqs = []
    for i in ids:
        eta_body = json.dumps({"instances": [{"r_id": i, "order_size": 2}]}).encode()
        reqs.append((f"{base}/v1/models/eta:predict", eta_body))
        reqs.append((f"{base}/v1/models/plain:predict", json.dumps({"instances": [{"order_size": 2}]}).encode()))
    return write_targets(f"{workdir}/{name}.json", reqs)


def serve(eta: str, plain: str, online: str, workdir: str, name: str):
    from palette.testing import start_service
    return start_service(["--model", f"eta={eta}", "--model", f"plain={plain}", "--online-store", online,
                          "--workers", "2", "--store-timeout-ms", str(STORE_TIMEOUT_MS), "--log-level", "warning"],
                         f"{workdir}/{name}.log")


# -- (a) soak ---------------------------------------------------------------------------

def soak(eta, plain, redis_url, ids, workdir, minutes: int, fig: dict) -> None:
    from palette.testing import stop
    proc, base = serve(eta, plain, redis_url, workdir, "soak")
    tg = write_targets(f"{workdir}/soak.json", [(f"{base}/v1/models/eta:predict", json.dumps(
        {"instances": [{"r_id": i, "order_size": 3}]}).encode()) for i in ids])
    per_minute = []
    try:
        pids = workers(proc.pid)
        for m in range(minutes):
            rec = read_results_of(start_attack(tg, 1000, 60, f"{workdir}/soak.bin"), f"{workdir}/soak.bin")
            s = summary(rec)
            s["failed"] = sorted({f"{r['code']} {r['error'][-50:]}".strip() for r in rec if r["code"] != 200})
            now = workers(proc.pid)
            s.update(rss={p: rss_mib(p) for p in now}, fds={p: open_fds(p) for p in now}, same=now == pids)
            per_minute.append(s)
            print(f"  soak minute {m + 1}: {s['requests']:,} requests, {s['errors']} errors, p50 {s['p50_ms']:.2f} "
                  f"p99 {s['p99_ms']:.2f} p99.9 {s['p999_ms']:.2f} ms; RSS "
                  f"{', '.join(f'{v:.0f}' for v in s['rss'].values())} MiB; fds "
                  f"{', '.join(map(str, s['fds'].values()))}{'; failed: ' + ', '.join(s['failed']) if s['failed'] else ''}",
                  flush=True)
    finally:
        stop(proc, timeout=60)
    first, last = per_minute[min(1, len(per_minute) - 1)], per_minute[-1]     # minute 1 warms up
    growth = [100 * (last["rss"][p] - first["rss"][p]) / first["rss"][p] for p in last["rss"] if p in first["rss"]]
    fig["soak_errors"] = sum(m["errors"] for m in per_minute)
    fig["soak_p99_ms_max"] = max(m["p99_ms"] for m in per_minute)
    fig["soak_p999_ms_max"] = max(m["p999_ms"] for m in per_minute)
    fig["soak_rss_growth_pct_max"] = max(growth) if growth else float("nan")
    fig["soak_fd_growth"] = max(last["fds"][p] - first["fds"].get(p, last["fds"][p]) for p in last["fds"])
    report(f"soak: {minutes} min at 1,000 req/s, Redis, 2 workers",
           "no error; p99 steady; RSS and open descriptors flat within 10 %",
           f"{sum(m['requests'] for m in per_minute):,} requests, {fig['soak_errors']} failed"
           f"{' (' + ', '.join(sorted({f for m in per_minute for f in m['failed']})) + ')' if fig['soak_errors'] else ''}"
           f"; p50 per minute "
           f"{min(m['p50_ms'] for m in per_minute):.2f}-{max(m['p50_ms'] for m in per_minute):.2f} ms, p99 "
           f"{min(m['p99_ms'] for m in per_minute):.2f}-{fig['soak_p99_ms_max']:.2f} ms, p99.9 up to "
           f"{fig['soak_p999_ms_max']:.2f} ms; worker RSS from minute 2 to {minutes}: "
           f"{', '.join(f'{g:+.1f} %' for g in growth)}; descriptors {fig['soak_fd_growth']:+d}; "
           f"workers never restarted: {all(m['same'] for m in per_minute)}")


def read_results_of(proc: subprocess.Popen, path: str) -> list[dict]:
    proc.wait(timeout=300)
    return read_results(path)


# -- (b) store faults -------------------------------------------------------------------

def outage_figures(records, windows, back_times, label: str, fig: dict, check_503_latency: bool = True) -> dict:
    """What the requests of a fault run got. ``windows``: (start, end) of each outage;
    ``back_times``: when the store was back, one per window."""
    eta = [r for r in records if "/eta:" in r["url"]]
    plain = [r for r in records if "/plain:" in r["url"]]
    inside = [r for r in eta if any(a <= r["t"] < b for a, b in windows)]
    outside = [r for r in eta if not any(a <= r["t"] < b + 1.0 for a, b in windows)]
    failed_503 = [r for r in eta if r["code"] == 503]
    other = [r for r in eta if r["code"] not in (200, 503)]
    recovery = []
    for i, back in enumerate(back_times):
        until = min([back + 5] + [a for a, _ in windows[i + 1:]])       # up to the next outage
        later = [r for r in eta if back <= r["t"] < until]
        bad = [r["t"] for r in later if r["code"] != 200]
        recovery.append(max(0.0, (max(bad) - back) if bad else 0.0))
    plain_inside = [r["ms"] for r in plain if any(a <= r["t"] < b for a, b in windows)]
    out = {"plain_errors": sum(r["code"] != 200 for r in plain), "plain_requests": len(plain),
           "plain_p99_ms_in_outage": percentile(plain_inside, 0.99) if plain_inside else 0.0,
           "eta_in_outage": len(inside), "eta_503_in_outage": sum(r["code"] == 503 for r in inside),
           "non_503_errors": len(other), "errors_outside": sum(r["code"] != 200 for r in outside),
           "recovery_s": recovery, "503_max_ms": max((r["ms"] for r in failed_503), default=0.0),
           "503_p99_ms": percentile([r["ms"] for r in failed_503], 0.99) if failed_503 else 0.0,
           "other_codes": sorted({r["code"] for r in other})}
    fig[f"{label}_fault_plain_errors"] = out["plain_errors"]
    fig[f"{label}_fault_non_503_errors"] = out["non_503_errors"]
    fig[f"{label}_fault_recovery_s_max"] = max(recovery)
    if check_503_latency:
        fig[f"{label}_fault_503_max_ms"] = out["503_max_ms"]
    return out


def redis_faults(eta, plain, ids, workdir, store, spark, fig: dict) -> None:
    from palette.testing import free_port, start_redis, stop
    port = free_port()
    data = f"{workdir}/redis-faults"
    os.makedirs(data, exist_ok=True)
    redis = start_redis(port, data, persist=True)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        store.materialize(online_store=url, spark=spark)
        proc, base = serve(eta, plain, url, workdir, "redis-faults")
        try:
            pids = workers(proc.pid)
            results = f"{workdir}/redis-faults.bin"
            attack = start_attack(targets(base, ids, workdir, "redis-faults"), 400, 26, results)
            t0 = time.time()
            at(t0, 5)
            kill = time.time()
            redis.kill()
            redis.wait()
            at(t0, 10)
            redis = start_redis(port, data, persist=True)
            back1 = time.time()
            at(t0, 16)
            pause = time.time()
            redis_command(port, "CLIENT", "PAUSE", "3000", "ALL")
            back2 = pause + 3.0
            records = read_results_of(attack, results)
            deaths = len(set(pids) - set(workers(proc.pid)))
        finally:
            stop(proc, timeout=60)
    finally:
        redis.kill()
        redis.wait()
    o = outage_figures(records, [(kill, back1), (pause, back2)], [back1, back2], "redis", fig)
    fig["redis_fault_worker_deaths"] = deaths
    report("Redis killed (-9) for 5 s, restarted; then paused (CLIENT PAUSE) 3 s, under 400 req/s "
           f"(--store-timeout-ms {STORE_TIMEOUT_MS})",
           "store-reading requests: 503 JSON within the timeout; the other model: all served; full service "
           "within 1 s of the store's return; no worker dies",
           f"{o['eta_503_in_outage']:,} of {o['eta_in_outage']:,} store-reading requests during the outages got 503 "
           f"(max {o['503_max_ms']:.0f} ms, p99 {o['503_p99_ms']:.0f} ms), {o['non_503_errors']} other errors "
           f"{o['other_codes'] or ''}; the other model: {o['plain_errors']} errors of {o['plain_requests']:,} (p99 "
           f"{o['plain_p99_ms_in_outage']:.1f} ms during the outages); back "
           f"to full service {', '.join(f'{r:.2f} s' for r in o['recovery_s'])} after the store's return; "
           f"worker deaths: {deaths}")


def sqlite_faults(eta, plain, ids, workdir, store, spark, fig: dict) -> None:
    from palette.online import publish_sqlite
    from palette.testing import stop
    db = Path(workdir) / "faults.db"
    url = f"sqlite:///{db}"
    store.materialize(online_store=url, spark=spark)
    good = _snapshot(db, Path(workdir) / "faults-good.db")

    def put_back():
        publish_sqlite(str(_copy(good, Path(workdir) / "faults-copy.db")), url)
        return time.time()

    proc, base = serve(eta, plain, url, workdir, "sqlite-faults")
    try:
        pids = workers(proc.pid)
        results = f"{workdir}/sqlite-faults.bin"
        attack = start_attack(targets(base, ids, workdir, "sqlite-faults"), 400, 26, results)
        t0 = time.time()
        at(t0, 4)
        corrupt = time.time()
        with open(db, "r+b") as f:                     # the header and the first pages: garbage
            f.write(os.urandom(64 * 1024))
        at(t0, 8)
        back1 = put_back()
        at(t0, 12)
        removed = time.time()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        at(t0, 16)
        back2 = put_back()
        at(t0, 20)
        replaced = put_back()                          # a new file under load: no error expected
        records = read_results_of(attack, results)
        deaths = len(set(pids) - set(workers(proc.pid)))
    finally:
        stop(proc, timeout=60)
    o = outage_figures(records, [(corrupt, back1), (removed, back2)], [back1, back2], "sqlite", fig,
                       check_503_latency=False)
    after_replace = [r for r in records if "/eta:" in r["url"] and r["t"] >= replaced]
    fig["sqlite_fault_replace_errors"] = sum(r["code"] != 200 for r in after_replace)
    fig["sqlite_fault_worker_deaths"] = deaths
    report("SQLite file corrupted in place for 4 s, put back; removed for 4 s, put back; replaced (publish) "
           "under 400 req/s",
           "store-reading requests: 503 JSON (or the last good pages a reader still holds); the other model: all "
           "served; full service within 1 s of the file's return; a replacement serves without an error",
           f"{o['eta_503_in_outage']:,} of {o['eta_in_outage']:,} store-reading requests while the file was "
           f"corrupted or gone got 503 (the rest were answered from pages the readers held), {o['non_503_errors']} "
           f"other errors {o['other_codes'] or ''}; the other model: {o['plain_errors']} errors of "
           f"{o['plain_requests']:,} (p99 {o['plain_p99_ms_in_outage']:.1f} ms during the outages); back to full "
           f"service {', '.join(f'{r:.2f} s' for r in o['recovery_s'])} after the file's return; "
           f"{fig['sqlite_fault_replace_errors']} errors after the replacement; worker "
           f"deaths: {deaths}")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def _snapshot(db: Path, dst: Path) -> Path:
    """A consistent copy of a SQLite file in use (its write-ahead log included)."""
    import sqlite3
    src, out = sqlite3.connect(f"file:{db}?mode=ro", uri=True), sqlite3.connect(dst)
    try:
        src.backup(out)
    finally:
        src.close()
        out.close()
    return dst


# -- (c) a worker killed ----------------------------------------------------------------

def worker_kill(eta, plain, redis_url, ids, workdir, fig: dict) -> None:
    from palette.testing import stop
    proc, base = serve(eta, plain, redis_url, workdir, "worker-kill")
    try:
        before = workers(proc.pid)
        results = f"{workdir}/worker-kill.bin"
        attack = start_attack(targets(base, ids, workdir, "worker-kill"), 1000, 20, results)
        t0 = time.time()
        at(t0, 5)
        victim = before[0]
        killed = time.time()
        os.kill(victim, signal.SIGKILL)
        restarted = None
        while time.time() < killed + 60:
            now = workers(proc.pid)
            if len(now) == len(before) and victim not in now:
                restarted = time.time()
                break
            time.sleep(0.05)
        records = read_results_of(attack, results)
    finally:
        stop(proc, timeout=60)
    failed = [r for r in records if r["code"] != 200]
    ready = max((r["t"] for r in failed), default=killed)
    fig["worker_kill_failed_requests"] = len(failed)
    fig["worker_kill_restart_s"] = (restarted - killed) if restarted else float("inf")
    fig["worker_kill_errors_after_restart"] = sum(1 for r in failed if restarted and r["t"] > restarted + 5)
    report("one of 2 workers killed (-9) under 1,000 req/s",
           "the supervisor starts another; only the requests the killed worker held are lost",
           f"{len(failed)} of {len(records):,} requests failed "
           f"({', '.join(sorted({r['error'][-40:] or str(r['code']) for r in failed})) or 'none'}), "
           f"the last {ready - killed:.2f} s after the kill; a new worker process {fig['worker_kill_restart_s']:.2f} s "
           f"after the kill; {fig['worker_kill_errors_after_restart']} errors after it")


# -- (d) materialization killed ---------------------------------------------------------

def mat_store(spark, workdir: str):
    from palette import Entity, FeatureGroup, FeatureStore
    store = FeatureStore(f"{workdir}/mat-store")
    store.register(Entity("item", {"id": "str"}), FeatureGroup("item", "fg", {"a": "num", "b": "num", "label": "str"}))
    return store


def mat_rows(spark, keys: range, ts: datetime, version: int):
    """Rows whose features are a function of (key, event time, version): a torn row shows."""
    from pyspark.sql import functions as F
    return (spark.range(keys.start, keys.stop, keys.step, 4)
            .select(F.concat(F.lit("k"), F.col("id").cast("string")).alias("id"),
                    F.lit(ts).cast("timestamp").alias("event_ts"),
                    (F.col("id") * 2.0 + version).alias("a"), (F.col("id") * 3.0 + version).alias("b"),
                    F.concat(F.lit("v"), F.lit(version), F.lit("-"), F.col("id").cast("string")).alias("label")))


def offline_view(spark, store, version=None) -> dict:
    from palette import offline
    from palette.online.codec import micros
    g = store.group("item:fg")
    table = offline.read_table(spark, store.table_path("item:fg"), version=version)
    latest = offline.latest_rows(table, store.entity(g.entity), g).collect()
    return {r.id: (micros(r.event_ts), r.a, r.b, r.label) for r in latest}


def online_view(url: str, keys) -> dict:
    from palette.online import open_store
    s = open_store(url)
    try:
        layout = s.layout("item:fg")
        if layout is None:
            return {}
        codec, out, keys = layout.codec(), {}, sorted(keys)
        for i in range(0, len(keys), 50_000):
            chunk = keys[i:i + 50_000]
            (found,) = s.read([(layout, chunk)])
            out.update({k: (f[0], *codec.decode(f[1])) for k, f in zip(chunk, found) if f is not None})
        return out
    finally:
        s.close()


def _written(db: Path) -> tuple:
    """What a SQLite store's files look like (a write changes the log's size or time)."""
    out = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(f"{db}{suffix}")
            out.append((st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


def run_materialize(store, url: str, full: bool) -> subprocess.Popen:
    args = [sys.executable, "-m", "palette.cli", "materialize", "--store", store.root, "--online-store", url,
            "--batch-rows", "200"]              # many small transactions: kills land between them
    return subprocess.Popen(args + (["--full"] if full else []), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def materialize_kills(spark, workdir, kills: int, fig: dict) -> None:
    from palette.online import open_store
    store = mat_store(spark, workdir)
    db = Path(workdir) / "mat-online.db"
    url = f"sqlite:///{db}"
    t0 = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None) - timedelta(hours=3)
    store.ingest(mat_rows(spark, range(0, MAT_KEYS), t0, 0), "item:fg")
    started = time.time()
    proc = run_materialize(store, url, full=True)
    assert proc.wait() == 0, proc.stderr.read().decode()[-2000:]
    typical = time.time() - started
    rnd = random.Random(20)
    violations, phases = 0, []
    for i in range(kills):
        version = i + 1
        if i % 2 == 0:      # new rows for 1 % of the keys: an insert-only increment
            rows = mat_rows(spark, range(i % 100, MAT_KEYS, 100), t0 + timedelta(minutes=i + 1), version)
            store.ingest(rows, "item:fg")
        else:               # corrections of 1 % of the keys' latest rows, and deletes of some
            store.ingest(mat_rows(spark, range(i % 97, MAT_KEYS, 97), t0 + timedelta(minutes=i), version), "item:fg")
            from delta.tables import DeltaTable
            DeltaTable.forPath(spark, store.table_path("item:fg")).delete(f"id = 'k{i}' OR id = 'k{i + 1000}'")
        full = i % 5 == 4
        before = (open_store(url).watermark("item:fg") or {}).get("version")
        written = _written(db)
        proc = run_materialize(store, url, full)
        started = time.time()
        if i % 2:           # anywhere in the run, JVM start included
            time.sleep(rnd.uniform(0.3, typical * 1.1))
        else:               # once it writes: mid-write, or between the writes and the watermark
            while proc.poll() is None and _written(db) == written and time.time() < started + 120:
                time.sleep(0.02)
            time.sleep(rnd.uniform(0.0, 0.3))
        delay = time.time() - started
        finished = proc.poll() is not None
        if not finished:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        mark = (open_store(url).watermark("item:fg") or {}).get("version")
        if mark != before:
            want = offline_view(spark, store, mark)
            got = online_view(url, want.keys())
            violations += sum(got.get(k) != v for k, v in want.items())
        phases.append("finished" if finished else "killed after the watermark moved" if mark != before else
                      "killed after writing began" if _written(db) != written else "killed before writing")
        print(f"  materialize kill {i + 1}/{kills} ({'full' if full else 'incremental'}) at {delay:.1f} s: "
              f"{phases[-1]}", flush=True)
    proc = run_materialize(store, url, full=False)
    assert proc.wait() == 0, proc.stderr.read().decode()[-2000:]
    want = offline_view(spark, store)
    got = online_view(url, set(want) | {f"k{i}" for i in range(kills + 1001)})
    mismatches = sum(got.get(k) != v for k, v in want.items()) + len(set(got) - set(want))
    fig["materialize_kill_watermark_violations"] = violations
    fig["materialize_kill_final_mismatches"] = mismatches
    counts = {p: phases.count(p) for p in dict.fromkeys(phases)}
    report(f"materialize (SQLite, {MAT_KEYS:,} keys) killed with its JVM (-9) at {kills} random moments of "
           "incremental and full runs, after inserts, corrections and deletes",
           "a watermark that moved covers written data; after a rerun the online store equals the offline "
           "latest view, cell for cell",
           f"{', '.join(f'{n} {p}' for p, n in counts.items())}; cells behind a moved watermark: {violations}; "
           f"after the rerun, {mismatches} cells differ of {len(want):,} keys")


# -- (e) racing writers -----------------------------------------------------------------

def racing_writers(spark, workdir, races: int, fig: dict) -> None:
    store = mat_store(spark, f"{workdir}/race")
    url = f"sqlite:///{workdir}/race/online.db"
    t0 = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None) - timedelta(hours=3)
    store.ingest(mat_rows(spark, range(0, 20_000), t0, 0), "item:fg")
    ingest_mismatches = materialize_mismatches = 0
    for r in range(races):
        a = f"{workdir}/race/a{r}"
        b = f"{workdir}/race/b{r}"
        mat_rows(spark, range(r, 20_000, 3), t0 + timedelta(minutes=2 * r + 1), 10 * r + 1).write.parquet(a)
        mat_rows(spark, range(r + 1, 20_000, 2), t0 + timedelta(minutes=2 * r + 2), 10 * r + 2).write.parquet(b)
        cols = ["id", "event_ts", "a", "b", "label"]
        expected = {(x.id, x.event_ts): tuple(x) for x in store.read("item:fg", spark).select(*cols).collect()}
        for src in (a, b):
            expected.update({(x.id, x.event_ts): tuple(x) for x in spark.read.parquet(src).select(*cols).collect()})
        jobs = [subprocess.Popen([sys.executable, "-m", "palette.cli", "ingest", "--store", store.root, "--group",
                                  "item:fg", "--source", src], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for src in (a, b)]
        codes = [j.wait() for j in jobs]
        assert codes == [0, 0], [j.stderr.read().decode()[-1500:] for j in jobs]
        table = store.read("item:fg", spark).select(*cols).collect()
        got = {(x.id, x.event_ts): tuple(x) for x in table}
        ingest_mismatches += (len(table) - len(got)) + len(set(got) ^ set(expected)) + sum(
            got[k] != expected[k] for k in set(got) & set(expected))
        # An ingest racing a materialization, then a materialization: the online store is the latest view.
        c = f"{workdir}/race/c{r}"
        mat_rows(spark, range(r + 2, 20_000, 5), t0 + timedelta(minutes=2 * r + 3), 10 * r + 3).write.parquet(c)
        jobs = [subprocess.Popen([sys.executable, "-m", "palette.cli", "ingest", "--store", store.root, "--group",
                                  "item:fg", "--source", c], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
                run_materialize(store, url, full=False)]
        codes = [j.wait() for j in jobs]
        assert codes == [0, 0], [j.stderr.read().decode()[-1500:] for j in jobs]
        assert run_materialize(store, url, full=False).wait() == 0
        want = offline_view(spark, store)
        got_online = online_view(url, want.keys())
        materialize_mismatches += sum(got_online.get(k) != v for k, v in want.items())
        print(f"  race {r + 1}/{races}: table {len(table):,} rows, {ingest_mismatches} ingest mismatches, "
              f"{materialize_mismatches} online mismatches so far", flush=True)
    fig["race_ingest_mismatches"] = ingest_mismatches
    fig["race_materialize_mismatches"] = materialize_mismatches
    report(f"racing writers, {races} rounds: two ingest jobs into one group at once (overlapping keys); an ingest "
           "job racing a materialize job",
           "no row lost, duplicated or torn against an oracle; after a final materialization the online store "
           "equals the offline latest view",
           f"{ingest_mismatches} rows lost, duplicated or differing in the table; {materialize_mismatches} online "
           "cells differing")


# -- (f) fuzzing ------------------------------------------------------------------------

def fuzzing(seconds: int, workdir: str, fig: dict) -> None:
    findings, runs = 0, {}
    for target in ("dsl", "requests", "model_dir"):
        corpus = Path(workdir) / "fuzz" / target
        shutil.copytree(ROOT / "tests" / "fuzz" / "corpus" / target, corpus)
        out = Path(workdir) / "fuzz" / f"{target}-findings"
        out.mkdir()
        proc = subprocess.run([sys.executable, str(ROOT / "tests" / "fuzz" / "run.py"), target,
                               f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=3072",
                               f"-artifact_prefix={out}/", "-print_final_stats=1", str(corpus)],
                              capture_output=True, text=True, timeout=seconds + 300)
        n = [line for line in proc.stderr.splitlines() if "stat::number_of_executed_units" in line]
        runs[target] = int(n[0].split(":")[-1]) if n else 0
        found = list(out.iterdir())
        findings += len(found) + (proc.returncode != 0 and not found)
    fig["fuzz_findings"] = findings
    report(f"fuzzing (atheris), {seconds} s per target",
           "only PaletteError for any input: no other exception, no hang past 10 s, memory under 3 GiB",
           f"{', '.join(f'{t} {n:,} inputs' for t, n in runs.items())}; findings: {findings}")


# -- the page ---------------------------------------------------------------------------

PAGE = """# Reliability

What palette does under load, faults and bad input, measured by one command on loopback
(`make reliability`: `benchmarks/reliability.py`, which rewrites this page). Real processes
throughout: `palette serve` with 2 workers, `redis-server`, SQLite files, the `palette`
jobs with their JVM; load from `vegeta` in open loop (requests leave on schedule whether
or not earlier ones were answered). The serving model is the tutorial's ETA pipeline
(lookups in three feature groups, one keyed by a computed region, DSL, GBT of 100 trees);
a second model reads no feature, to show what a store failure leaves untouched.

Last run: {date}, {host}, on this machine ({cpus} cores); `{command}`.

| scenario | expected | measured |
|---|---|---|
{rows}

What the figures rest on: the serving process answers 503 `online_store_unavailable` when a
read fails or outlasts `--store-timeout-ms`, and the next request tries again (no circuit
is held open); a SQLite reader re-checks every 0.25 s that the path still names the file it
opened and drops a connection that failed; the supervisor restarts a worker that died; a
materialization moves its watermark only after every write, and writes are latest-wins by
event time, so a rerun is harmless; ingests retry Delta's optimistic-concurrency conflicts.
"""


def write_page(command: str) -> None:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")
    rows = "\n".join(f"| {cell(s)} | {cell(e)} | {cell(m)} |" for s, e, m in ROWS)
    (ROOT / "docs" / "reliability.md").write_text(PAGE.format(
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), host=socket.gethostname(),
        cpus=os.cpu_count(), command=command, rows=rows))


def main(rows: int | None = None) -> dict:
    from palette.testing import redis_server

    minutes = rows or SOAK_MINUTES
    heading(f"reliability: soak {minutes} min, store and worker faults, killed jobs, races, fuzzing")
    spark = spark_session()
    workdir = tempfile.mkdtemp(prefix="palette-reliability-")
    store, eta, plain = models(spark, workdir)
    ids = [f"r{i}" for i in random.Random(3).sample(range(100_000), 2000)]
    fig: dict = {}
    ROWS.clear()
    with redis_server() as (redis_url, _):
        store.materialize(online_store=redis_url, spark=spark)
        worker_kill(eta, plain, redis_url, ids, workdir, fig)
        soak(eta, plain, redis_url, ids, workdir, minutes, fig)
    redis_faults(eta, plain, ids, workdir, store, spark, fig)
    sqlite_faults(eta, plain, ids, workdir, store, spark, fig)
    materialize_kills(spark, workdir, MAT_KILLS, fig)
    racing_writers(spark, workdir, RACES, fig)
    fuzzing(FUZZ_SECONDS, workdir, fig)
    write_page("make reliability" if minutes == SOAK_MINUTES else
               f".venv/bin/python benchmarks/run.py --only reliability --rows {minutes}")
    print(f"wrote {ROOT / 'docs' / 'reliability.md'}", flush=True)
    return fig
