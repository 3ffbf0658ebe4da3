"""The online stores, SQLite (a real file) and Redis (a real server on a loopback port):
exact values, latest by event time, atomic batches, layouts, watermarks, unavailability."""
import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from palette import Entity, FeatureGroup, OnlineSchemaMismatch, OnlineStoreUnavailable, PaletteError
from palette.errors import BadStoreURL
from palette.online import Record, RecordCodec, encode_key, open_store
from palette.online.codec import micros

ENTITY = Entity("restaurant", {"r_id": "str"})
GROUP = FeatureGroup("restaurant", "fg", {"x": "num", "name": "str", "open": "bool", "seen": "ts"}, max_age="1h")
# Event times near now: Redis expires a key at event time + max age (1h here).
T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)


def ts(minutes: float) -> int:
    return micros(T0 + timedelta(minutes=minutes))


@pytest.fixture(params=["sqlite", "redis", "redis+cluster"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path}/online.db")
    else:               # a Redis server, or a Redis Cluster (test_redis_cluster.py)
        url = request.getfixturevalue("redis_url") if request.param == "redis" else \
            request.getfixturevalue("redis_cluster").url
        s = open_store(url + "?timeout_ms=2000", prefix=f"t{time.monotonic_ns()}")
    yield s
    s.close()


def put(store, layout, key, minutes, values, bound=None, run=1):
    t = ts(minutes)
    payload = None if values is None else layout.codec().encode(values)
    return store.write(layout, [Record(key, t, payload, t if bound is None else ts(bound), run)])


def get(store, layout, *keys):
    (found,) = store.read([(layout, list(keys))])
    return [None if f is None else (f[0], layout.codec().decode(f[1])) for f in found]


def bits(x):
    return struct.pack("<d", x)


def test_values_round_trip_exactly(store):
    layout = store.setup(ENTITY, GROUP)
    cases = {
        "neg0": (-0.0, "", True, datetime(2026, 1, 1, tzinfo=timezone.utc)),
        "inf": (math.inf, "é日本🍜", False, datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)),
        "ninf": (-math.inf, "a\x00b\n\"c'", None, datetime(2262, 4, 11, tzinfo=timezone.utc)),
        "nan": (math.nan, None, True, None),
        "sub": (5e-324, "x" * 10_000, False, datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc)),
        "max": (sys.float_info.max, "NULL", True, datetime(1, 1, 1, tzinfo=timezone.utc)),
        "nulls": (None, None, None, None),
        "naive": (0.1 + 0.2, "naive ts is UTC", False, datetime(2026, 1, 1, 12, 0)),
    }
    store.write(layout, [Record(k, ts(0), layout.codec().encode(v), ts(0)) for k, v in cases.items()])
    got = dict(zip(cases, get(store, layout, *cases)))
    for key, want in cases.items():
        _, values = got[key]
        x, name, is_open, seen = values
        if want[0] is None:
            assert x is None
        else:
            assert bits(x) == bits(want[0]), key
        assert name == want[1] and is_open == want[2], key
        expected_ts = None if want[3] is None else (want[3] if want[3].tzinfo else want[3].replace(tzinfo=timezone.utc))
        assert seen == expected_ts, key
        assert type(is_open) in (bool, type(None)) and type(x) in (float, type(None))


def test_latest_by_event_time_wins(store):
    layout = store.setup(ENTITY, GROUP)
    put(store, layout, "r1", 10, (1.0, "ten", True, None))
    put(store, layout, "r1", 5, (2.0, "late", True, None))             # a late row never wins
    assert get(store, layout, "r1")[0] == (ts(10), (1.0, "ten", True, None))
    put(store, layout, "r1", 10, (3.0, "corrected", True, None))       # the same time: a correction
    assert get(store, layout, "r1")[0][1][1] == "corrected"
    put(store, layout, "r1", 20, (4.0, "newer", False, None))
    assert get(store, layout, "r1")[0] == (ts(20), (4.0, "newer", False, None))
    put(store, layout, "r1", 20, (4.0, "newer", False, None))          # a replay is harmless
    assert get(store, layout, "r1")[0] == (ts(20), (4.0, "newer", False, None))


