"""The online store on a Redis Cluster, natively (``redis+cluster://``): a real cluster of
3 masters and 3 replicas on loopback (conftest's ``redis_cluster``). The store's contract
runs on it in test_online_store.py; here what only a cluster has: keys spread over the
masters with one entity's groups in one slot, the ETA features read back equal to a
single Redis and SQLite, reads and writes through a slot migration, and a master killed
under ``palette serve``."""
import math
import os
import signal
import threading
import time

import pytest
import redis
from redis.crc import key_slot

from palette import Entity, FeatureGroup
from palette.errors import BadStoreURL
from palette.online import BatchWriter, open_store
from palette.transformers import load_scorer

from processes import Service, Traffic

ENTITY = Entity("restaurant", {"r_id": "str"})
MEALS = FeatureGroup("restaurant", "meals", {"n_meal": "num"})
PREP = FeatureGroup("restaurant", "prep", {"prep": "num", "name": "str"})
KEYS = [f"r{i}" for i in range(3000)]
T = 1_700_000_000_000_000


def fill(store, n_keys=len(KEYS)):
    """Two groups of ``n_keys`` keys, written as materialization writes (BatchWriter)."""
    layouts = store.setup(ENTITY, MEALS), store.setup(ENTITY, PREP)
    with BatchWriter(store, layouts[0], run=1) as w:
        for i, k in enumerate(KEYS[:n_keys]):
            w.add((k,), T + i, (float(i),))
    with BatchWriter(store, layouts[1], run=1) as w:
        for i, k in enumerate(KEYS[:n_keys]):
            w.add((k,), T + i, (i / 7, f"kitchen {i}"))
    return layouts


def values(store, layouts, keys):
    found = store.read([(layout, keys) for layout in layouts])
    return [[None if f is None else layout.codec().decode(f[1]) for f in hits] for layout, hits in zip(layouts, found)]


def expected(keys):
    return [[(float(int(k[1:])),) for k in keys], [(int(k[1:]) / 7, f"kitchen {k[1:]}") for k in keys]]


def keys_per_master(cluster, prefix: str) -> dict[int, list[bytes]]:
    return {port: list(cluster.client(port).scan_iter(match=prefix + ":*", count=1000)) for port in cluster.masters()}


def test_urls_name_nodes_and_database_0(redis_cluster):
    with pytest.raises(BadStoreURL, match="database 0"):
        open_store(redis_cluster.url.replace("/0", "/3"))
    with pytest.raises(BadStoreURL, match="host:port"):
        open_store("redis+cluster://127.0.0.1/0")
    with pytest.raises(BadStoreURL, match="brace"):
        open_store(redis_cluster.url + "?prefix=a{b}")
    s = open_store(redis_cluster.url.replace("://", "://:hunter2@"), timeout_ms=2000)
    assert "hunter2" not in s.url and "hunter2" not in repr(s) and "***" in s.url


def test_keys_spread_over_the_masters_one_entity_in_one_slot(redis_cluster):
    store = open_store(redis_cluster.url + "?timeout_ms=2000", prefix="spread")
    layouts = fill(store)
    want = expected(KEYS + ["r0"])
    assert values(store, layouts, KEYS + ["nope", "r0"]) == [w[:-1] + [None] + w[-1:] for w in want]
    per_master = keys_per_master(redis_cluster, "spread")
    rows = {p: [k for k in keys if not k.endswith(b"__")] for p, keys in per_master.items()}
    assert sum(map(len, rows.values())) == 2 * len(KEYS)
    for port, keys in rows.items():                    # about a third each
        assert 0.85 * 2000 <= len(keys) <= 1.15 * 2000, {p: len(k) for p, k in rows.items()}
    homes = {}
    for port, keys in rows.items():                   # both groups of an entity key on one master, one slot
        for key in keys:
            homes.setdefault(key.rsplit(b":", 1)[1], set()).add((port, key_slot(key)))
    assert len(homes) == len(KEYS) and all(len(h) == 1 for h in homes.values())
    assert store.count(MEALS.id) == len(KEYS)


def migrate_slot(cluster, slot: int, source: int, target: int, after_each_key) -> list[bytes]:
    """Move ``slot`` from master ``source`` to ``target`` as ``redis-cli --cluster reshard``
    does: IMPORTING / MIGRATING, MIGRATE key by key, then the slot's new owner to every
    master. Returns the keys moved."""
    ids = cluster.masters()
    src, dst = cluster.client(source), cluster.client(target)
    dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", ids[source])
    src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", ids[target])
    moved = []
    while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1):
        src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
        moved += keys
        after_each_key()
    for port in ids:
        cluster.client(port).execute_command("CLUSTER SETSLOT", slot, "NODE", ids[target])
    return moved


