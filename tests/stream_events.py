"""Events, a stream group over them and an oracle in plain Python: what the streaming tests share."""
import math
import random
from datetime import datetime, timedelta, timezone

from palette import FeatureGroup
from palette.windows import Aggregation, StreamSource

BASE = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
HOP = 60_000_000
SCHEMA = {"r_id": "str", "ts": "ts", "size": "num", "kind": "str"}
AGGS = [Aggregation("n", "count", over="3m"), Aggregation("total", "sum", "size", over="5m"),
        Aggregation("avg", "mean", "size", over="5m"), Aggregation("lo", "min", "size", over="5m"),
        Aggregation("hi", "max", "kind", over="3m"), Aggregation("latest", "last", "size", over="5m"),
        Aggregation("kinds", "approx_count_distinct", "kind", over="5m")]
G = "restaurant:orders_fg"


def micros(d: datetime) -> int:
    return int(d.timestamp() * 1_000_000)


def group(path=None, lateness="10m", source=None, **kw):
    source = source or StreamSource("delta", SCHEMA, "ts", path=str(path))
    return FeatureGroup("restaurant", "orders_fg", kind="stream", hop="1m", lateness=lateness,
                        source=source, aggregations=AGGS, **kw)


def events(seed=7, n=240, base=BASE):
    """Five keys over 40 minutes from ``base`` (one idle after 10 minutes), bursts, nulls, equal instants."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        key = f"r{rng.randrange(5)}"
        minute = rng.random() * 40
        if key == "r4":
            minute = minute / 4                                    # idle after 10 minutes
        if i % 17 == 0:
            minute = 20 + rng.random() * 0.5                       # a burst
        ts = base + timedelta(microseconds=int(minute * 60_000_000))
        size = None if i % 13 == 0 else float(rng.randrange(1, 9)) + rng.random()
        out.append({"r_id": key, "ts": ts, "size": size, "kind": rng.choice(["a", "b", "c"])})
    out.append(dict(out[5], size=99.0))                            # two events of one key at one instant
    return out


def oracle(evs, key, t):
    """Each aggregation's value for ``key`` at ``t`` (µs), from the events, as windows.py defines it."""
    b = t // HOP * HOP
    mine = [e for e in evs if e["r_id"] == key and micros(e["ts"]) < b]
    if not mine:
        return None
    out = {}
    for a in AGGS:
        w = [e for e in mine if micros(e["ts"]) >= b - a.over_micros]
        vals = [e[a.column] for e in w if a.column and e[a.column] is not None]
        if a.op == "count":
            out[a.name] = float(len(w))
        elif a.op == "sum":
            out[a.name] = math.fsum(vals)
        elif a.op == "mean":
            out[a.name] = math.fsum(vals) / len(vals) if vals else None
        elif a.op == "approx_count_distinct":
            out[a.name] = float(len(set(vals)))           # small counts: HyperLogLog's linear counting is exact
        elif a.op in ("min", "max"):
            out[a.name] = (min if a.op == "min" else max)(vals) if vals else None
        else:
            latest = max(((micros(e["ts"]), e[a.column]) for e in w if e[a.column] is not None), default=None)
            out[a.name] = None if latest is None else latest[1]
    return out


def close(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


def write_events(spark, path, evs):
    df = spark.createDataFrame([(e["r_id"], e["ts"], e["size"], e["kind"]) for e in evs],
                               "r_id string, ts timestamp, size double, kind string")
    df.write.format("delta").mode("append").save(str(path))


def offline_at(rows, key, t):
    """The point-in-time lookup: the latest row of ``key`` at or before ``t``."""
    mine = [r for r in rows if r["r_id"] == key and micros(r["event_ts"]) <= t]
    if not mine:
        return None
    r = max(mine, key=lambda r: r["event_ts"])
    return {a.name: r[a.name] for a in AGGS}


def table_rows(store, spark):
    return [r.asDict() for r in store.read(G, spark).collect()]


def assert_same_rows(streamed, backfilled):
    """The streamed table equals the backfilled one, row for row and cell for cell."""
    key = lambda r: (r["r_id"], r["event_ts"])                       # noqa: E731
    assert sorted(map(key, streamed)) == sorted(map(key, backfilled))
    bmap = {key(r): r for r in backfilled}
    for r in streamed:
        assert all(close(r[a.name], bmap[key(r)][a.name]) for a in AGGS), (r, bmap[key(r)])


def assert_online_matches(url, evs, keys, start, end, step):
    """Read online at each "now" in [start, end): the oracle's values, in effect since a boundary."""
    from palette.online import encode_key, open_store
    for t in range(start, end, step):
        s = open_store(url, clock=lambda t=t: t / 1e6)
        layout = s.layout(G)
        (found,) = s.read([(layout, [encode_key((k,), ("str",)) for k in keys])])
        names = [f for f, _ in layout.features]
        for k, hit in zip(keys, found):
            want = oracle(evs, k, t)
            got = None if hit is None else dict(zip(names, layout.codec().decode(hit[1])))
            assert (want is None) == (got is None), (url, k, t)
            if want is not None:
                assert hit[0] <= t // HOP * HOP
                assert all(close(got[n], want[n]) for n in want), (url, k, t, want, got)
        s.close()
