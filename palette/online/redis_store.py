"""The production online store: Redis (redis-py, with hiredis when installed).

``redis://[:password@]host:port/db`` (or ``rediss://`` for TLS), with optional query
parameters ``timeout_ms`` (a read gives up after this long: default 5), ``write_timeout_ms``
(default 10000) and ``prefix`` (of every key: default ``palette``).

Layout: one string per entity key, ``<prefix>:<entity>:<group>:<key>``, holding
``b"<event time µs> <run> " + encoded values``. A key of a group with a max age expires
at event time + max age (``SET ... PXAT``), so dead keys leave the store by themselves;
max age is also applied at read time, like the offline store. Two hashes hold the
layouts and the watermarks (``<prefix>:__layouts__``, ``<prefix>:__watermarks__``).

A batch is written by one Lua script, so it is atomic (a reader sees all of it or none)
and latest-wins is checked inside Redis: a row replaces the stored one only if the stored
event time is at most the row's bound (its own event time, for latest-wins). Reads of many keys of several groups are one
pipelined round trip of one MGET per group. ``RedisClusterStore`` (``redis+cluster://``,
palette.online.redis_cluster) is this store over a Redis Cluster: the same layout with
hash-tagged keys.
"""
from __future__ import annotations

import json
import threading
from typing import Iterable
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from palette.errors import OnlineStoreUnavailable

from .base import Found, GroupLayout, OnlineStore, Record

_WRITE = """
for i = 1, #KEYS do
  local b = (i - 1) * 4
  local bound, run, payload, pxat = tonumber(ARGV[b + 1]), ARGV[b + 2], ARGV[b + 3], tonumber(ARGV[b + 4])
  local old = redis.call('GET', KEYS[i])
  local replace = true
  if old then
    local ots, orun, rest = string.match(old, '^(-?%d+) (-?%d+) (.*)$')
    if tonumber(ots) > bound then
      replace = false
      if tonumber(orun) < tonumber(run) then
        redis.call('SET', KEYS[i], ots .. ' ' .. run .. ' ' .. rest, 'KEEPTTL')
      end
    end
  end
  if replace then
    if payload == '' then
      redis.call('DEL', KEYS[i])
    elseif pxat > 0 then
      redis.call('SET', KEYS[i], payload, 'PXAT', pxat)
    else
      redis.call('SET', KEYS[i], payload)
    end
  end
end
return #KEYS
"""

_PURGE = """
local removed = 0
for i = 1, #KEYS do
  local old = redis.call('GET', KEYS[i])
  if old then
    local run = tonumber(string.match(old, '^-?%d+ (-?%d+) '))
    if run < tonumber(ARGV[1]) then
      redis.call('DEL', KEYS[i])
      removed = removed + 1
    end
  end
end
return removed
"""

_OURS = ("timeout_ms", "write_timeout_ms", "prefix")