def test_bound_replaces_a_corrected_or_deleted_row(store):
    layout = store.setup(ENTITY, GROUP)
    put(store, layout, "r1", 20, (1.0, "deleted offline", True, None))
    put(store, layout, "r1", 5, (2.0, "next latest", True, None), bound=20)
    assert get(store, layout, "r1")[0] == (ts(5), (2.0, "next latest", True, None))
    put(store, layout, "r1", 5, None, bound=4)                           # the stored row is newer: kept
    assert get(store, layout, "r1")[0] is not None
    put(store, layout, "r1", 5, None, bound=5)                           # no row left offline: removed
    assert get(store, layout, "r1") == [None]


def test_many_keys_unknown_and_duplicates_in_one_read(store):
    layout = store.setup(ENTITY, GROUP)
    store.write(layout, [Record(f"r{i}", ts(i), layout.codec().encode((float(i), None, None, None)), ts(i))
                         for i in range(3000)])
    keys = ["r2999", "nope", "r0", "r0", "r1500"]
    got = get(store, layout, *keys)
    assert [g and g[1][0] for g in got] == [2999.0, None, 0.0, 0.0, 1500.0]
    assert store.count(GROUP.id) == 3000


def test_a_prepared_read_of_one_key_per_group_is_read_s_answer(store):
    """``prepare_read`` (the single-row path's one statement or one MGET) answers what
    ``read`` answers, for two groups, the same group twice, unknown and null keys; a
    cache in front answers the same through ``read``."""
    from palette.online import CachedStore
    a = store.setup(ENTITY, GROUP)
    b = store.setup(Entity("region", {"region_id": "str"}), FeatureGroup("region", "busy", {"n": "num"}))
    put(store, a, "r1", 0, (1.5, "one", True, T0))
    store.write(b, [Record("u4pru", ts(1), b.codec().encode((7.0,)), ts(1))])
    for s in (store, CachedStore(store)):
        read_one = s.prepare_read((a, b, a))
        for keys in (["r1", "u4pru", "r1"], ["r1", "x", None], [None, None, None], ["nope", "u4pru", "r1"]):
            want = [None if k is None else s.read([(lay, [k])])[0][0] for lay, k in zip((a, b, a), keys)]
            assert read_one(keys) == want, keys
        assert a.codec().decode(read_one(["r1", None, None])[0][1]) == (1.5, "one", True, T0)


def test_codec_decodes_many_records_as_one_by_one():
    """The vectorized decode of fixed-size records (numbers and booleans) gives exactly
    what ``decode`` gives: nulls, -0.0, NaN's bits, shorter and longer records."""
    import random
    rnd = random.Random(5)
    for types in (["num"], ["num", "bool", "num"], ["num"] * 9, ["num", "str"], ["num", "ts"], ["bool"] * 17):
        codec = RecordCodec(types)
        values = [-0.0, math.nan, math.inf, 1e-310, 2.5, None]
        rows = [tuple(None if rnd.random() < 0.1 else (rnd.random() < 0.5 if t == "bool" else
                      T0 if t == "ts" else "é" * i if t == "str" else rnd.choice(values)) for t in types)
                for i in range(40)]
        payloads = [codec.encode(r) for r in rows]
        if types == ["num"] * 9:
            payloads[3] = RecordCodec(types[:8]).encode((1.0,) * 8)          # written before a feature was added
        got, want = codec.decode_many(payloads), [codec.decode(p) for p in payloads]
        assert [[bits(v) if isinstance(v, float) else v for v in r] for r in got] == \
            [[bits(v) if isinstance(v, float) else v for v in r] for r in want], types
        assert [list(map(type, r)) for r in got] == [list(map(type, r)) for r in want]


def test_composite_and_integer_keys(store):
    entity = Entity("order_item", {"order_id": "int", "item": "str"})
    group = FeatureGroup("order_item", "qty_fg", {"qty": "num"})
    layout = store.setup(entity, group)
    keys = [encode_key((1, "a"), layout.key_types), encode_key((1, "a,b"), layout.key_types),
            encode_key((-7, '"]'), layout.key_types)]
    assert len(set(keys)) == 3
    store.write(layout, [Record(k, ts(0), layout.codec().encode((float(i),)), ts(0)) for i, k in enumerate(keys)])
    assert [g[1] for g in get(store, layout, *keys)] == [(0.0,), (1.0,), (2.0,)]


