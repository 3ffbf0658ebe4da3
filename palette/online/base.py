"""The online store interface: what SQLite and Redis implement.

An online store holds, per feature group and entity key, the latest row: its event time
and its feature values. Two small interfaces, as Feast's ``OnlineStore`` is small:

- ``OnlineReader``, what serving needs: ``layout(group_id)``; ``read(requests)``, many keys
  of one or more groups in one round trip (``prepare_read``: one key per group, prepared
  once for a request path); ``watermark(group_id)``, how fresh a group is; ``ping``.
- ``OnlineWriter``, what filling it needs: ``setup(entity, group)``, create or extend the
  group's layout (refusing an incompatible one, before anything is written);
  ``write(layout, records)``, a batch of rows, atomically (a reader sees all of it or
  none), latest by event time: a row replaces the stored one only when its event time is
  at least the stored one's (``Record.bound`` lets materialization replace a row it knows
  was corrected or deleted in the offline store) — every writer goes through
  ``writes.BatchWriter``; ``purge``, ``set_watermark`` and ``drop``, materialization's
  bookkeeping.

``OnlineStore`` is both; SQLite and Redis implement it.

Values are encoded by ``codec.RecordCodec``; max age is applied by the reader, at read
time (``palette.lookup_plan.within_max_age``), as the offline store applies it at lookup time.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from palette.errors import OnlineSchemaMismatch
from palette.lookup_plan import max_age_micros
from palette.registry import Entity, FeatureGroup
from palette.windows import Timeline

from .codec import RecordCodec


class Record(NamedTuple):
    """One row to write: the encoded entity key, the event time (µs since the epoch), the
    encoded values (``None``: remove the key), the largest stored event time it may
    replace (``bound``; the event time itself for latest-wins), and the materialization
    run that wrote it (a stamp that grows from run to run)."""
    key: str
    ts: int
    payload: bytes | None
    bound: int
    run: int = 0


Found = tuple[int, bytes]          # (event time µs, encoded values) of a stored key


@dataclass(frozen=True)
class GroupLayout:
    """How one feature group is stored: its key columns and types, its features and types
    in storage order (which only ever grows at the end), and its max age."""
    group_id: str
    keys: tuple[tuple[str, str], ...]
    features: tuple[tuple[str, str], ...]
    max_age_micros: int | None
    hop_micros: int | None = None          # a windowed group: each key holds a timeline

    @classmethod
    def of(cls, entity: Entity, group: FeatureGroup, previous: "GroupLayout | None" = None) -> "GroupLayout":
        """The layout of ``group``; with ``previous``, the stored layout extended by the
        group's new features (raises ``OnlineSchemaMismatch`` when it is not an extension)."""
        keys = tuple(entity.join_keys.items())
        features = tuple((f.name, f.type) for f in group.features)
        if previous is not None:
            problems = previous.incompatibilities(keys, dict(features))
            if problems:
                raise OnlineSchemaMismatch(
                    f"feature group {group.id} in the online store no longer matches its definition: "
                    f"{'; '.join(problems)}. Nothing was written. Rebuild it under a new group name, or "
                    f"drop it from the online store (OnlineStore.drop({group.id!r})) and materialize --full")
            known = {n for n, _ in previous.features}
            features = previous.features + tuple(f for f in features if f[0] not in known)
        if previous is not None and previous.hop_micros != group.hop_micros:
            raise OnlineSchemaMismatch(
                f"feature group {group.id} is stored with hop {previous.hop_micros} µs online but declared with "
                f"{group.hop_micros}. Nothing was written. Drop it from the online store "
                f"(OnlineStore.drop({group.id!r})) and materialize it again")
        return cls(group.id, keys, features, max_age_micros(group), group.hop_micros)

    def incompatibilities(self, keys, features: dict[str, str]) -> list[str]:
        """What a definition with these keys and features changes that a stored layout
        cannot take (new features are fine)."""
        problems = []
        if tuple(keys) != self.keys:
            problems.append(f"entity keys {list(self.keys)} -> {list(keys)}")
        for name, t in self.features:
            if name not in features:
                problems.append(f"feature {name!r} removed")
            elif features[name] != t:
                problems.append(f"feature {name!r} type {t} -> {features[name]}")
        return problems

    @property
    def key_types(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.keys)

    def index(self, feature: str) -> int:
        for i, (name, _) in enumerate(self.features):
            if name == feature:
                return i
        raise KeyError(feature)

    def codec(self) -> RecordCodec:
        return RecordCodec([t for _, t in self.features])

    def to_json(self) -> dict:
        return {"group": self.group_id, "keys": [list(k) for k in self.keys],
                "features": [list(f) for f in self.features], "max_age_micros": self.max_age_micros,
                **({"hop_micros": self.hop_micros} if self.hop_micros else {})}

    @classmethod
    def from_json(cls, d: dict) -> "GroupLayout":
        return cls(d["group"], tuple(tuple(k) for k in d["keys"]), tuple(tuple(f) for f in d["features"]),
                   d.get("max_age_micros"), d.get("hop_micros"))


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


