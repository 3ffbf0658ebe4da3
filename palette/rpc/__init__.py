"""RPC feature groups: features fetched at request time from a service.

- ``Fetcher`` (``palette.rpc.fetcher``): the declaration, kept in the registry and in saved
  stages — an HTTP endpoint or a Python function by import path, with timeout, retries,
  breaker, concurrency and a fallback per feature (a value, None, or ``FAIL``);
- ``RpcClient`` (``palette.rpc.client``): the fetcher ready to call, made when a model
  loads; the JVM-free runtime asks it for many keys at once, concurrently with the online
  store's reads of the same dependency level;
- ``backfill_rpc`` (``palette.rpc.backfill``, Spark): the served-feature logs into the
  group's Delta table, so point-in-time lookups read what serving fetched.

See docs/rpc-features.md.

>>> from palette.rpc import Fetcher, FAIL
>>> Fetcher(url="http://dispatch/couriers/{courier_id}", fallback={"eta": FAIL}).fallback
{'eta': FAIL}
"""
from palette.lazy import lazy_exports

from .fetcher import FAIL, Fetcher

_LAZY = {"RpcClient": ".client", "Fetched": ".client", "Breaker": ".client",
         "backfill_rpc": ".backfill", "fetch_history": ".backfill"}

__all__ = ["Fetcher", "FAIL", *_LAZY]

__getattr__ = lazy_exports(__name__, _LAZY)
