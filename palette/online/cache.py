"""An optional in-process cache of online-store reads, bounded in size and staleness.

Michelangelo's serving leans on such a cache; it is off by default here, because it has a
consistency cost: a cached read may be up to ``max_seconds`` older than the store, so a
value materialized (or corrected, or removed) meanwhile is not seen until the entry
expires, and replicas may disagree for that long. Max age is still applied at read time,
to the value's own event time, so an expired value is never served from the cache.
Unknown keys are cached too (as unknown), for the same bounded time.

>>> store = CachedStore(open_store("sqlite:////data/online.db"), max_entries=100_000, max_seconds=1.0)  # doctest: +SKIP
>>> scorer = load_scorer("/models/eta", online_store=store)                                            # doctest: +SKIP
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable

from .base import DelegatingStore, Found, GroupLayout, OnlineStore
from palette.errors import InvalidArgument

_UNKNOWN = object()


class CachedStore(DelegatingStore):
    """``store`` with its reads cached: at most ``max_entries`` keys (least recently used
    go first), each for at most ``max_seconds``. Everything else goes to ``store``."""

    def __init__(self, store: OnlineStore, max_entries: int = 100_000, max_seconds: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic):
        if max_entries < 1 or max_seconds <= 0:
            raise InvalidArgument("a lookup cache needs max_entries >= 1 and max_seconds > 0")
        super().__init__(store)
        self.max_entries, self.max_seconds, self._monotonic = max_entries, max_seconds, monotonic
        self._entries: OrderedDict[tuple[str, str], tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def read(self, requests: list[tuple[GroupLayout, list[str]]]) -> list[list[Found | None]]:
        now = self._monotonic()
        out, missing = [], []
        with self._lock:
            for layout, keys in requests:
                found = []
                for k in keys:
                    entry = self._entries.get((layout.group_id, k))
                    if entry is not None and now - entry[0] <= self.max_seconds:
                        self._entries.move_to_end((layout.group_id, k))
                        found.append(None if entry[1] is _UNKNOWN else entry[1])
                        self.hits += 1
                    else:
                        found.append(_UNKNOWN)
                out.append(found)
                missing.append(list(dict.fromkeys(k for k, v in zip(keys, found) if v is _UNKNOWN)))
        asked = [(layout, miss) for (layout, _), miss in zip(requests, missing) if miss]
        replies = iter(self.store.read(asked)) if asked else iter(())
        with self._lock:
            for (layout, keys), found, miss in zip(requests, out, missing):
                if not miss:
                    continue
                got = dict(zip(miss, next(replies)))
                self.misses += len(miss)
                for k, hit in got.items():
                    self._entries[(layout.group_id, k)] = (now, _UNKNOWN if hit is None else hit)
                    self._entries.move_to_end((layout.group_id, k))
                for i, k in enumerate(keys):
                    if found[i] is _UNKNOWN:
                        found[i] = got[k]
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return out


__all__ = ["CachedStore"]
