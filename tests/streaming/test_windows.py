"""Windowed stream features: declared once, computed by the stream and by a backfill to the
same rows, cell for cell, and read online as the offline store holds them at each instant
— checked against an oracle computed in plain Python from the events."""
import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from palette import Entity, FeatureGroup, FeatureStore, RegistryError
from palette import streaming
from palette.online import encode_key, open_store
from palette.windows import Aggregation, StreamSource

BASE = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
HOP = 60_000_000
SCHEMA = {"r_id": "str", "ts": "ts", "size": "num", "kind": "str"}
AGGS = [Aggregation("n", "count", over="3m"), Aggregation("total", "sum", "size", over="5m"),
        Aggregation("avg", "mean", "size", over="5m"), Aggregation("lo", "min", "size", over="5m"),
        Aggregation("hi", "max", "kind", over="3m"), Aggregation("latest", "last", "size", over="5m")]
G = "restaurant:orders_fg"


def micros(d: datetime) -> int:
    return int(d.timestamp() * 1_000_000)


def group(path, lateness="10m", **kw):
    return FeatureGroup("restaurant", "orders_fg", kind="stream", hop="1m", lateness=lateness,
                        source=StreamSource("delta", SCHEMA, "ts", path=str(path)), aggregations=AGGS, **kw)


