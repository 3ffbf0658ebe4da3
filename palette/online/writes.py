"""The one write path into an online store: ``BatchWriter``.

Materialization (on the executors, from Arrow batches), a streaming job's micro-batches and
every backfill write through it: rows of one group — key values, event time (µs), the
values in the layout's order (``None`` for a null, or no values to remove the key) — encoded
once, buffered, and written in atomic batches of ``batch_rows``, latest by event time (a
row replaces the stored one only when the stored event time is at most its ``bound``,
its own event time unless a correction says otherwise), so replaying a batch changes
nothing. ``write_rows`` checks rows given as dicts first, for a caller outside Spark.

>>> write_rows(store, entity, group, [{"r_id": "r1", "event_ts": now, "n_meal": 4.0}])   # doctest: +SKIP
1
"""
from __future__ import annotations

from typing import Iterable

from palette.errors import OnlineStoreError
from palette.feature_types import KEYS, TYPES
from palette.registry import Entity, FeatureGroup
from palette.windows import Timeline

from .base import GroupLayout, OnlineStore, Record
from .codec import encode_key, micros


class RowRejected(OnlineStoreError, ValueError):
    """A row that does not fit its feature group; nothing of its batch was written."""


class BatchWriter:
    """Encodes a group's rows and writes them to ``store`` in atomic batches of
    ``batch_rows`` (see the module docstring). ``run`` stamps every key written (a full
    materialization then purges older stamps). ``after_batch`` is called after each batch
    written (a crash-test hook). Use as a context manager, or call ``flush`` at the end."""

    def __init__(self, store: OnlineStore, layout: GroupLayout, run: int = 0, batch_rows: int = 2_000,
                 after_batch=None):
        self.store, self.layout, self.run, self.batch_rows = store, layout, run, batch_rows
        self.codec, self.key_types = layout.codec(), layout.key_types
        self.after_batch = after_batch
        self.written = 0
        self.newest: int | None = None             # the latest event time written (µs), removals aside
        self._pending: list[Record] = []

    def add(self, key: tuple, ts: int, values: tuple | None, bound: int | None = None,
            seen: int | None = None) -> None:
        """One row: key values, event time (µs), its values in layout order (None: remove the
        key), and the largest stored event time it may replace (default ``ts``). For a
        windowed group, ``values`` is the key's timeline: (boundary µs, values) entries, and
        ``seen`` the boundary its newest events end at (``ts``, its last entry's, lies ahead)."""
        encoded = encode_key(key, self.key_types)
        payload = None if values is None else self._timeline(values) if self.layout.hop_micros else \
            self.codec.encode(values)
        self._pending.append(Record(encoded, ts, payload, ts if bound is None else bound, self.run))
        seen = ts if seen is None else seen
        if values is not None and (self.newest is None or seen > self.newest):
            self.newest = seen
        if len(self._pending) >= self.batch_rows:
            self.flush()

    def _timeline(self, entries) -> bytes:
        """A windowed group's values: (boundary µs, values) entries (``palette.windows.Timeline``)."""
        return Timeline.encode([(b, self.codec.encode(values)) for b, values in sorted(entries, key=lambda e: e[0])])

    def add_columns(self, keys: list[list], ts: list[int], values: list[list], bounds: list | None = None,
                    removes: list | None = None) -> None:
        """Rows as columns: one list per key column, event times, one list per layout
        feature (``values``), and optionally bounds and removal flags."""
        values = self.codec.encode_columns(values)          # quantized vectors: a matrix call per column
        for i, t in enumerate(ts):
            gone = removes is not None and removes[i]
            self.add(tuple(c[i] for c in keys), t, None if gone else tuple(c[i] for c in values),
                     None if bounds is None else bounds[i])

    def flush(self) -> int:
        if self._pending:
            self.written += self.store.write(self.layout, self._pending)
            self._pending = []
            if self.after_batch is not None:
                self.after_batch()
        return self.written

    def __enter__(self):
        return self

    def __exit__(self, kind, *exc):
        if kind is None:
            self.flush()


def write_rows(store: OnlineStore, entity: Entity, group: FeatureGroup, rows: Iterable[dict], run: int = 0) -> int:
    """Write ``rows`` (dicts with the entity's key columns, the group's timestamp column and
    its features; a feature left out is null) as one atomic batch, latest by event time:
    a row older than the stored one is ignored, so a late or replayed row never wins and
    writing the same batch twice changes nothing. Sets the group up if needed (refusing an
    incompatible layout). Every row is checked before anything is written. Returns the
    number of rows written."""
    layout = store.layout(group.id)
    if layout is None or not {f.name for f in group.features} <= {f for f, _ in layout.features}:
        layout = store.setup(entity, group)
    features = layout.features
    known = {k for k, _ in layout.keys} | {group.timestamp_col} | {f for f, _ in features}
    checked = []
    for i, row in enumerate(rows):
        extra = set(row) - known
        if extra:
            raise RowRejected(f"row {i} has fields {sorted(extra)} that {group.id} does not declare; nothing was written")
        key = []
        for col, key_type in layout.keys:
            v = row.get(col)
            if not KEYS[key_type].holds(v):
                raise RowRejected(f"row {i}: key {col!r} of {group.id} must be {KEYS[key_type].describe}, "
                                  f"got {v!r}; nothing was written")
            key.append(v)
        ts = row.get(group.timestamp_col)
        if ts is None:
            raise RowRejected(f"row {i} has no event time ({group.timestamp_col!r}); nothing was written")
        values = []
        for name, t in features:
            v = row.get(name)
            if v is not None and not TYPES[t].holds(v):
                raise RowRejected(f"row {i}: feature {name!r} of {group.id} is {t}, got {type(v).__name__} {v!r}; "
                                  "nothing was written")
            values.append(v)
        checked.append((tuple(key), micros(ts), tuple(values)))
    writer = BatchWriter(store, layout, run, batch_rows=max(len(checked), 1))      # one atomic batch
    for key, t, values in checked:
        writer.add(key, t, values)
    return writer.flush()


__all__ = ["BatchWriter", "write_rows", "RowRejected"]
