"""RPC fetchers against a real HTTP service (the kitchen service, its own process on
loopback), in every mode: each gives its documented result, is counted, and never hangs."""
import time

import pytest

from palette import FAIL, Entity, FeatureGroup, Fetcher
from palette.errors import RegistryError, RpcUnavailable
from palette.rpc.client import RpcClient
from palette.testing import kitchen_mode, kitchen_stats

from kitchen_values import recent, recent_pair

RESTAURANT = Entity("restaurant", {"r_id": "str"})
FEATURES = {"queue_minutes": "num", "queue_orders": "num"}
FIELDS = {"queue_minutes": "$.queue.minutes", "queue_orders": "$.queue.orders"}


def group(url=None, name="kitchen_rpc", **policy):
    policy.setdefault("timeout", "300ms")
    fetcher = Fetcher(url=f"{url}/restaurants/{{r_id}}/queue", fields=FIELDS, **policy) if url else \
        Fetcher(fields=FIELDS, **policy)
    return FeatureGroup("restaurant", name, FEATURES, kind="rpc", fetcher=fetcher)


def client(g):
    return RpcClient(g, RESTAURANT)


def expected(r_id):
    return recent_pair(r_id)


def test_fast_answers_are_the_service_s_values_and_unknown_keys_are_null(kitchen):
    with client(group(kitchen)) as c:
        before = time.time()
        recs = c.fetch([("r1",), ("r2",), None, ("unknown-9",), ("r1",)])
        assert [r[:2] if r else r for r in recs] == [expected("r1"), expected("r2"), None, None, expected("r1")]
        assert recs[0].fallbacks is None
        assert before * 1e6 <= recs[0][-1] <= time.time() * 1e6          # the fetch time, in µs
        assert kitchen_stats(kitchen)["requests"] == 3                    # one call per distinct key
        assert c.stats == {"ok": 2, "not_found": 1}


def test_a_slow_service_hits_the_timeout_and_gets_the_fallback_without_hanging(kitchen):
    kitchen_mode(kitchen, "slow", slow_ms=4000)
    with client(group(kitchen, fallback={"queue_minutes": -1.0})) as c:
        t0 = time.monotonic()
        rec = c.fetch([("r1",)])[0]
        waited = time.monotonic() - t0
        assert rec[:2] == (-1.0, None) and rec.fallbacks == ("timeout", "timeout")
        assert waited < 3.0, f"waited {waited:.2f}s for a 300ms timeout"     # bounded by the timeout, not the service
        assert c.stats["fallback_timeout"] == 1


def test_an_erroring_service_opens_the_breaker_which_half_opens_and_recovers(kitchen):
    kitchen_mode(kitchen, "failing")
    states = []
    g = group(kitchen, breaker_failures=3, breaker_reset="1s", fallback={"queue_minutes": 0.0})
    with RpcClient(g, RESTAURANT, observer=type("O", (), {"called": lambda *a: None, "fell_back": lambda *a: None,
                                                         "breaker": lambda self, grp, s: states.append(s)})()) as c:
        reasons = [c.fetch([(f"r{i}",)])[0].fallbacks[0] for i in range(6)]
        assert reasons == ["error"] * 3 + ["breaker_open"] * 3
        assert kitchen_stats(kitchen)["requests"] == 3                 # an open breaker calls nothing
        kitchen_mode(kitchen, "fast")
        time.sleep(1.1)
        rec = c.fetch([("r1",)])[0]                                     # the trial call, half open
        assert rec.fallbacks is None and rec[:2] == expected("r1")
        assert states == ["closed", "open", "half_open", "closed"]
        assert c.breaker.state == "closed"


def test_a_failed_trial_call_opens_the_breaker_again(kitchen):
    kitchen_mode(kitchen, "failing")
    with client(group(kitchen, breaker_failures=1, breaker_reset="0.3s")) as c:
        assert c.fetch([("r1",)])[0].fallbacks[0] == "error"
        time.sleep(0.35)
        assert c.fetch([("r1",)])[0].fallbacks[0] == "error"           # the trial, failed
        assert c.breaker.state == "open"
        assert c.fetch([("r1",)])[0].fallbacks[0] == "breaker_open"