def test_reads_and_writes_follow_a_slot_migration(redis_cluster):
    """Slots move from one master to another, key by key, while a thread reads every key
    (one batch) and each moving entity (one request's read) and another rewrites the
    moving keys: every read answers the right values, nothing fails (MOVED, ASK and
    TRYAGAIN are followed), and the keys end up on the new master."""
    url = redis_cluster.url + "?timeout_ms=2000"
    store = open_store(url, prefix="mig")
    layouts = fill(store, 600)
    keys = KEYS[:600]
    want = expected(keys)
    masters = sorted(redis_cluster.masters())
    nodes = redis.cluster.RedisCluster(host="127.0.0.1", port=masters[0])
    source = nodes.get_node_from_key(store._key(store._key_prefix(MEALS.id), keys[0])).port
    target = next(p for p in masters if p != source)
    moving = [k for k in keys if nodes.get_node_from_key(store._key(store._key_prefix(MEALS.id), k)).port == source][:12]
    errors, reads, done = [], [0], threading.Event()

    def read_loop():
        reader = open_store(url, prefix="mig")
        one = reader.prepare_read(layouts)
        while not done.is_set():
            try:
                if values(reader, layouts, keys) != want:
                    errors.append("a batch read answered wrong values")
                for k in moving:
                    got = [layout.codec().decode(f[1]) for layout, f in zip(layouts, one([k, k]))]
                    if got != [w[keys.index(k)] for w in want]:
                        errors.append(f"{k}: {got}")
                reads[0] += 1
            except Exception as e:              # noqa: BLE001 - any failure is the finding
                errors.append(repr(e))

    def rewrite_loop():
        writer = open_store(url, prefix="mig")
        while not done.is_set():
            try:
                with BatchWriter(writer, layouts[0], run=1) as w:
                    for k in moving:
                        w.add((k,), T + int(k[1:]), (float(k[1:]),))
            except Exception as e:              # noqa: BLE001
                errors.append(repr(e))

    threads = [threading.Thread(target=read_loop), threading.Thread(target=rewrite_loop)]
    for t in threads:
        t.start()
    try:
        slots = sorted({key_slot(store._key(store._key_prefix(MEALS.id), k)) for k in moving})
        moved = [k for s in slots for k in migrate_slot(redis_cluster, s, source, target, lambda: time.sleep(0.02))]
        time.sleep(0.3)
    finally:
        done.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:5]
    assert sorted(k for k in (m.decode() if isinstance(m, bytes) else m for m in moved) if k.startswith("mig:")) == sorted(
        store._key(store._key_prefix(layout.group_id), k).decode() for layout in layouts for k in moving)
    assert reads[0] >= 5, reads
    target_client = redis_cluster.client(target)
    assert all(target_client.execute_command("CLUSTER COUNTKEYSINSLOT", s) >= 2 for s in slots)
    assert values(store, layouts, keys) == want


@pytest.fixture(scope="module")
def cluster_url(eta, redis_cluster, spark_session):
    """The ETA features materialized into the cluster from Spark's executors."""
    url = redis_cluster.url + "?timeout_ms=2000&prefix=eta"
    results = eta["store"].materialize(online_store=url, spark=spark_session)
    assert sorted(results) == ["region:service_fg", "restaurant:batch_fg", "restaurant:location_fg",
                               "restaurant:realtime_fg"]
    return url


def test_eta_materialized_into_the_cluster_reads_as_redis_and_sqlite(eta, online_urls, cluster_url, redis_cluster):
    from eta_fixtures import AS_OF_SECONDS, OUTPUTS
    stores = {name: open_store(url, clock=lambda: AS_OF_SECONDS)
              for name, url in [("cluster", cluster_url), *online_urls.items()]}
    for group_id in stores["sqlite"].groups():
        prefix = stores["redis"]._key_prefix(group_id)
        keys = [k[len(prefix):].decode() for batch in stores["redis"]._scan(group_id) for k in batch]
        found = {name: s.read([(s.layout(group_id), keys + ["nope"])])[0] for name, s in stores.items()}
        assert found["cluster"] == found["redis"] == found["sqlite"], group_id
        assert found["cluster"][-1] is None and sum(f is not None for f in found["cluster"]) == len(keys) > 0
        assert stores["cluster"].count(group_id) == len(keys)
    path, _ = eta["models"]["palette_transformer"]
    scorers = {name: load_scorer(path, online_store=s) for name, s in stores.items()}
    for r in eta["requests"][:500]:
        inst = {"r_id": r["r_id"], "order_size": r["order_size"]}
        got = {name: s.scoreInstance(inst) for name, s in scorers.items()}
        for c in OUTPUTS:
            a, b, c_ = (_plain(got[n][c]) for n in ("cluster", "redis", "sqlite"))
            assert a == b == c_ or (isinstance(a, float) and math.isclose(a, b) and math.isclose(a, c_)), (inst, c)
    rows = [k for keys in keys_per_master(redis_cluster, "eta").values() for k in keys if not k.endswith(b"__")]
    per = [sum(1 for k in keys if not k.endswith(b"__")) for keys in keys_per_master(redis_cluster, "eta").values()]
    assert len(per) == 3 and all(0.6 * len(rows) / 3 <= n <= 1.4 * len(rows) / 3 for n in per), per