class OnlineReader(ABC):
    """What a serving process needs of an online store: the layouts, reads, freshness
    (``watermark``) and a health check. ``clock`` gives "now" in seconds since the epoch,
    for max age at read time (tests and parity checks pass a fixed instant)."""

    scheme = ""

    def __init__(self, url: str, clock: Callable[[], float] = time.time):
        self.url = redact(url)
        self.clock = clock
        self._layouts: dict[str, GroupLayout] = {}

    def __repr__(self):
        return f"{type(self).__name__}({self.url!r})"

    # A wrapper that wants to see what lookups served (palette serve's metrics) sets this
    # and overrides ``served``; the lookup path calls it once per group and round trip.
    observes_lookups = False

    def served(self, group_id: str, found: list, now_micros: int, max_age_micros: int | None) -> None:
        """What one round trip found for ``group_id``: per key looked up, its (event time,
        payload) or None; values older than ``max_age_micros`` were served as nulls."""

    def now_micros(self) -> int:
        return int(self.clock() * 1_000_000)

    def layout(self, group_id: str, refresh: bool = False) -> GroupLayout | None:
        """The stored layout of a group, or None when the group was never set up."""
        if refresh or group_id not in self._layouts:
            stored = self._load_layout(group_id)
            if stored is None:
                self._layouts.pop(group_id, None)
                return None
            self._layouts[group_id] = stored
        return self._layouts[group_id]

    def groups(self) -> list[str]:
        """The ids of the groups set up in this store."""
        return sorted(self._layout_ids())

    @abstractmethod
    def _load_layout(self, group_id: str) -> GroupLayout | None: ...

    @abstractmethod
    def _layout_ids(self) -> list[str]: ...

    @abstractmethod
    def _read(self, requests: list[tuple[GroupLayout, list[str]]]) -> list[list[Found | None]]:
        """``read`` as stored: a windowed group's payloads are whole timelines."""

    def read(self, requests: list[tuple[GroupLayout, list[str]]]) -> list[list[Found | None]]:
        """For each (layout, keys): the stored (event time, values) of each key, or None.
        One round trip for all of them. A windowed group's key gives the values in effect
        now (``palette.windows.Timeline``), with the boundary they took effect at."""
        found = self._read(requests)
        if any(layout.hop_micros for layout, _ in requests):
            now = self.now_micros()
            found = [[_in_effect(hit, now) for hit in hits] if layout.hop_micros else hits
                     for (layout, _), hits in zip(requests, found)]
        return found

    def _prepare_read(self, layouts: tuple[GroupLayout, ...]) -> "Callable[[list[str | None]], list[Found | None]]":
        def read_one(keys: list) -> list:
            asked = [(layout, [k]) for layout, k in zip(layouts, keys) if k is not None]
            found = iter(self._read(asked)) if asked else iter(())
            return [None if k is None else next(found)[0] for k in keys]
        return read_one

    def prepare_read(self, layouts: tuple[GroupLayout, ...]) -> "Callable[[list[str | None]], list[Found | None]]":
        """A read of one key per layout (None: no key, nothing found), prepared once: the
        single-row path calls it per request, so a store can build its statement or command
        here (``_prepare_read``)."""
        read_one = self._prepare_read(layouts)
        timelines = tuple(i for i, layout in enumerate(layouts) if layout.hop_micros)
        if not timelines:
            return read_one

        def read_in_effect(keys: list) -> list:
            found = read_one(keys)
            now = self.now_micros()
            for i in timelines:
                found[i] = _in_effect(found[i], now)
            return found
        return read_in_effect

    @abstractmethod
    def watermark(self, group_id: str) -> dict | None:
        """How far materialization got: ``{"version", "table", "table_id", ...}`` or None."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``OnlineStoreUnavailable`` unless the store answers."""

    def reopen(self) -> None:
        """Forget the cached layouts and open connections afresh on next use (a serving
        process's reload: the store may have been rebuilt meanwhile)."""
        self._layouts.clear()

    def close(self) -> None:
        """Release connections (the store reconnects by itself if used again)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _in_effect(hit: Found | None, now: int) -> Found | None:
    """A windowed group's stored timeline as the (boundary, values) in effect at ``now``."""
    return None if hit is None else Timeline.at(hit[1], now)


