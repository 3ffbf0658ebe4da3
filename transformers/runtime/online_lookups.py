"""Feature-store lookups on the single-row path: the online store and RPC fetchers, as planned at load.

A stage that reads the feature store (a ``PaletteTransformer``, or a DSL stage reading a
palette ref no earlier stage provided) is a ``LookupStage``. At load time its reads
(``palette.lookup_plan.plan_reads``, the plan the Spark path runs too) are bound to the
online store's layouts: a group that is missing there, or holds a feature with another type or
other keys, fails now, naming it, never at request time.

Each bound read has a hidden column, where the fetched values of its features land (a
tuple per row: the values in the read's feature order, then the record's event time in
µs, which a feature log records; null when nothing live is stored). The
pipeline fetches every read whose keys are known at the same point in one round trip
(``PipelineScorer``): the request's keys before the first stage, a key an earlier stage
computes (the tutorial's ``region_id``) right before the stage that needs it. A stage
used alone fetches its own reads. Either way the stage then turns the hidden column into
its outputs and drops it.

Semantics are the Spark path's for ``timestampCol`` at "now": the latest value, null when
the key is unknown, the key is null, or the value is older than the group's max age at
the moment of the read.

Two kinds of **source** answer reads: the online store (every stored group of a fetch
point in one round trip) and, for an RPC group (``kind="rpc"``), its fetcher
(``palette.rpc.RpcClient``: many keys at once, with a deadline). A fetch point issues its
RPC calls first (a few HTTP requests written from this thread, more calls and Python
fetchers on the fetchers' pools), reads the store while they run, then waits for them:
an RPC group adds its own latency, not a sum. An RPC record is a ``palette.rpc.client.Fetched`` (a tuple,
with the fetch time where a stored record has its event time, and ``fallbacks``).
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np

from palette.errors import FeatureLookupError, OnlineSchemaMismatch
from palette.lookup_plan import Definitions, GroupRead, max_age_micros, within_max_age
from palette.online.base import GroupLayout, OnlineReader
from palette.online.codec import RecordCodec, encode_key

from .batch import Batch
from .stage import LoadContext, StageScorer

_MISSING = object()


@dataclass(frozen=True, eq=False)
class BoundRead:
    """A planned read bound to its source: where its values land (``column``) and where its
    features sit in the stored records (``layout``, ``codec``), or the RPC client that
    fetches them (``rpc``; no layout)."""
    read: GroupRead
    column: str
    layout: GroupLayout | None
    codec: RecordCodec | None
    indices: tuple[int, ...]
    max_age: int | None
    rpc: Any = None

    def __post_init__(self):
        for name, value in (("group_id", self.read.group.id), ("join_keys", self.read.join_keys),
                            ("key_types", self.read.key_types)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "miss", self._miss())

    def _miss(self) -> tuple | None:
        """The record a key the store does not hold reads: None, or for an embedding version
        with UNK vectors, those (as float64, what the codec gives) and null elsewhere."""
        group = self.read.group
        if not group.unk or self.layout is None:
            return None
        unk = {name: np.asarray(group.unk_vector(name), np.float32).astype(np.float64)
               for name, _ in self.layout.features if group.unk_vector(name) is not None}
        return tuple(unk.get(name) for name, _ in self.layout.features) + (None,)


def bind_rpc(read: GroupRead, client, column: str) -> BoundRead:
    """A read of an RPC group, answered by its fetcher (``palette.rpc.RpcClient``): the
    fetcher's records hold every feature of the group, as the read does
    (``GroupRead.features``)."""
    return BoundRead(read, column, None, None, tuple(range(len(read.features))), None, client)


def bind(read: GroupRead, store: OnlineReader, column: str, who: str) -> BoundRead:
    """Check a read against the online store's layout of its group (at load time)."""
    gid = read.group.id
    layout = store.layout(gid)
    if layout is None:
        raise OnlineSchemaMismatch(f"{who} reads feature group {gid}, which is not in the online store {store.url}: "
                                   f"materialize it (palette materialize --online-store URL --group {gid})")
    problems = []
    if layout.key_types != read.key_types:
        problems.append(f"its entity keys are {list(layout.keys)} online but {list(read.entity.join_keys.items())} "
                        "in the model")
    online = dict(layout.features)
    for f in read.features:
        want = read.group.feature(f).type
        if f not in online:
            problems.append(f"feature {f!r} is not in the online store")
        elif online[f] != want:
            problems.append(f"feature {f!r} is {online[f]} online but {want} in the model")
    max_age = max_age_micros(read.group)
    if store.scheme == "redis" and layout.max_age_micros is not None and \
            (max_age is None or max_age > layout.max_age_micros):
        problems.append(f"Redis expires its keys after {layout.max_age_micros // 1_000_000}s, but the model reads "
                        f"values up to {'any age' if max_age is None else f'{max_age // 1_000_000}s'} old")
    if problems:
        raise OnlineSchemaMismatch(f"{who} cannot read feature group {gid} from the online store {store.url}: "
                                   f"{'; '.join(problems)}. Materialize the group as the model was trained "
                                   "(or retrain against the group as it is now)")
    return BoundRead(read, column, layout, layout.codec(), tuple(layout.index(f) for f in read.features), max_age)