def _plain(v):
    v = v.toArray() if hasattr(v, "toArray") else v
    return v.tolist() if hasattr(v, "tolist") else v


# How long after the replica's promotion reads of its slots may still fail: redis-py re-reads
# the slot table on the first error after it, at most once a second. Within 1.5 s when this
# test runs alone; one fresh-clone run of the whole suite on the two busy cores saw a 503 later
# than that (how much later it did not print; it does now).
RECOVERY = 5.0


def test_a_killed_master_fails_its_slots_with_503_until_its_replica_is_promoted(eta, online_urls, cluster_url,
                                                                                redis_cluster, tmp_path):
    """``palette serve`` on the cluster; a master is killed (SIGKILL). Requests whose keys
    live on it get 503 (never 500) only while no master holds their slots, then 200 again
    once its replica is promoted, without restarting the server; requests whose keys live
    on the other masters answer 200 throughout. The killed node then rejoins as a replica."""
    store = open_store(cluster_url)
    restaurants = sorted({r["r_id"] for r in eta["requests"] if r["r_id"] and r["r_id"][1:].isdigit()})
    scorer = load_scorer(eta["models"]["palette_transformer"][0], online_store=online_urls["sqlite"])
    region = {r: scorer.scoreInstance({"r_id": r, "order_size": 1})["region_id"] for r in restaurants[:80]}
    nodes = redis.cluster.RedisCluster(host="127.0.0.1", port=min(redis_cluster.masters()))

    def master_of(group_id, key):
        return nodes.get_node_from_key(store._key(store._key_prefix(group_id), key)).port

    victim = master_of("restaurant:batch_fg", restaurants[0])
    on_victim = [r for r in region if master_of("restaurant:batch_fg", r) == victim][:3]
    elsewhere = [r for r in region if master_of("restaurant:batch_fg", r) != victim
                 and (region[r] is None or master_of("region:service_fg", region[r]) != victim)][:3]
    assert on_victim and elsewhere
    s = Service(tmp_path, ["--model", f"eta={eta['models']['palette_transformer'][0]}", "--online-store", cluster_url,
                           "--store-timeout-ms", "500", "--workers", "1"])
    bodies = {tag: {"instances": [{"r_id": k, "order_size": 2} for k in keys]}
              for tag, keys in (("victim", on_victim), ("other", elsewhere))}
    try:
        with Traffic(s.url + "/v1/models/eta:predict", bodies, pause=0.02) as traffic:
            time.sleep(1)
            killed = time.monotonic()
            os.kill(redis_cluster.procs[victim].pid, signal.SIGKILL)
            redis_cluster.procs[victim].wait()
            deadline = time.monotonic() + 30
            while victim in redis_cluster.masters() or len(redis_cluster.masters()) < 3:
                assert time.monotonic() < deadline, "the replica was not promoted within 30 s"
                time.sleep(0.05)
            promoted = time.monotonic()
            time.sleep(RECOVERY + 3)
    finally:
        code = s.stop()
        redis_cluster.start(victim)            # rejoins as a replica of the promoted node
    redis_cluster.wait_ok()
    assert code == 0
    answers = traffic.answers
    assert {a.status for a in answers} <= {200, 503}, {a.status for a in answers}
    assert all(a.status == 200 for a in answers if a.tag == "other"), "keys on the other masters must keep answering"
    victim_503 = [a for a in answers if a.tag == "victim" and a.status == 503]
    assert victim_503, "reads of the killed master's slots should fail while no master holds them"
    late = [round(a.sent - promoted, 2) for a in victim_503 if not killed <= a.sent <= promoted + RECOVERY]
    assert not late, f"503 only while no master held the slots (+ {RECOVERY} s); seconds after the promotion: {late}"
    back = [a for a in answers if a.tag == "victim" and a.sent >= promoted + RECOVERY]
    assert back and all(a.status == 200 for a in back), "served again after the promotion, without a restart"
    assert 3 <= len(redis_cluster.masters()) and victim not in redis_cluster.masters()