class RedisStore(OnlineStore):
    scheme = "redis"

    def __init__(self, url: str, *, timeout_ms: float | None = None, write_timeout_ms: float | None = None,
                 prefix: str | None = None, clock=None):
        super().__init__(url, **({"clock": clock} if clock else {}))
        import redis
        from redis.backoff import ExponentialBackoff, NoBackoff
        from redis.retry import Retry

        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.timeout = float(timeout_ms if timeout_ms is not None else query.get("timeout_ms", 5)) / 1000
        self.write_timeout = float(write_timeout_ms if write_timeout_ms is not None
                                   else query.get("write_timeout_ms", 10_000)) / 1000
        self.prefix = prefix or query.get("prefix", "palette")
        plain = urlunsplit(parts._replace(query=urlencode({k: v for k, v in query.items() if k not in _OURS})))
        self._redis = redis
        self._errors = (redis.RedisError,)
        # Reads try once and give up after the timeout; writes retry (they are idempotent).
        self._reader = self._client(plain, self.timeout, Retry(NoBackoff(), 0))
        self._writer = self._client(plain, self.write_timeout, Retry(ExponentialBackoff(cap=1.0), 3))
        self._write_script = self._writer.register_script(_WRITE)
        self._purge_script = self._writer.register_script(_PURGE)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections = []
        self._layouts_key = f"{self.prefix}:__layouts__"
        self._watermarks_key = f"{self.prefix}:__watermarks__"

    def _client(self, url: str, timeout: float, retry):
        return self._redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=retry)

    def _key_prefix(self, group_id: str) -> bytes:
        return f"{self.prefix}:{group_id}:".encode()

    _KEY = b"%s%s"              # a cluster hash-tags the entity key: b"%s{%s}"

    def _key(self, prefix: bytes, key: str) -> bytes:
        """The Redis key of an entity key of the group whose ``_key_prefix`` is ``prefix``."""
        return self._KEY % (prefix, key.encode())

    def _fail(self, e: Exception, doing: str):
        kind = "timed out" if isinstance(e, self._redis.TimeoutError) else "failed"
        raise OnlineStoreUnavailable(f"online store {self.url} {kind} while {doing}: {type(e).__name__}: {e}") from e

    def _call(self, client, doing: str, *args):
        try:
            return client.execute_command(*args)
        except self._errors as e:
            self._fail(e, doing)

    def _script(self, script, keys: list[bytes], args: list, per_key: int, doing: str) -> int:
        """Run a Lua ``script`` over ``keys`` (with ``per_key`` ARGV entries each, in key
        order; 0: ``args`` are shared by all keys): the sum of its replies."""
        try:
            return int(script(keys=keys, args=args))
        except self._errors as e:
            self._fail(e, doing)

    def ping(self) -> None:
        self._call(self._reader, "answering a ping", "PING")

    def _drop_connections(self) -> None:
        """Disconnect the per-thread connections this store made itself."""
        with self._lock:
            for conn in self._connections:
                conn.disconnect()
            self._connections.clear()
        self._local = threading.local()

    def close(self) -> None:
        self._drop_connections()
        self._reader.connection_pool.disconnect()
        self._writer.connection_pool.disconnect()

    # -- layouts and watermarks ----------------------------------------------------------
    def _load_layout(self, group_id: str) -> GroupLayout | None:
        raw = self._call(self._writer, f"reading the layout of {group_id}", "HGET", self._layouts_key, group_id)
        return GroupLayout.from_json(json.loads(raw)) if raw else None

    def _layout_ids(self) -> list[str]:
        return [k.decode() for k in self._call(self._writer, "listing groups", "HKEYS", self._layouts_key)]

    def _save_layout(self, layout: GroupLayout) -> None:
        self._call(self._writer, f"setting up {layout.group_id}", "HSET", self._layouts_key, layout.group_id,
                   json.dumps(layout.to_json()))

    def watermark(self, group_id: str) -> dict | None:
        raw = self._call(self._writer, f"reading the watermark of {group_id}", "HGET", self._watermarks_key, group_id)
        return json.loads(raw) if raw else None

    def set_watermark(self, group_id: str, info: dict) -> None:
        self._call(self._writer, f"moving the watermark of {group_id}", "HSET", self._watermarks_key, group_id,
                   json.dumps(info))

    def _scan(self, group_id: str, batch: int = 1000):
        pattern = self._key_prefix(group_id).replace(b"[", b"\\[").replace(b"*", b"\\*").replace(b"?", b"\\?") + b"*"
        cursor = 0
        while True:
            cursor, keys = self._call(self._writer, f"scanning {group_id}", "SCAN", cursor, "MATCH", pattern,
                                      "COUNT", batch)
            if keys:
                yield keys
            if int(cursor) == 0:
                return

    def drop(self, group_id: str) -> None:
        for keys in self._scan(group_id):
            try:
                self._writer.unlink(*keys)          # a cluster client splits it by slot
            except self._errors as e:
                self._fail(e, f"dropping {group_id}")
        self._call(self._writer, f"dropping {group_id}", "HDEL", self._layouts_key, group_id)
        self._call(self._writer, f"dropping {group_id}", "HDEL", self._watermarks_key, group_id)
        self._layouts.pop(group_id, None)

    # -- rows -------------------------------------------------------------------------------
    def write(self, layout: GroupLayout, records: Iterable[Record]) -> int:
        prefix = self._key_prefix(layout.group_id)
        age_ms = None if layout.max_age_micros is None else layout.max_age_micros // 1000
        keys, args = [], []
        for r in records:
            keys.append(self._key(prefix, r.key))
            if r.payload is None:
                args += [r.bound, r.run, b"", 0]
            else:
                expires = 0 if age_ms is None else max(r.ts // 1000 + age_ms, 1)
                args += [r.bound, r.run, b"%d %d " % (r.ts, r.run) + r.payload, expires]
        if not keys:
            return 0
        return self._script(self._write_script, keys, args, 4, f"writing {len(keys)} rows of {layout.group_id}")

    def _read_connection(self):
        """This thread's own connection for reads: the commands of one read go out in one
        write and their replies are read back in order (a pipeline without the pipeline
        object). A connection that failed is dropped; the next read connects again."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._reader.connection_pool.make_connection()
            with self._lock:
                self._connections.append(conn)
        return conn

    def _mget(self, key_lists: list[list[bytes]]) -> list[list]:
        """The stored values of each list of keys: one MGET per list, in one round trip."""
        conn = self._read_connection()
        try:
            conn.send_packed_command(conn.pack_commands([("MGET", *keys) for keys in key_lists])
                                     if len(key_lists) > 1 else conn.pack_command("MGET", *key_lists[0]))
            return [conn.read_response() for _ in key_lists]
        except (self._redis.RedisError, OSError) as e:
            conn.disconnect()
            self._fail(e, "reading")

    def _read(self, requests: list[tuple[GroupLayout, list[str]]]) -> list[list[Found | None]]:
        prefixes = [self._key_prefix(layout.group_id) for layout, _ in requests]
        replies = self._mget([[self._key(p, k) for k in keys] for p, (_, keys) in zip(prefixes, requests)])
        return [[None if v is None else _found(v) for v in reply] for reply in replies]

    def _prepare_read(self, layouts):
        """One MGET for one key of each layout (whatever their groups)."""
        prefixes = [self._key_prefix(layout.group_id) for layout in layouts]

        def read_one(keys: list) -> list:
            asked = [self._key(p, k) for p, k in zip(prefixes, keys) if k is not None]
            if not asked:
                return [None] * len(keys)
            (reply,) = self._mget([asked])
            reply = iter(reply)
            out = []
            for k in keys:
                v = None if k is None else next(reply)
                out.append(None if v is None else _found(v))
            return out
        return read_one

    def count(self, group_id: str) -> int:
        return sum(len(keys) for keys in self._scan(group_id))

    def purge(self, layout: GroupLayout, before_run: int) -> int:
        return sum(self._script(self._purge_script, keys, [before_run], 0, f"purging {layout.group_id}")
                   for keys in self._scan(layout.group_id))


def _found(value: bytes) -> Found:
    """A stored value as (event time µs, encoded values)."""
    ts, _, payload = value.split(b" ", 2)
    return int(ts), payload


__all__ = ["RedisStore"]