def _bad_key(read: GroupRead, col: str, key_type: str, v) -> FeatureLookupError:
    want = "a string" if key_type == "str" else "an integer"
    return FeatureLookupError(f"field {col!r} is the key of {read.group.id} (entity {read.entity.name!r}) and must "
                              f"be {want}, got {type(v).__name__} {v!r}")


def key_of(row: dict, read: GroupRead) -> str | None:
    """The stored key a row's key fields make, or None when a key field is null (a null
    key matches nothing, as on Spark). Missing or mistyped fields raise, naming them."""
    values = []
    for col, key_type in zip(read.join_keys, read.key_types):
        v = row.get(col, _MISSING)
        if v is _MISSING:
            raise FeatureLookupError(f"the row has no field {col!r}, the key {read.group.id} is looked up by; "
                                     f"fields present: {', '.join(sorted(map(str, row))) or 'none'}")
        if v is None:
            return None
        if key_type == "str":
            if not isinstance(v, str):
                raise _bad_key(read, col, key_type, v)
        elif not isinstance(v, Integral) or isinstance(v, bool) or type(v).__name__ == "bool_":
            raise _bad_key(read, col, key_type, v)
        values.append(v)
    return encode_key(tuple(values), read.key_types)


def key_values(row: dict, read: GroupRead) -> tuple | None:
    """The row's key as a tuple of values (what an RPC fetcher is called with), None when a
    key field is null; checked as ``key_of`` checks it."""
    if key_of(row, read) is None:
        return None
    return tuple(row[c] if t == "str" else int(row[c]) for c, t in zip(read.join_keys, read.key_types))


def batch_key_values(batch: Batch, b: BoundRead) -> list:
    """``key_values`` for every row of a batch (each row's key checked by ``batch_keys``)."""
    encoded = batch_keys(batch, b)
    columns = zip(*(batch.values(c) for c in b.join_keys))
    return [None if k is None else tuple(v if t == "str" else int(v) for v, t in zip(values, b.key_types))
            for k, values in zip(encoded, columns)]


_STR_OR_NONE = {str, type(None)}


def batch_keys(batch: Batch, b: BoundRead) -> list:
    """``key_of`` for every row of a batch: a column of string keys as it is (the common
    case), anything else row by row, which raises ``key_of``'s error for the first bad row."""
    if not batch.n:
        return []
    if all(batch.in_every_row(col) for col in b.join_keys):
        if b.key_types == ("str",):
            values = batch.values(b.join_keys[0])
            if set(map(type, values)) <= _STR_OR_NONE:
                return values
        columns = [batch.values(col) for col in b.join_keys]
        return [key_of(dict(zip(b.join_keys, vals)), b.read) for vals in zip(*columns)]
    for i in range(batch.n):
        key_of(batch.row(i), b.read)
    raise AssertionError("unreachable: a row lacks a key field")