def events(seed=7, n=240):
    """Five keys over 40 minutes (one idle after 10 minutes), bursts, nulls, equal instants."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        key = f"r{rng.randrange(5)}"
        minute = rng.random() * 40
        if key == "r4":
            minute = minute / 4                                    # idle after 10 minutes
        if i % 17 == 0:
            minute = 20 + rng.random() * 0.5                       # a burst
        ts = BASE + timedelta(microseconds=int(minute * 60_000_000))
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


@pytest.fixture
def setup(tmp_path, spark_session, small_delta_snapshots):
    spark_session.conf.set("spark.sql.session.timeZone", "UTC")
    evs = events()
    path = tmp_path / "events"
    stores = {}
    for name in ("streamed", "backfilled"):
        s = FeatureStore(tmp_path / name)
        s.register(Entity("restaurant", {"r_id": "str"}), group(path))
        stores[name] = s
    return spark_session, evs, path, stores, tmp_path


def test_stream_and_backfill_write_the_same_rows_and_online_reads_them_at_every_instant(setup):
    spark, evs, path, stores, tmp = setup
    by_time = sorted(evs, key=lambda e: e["ts"])
    # Three arrivals, each out of order within the lateness, the stream restarted from its checkpoint each time.
    cut1, cut2 = len(by_time) // 3, 2 * len(by_time) // 3
    chunks = [by_time[:cut1], by_time[cut1:cut2], by_time[cut2:]]
    late = chunks[1][-4:]                                             # a few arrive within the lateness, twice
    chunks[1], chunks[2] = chunks[1] + chunks[2][:5], chunks[2][5:]     # (counted twice: two events each),
    chunks[2].extend(late)                                            # after a few of the next arrived early
    evs = [e for c in chunks for e in c]
    online = {"streamed": f"sqlite:///{tmp}/streamed.db", "backfilled": f"sqlite:///{tmp}/backfilled.db"}
    for chunk in chunks:
        random.Random(1).shuffle(chunk)
        write_events(spark, path, chunk)
        q = streaming.start(G, checkpoint=str(tmp / "chk"), online_store=online["streamed"],
                            store=stores["streamed"], spark=spark, once=True)
        q.awaitTermination()
        assert q.exception() is None
    result = streaming.backfill(G, online_store=online["backfilled"], store=stores["backfilled"], spark=spark)
    assert result["tiles"] > 0

    streamed, backfilled = table_rows(stores["streamed"], spark), table_rows(stores["backfilled"], spark)
    key = lambda r: (r["r_id"], r["event_ts"])                       # noqa: E731
    assert sorted(map(key, streamed)) == sorted(map(key, backfilled))
    bmap = {key(r): r for r in backfilled}
    for r in streamed:
        assert all(close(r[a.name], bmap[key(r)][a.name]) for a in AGGS), (r, bmap[key(r)])

    # The offline store's value at t is the oracle's, at every minute and in between.
    last = max(micros(e["ts"]) for e in evs)
    instants = list(range(micros(BASE) - HOP, last + 8 * HOP, HOP // 2))
    for k in [f"r{i}" for i in range(5)] + ["nobody"]:
        for t in instants:
            want, got = oracle(evs, k, t), offline_at(backfilled, k, t)
            assert (want is None) == (got is None), (k, t, want, got)
            if want is not None:
                assert all(close(got[n], want[n]) for n in want), (k, t, want, got)

    # Online, both stores read the oracle's values at each "now" from the last event on.
    for name, url in online.items():
        for t in range(last, last + 8 * HOP, HOP // 3):
            s = open_store(url, clock=lambda t=t: t / 1e6)
            layout = s.layout(G)
            (found,) = s.read([(layout, [encode_key((f"r{i}",), ("str",)) for i in range(5)])])
            for i, hit in enumerate(found):
                want = oracle(evs, f"r{i}", t)
                got = None if hit is None else dict(zip([f for f, _ in layout.features], layout.codec().decode(hit[1])))
                assert (want is None) == (got is None), (name, i, t)
                if want is not None:
                    assert hit[0] == t // HOP * HOP or hit[0] < t // HOP * HOP       # in effect since a boundary
                    assert all(close(got[n], want[n]) for n in want), (name, f"r{i}", t, want, got)
            s.close()

    # A rerun of the backfill changes nothing.
    version = stores["backfilled"].version(G, spark)
    streaming.backfill(G, store=stores["backfilled"], spark=spark)
    assert stores["backfilled"].version(G, spark) == version


def test_bad_declarations_fail_naming_the_fix(tmp_path):
    src = StreamSource("delta", SCHEMA, "ts", path="/x")
    with pytest.raises(RegistryError, match="not a multiple of the hop"):
        FeatureGroup("restaurant", "g", kind="stream", source=src, hop="2m",
                     aggregations=[Aggregation("n", "count", over="3m")])
    with pytest.raises(RegistryError, match="needs a number"):
        FeatureGroup("restaurant", "g", kind="stream", source=src, hop="1m",
                     aggregations=[Aggregation("s", "sum", "kind", over="3m")])
    with pytest.raises(RegistryError, match="event column 'nope', which the source does not have"):
        FeatureGroup("restaurant", "g", kind="stream", source=src, hop="1m",
                     aggregations=[Aggregation("s", "max", "nope", over="3m")])
    with pytest.raises(RegistryError, match="add hop="):
        FeatureGroup("restaurant", "g", kind="stream", source=src, aggregations=[Aggregation("n", "count")])
    with pytest.raises(RegistryError, match="max_age does not apply"):
        FeatureGroup("restaurant", "g", kind="stream", source=src, hop="1m", max_age="1h",
                     aggregations=[Aggregation("n", "count")])
    with pytest.raises(RegistryError, match="needs source="):
        FeatureGroup("restaurant", "g", kind="stream", features={"x": "num"})
    with pytest.raises(RegistryError, match="unknown operation 'median'"):
        Aggregation("m", "median", "size")
    with pytest.raises(RegistryError, match="must be in the schema as 'ts'"):
        StreamSource("delta", {"r_id": "str"}, "ts", path="/x")
    store = FeatureStore(tmp_path)
    store.register(Entity("courier", {"c_id": "str"}))
    with pytest.raises(RegistryError, match="no column 'c_id'"):
        store.register(FeatureGroup("courier", "g", kind="stream", source=src, hop="1m",
                                    aggregations=[Aggregation("n", "count")]))
    # Declared once, stored, shown: the registry gives back the same definition.
    store.register(Entity("restaurant", {"r_id": "str"}), group("/events"))
    assert store.group(G) == group("/events")
    assert [f.name for f in store.group(G).features] == [a.name for a in AGGS]
    assert store.search("avg")[0].kind == "stream"
    with pytest.raises(RegistryError, match="aggregation 'n'"):
        store.register(FeatureGroup("restaurant", "orders_fg", kind="stream", hop="1m",
                                    source=StreamSource("delta", SCHEMA, "ts", path="/events"),
                                    aggregations=[Aggregation("n", "count", over="4m"), *AGGS[1:]]))
