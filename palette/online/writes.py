"""Writing rows of one feature group straight into an online store (a streaming job's
micro-batch, beside its append to the Delta table).

>>> write_rows(store, entity, group, [{"r_id": "r1", "event_ts": now, "n_meal": 4.0}])   # doctest: +SKIP
1
"""
from __future__ import annotations

from numbers import Integral, Real
from typing import Iterable

from palette.errors import OnlineStoreError
from palette.registry import Entity, FeatureGroup

from .base import OnlineStore, Record
from .codec import encode_key, micros

_CHECK = {"num": lambda v: isinstance(v, Real) and not isinstance(v, bool), "str": lambda v: isinstance(v, str),
          "bool": lambda v: isinstance(v, bool), "ts": lambda v: True}


class RowRejected(OnlineStoreError, ValueError):
    """A row that does not fit its feature group; nothing of its batch was written."""


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
    codec = layout.codec()
    features = layout.features
    known = {k for k, _ in layout.keys} | {group.timestamp_col} | {f for f, _ in features}
    records = []
    for i, row in enumerate(rows):
        extra = set(row) - known
        if extra:
            raise RowRejected(f"row {i} has fields {sorted(extra)} that {group.id} does not declare; nothing was written")
        key = []
        for col, key_type in layout.keys:
            v = row.get(col)
            ok = isinstance(v, str) if key_type == "str" else isinstance(v, Integral) and not isinstance(v, bool)
            if not ok:
                raise RowRejected(f"row {i}: key {col!r} of {group.id} must be {'a string' if key_type == 'str' else 'an integer'}, "
                                  f"got {v!r}; nothing was written")
            key.append(v)
        ts = row.get(group.timestamp_col)
        if ts is None:
            raise RowRejected(f"row {i} has no event time ({group.timestamp_col!r}); nothing was written")
        values = []
        for name, t in features:
            v = row.get(name)
            if v is not None and not _CHECK[t](v):
                raise RowRejected(f"row {i}: feature {name!r} of {group.id} is {t}, got {type(v).__name__} {v!r}; "
                                  "nothing was written")
            values.append(v)
        t = micros(ts)
        records.append(Record(encode_key(tuple(key), layout.key_types), t, codec.encode(tuple(values)), t, run))
    return store.write(layout, records) if records else 0


__all__ = ["write_rows", "RowRejected"]
