"""Online stores: the latest feature values per entity key, for serving without Spark.

``open_store(url)`` picks the implementation by the URL's scheme:

- ``sqlite:///path/online.db`` (``sqlite:////abs/path.db``): embedded, a file, no server;
- ``redis://host:port/db``: production, a Redis server shared by every serving replica;
- ``redis+cluster://host:port,host:port/0``: a Redis Cluster, natively (hash-tagged keys).

Both keep each value's event time, write latest-by-event-time in atomic batches, round-trip
every value exactly, and raise ``OnlineStoreUnavailable`` (naming the URL and the cause)
instead of hanging when the store does not answer. The materialize job fills them from
the Delta tables (``FeatureStore.materialize``); ``load_scorer(path, online_store=url)``
reads them. See docs/online-store.md.

>>> store = open_store("sqlite:////tmp/palette-doc/online.db")      # doctest: +SKIP
>>> store.groups()                                                   # doctest: +SKIP
['region:service_fg', 'restaurant:batch_fg', 'restaurant:realtime_fg']
"""
from __future__ import annotations

from typing import Callable
from urllib.parse import urlsplit

from palette.errors import BadStoreURL, OnlineSchemaMismatch, OnlineStoreError, OnlineStoreUnavailable

from .base import DelegatingStore, GroupLayout, OnlineReader, OnlineStore, OnlineWriter, Record, redact
from .cache import CachedStore
from .codec import RecordCodec, encode_key
from .writes import BatchWriter, RowRejected, write_rows

SCHEMES = {"sqlite": "palette.online.sqlite_store:SQLiteStore",
           "redis": "palette.online.redis_store:RedisStore",
           "rediss": "palette.online.redis_store:RedisStore",
           "redis+cluster": "palette.online.redis_cluster:RedisClusterStore",
           "rediss+cluster": "palette.online.redis_cluster:RedisClusterStore"}


def open_store(url: "str | OnlineStore", *, clock: Callable[[], float] | None = None, **options) -> OnlineStore:
    """The online store at ``url`` (an ``OnlineStore`` is returned as it is). ``options``
    override the URL's query parameters (``timeout_ms``, ...); ``clock`` gives "now" in
    seconds since the epoch for max age (default ``time.time``)."""
    if isinstance(url, OnlineStore):
        return url
    if not isinstance(url, str):
        raise BadStoreURL(f"an online store URL must be a string, got {type(url).__name__}: use "
                          "sqlite:///path/online.db (embedded) or redis://host:port/db")
    scheme = urlsplit(url).scheme
    target = SCHEMES.get(scheme)
    if target is None:
        raise BadStoreURL(f"unknown online store URL {redact(url)!r}"
                          f"{f' (scheme {scheme!r})' if scheme else ' (no scheme)'}: use sqlite:///path/online.db "
                          "(embedded) or redis://host:port/db")
    import importlib
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(url, clock=clock, **options)


__all__ = ["open_store", "OnlineStore", "OnlineReader", "OnlineWriter", "BatchWriter", "GroupLayout", "Record", "RecordCodec", "encode_key", "CachedStore", "DelegatingStore",
           "write_rows", "RowRejected",
           "OnlineStoreError", "OnlineStoreUnavailable", "OnlineSchemaMismatch", "BadStoreURL", "SCHEMES",
           "publish_sqlite"]


def publish_sqlite(source, url: str):
    """Replace the SQLite store at ``url`` by the file ``source``, atomically, under running
    readers (``palette.online.sqlite_store.publish``)."""
    from .sqlite_store import publish
    return publish(source, url)