def test_retries_ride_out_a_flapping_service_within_their_budget(kitchen):
    kitchen_mode(kitchen, "flapping")
    with client(group(kitchen, retries=1, retry_budget=0.5, breaker_failures=50)) as c:
        recs = [c.fetch([(f"r{i}",)])[0] for i in range(40)]
        fetched = sum(r.fallbacks is None for r in recs)
        retries = c.stats.get("retries", 0)
        assert fetched == 40 - c.stats.get("fallback_error", 0)
        # The budget: 10 tokens to start, half a token per call after that.
        assert retries <= 10 + 0.5 * (40 + retries)
        assert fetched >= 30


def test_no_retry_budget_means_no_retries(kitchen):
    kitchen_mode(kitchen, "failing")
    with client(group(kitchen, retries=3, retry_budget=0.0, breaker_failures=100)) as c:
        c.budget.tokens = 0.0
        for i in range(5):
            c.fetch([(f"r{i}",)])
        assert kitchen_stats(kitchen)["requests"] == 5 and "retries" not in c.stats


@pytest.mark.parametrize("mode, reason", [("malformed", "malformed"), ("missing", "missing")])
def test_malformed_and_missing_answers_get_each_feature_s_fallback(kitchen, mode, reason):
    kitchen_mode(kitchen, mode)
    with client(group(kitchen, fallback={"queue_minutes": 5.0})) as c:
        rec = c.fetch([("r1",)])[0]
        assert rec[:2] == (5.0, None) and rec.fallbacks == (reason, reason)
        assert c.stats[f"fallback_{reason}"] == 1


def test_a_value_of_the_wrong_type_is_malformed_for_that_feature_only(kitchen):
    g = FeatureGroup("restaurant", "kitchen_rpc", {"queue_minutes": "num", "queue_orders": "str"}, kind="rpc",
                     fetcher=Fetcher(url=f"{kitchen}/restaurants/{{r_id}}/queue", fields=FIELDS))
    with client(g) as c:
        rec = c.fetch([("r1",)])[0]
        assert rec[0] == recent("r1") and rec[1] is None and rec.fallbacks == (None, "malformed")


def test_fail_fallback_raises_naming_the_group(kitchen):
    kitchen_mode(kitchen, "failing")
    with client(group(kitchen, fallback={"queue_minutes": FAIL})) as c:
        with pytest.raises(RpcUnavailable, match="restaurant:kitchen_rpc failed \\(error\\).*queue_minutes.*fail"):
            c.fetch([("r1",)])


def test_batch_endpoint_one_call_for_many_keys(kitchen):
    g = FeatureGroup("restaurant", "kitchen_rpc", FEATURES, kind="rpc", fetcher=Fetcher(
        url=f"{kitchen}/restaurants/{{r_id}}/queue", batch_url=f"{kitchen}/restaurants/queue:batch", fields=FIELDS))
    with client(g) as c:
        keys = [(f"r{i}",) for i in range(100)] + [("unknown-1",), None]
        recs = c.fetch(keys)
        assert [r[:2] for r in recs[:100]] == [expected(k[0]) for k in keys[:100]]
        assert recs[100:] == [None, None]
        stats = kitchen_stats(kitchen)
        assert stats["requests"] == 1 and stats["batch_requests"] == 1


def test_headers_take_secrets_from_the_environment_at_load(kitchen, monkeypatch):
    g = group(kitchen, headers={"Authorization": "Bearer ${KITCHEN_TOKEN}"})
    assert "${KITCHEN_TOKEN}" in str(g.to_json())          # the definition keeps the name, never the secret
    monkeypatch.delenv("KITCHEN_TOKEN", raising=False)
    with pytest.raises(RegistryError, match="KITCHEN_TOKEN, which is not set"):
        client(g)
    monkeypatch.setenv("KITCHEN_TOKEN", "s3cret")
    with client(g) as c:
        assert c._headers["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize("function, batch", [("palette.examples.kitchen:queue", False),
                                             ("palette.examples.kitchen:queue_async", False),
                                             ("palette.examples.kitchen:queue_batch", True)])
