"""Stream features: where events come from, windowed aggregations, and the arithmetic of
their values in time — shared by the streaming job, backfills and the online stores.

A stream feature group reads **events** from a ``StreamSource`` (a Delta table of events,
files, or a Kafka topic of JSON payloads). Its features are either the **latest value**
of an event column per entity key, or **windowed aggregations** (``Aggregation``) over a
window of ``over`` that slides by the group's ``hop``.

``approx_count_distinct`` is a HyperLogLog estimate (``HLL_BITS`` registers) of the number
of distinct non-null values, exact in practice for small counts (linear counting), rounded
to a whole number.

Aggregations are kept in **tiles**: tumbling event-time intervals ``[s, s + hop)`` (``s`` a
multiple of the hop since the epoch), each holding its events' partial aggregate per key.
The value of an aggregation for key k at time t is that of the window ``[b - over, b)``
with ``b = floor(t / hop) * hop``: complete tiles only, so a value changes at hop
boundaries only, and it is a function of k's events with event time < b <= t. A window
without events has the aggregation's **empty value**: 0 for ``count``, ``sum`` and
``approx_count_distinct``, null
for ``mean``, ``min``, ``max`` and ``last``; a key that never had an event is unknown
(null), as for any lookup.

The offline store holds a group's values at every boundary where one can change (a tile
enters or leaves a window), so a point-in-time lookup (latest row at or before t) reads
the value at ``floor(t / hop) * hop``. The online store holds, per key, a **timeline**: the
values from the key's last window on, each with the boundary it takes effect at, and a
read picks the one in effect at the reader's "now" (``Timeline.at``).

>>> a = Aggregation("n_meal", "count", over="30m")
>>> a.output_type, a.over_micros // 60_000_000
('num', 30)
>>> window_tiles(t=1_830_000_000, hop=60_000_000, over=180_000_000)   # t = 30:30 (µs): 27:00, 28:00, 29:00
[1620000000, 1680000000, 1740000000]
"""
from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from datetime import timedelta

from .errors import RegistryError


@dataclass(frozen=True)
class Rule:
    """How an aggregation is read back from tiles: its feature type (``T``: the input
    column's), whether it needs an input column and a number, and its empty value."""
    output: str
    empty: object
    needs_column: bool = True
    numeric: bool = False


RULES: dict[str, Rule] = {
    "count": Rule("num", 0.0, needs_column=False),
    "sum": Rule("num", 0.0, numeric=True),
    "mean": Rule("num", None, numeric=True),
    "min": Rule("T", None),
    "max": Rule("T", None),
    "last": Rule("T", None),
    "approx_count_distinct": Rule("num", 0.0),
}
HLL_BITS = 12                  # approx_count_distinct: 2^12 HyperLogLog registers (about 1.6 % error)
_ORDERED = ("num", "ts", "str")       # types min and max are defined on


def duration_micros(what: str, value) -> int:
    """'30m', '1h', a timedelta ... as µs; ``what`` names it in the error."""
    from .registry import parse_age
    try:
        parsed = parse_age(value)
    except RegistryError:
        parsed = None
    if parsed is None or parsed <= timedelta(0):
        raise RegistryError(f"{what} {value!r}: use a positive number and a unit, e.g. '30m', '1h', '45s'")
    return int(parsed / timedelta(microseconds=1))


@dataclass(frozen=True)
class Aggregation:
    """A feature aggregated over a sliding window of ``over`` that moves by its group's
    hop: ``op`` of the events' ``column`` (``count`` counts events and takes none).

    >>> Aggregation("avg_size", "mean", "order_size", over="1h").to_json()
    {'name': 'avg_size', 'op': 'mean', 'column': 'order_size', 'over': '1h'}
    """
    name: str
    op: str
    column: str | None = None
    over: str = "1h"
    input_type: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        rule = RULES.get(self.op)
        if rule is None:
            raise RegistryError(f"aggregation {self.name!r}: unknown operation {self.op!r}; use one of "
                                f"{', '.join(RULES)}")
        if rule.needs_column and not self.column:
            raise RegistryError(f"aggregation {self.name!r}: {self.op} needs the event column it aggregates, "
                                f"e.g. Aggregation({self.name!r}, {self.op!r}, 'order_size', over={self.over!r})")
        if not rule.needs_column and self.column:
            raise RegistryError(f"aggregation {self.name!r}: count takes no column (it counts events): "
                                f"Aggregation({self.name!r}, 'count', over={self.over!r})")
        duration_micros(f"aggregation {self.name!r}: window", self.over)

    @property
    def rule(self) -> Rule:
        return RULES[self.op]

    @property
    def over_micros(self) -> int:
        return duration_micros("window", self.over)

    @property
    def output_type(self) -> str:
        return (self.input_type or "num") if self.rule.output == "T" else self.rule.output

    def typed(self, events: dict[str, str]) -> "Aggregation":
        """This aggregation with its input type taken from the event schema ``events``
        (column -> feature type), checked."""
        if self.column is None:
            return self
        if self.column not in events:
            raise RegistryError(f"aggregation {self.name!r} reads event column {self.column!r}, which the source "
                                f"does not have; its columns: {', '.join(sorted(events))}")
        t = events[self.column]
        if self.rule.numeric and t != "num":
            raise RegistryError(f"aggregation {self.name!r}: {self.op} needs a number, but {self.column!r} is {t}; "
                                f"use count, last, min or max on it")
        if self.op in ("min", "max") and t not in _ORDERED:
            raise RegistryError(f"aggregation {self.name!r}: {self.op} is not defined on {t} column {self.column!r}")
        return Aggregation(self.name, self.op, self.column, self.over, t)

    def to_json(self) -> dict:
        return {"name": self.name, "op": self.op, "column": self.column, "over": self.over}