def test_layout_grows_and_refuses_incompatible_changes(store):
    layout = store.setup(ENTITY, GROUP)
    put(store, layout, "old", 0, (1.0, "a", True, T0))
    grown = FeatureGroup("restaurant", "fg", {"extra": "num", "x": "num", "name": "str", "open": "bool",
                                              "seen": "ts"}, max_age="1h")
    bigger = store.setup(ENTITY, grown)
    assert [f for f, _ in bigger.features] == ["x", "name", "open", "seen", "extra"]   # appended, not reordered
    assert get(store, bigger, "old")[0][1] == (1.0, "a", True, T0, None)               # an old row reads null
    put(store, bigger, "new", 0, (2.0, "b", False, None, 9.0))
    assert get(store, layout, "new")[0][1] == (2.0, "b", False, None)                  # an old reader skips it
    for changed, problem in [
        (FeatureGroup("restaurant", "fg", {"x": "str", "name": "str", "open": "bool", "seen": "ts"}),
         "feature 'x' type num -> str"),
        (FeatureGroup("restaurant", "fg", {"name": "str", "open": "bool", "seen": "ts"}), "feature 'x' removed"),
    ]:
        with pytest.raises(OnlineSchemaMismatch, match=f"restaurant:fg.*{problem}.*Nothing was written"):
            store.setup(ENTITY, changed)
    with pytest.raises(OnlineSchemaMismatch, match="entity keys"):
        store.setup(Entity("restaurant", {"r_id": "int"}), grown)
    assert store.layout(GROUP.id, refresh=True) == bigger


def test_watermark_purge_and_drop(store):
    layout = store.setup(ENTITY, GROUP)
    assert store.watermark(GROUP.id) is None
    store.set_watermark(GROUP.id, {"version": 3, "table_id": "abc"})
    assert store.watermark(GROUP.id) == {"version": 3, "table_id": "abc"}
    put(store, layout, "seen_by_run_5", 0, (1.0, None, None, None), run=5)
    put(store, layout, "only_run_3", 0, (1.0, None, None, None), run=3)
    put(store, layout, "newer_online", 50, (1.0, None, None, None), run=3)
    put(store, layout, "newer_online", 10, (2.0, None, None, None), run=5)       # refused, but seen by run 5
    assert get(store, layout, "newer_online")[0][0] == ts(50)
    assert store.purge(layout, 5) == 1
    assert get(store, layout, "seen_by_run_5", "only_run_3", "newer_online")[1] is None
    assert store.groups() == [GROUP.id]
    store.drop(GROUP.id)
    assert store.groups() == [] and store.watermark(GROUP.id) is None and store.layout(GROUP.id) is None


def test_unknown_url():
    with pytest.raises(BadStoreURL, match="unknown online store URL 'mysql://u:\\*\\*\\*@h/db'.*sqlite.*redis"):
        open_store("mysql://u:secret@h/db")
    with pytest.raises(BadStoreURL, match="has a host part \\('data'\\).*sqlite:///data/x.db names the relative "
                                          "path data/x.db, sqlite:////data/x.db the absolute path /data/x.db"):
        open_store("sqlite://data/x.db")
    with pytest.raises(BadStoreURL, match="names no file"):
        open_store("sqlite:///")
    assert issubclass(BadStoreURL, PaletteError) and issubclass(BadStoreURL, ValueError)


def _filled(path, value, keys=("a", "b")):
    """A SQLite store at ``path`` holding ``value`` (x) for ``keys``, its writer closed."""
    with open_store(f"sqlite:///{path}") as w:
        layout = w.setup(ENTITY, GROUP)
        w.write(layout, [Record(k, ts(0), layout.codec().encode((value, None, None, None)), ts(0)) for k in keys])
    return layout


def _x(store, layout, key="a"):
    found = get(store, layout, key)[0]
    return None if found is None else found[1][0]


