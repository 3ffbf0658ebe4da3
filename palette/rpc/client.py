"""Calling an RPC group's fetcher under its policy: deadline, retries, breaker, fallbacks.

An ``RpcClient`` is made once per group when a model loads (the fetcher's function is
imported then, its header secrets read from the environment then) and used by every
request. ``begin(keys)`` issues the calls for many keys at once — one per distinct key
on a thread pool, or one call of the batch endpoint — and returns a function that waits
for them until the group's deadline (its ``timeout``: the most a request waits for this
group, retries included) and gives, per key, a ``Fetched`` record: the values in the
group's feature order then the fetch time in µs, as an online store's record, with
``fallbacks`` saying which values are fallbacks and why (``timeout``, ``error``,
``breaker_open``, ``overloaded``, ``malformed``, ``missing``), or None for a key the
service does not know. A feature whose fallback is ``FAIL`` raises ``RpcUnavailable``
naming the group instead.

Everything that happens is told to an observer (``RpcObserver``): the serving process
turns it into Prometheus metrics; ``RpcClient.stats`` counts it too.

>>> from palette.registry import Entity, FeatureGroup
>>> from palette.rpc import Fetcher
>>> def loc(keys):
...     return {"geohash": "9q8yy", "lat": 37.7}
>>> import sys; sys.modules[__name__].loc = loc
>>> g = FeatureGroup("courier", "loc_rpc", {"geohash": "str", "lat": "num"}, kind="rpc",
...                  fetcher=Fetcher(function=f"{__name__}:loc"))
>>> with RpcClient(g, Entity("courier", {"courier_id": "str"})) as client:
...     rec = client.fetch([("c1",)])[0]
>>> rec[:2], rec.fallbacks
(('9q8yy', 37.7), None)
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timezone
from typing import Any, Callable, Protocol
from urllib.parse import quote

from palette.errors import PaletteError, RegistryError, RpcUnavailable
from palette.feature_types import feature_type

from .fetcher import FAIL, Fetcher
from .http import HttpFailed, HttpTimeout, HttpTransport, Sent

log = logging.getLogger("palette.rpc")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
NOT_FOUND = object()           # the service does not know the key: null values, not a fallback
INLINE_CALLS = 8               # HTTP calls a request writes and reads on its own thread (more: the pool)


class Fetched(tuple):
    """One key's fetched values then the fetch time (µs); ``fallbacks``: None when every value
    was fetched, else per feature the reason its value is a fallback (None where fetched)."""

    def __new__(cls, values, fallbacks=None):
        record = super().__new__(cls, values)
        record.fallbacks = fallbacks
        return record



class _Failure:
    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


class RpcObserver(Protocol):
    def called(self, group: str, seconds: float, outcome: str) -> None:
        """A call ended: ``ok``, ``not_found``, ``timeout``, ``error``, ``malformed``."""

    def fell_back(self, group: str, reason: str, n: int) -> None:
        """``n`` keys got fallback values, for ``reason``."""

    def breaker(self, group: str, state: str) -> None:
        """The breaker is now ``closed``, ``open`` or ``half_open``."""


class Breaker:
    """Opens after ``failures`` failed calls in a row; after ``reset`` seconds lets one trial
    call through (half open): its success closes it, its failure opens it again."""

    def __init__(self, failures: int, reset: float, on_change: Callable[[str], None] = lambda s: None,
                 clock: Callable[[], float] = time.monotonic):
        self.failures, self.reset, self.on_change, self.clock = failures, reset, on_change, clock
        self.state, self._count, self._opened, self._trial = "closed", 0, 0.0, False
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self.state == "closed":
                return True
            if self.state == "open" and self.clock() - self._opened >= self.reset:
                self._set("half_open")
                self._trial = False
            if self.state == "half_open" and not self._trial:
                self._trial = True
                return True
            return False

    def record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._count = 0
                if self.state != "closed":
                    self._set("closed")
                return
            self._count += 1
            if self.state == "half_open" or (self.state == "closed" and self._count >= self.failures):
                self._opened = self.clock()
                self._set("open")

    def _set(self, state: str) -> None:
        self.state = state
        self.on_change(state)


class RetryBudget:
    """Retries may be at most ``ratio`` of the calls (a token bucket: each call adds
    ``ratio`` of a token, each retry takes one; 10 tokens at most), so a failing service
    sees about ``1 + ratio`` times its normal load, not ``1 + retries`` times."""

    def __init__(self, ratio: float, cap: float = 10.0):
        self.ratio, self.cap, self.tokens = ratio, cap, cap
        self._lock = threading.Lock()

    def called(self) -> None:
        with self._lock:
            self.tokens = min(self.cap, self.tokens + self.ratio)

    def take(self) -> bool:
        with self._lock:
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


class _NullObserver:
    def called(self, group, seconds, outcome):
        pass

    def fell_back(self, group, reason, n):
        pass

    def breaker(self, group, state):
        pass


def import_function(path: str, group: str) -> Callable:
    """``package.module:function``, imported (at load time, never unpickled)."""
    module, _, name = path.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise RegistryError(f"RPC group {group}: its fetcher {path!r} cannot be imported ({type(e).__name__}: {e}); "
                            "install the package that defines it where the model is served") from None
    if not callable(fn):
        raise RegistryError(f"RPC group {group}: {path!r} is not a function")
    return fn


def _resolve_env(value: str, what: str) -> str:
    def sub(m):
        v = os.environ.get(m.group(1))
        if v is None:
            raise RegistryError(f"{what} names the environment variable {m.group(1)}, which is not set: set it where "
                                "the model is served (secrets are never stored with the definition)")
        return v
    return _ENV.sub(sub, value)


def _walk(answer: Any, path: tuple) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(answer, list):
                raise _Malformed(f"not a list at [{part}]")
            if part >= len(answer):
                raise _Missing(part)
        elif not isinstance(answer, dict):
            raise _Malformed(f"not an object at {part!r}")
        elif part not in answer:
            raise _Missing(part)
        answer = answer[part]
    return answer


class RpcClient:
    """The fetcher of one RPC group, ready to call (see the module's docstring)."""

    def __init__(self, group, entity, observer: RpcObserver | None = None):
        f: Fetcher = group.fetcher
        self.group_id, self.fetcher = group.id, f
        self.observer = observer or _NullObserver()
        self.key_names = tuple(entity.join_keys)
        self.features = tuple((feat.name, feat.type) for feat in group.features)
        self._parse = tuple((feature_type(t).from_json, f.path_of(name)) for name, t in self.features)
        self._fallback = tuple(f.fallback.get(name) for name, _ in self.features)
        self._fails = any(v is FAIL for v in self._fallback)
        self.timeout = f.timeout_seconds
        self.stats: dict[str, int] = {}
        self._stats_lock = threading.Lock()
        self.breaker = Breaker(f.breaker_failures, f.breaker_reset_seconds,
                               lambda s: self.observer.breaker(self.group_id, s))
        self.budget = RetryBudget(float(f.retry_budget))
        self._slots = threading.BoundedSemaphore(f.concurrency)
        self._pool = ThreadPoolExecutor(max_workers=f.concurrency, thread_name_prefix=f"palette-rpc-{group.name}")
        self._loop = None
        self._batched = bool(f.batch_url) or (f.function is not None and f.batch)
        if f.function is not None:
            self._fn = import_function(f.function, group.id)
            self._async = inspect.iscoroutinefunction(self._fn)
            self._takes_as_of = "as_of" in inspect.signature(self._fn).parameters
            if f.as_of and not self._takes_as_of:
                raise RegistryError(f"RPC group {group.id}: as_of=True, but {f.function} takes no as_of= keyword: "
                                    "give it one (the time to answer for; None for now) or drop as_of=True")
            if self._async:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name=f"palette-rpc-{group.name}-loop",
                                 daemon=True).start()
        else:
            self._headers = {k: _resolve_env(v, f"RPC group {group.id}: header {k!r}") for k, v in f.headers.items()}
            self._headers.setdefault("Accept", "application/json")
            self._http = HttpTransport(max_idle=f.concurrency)
        self.observer.breaker(self.group_id, "closed")

    # -- the request path ---------------------------------------------------------------
    def begin(self, keys: list[tuple | None], as_of: datetime | None = None,
              inline: bool = False) -> Callable[[], list]:
        """Issue the calls for ``keys`` (tuples of key values; None: a null key, which
        matches nothing) now; the returned function waits for them (until the deadline)
        and gives a ``Fetched`` or None per key. ``inline``: up to ``INLINE_CALLS`` HTTP calls
        run on the caller's thread — their requests written now, their answers read when the
        caller waits — so whatever the caller does meanwhile (the store's read, other groups'
        calls) overlaps them without a thread hand-off; more calls, and Python functions, run
        on the fetcher's pool (where a sync function's deadline holds)."""
        deadline = time.monotonic() + self.timeout
        distinct = list(dict.fromkeys(k for k in keys if k is not None))
        if not distinct:
            return lambda: [None] * len(keys)
        if self._batched:
            calls = {tuple(distinct): None}
        else:
            calls = {(k,): None for k in distinct}
        if inline and self.fetcher.url and len(calls) <= INLINE_CALLS:
            sent = {group_keys: self._presend(group_keys, deadline, as_of) for group_keys in calls}

            def run_inline():
                return self._records(keys, {k: self._call(k, deadline, as_of, s) for k, s in sent.items()})
            return run_inline
        futures = {group_keys: self._pool.submit(self._call, group_keys, deadline, as_of) for group_keys in calls}

        def finish() -> list:
            wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
            return self._records(keys, {k: (fut.result() if fut.done() else _Failure("timeout"))
                                        for k, fut in futures.items()})
        return finish

    def fetch(self, keys: list[tuple | None], as_of: datetime | None = None) -> list:
        """``begin(keys)()``: the records of ``keys``, waiting at most the group's timeout."""
        return self.begin(keys, as_of, inline=True)()

    def _records(self, keys: list, answers: dict[tuple, Any]) -> list:
        now = int(time.time() * 1_000_000)
        by_key: dict[tuple, Any] = {}
        for group_keys, answer in answers.items():
            if self._batched:
                results = answer if isinstance(answer, list) else [answer] * len(group_keys)
                by_key.update(zip(group_keys, results))
            else:
                by_key[group_keys[0]] = answer
        out, reasons = [], {}
        for k in keys:
            if k is None:
                out.append(None)
                continue
            answer = by_key[k]
            if answer is NOT_FOUND or answer is None:
                out.append(None)
            elif isinstance(answer, _Failure):
                out.append(self._fall_back(answer.reason, now))
                reasons[answer.reason] = reasons.get(answer.reason, 0) + 1
            else:
                record = self._values(answer, now)
                if record.fallbacks is not None:
                    for r in set(filter(None, record.fallbacks)):
                        reasons[r] = reasons.get(r, 0) + 1
                out.append(record)
        for reason, n in reasons.items():
            self._count(f"fallback_{reason}", n)
            self.observer.fell_back(self.group_id, reason, n)
        return out

    def _fall_back(self, reason: str, now: int) -> Fetched:
        if self._fails:
            failing = [name for (name, _), fb in zip(self.features, self._fallback) if fb is FAIL]
            raise RpcUnavailable(f"RPC feature group {self.group_id} failed ({reason}) and the fallback of "
                                 f"{', '.join(failing)} is to fail the request", self.group_id, reason)
        return Fetched((*self._fallback, now), (reason,) * len(self.features))

    def _values(self, answer: Any, now: int) -> Fetched:
        values, fallbacks = [], None
        for i, (parse, path) in enumerate(self._parse):
            try:
                raw = _walk(answer, path)
                values.append(None if raw is None else parse(raw))
                continue
            except _Missing:
                reason = "missing"
            except (_Malformed, ValueError, TypeError):
                reason = "malformed"
            if self._fallback[i] is FAIL:
                raise RpcUnavailable(f"RPC feature group {self.group_id}: the answer has no valid "
                                     f"{self.features[i][0]!r} ({reason}) and its fallback is to fail the request",
                                     self.group_id, reason)
            values.append(self._fallback[i])
            fallbacks = fallbacks or [None] * len(self._parse)
            fallbacks[i] = reason
        return Fetched((*values, now), None if fallbacks is None else tuple(fallbacks))

    # -- one call, with retries -----------------------------------------------------------
    def _presend(self, keys: tuple, deadline: float, as_of) -> "Sent | _Failure | None":
        """The first attempt's request written now (its slot taken, the breaker asked): the
        ``Sent`` request, or the ``_Failure`` of writing it (the first attempt's outcome, for
        ``_call`` to count and maybe retry); None when no slot is free or the breaker is open
        (then ``_call`` does everything as usual)."""
        if not self._slots.acquire(blocking=False):
            return None
        if not self.breaker.allow():
            self._slots.release()
            return None
        try:
            return self._http.send(*self._request(keys, as_of), deadline)
        except HttpTimeout:
            return _Failure("timeout")
        except HttpFailed:
            return _Failure("error")

    def _call(self, keys: tuple, deadline: float, as_of, sent: "Sent | _Failure | None" = None) -> Any:
        """The answer for ``keys`` (one key, or all of a batch): the decoded JSON (a list for a
        batch), ``NOT_FOUND``, or a ``_Failure``. ``sent``: the first attempt, already written
        or failed (``_presend``: its slot taken and the breaker asked)."""
        remaining = deadline - time.monotonic()
        if sent is None:
            if remaining <= 0:
                return _Failure("timeout")
            if not self._slots.acquire(timeout=remaining):
                return _Failure("overloaded")
        try:
            attempt = 0
            while True:
                if sent is None and not self.breaker.allow():
                    return _Failure("breaker_open")
                remaining = deadline - time.monotonic()
                if remaining <= 0 and sent is None:
                    return _Failure("timeout")
                t0 = sent.started if isinstance(sent, Sent) else time.perf_counter()
                outcome, answer = self._attempt(keys, deadline, as_of, sent)
                sent = None
                self.observer.called(self.group_id, time.perf_counter() - t0, outcome)
                self._count(outcome)
                self.budget.called()
                if outcome in ("ok", "not_found"):
                    self.breaker.record(True)
                    return answer
                self.breaker.record(False)
                if outcome == "malformed" or attempt >= self.fetcher.retries or not self.budget.take():
                    return _Failure(outcome)
                attempt += 1
                self._count("retries")
        finally:
            self._slots.release()

    def _attempt(self, keys: tuple, deadline: float, as_of, sent: "Sent | _Failure | None" = None) -> tuple[str, Any]:
        if isinstance(sent, _Failure):                  # writing the request failed already
            return sent.reason, None
        try:
            answer = self._python(keys, deadline - time.monotonic(), as_of) if self.fetcher.function else \
                self._http_answer(self._http.receive(sent) if sent is not None else
                                  self._http.call(*self._request(keys, as_of), deadline))
        except (TimeoutError, asyncio.TimeoutError):
            return "timeout", None
        except _Malformed:
            return "malformed", None
        except Exception as e:                          # the service's failure, whatever it raised
            log.debug("RPC group %s: call failed: %s", self.group_id, e)
            return "error", None
        if answer is NOT_FOUND:
            return "not_found", NOT_FOUND
        if self._batched:
            if isinstance(answer, dict) and isinstance(answer.get("results"), list):
                answer = answer["results"]
            if not isinstance(answer, list) or len(answer) != len(keys):
                return "malformed", None
        return "ok", answer

    def _key_dict(self, key: tuple) -> dict:
        return dict(zip(self.key_names, key))

    def _python(self, keys: tuple, timeout: float, as_of):
        arg = [self._key_dict(k) for k in keys] if self._batched else self._key_dict(keys[0])
        kwargs = {"as_of": as_of} if self._takes_as_of and as_of is not None else {}
        if self._async:
            fut = asyncio.run_coroutine_threadsafe(asyncio.wait_for(self._fn(arg, **kwargs), timeout), self._loop)
            answer = fut.result(timeout + 1.0)
        else:
            answer = self._fn(arg, **kwargs)
        return NOT_FOUND if answer is None else answer

    def _request(self, keys: tuple, as_of) -> tuple:
        """(method, url, body, headers) of the call for ``keys``."""
        f = self.fetcher
        if self._batched:
            body = json.dumps({"keys": [self._key_dict(k) for k in keys]}, default=str).encode()
            return "POST", f.batch_url, body, {**self._headers, "Content-Type": "application/json"}
        at = {"as_of": "" if as_of is None else quote(as_of.astimezone(timezone.utc).isoformat(), safe="")} \
            if f.as_of else {}
        url = f.url.format(**{n: quote(str(v), safe="") for n, v in zip(self.key_names, keys[0])}, **at)
        if f.method == "POST":
            body = json.dumps(self._key_dict(keys[0]), default=str).encode()
            return "POST", url, body, {**self._headers, "Content-Type": "application/json"}
        return f.method, url, None, self._headers

    def _http_answer(self, answer: tuple[int, bytes]):
        status, body = answer
        if status == 404 and not self._batched:
            return NOT_FOUND
        if status != 200:
            raise ConnectionError(f"HTTP {status}")
        try:
            return json.loads(body)
        except ValueError:
            raise _Malformed from None

    def _count(self, what: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[what] = self.stats.get(what, 0) + n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self.fetcher.function is None:
            self._http.close()


class _Malformed(PaletteError):
    """An answer that is not JSON, or not of the shape a feature's JSON path reads."""


class _Missing(PaletteError):
    """An answer without the field a feature's JSON path names."""


__all__ = ["RpcClient", "Fetched", "Breaker", "RetryBudget", "RpcObserver", "NOT_FOUND", "import_function"]