def _read_keys(store: OnlineReader, reads: list[BoundRead], keys: dict[str, list]) -> dict[str, list]:
    """{read's column: per key, the read's feature values followed by the record's event
    time in µs (a tuple), or None}: one round trip for every read. Reads of one group share it, whatever stage planned them: each
    key is read once and decoded once; max age is applied at the store's "now"."""
    wanted: dict[str, dict[str, None]] = {}
    layouts: dict[str, GroupLayout] = {}
    for b in reads:
        slot = wanted.setdefault(b.group_id, {})
        layouts[b.group_id] = b.layout
        slot.update(dict.fromkeys(keys[b.column]))
    for slot in wanted.values():
        slot.pop(None, None)
    groups = [g for g in wanted if wanted[g]]
    raw = store.read([(layouts[g], list(wanted[g])) for g in groups]) if groups else []
    now = store.now_micros()
    records: dict[str, dict[str, tuple | None]] = {}
    for b in reads:
        if b.group_id in records or b.group_id not in groups:
            continue
        found = raw[groups.index(b.group_id)]
        max_age = b.max_age
        if store.observes_lookups:
            store.served(b.group_id, found, now, max_age)
        live = [(k, hit[0], hit[1]) for k, hit in zip(wanted[b.group_id], found)
                if hit is not None and within_max_age(hit[0], now, max_age)]
        decoded = b.codec.decode_many([p for _, _, p in live])
        records[b.group_id] = {k: values + (ts,) for (k, ts, _), values in zip(live, decoded)}
    out = {}
    for b in reads:
        stored = records.get(b.group_id, {})
        if b.indices == tuple(range(len(b.layout.features))):       # every feature: the record as it is
            out[b.column] = [stored.get(k, b.miss) for k in keys[b.column]]
            continue
        idx = b.indices
        values = []
        for k in keys[b.column]:
            record = stored.get(k, b.miss)
            values.append(None if record is None else tuple(record[i] for i in idx) + (record[-1],))
        out[b.column] = values
    return out


def _row_key(b: BoundRead):
    """``key_of`` for ``b``, with the common single-column keys checked inline."""
    read = b.read
    if len(b.join_keys) != 1:
        return lambda row: key_of(row, read)
    col = b.join_keys[0]
    if b.key_types == ("str",):
        def str_key(row):
            v = row.get(col)
            return v if type(v) is str else None if v is None and col in row else key_of(row, read)
        return str_key

    def int_key(row):
        v = row.get(col)
        return str(v) if type(v) is int else None if v is None and col in row else key_of(row, read)
    return int_key


class RowFetch:
    """``fetch`` of fixed reads, compiled at load time: the single-row path's lookups.

    Reads of one group by one key tuple share a slot, read and decoded once; the store
    reads every slot's key in one round trip (``OnlineStore.prepare_read``)."""

    def __init__(self, store: OnlineReader | None, reads: list[BoundRead]):
        self.store, self.reads = store, list(reads)
        self.columns = tuple(b.column for b in self.reads)     # where the values land (all at once)
        slots: dict[tuple, int] = {}
        self._slots: list[tuple] = []          # (key function, group id, decode, max age, record of a miss)
        self._outputs: list[tuple] = []        # (column, slot, feature indices or None for all)
        self._rpc: dict[tuple, tuple] = {}     # (group, key columns) -> (key function, client, [column])
        layouts = []
        for b in self.reads:
            if b.rpc is not None:
                slot = self._rpc.setdefault((b.group_id, b.join_keys),
                                            (lambda row, read=b.read: key_values(row, read), b.rpc, []))
                slot[2].append(b.column)
                continue
            slot = slots.get((b.group_id, b.join_keys))
            if slot is None:
                slot = slots[(b.group_id, b.join_keys)] = len(self._slots)
                self._slots.append((_row_key(b), b.group_id, b.codec.decode, b.max_age, b.miss))
                layouts.append(b.layout)
            whole = b.indices == tuple(range(len(b.layout.features)))
            self._outputs.append((b.column, slot, None if whole else b.indices))
        self._read = store.prepare_read(tuple(layouts)) if layouts else None
        self._rpc_slots = list(self._rpc.values())

    def __call__(self, row: dict) -> dict[str, Any]:
        """{read's column: the read's feature values and event time (a tuple) or None}."""
        if not self._rpc_slots:
            return self._stored(row)
        pending = [(columns, client.begin([key(row)], inline=True)) for key, client, columns in self._rpc_slots]
        out = self._stored(row) if self._read is not None else {}
        for columns, finish in pending:
            record = finish()[0]
            out.update(dict.fromkeys(columns, record))
        return out

    def _stored(self, row: dict) -> dict[str, Any]:
        store = self.store
        keys = [s[0](row) for s in self._slots]
        found = self._read(keys)
        now = store.now_micros()
        observe = store.observes_lookups
        records = []
        for (_, gid, decode, max_age, miss), k, hit in zip(self._slots, keys, found):
            if observe and k is not None:
                store.served(gid, [hit], now, max_age)
            records.append(miss if hit is None or (max_age is not None and now - hit[0] > max_age)
                           else decode(hit[1]) + (hit[0],))
        out = {}
        for column, slot, idx in self._outputs:
            record = records[slot]
            out[column] = record if record is None or idx is None else tuple(record[i] for i in idx) + (record[-1],)
        return out