class OnlineWriter(ABC):
    """What filling an online store needs: layouts set up, batches written (through
    ``palette.online.writes.BatchWriter``, the one write path), materialization's bookkeeping."""

    def setup(self, entity: Entity, group: FeatureGroup) -> GroupLayout:
        """Create the group's layout, or extend it with newly registered features; an
        incompatible definition raises ``OnlineSchemaMismatch`` and changes nothing."""
        previous = self.layout(group.id, refresh=True)
        layout = GroupLayout.of(entity, group, previous)
        if layout != previous:
            self._save_layout(layout)
        self._layouts[group.id] = layout
        return layout

    @abstractmethod
    def _save_layout(self, layout: GroupLayout) -> None: ...

    @abstractmethod
    def write(self, layout: GroupLayout, records: Iterable[Record]) -> int:
        """Write a batch atomically; returns how many records it held. A record replaces
        (or, without a payload, removes) the stored row when the stored event time is at
        most the record's ``bound``; either way the stored run stamp becomes the larger
        of the two (``purge`` removes what a full run did not see)."""

    @abstractmethod
    def count(self, group_id: str) -> int:
        """How many keys the group holds (expired ones included until they are removed)."""

    @abstractmethod
    def purge(self, layout: GroupLayout, before_run: int) -> int:
        """Remove the keys last written by a run older than ``before_run`` (after a full
        rebuild wrote every key that still exists)."""

    @abstractmethod
    def set_watermark(self, group_id: str, info: dict) -> None: ...

    @abstractmethod
    def drop(self, group_id: str) -> None:
        """Remove a group: its rows, layout and watermark."""


class OnlineStore(OnlineReader, OnlineWriter):
    """An online store: SQLite or Redis, read by serving, written by materialization and
    streams; see the module docstring."""


class DelegatingStore(OnlineStore):
    """An online store that hands every call to ``store``: the base of wrappers that change
    one thing (a cache of reads, metrics of reads)."""

    def __init__(self, store: OnlineStore):
        super().__init__(store.url, store.clock)
        self.store, self.scheme = store, store.scheme

    def read(self, requests):
        return self.store.read(requests)

    def _read(self, requests):
        return self.read(requests)          # this wrapper's read: the wrapped store resolved it

    def prepare_read(self, layouts):
        """One key per layout through this wrapper's ``read`` (already resolved)."""
        return OnlineReader._prepare_read(self, layouts)

    def _load_layout(self, group_id):
        return self.store._load_layout(group_id)

    def _save_layout(self, layout):
        self.store._save_layout(layout)

    def _layout_ids(self):
        return self.store._layout_ids()

    def write(self, layout, records):
        return self.store.write(layout, records)

    def count(self, group_id):
        return self.store.count(group_id)

    def purge(self, layout, before_run):
        return self.store.purge(layout, before_run)

    def watermark(self, group_id):
        return self.store.watermark(group_id)

    def set_watermark(self, group_id, info):
        self.store.set_watermark(group_id, info)

    def drop(self, group_id):
        self.store.drop(group_id)

    def ping(self):
        self.store.ping()

    def reopen(self):
        self._layouts.clear()
        self.store.reopen()

    def close(self):
        self.store.close()

    def now_micros(self) -> int:
        return self.store.now_micros()


__all__ = ["OnlineStore", "OnlineReader", "OnlineWriter", "DelegatingStore", "GroupLayout", "Record", "Found", "redact"]