def test_sqlite_reader_picks_up_a_published_file_within_a_second(tmp_path):
    """The batch-job deployment: fill a new file, put it in place of the served one. A reader
    with its connection open moves to the new file (a new inode) within a second, on the
    same thread, without a restart; the old file's write-ahead log is not read over the new
    one (a plain os.replace of a WAL file lets SQLite do that)."""
    from palette.online import publish_sqlite
    url = f"sqlite:///{tmp_path}/online.db"
    layout = _filled(tmp_path / "online.db", 1.0)
    reader = open_store(url)
    writer = open_store(url)
    writer.write(layout, [Record(k, ts(1), layout.codec().encode((2.0, None, None, None)), ts(1)) for k in "ab"])
    assert _x(reader, layout) == 2.0                           # a WAL with frames, readers attached
    _filled(tmp_path / "new.db", 3.0, keys=("a",))
    publish_sqlite(tmp_path / "new.db", url)
    deadline = time.monotonic() + 1.0
    while _x(reader, layout) != 3.0:
        assert time.monotonic() < deadline, "the replaced file was not read within 1 s"
        time.sleep(0.02)
    assert get(reader, layout, "b") == [None]                  # the new file's contents, not the old log's
    assert not (tmp_path / "new.db").exists()
    fresh = open_store(url)
    assert _x(fresh, layout) == 3.0 and get(fresh, layout, "b") == [None]
    writer.close()
    with open_store(url) as w2:                                # the next incremental run writes into it
        w2.write(layout, [Record("b", ts(2), layout.codec().encode((4.0, None, None, None)), ts(2))])
    assert _x(reader, layout, "b") == 4.0