def fetch(store: OnlineReader, reads: list[BoundRead], row: dict) -> dict[str, Any]:
    """{read's column: the read's feature values and event time (a tuple) or None} for one
    row, in one round trip (``RowFetch`` prepares this once for many rows)."""
    return RowFetch(store, reads)(row)


def fetch_batch(store: OnlineReader | None, reads: list[BoundRead], batch: Batch) -> dict[str, list]:
    """``fetch`` for every row of a batch: one multi-key read per stored group in one round
    trip, and per RPC group one call per distinct key (or one batch call), concurrently."""
    calls: dict[tuple, tuple] = {}               # (group, key columns) -> (keys, [reads])
    for b in reads:
        if b.rpc is not None:
            slot = (b.group_id, b.join_keys)
            if slot not in calls:
                calls[slot] = (batch_key_values(batch, b), [])
            calls[slot][1].append(b)
    stored = [b for b in reads if b.rpc is None]
    pending = [(readers, readers[0].rpc.begin(keys, inline=True)) for keys, readers in calls.values()]
    out = _read_keys(store, stored, {b.column: batch_keys(batch, b) for b in stored}) if stored else {}
    for readers, finish in pending:
        records = finish()
        out.update({b.column: records for b in readers})
    return out


def definitions_of(metadata: dict, who: str) -> Definitions:
    saved = metadata.get("paletteDefinitions")
    if saved is None:
        raise FeatureLookupError(
            f"{who} reads palette features but was saved without their definitions (no feature store was known "
            "when it was saved): load it in Spark with the feature store configured (storeRoot, "
            "palette.configure or $PALETTE_STORE_ROOT) and save it again")
    return Definitions.from_json(saved)


class LookupStage(StageScorer):
    """A stage that reads the online store: ``bind_reads`` at load time; ``looked_up`` /
    ``looked_up_batch`` give each read's values (fetched by the pipeline, or here)."""

    def bind_reads(self, reads: list[GroupRead], context: LoadContext | None) -> None:
        who = f"{self.metadata.get('class', type(self).__name__).rsplit('.', 1)[-1]} {self.uid}"
        if not reads:
            self.reads, self.store, self._columns = (), None, ()
            return
        if context is None:
            context = LoadContext()
        stored = [r.group.id for r in reads if r.group.kind != "rpc"]
        store = context.store(who, stored) if stored else None
        self.store = store
        self._fetchers: dict[tuple, RowFetch] = {}      # the stage used alone: its reads, compiled once
        self.reads = tuple(bind_rpc(r, context.rpc(r), f"__palette:{self.uid}:{i}") if r.group.kind == "rpc"
                           else bind(r, store, f"__palette:{self.uid}:{i}", who) for i, r in enumerate(reads))
        self._columns = tuple(b.column for b in self.reads)

    def looked_up(self, row: dict) -> dict[str, Any]:
        """{read column: values or None} for one row: from the row when the pipeline
        fetched them, else fetched now (one round trip)."""
        try:                                            # the pipeline fetched them all (the common case)
            return {c: row[c] for c in self._columns}
        except KeyError:
            pass
        todo = tuple(b for b in self.reads if b.column not in row)
        got = {b.column: row[b.column] for b in self.reads if b.column in row}
        if todo:
            fetcher = self._fetchers.get(todo)
            if fetcher is None:
                fetcher = self._fetchers[todo] = RowFetch(self.store, list(todo))
            got.update(fetcher(row))
        return got

    def looked_up_batch(self, batch: Batch) -> dict[str, list]:
        todo = [b for b in self.reads if b.column not in batch.columns]
        got = {b.column: batch.values(b.column) for b in self.reads if b.column in batch.columns}
        if todo:
            got.update(fetch_batch(self.store, todo, batch))
        return got

    def key_fields(self) -> dict[str, str]:
        """The key columns the reads are looked up by, and their key types."""
        return {col: t for b in self.reads for col, t in zip(b.join_keys, b.key_types)}


__all__ = ["BoundRead", "LookupStage", "RowFetch", "bind", "bind_rpc", "key_values", "fetch", "fetch_batch", "key_of", "batch_keys", "batch_key_values",
           "definitions_of"]