SOURCE_FORMATS = ("delta", "files", "kafka")


@dataclass(frozen=True)
class StreamSource:
    """Where a stream group's events come from, and their schema.

    ``format``: ``delta`` (a Delta table of events at ``path``: the embedded default),
    ``files`` (JSON lines files arriving in the directory ``path``), or ``kafka`` (JSON
    payloads of ``topic`` on the brokers ``servers``). ``schema``: the event columns and
    their feature types; ``timestamp_col``: the event time column; ``options``: passed
    through to Spark's reader (Kafka security settings and the like; secrets by
    environment variable are resolved when the job starts, never stored).

    >>> src = StreamSource("delta", {"r_id": "str", "ts": "ts", "size": "num"}, "ts", path="/data/orders")
    >>> StreamSource.from_json(src.to_json()) == src
    True
    """
    format: str
    schema: dict[str, str]
    timestamp_col: str
    path: str | None = None
    topic: str | None = None
    servers: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        from .feature_types import KEYS, TYPES
        if self.format not in SOURCE_FORMATS:
            raise RegistryError(f"stream source format {self.format!r}: use one of {', '.join(SOURCE_FORMATS)}")
        if self.format == "kafka":
            if not self.topic or not self.servers:
                raise RegistryError("a kafka source needs topic= and servers= (e.g. servers='broker:9092')")
        elif not self.path:
            raise RegistryError(f"a {self.format} source needs path= (where its events are)")
        schema = dict(self.schema or {})
        if not schema:
            raise RegistryError("a stream source needs the schema of its events, e.g. {'r_id': 'str', 'ts': 'ts'}")
        for col, t in schema.items():
            if t not in TYPES and t not in KEYS:
                raise RegistryError(f"event column {col!r} has type {t!r}; use one of "
                                    f"{', '.join(dict.fromkeys([*TYPES, *KEYS]))}")
        if schema.get(self.timestamp_col) != "ts":
            raise RegistryError(f"the event time column {self.timestamp_col!r} must be in the schema as 'ts'")
        object.__setattr__(self, "schema", schema)
        object.__setattr__(self, "options", {str(k): str(v) for k, v in (self.options or {}).items()})

    def to_json(self) -> dict:
        return {"format": self.format, "schema": [[c, t] for c, t in self.schema.items()],
                "timestamp_col": self.timestamp_col, "path": self.path, "topic": self.topic,
                "servers": self.servers, "options": dict(self.options)}

    @classmethod
    def from_json(cls, d: dict) -> "StreamSource":
        d = dict(d)
        d["schema"] = dict(d["schema"])
        return cls(**d)


def window_tiles(t: int, hop: int, over: int) -> list[int]:
    """The tile starts (µs) whose tiles make the window a lookup at ``t`` (µs) reads:
    ``[b - over, b)`` with ``b = floor(t / hop) * hop``."""
    b = t // hop * hop
    return list(range(b - over, b, hop))


# -- timelines: what the online store holds for a windowed group --------------------------------
_HEAD = struct.Struct("<H")


class Timeline:
    """A key's values from its last window on: entries (boundary µs, encoded record),
    ascending. ``at(now)`` is the entry in effect: the last one at or before ``now``.

    Encoded as ``n`` (u16), the ``n`` boundaries (i64), ``n + 1`` record offsets (u32), then
    the records: a read finds its entry by one unpack and a binary search, however long the
    timeline.

    >>> buf = Timeline.encode([(60, b"a"), (120, b"bb")])
    >>> Timeline.at(buf, 59), Timeline.at(buf, 60), Timeline.at(buf, 119), Timeline.at(buf, 10**9)
    (None, (60, b'a'), (60, b'a'), (120, b'bb'))
    """

    @staticmethod
    def encode(entries) -> bytes:
        n = len(entries)
        offsets, at = [], 0
        for _, record in entries:
            offsets.append(at)
            at += len(record)
        offsets.append(at)
        return b"".join([struct.pack(f"<H{n}q{n + 1}I", n, *(b for b, _ in entries), *offsets),
                         *(record for _, record in entries)])

    @staticmethod
    def at(buf: bytes, now: int) -> tuple[int, bytes] | None:
        (n,) = _HEAD.unpack_from(buf, 0)
        bounds = struct.unpack_from(f"<{n}q", buf, 2)
        i = bisect.bisect_right(bounds, now) - 1
        if i < 0:
            return None
        base = 2 + 8 * n
        start, end = struct.unpack_from("<2I", buf, base + 4 * i)
        records = base + 4 * (n + 1)
        return bounds[i], buf[records + start:records + end]


__all__ = ["Aggregation", "Rule", "RULES", "HLL_BITS", "StreamSource", "SOURCE_FORMATS", "Timeline", "window_tiles",
           "duration_micros"]