def test_sqlite_a_corrupted_then_repaired_file_serves_again(tmp_path):
    """A connection that failed is dropped: once the file is good again, the next read works."""
    path = tmp_path / "online.db"
    layout = _filled(path, 1.0)
    good = path.read_bytes()
    reader = open_store(f"sqlite:///{path}")
    assert _x(reader, layout) == 1.0
    (tmp_path / "junk").write_bytes(b"garbage!" * (len(good) // 8))
    os.replace(tmp_path / "junk", path)
    time.sleep(0.3)                                            # past the reader's identity check
    for _ in range(2):                                         # a failed connection is not kept
        with pytest.raises(OnlineStoreUnavailable, match="online.db.*DatabaseError"):
            reader.read([(layout, ["a"])])
    path.write_bytes(good)                                     # repaired in place: the same inode
    assert _x(reader, layout) == 1.0


def test_sqlite_reopen_and_read_only_readers(tmp_path):
    path = tmp_path / "online.db"
    layout = _filled(path, 1.0)
    reader = open_store(f"sqlite:///{path}")
    assert _x(reader, layout) == 1.0
    conn = reader._local.reader[0]
    with pytest.raises(Exception, match="readonly"):
        conn.execute("DELETE FROM palette_layouts")
    reader.reopen()
    assert _x(reader, layout) == 1.0 and reader._local.reader[0] is not conn


def test_sqlite_missing_or_unreadable_file(tmp_path):
    missing = open_store(f"sqlite:///{tmp_path}/nothing.db")
    with pytest.raises(OnlineStoreUnavailable, match=f"sqlite:///{tmp_path}/nothing.db.*the file {tmp_path}/nothing.db "
                                                     "does not exist. Check the URL"):
        missing.ping()
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(OnlineStoreUnavailable, match="dir.db is unavailable.*dir.db is not a file"):
        open_store(f"sqlite:///{tmp_path}/dir.db").ping()
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(OnlineStoreUnavailable, match="junk.db"):
        open_store(f"sqlite:///{tmp_path}/junk.db").groups()


def test_sqlite_readers_in_other_processes_see_whole_batches_and_never_lock(tmp_path):
    """One writer commits 40 batches of 2,000 keys (batch b sets every value to b) while
    two reader processes read all keys again and again: every read sees one batch."""
    url = f"sqlite:///{tmp_path}/online.db"
    writer = open_store(url)
    layout = writer.setup(ENTITY, GROUP)
    keys = [f"r{i}" for i in range(2000)]

    def batch(b):
        payload = layout.codec().encode((float(b), None, None, None))
        return [Record(k, ts(b), payload, ts(b)) for k in keys]
    writer.write(layout, batch(0))
    reader_code = textwrap.dedent(f"""
        import sys, time
        from palette.online import open_store
        s = open_store({url!r}, timeout_ms=5)
        layout = s.layout({GROUP.id!r})
        keys = [f"r{{i}}" for i in range(2000)]
        codec = layout.codec()
        reads, seen = 0, set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            (found,) = s.read([(layout, keys)])
            values = {{codec.decode(f[1])[0] for f in found}}
            if len(values) != 1:
                sys.exit(f"a read saw several batches: {{sorted(values)}}")
            seen |= values
            reads += 1
            if 39.0 in values:
                break
        print(reads, len(seen))
    """)
    readers = [subprocess.Popen([sys.executable, "-c", reader_code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    time.sleep(1.0)
    for b in range(1, 40):
        writer.write(layout, batch(b))
    for p in readers:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        reads, distinct = map(int, out.split())
        assert reads >= 2 and distinct >= 1


def test_redis_batch_is_atomic_for_readers(redis_url):
    store = open_store(redis_url + "?timeout_ms=2000", prefix="atomic")
    layout = store.setup(ENTITY, GROUP)
    keys = [f"r{i}" for i in range(2000)]
    errors, done = [], threading.Event()

    def read_loop():
        reader = open_store(redis_url + "?timeout_ms=2000", prefix="atomic")
        codec = layout.codec()
        while not done.is_set():
            (found,) = reader.read([(layout, keys)])
            values = {None if f is None else codec.decode(f[1])[0] for f in found}
            if len(values) != 1:
                errors.append(sorted(map(str, values)))
        reader.close()
    t = threading.Thread(target=read_loop)
    t.start()
    for b in range(30):
        payload = layout.codec().encode((float(b), None, None, None))
        store.write(layout, [Record(k, ts(b), payload, ts(b)) for k in keys])
    done.set()
    t.join()
    assert not errors


def test_redis_keys_expire_at_event_time_plus_max_age(redis_url):
    import redis
    store = open_store(redis_url, prefix="ttl")
    layout = store.setup(ENTITY, GROUP)                 # max age 1h
    now = datetime.now(timezone.utc)
    fresh, stale = micros(now - timedelta(minutes=10)), micros(now - timedelta(hours=2))
    payload = layout.codec().encode((1.0, None, None, None))
    store.write(layout, [Record("fresh", fresh, payload, fresh), Record("stale", stale, payload, stale)])
    client = redis.Redis.from_url(redis_url)
    pttl = client.pttl(b"ttl:restaurant:fg:fresh")
    assert 49 * 60_000 <= pttl <= 50 * 60_000 + 1000      # expires at event time + 1h
    assert client.exists(b"ttl:restaurant:fg:stale") == 0   # already past its max age: gone


def test_redis_one_round_trip_for_several_groups(redis_url, monkeypatch):
    import redis.connection
    store = open_store(redis_url, prefix="rt")
    a = store.setup(ENTITY, GROUP)
    b = store.setup(Entity("region", {"region_id": "str"}), FeatureGroup("region", "busy", {"n": "num"}))
    store.read([(a, ["r0"])])                  # the connection's own handshake happens once, here
    sends = []
    original = redis.connection.AbstractConnection.send_packed_command
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command",
                        lambda self, *a, **k: (sends.append(1), original(self, *a, **k))[1])
    store.read([(a, ["r1", "r2", "r3"]), (b, ["u4pru", "x"])])
    assert len(sends) == 1


def test_redis_down_slow_and_back(redis_server):
    """Down: fails at once, naming the URL. Stopped (SIGSTOP): a read gives up after its
    timeout instead of hanging. Back (SIGCONT): the same client reads again by itself."""
    url, proc = redis_server
    store = open_store(url + "?timeout_ms=50", prefix="fault")
    layout = store.setup(ENTITY, GROUP)
    put(store, layout, "r1", 0, (1.0, None, None, None))
    assert get(store, layout, "r1")[0] is not None
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(OnlineStoreUnavailable, match=f"{url}.*timed out while reading"):
            get(store, layout, "r1")
        assert time.monotonic() - t0 < 5          # gave up; did not hang
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert get(store, layout, "r1")[0] is not None
    dead = open_store("redis://127.0.0.1:1/0?timeout_ms=50")
    with pytest.raises(OnlineStoreUnavailable, match="redis://127.0.0.1:1/0.*(Connection|connect)"):
        dead.ping()


def test_password_is_not_shown(redis_url):
    s = open_store(redis_url.replace("redis://", "redis://:hunter2@") + "?timeout_ms=50")
    assert "hunter2" not in s.url and "***" in s.url and "hunter2" not in repr(s)


def test_codec_decodes_prefixes_both_ways():
    old, new = RecordCodec(["num", "str"]), RecordCodec(["num", "str", "ts", "bool"])
    assert new.decode(old.encode((1.0, None))) == (1.0, None, None, None)
    assert old.decode(new.encode((None, "s", T0, True))) == (None, "s")
    with pytest.raises(ValueError, match="holds 2 values, got 3"):
        old.encode((1.0, "a", 2))


def test_cached_store_is_bounded_in_size_and_staleness(tmp_path):
    from palette.online import CachedStore
    inner = open_store(f"sqlite:///{tmp_path}/online.db")
    layout = inner.setup(ENTITY, GROUP)
    put(inner, layout, "r1", 0, (1.0, None, None, None))
    now = [100.0]
    cached = CachedStore(inner, max_entries=2, max_seconds=1.0, monotonic=lambda: now[0])
    assert get(cached, layout, "r1", "unknown")[0][1][0] == 1.0
    assert (cached.hits, cached.misses) == (0, 2)
    put(inner, layout, "r1", 1, (2.0, None, None, None))              # the store moves on...
    put(inner, layout, "unknown", 1, (3.0, None, None, None))
    now[0] += 0.5
    assert [g and g[1][0] for g in get(cached, layout, "r1", "unknown")] == [1.0, None]   # ...the cache, not yet
    assert cached.hits == 2
    now[0] += 0.6                                                         # past max_seconds: read again
    assert [g and g[1][0] for g in get(cached, layout, "r1", "unknown")] == [2.0, 3.0]
    get(cached, layout, "a", "b", "c")
    assert len(cached._entries) == 2                                      # least recently used went first
    with pytest.raises(ValueError, match="max_entries >= 1"):
        CachedStore(inner, max_entries=0)


def test_write_rows_for_a_stream_is_latest_wins_atomic_and_checked(store):
    from palette.online import RowRejected, write_rows
    now = T0 + timedelta(minutes=30)
    batch = [{"r_id": "r1", "event_ts": now, "x": 1.0, "name": "a"},
             {"r_id": "r2", "event_ts": now, "x": 2.0, "open": True}]
    assert write_rows(store, ENTITY, GROUP, batch) == 2
    assert write_rows(store, ENTITY, GROUP, batch) == 2                 # a replay changes nothing
    late = [{"r_id": "r1", "event_ts": now - timedelta(minutes=5), "x": -1.0}]
    write_rows(store, ENTITY, GROUP, late)                                # a late row never wins
    layout = store.layout(GROUP.id)
    assert [g[1] for g in get(store, layout, "r1", "r2")] == [(1.0, "a", None, None), (2.0, None, True, None)]
    for bad, problem in [({"r_id": 3, "event_ts": now}, "key 'r_id'.*must be a string"),
                         ({"r_id": "r3"}, "no event time"),
                         ({"r_id": "r3", "event_ts": now, "x": "one"}, "feature 'x'.*is num, got str"),
                         ({"r_id": "r3", "event_ts": now, "color": 1}, "does not declare")]:
        with pytest.raises(RowRejected, match=problem):
            write_rows(store, ENTITY, GROUP, [{"r_id": "r4", "event_ts": now, "x": 4.0}, bad])
    assert get(store, layout, "r3", "r4") == [None, None]              # nothing of a rejected batch