def test_python_fetchers_sync_async_and_batch(function, batch):
    with client(group(function=function, batch=batch)) as c:
        recs = c.fetch([("r1",), ("unknown-2",), ("r3",)])
        assert [r[:2] if r else r for r in recs] == [expected("r1"), None, expected("r3")]


def test_a_python_fetcher_that_raises_or_stalls_gets_the_fallback(monkeypatch):
    import palette.examples.kitchen as k

    def boom(keys):
        raise RuntimeError("kitchen SDK exploded")

    def stall(keys):
        time.sleep(3.0)
        return k.answer(keys["r_id"], time.time())
    monkeypatch.setattr(k, "boom", boom, raising=False)
    monkeypatch.setattr(k, "stall", stall, raising=False)
    for name, reason in (("boom", "error"), ("stall", "timeout")):
        with client(group(function=f"palette.examples.kitchen:{name}", timeout="200ms", fallback={"queue_minutes": 0.0})) as c:
            t0 = time.monotonic()
            rec = c.begin([("r1",)])()[0]                # through the pool: a stalled function is not waited for
            assert rec.fallbacks[0] == reason and rec[0] == 0.0
            assert time.monotonic() - t0 < 2.5                 # the timeout, not the function's 3 s


def test_bad_declarations_name_the_fix():
    with pytest.raises(RegistryError, match="url= .* or function="):
        Fetcher()
    with pytest.raises(RegistryError, match="'package.module:function'"):
        Fetcher(function="kitchen.queue")
    with pytest.raises(RegistryError, match="timeout '5 sec'.*'50ms'"):
        Fetcher(url="http://k/{r_id}", timeout="5 sec")
    with pytest.raises(RegistryError, match="JSON path 'queue.minutes' must start with '\\$'"):
        Fetcher(url="http://k/{r_id}", fields={"m": "queue.minutes"})
    with pytest.raises(RegistryError, match="put \\{as_of\\} in the url"):
        Fetcher(url="http://k/{r_id}", as_of=True)
    with pytest.raises(RegistryError, match="needs fetcher="):
        FeatureGroup("restaurant", "k", FEATURES, kind="rpc")
    with pytest.raises(RegistryError, match="fetcher 'nowhere.at_all:queue' cannot be imported.*install the package"):
        client(group(function="nowhere.at_all:queue"))


def test_registration_checks_the_fetcher_against_features_and_keys(tmp_path):
    from palette.registry import Registry
    reg = Registry(tmp_path)
    reg.register(RESTAURANT)
    with pytest.raises(RegistryError, match="url template names courier_id, which are not keys.*r_id"):
        reg.register(FeatureGroup("restaurant", "k", FEATURES, kind="rpc",
                                  fetcher=Fetcher(url="http://k/{courier_id}")))
    with pytest.raises(RegistryError, match="names feature 'queue_len', which the group does not declare"):
        reg.register(FeatureGroup("restaurant", "k", FEATURES, kind="rpc",
                                  fetcher=Fetcher(url="http://k/{r_id}", fallback={"queue_len": 0.0})))
    with pytest.raises(RegistryError, match="fallback of 'queue_minutes' is 'none', not a num"):
        reg.register(FeatureGroup("restaurant", "k", FEATURES, kind="rpc",
                                  fetcher=Fetcher(url="http://k/{r_id}", fallback={"queue_minutes": "none"})))
    g = group("http://kitchen:8080", fallback={"queue_minutes": FAIL, "queue_orders": 0.0}, retries=2)
    reg.register(g)
    assert reg.group("restaurant:kitchen_rpc") == g                 # stored, FAIL and all


def test_a_service_that_is_down_is_one_failed_attempt_then_the_fallback():
    from palette.testing import free_port
    with client(group(f"http://127.0.0.1:{free_port()}", fallback={"queue_minutes": 0.0})) as c:    # nothing listens
        rec = c.fetch([("r1",)])[0]
        assert rec[0] == 0.0 and rec.fallbacks == ("error", "error")
        assert c.stats == {"error": 1, "fallback_error": 1}
