"""Served-feature logging: what a serving process read and answered, for a sample of requests.

For a sampled request a record holds its id and time, the model's name and version, the
request's entity keys, every feature value a lookup read with its group, stored key and
event time (for an RPC group: the fetch time, and whether the value is a fallback), the request itself, the model's inputs and its answer — the exact values the
model saw.
Records go to a bounded queue and a background thread writes them as Parquet files::

    ROOT/date=2026-12-03/model=eta/part-20261203T170000-web-1-4242-1f3a9c2e-000001.parquet

named after the time, the host, the process and a random id of the writer, so every
writer (each worker of each replica, on any host, pid 1 in every container) writes its own
files into one shared root — a folder or object storage (``--log-dir s3a://bucket/logs``);
rolled every ``roll_rows`` records or ``roll_seconds``, whichever comes first, each written
whole or not at all (a local file under a name starting with ``.``, renamed when complete —
Spark ignores such names; an object by one PUT), so readers never see half a file. Logging never slows or fails a
request: a full queue drops the record and counts it (``FeatureLog.dropped``).

Sampling is by key (``by="key"``: a hash of the request's entity key decides, so every
request of a sampled key is kept — what a consistency check per key needs, as Chronon
does) or by request (``by="request"``).

>>> s = Sampler(0.5, "key", ["r_id"])
>>> [s.keep({"r_id": k}) for k in ("r1", "r2", "r3", "r4")] == [s.keep({"r_id": k}) for k in ("r1", "r2", "r3", "r4")]
True
>>> Sampler(1.0, "key", ["r_id"]).keep({"r_id": "r1"}), Sampler(0.0, "request", []).keep({})
(True, False)
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import random
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from palette import uris
from palette.errors import PaletteError
from palette.feature_types import SLOTS, TYPES

log = logging.getLogger("palette.logs")

_TS = pa.timestamp("us", tz="UTC")
# One slot per feature type (palette.feature_types.SLOTS: vectors share one), named after it; the one of its type is set.
FEATURE = pa.struct([("column", pa.string()), ("group", pa.string()), ("feature", pa.string()),
                     ("key", pa.string()), ("type", pa.string()),
                     *[(name, t.arrow_type()) for name, t in SLOTS.items()], ("event_time", _TS),
                     ("fallback", pa.string())])
# A file's columns; ``date`` and ``model`` are its folders' (Hive-style partitions).
SCHEMA = pa.schema([("request_id", pa.string()), ("request_time", _TS), ("version", pa.string()),
                    ("keys", pa.string()), ("features", pa.list_(FEATURE)), ("request", pa.string()),
                    ("inputs", pa.string()), ("prediction", pa.string())])
_STOP = object()


class LogConfigError(PaletteError, ValueError):
    """A feature-log setting that cannot work (a rate outside [0, 1], an unknown mode)."""


class Sampler:
    """Which requests to log: ``rate`` of them, by a stable hash of ``key_fields`` or at random."""

    def __init__(self, rate: float, by: str = "key", key_fields: list[str] | tuple = ()):
        if not 0.0 <= rate <= 1.0:
            raise LogConfigError(f"the feature-log sample rate must be between 0 and 1, got {rate}")
        if by not in ("key", "request"):
            raise LogConfigError(f"feature logs sample by 'key' or 'request', got {by!r}")
        self.rate, self.by, self.key_fields = rate, by, list(key_fields)
        self._bound = int(rate * 2 ** 64)

    def keep(self, instance: dict) -> bool:
        if self.rate >= 1.0:
            return True
        if self.rate <= 0.0:
            return False
        if self.by == "request" or not self.key_fields:
            return random.random() < self.rate
        key = json.dumps([instance.get(f) for f in self.key_fields], default=str).encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") < self._bound


def _json(v: Any) -> str:
    return json.dumps(v, default=_default, allow_nan=True, separators=(",", ":"))


def _default(v):
    if isinstance(v, datetime):
        return v.isoformat()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def _micros_to_time(us: int | datetime | None) -> datetime | None:
    if us is None or isinstance(us, datetime):
        return us
    return datetime.fromtimestamp(us / 1_000_000, timezone.utc)


def feature_entries(reads: list, row_keys: dict[str, str | None], got: dict[str, Any]) -> list[dict]:
    """The log's ``features`` of one row: per read and output column, the value read, its
    type, the stored key and the record's event time (``got``: read column -> the values
    tuple, event time last, or None); for an RPC group, the fetch time, and ``fallback``:
    why the value is a fallback (``timeout``, ``error`` ...), null when it was fetched; and
    the features the call answered that no column read (``column`` null), so the group's
    backfill (``palette backfill-rpc``) has whole fetches."""
    out = []
    for b in reads:
        values = got.get(b.column)
        fallbacks = getattr(values, "fallbacks", None)
        entries = list(b.read.outputs)
        if b.read.group.kind == "rpc":                # what the call answered besides: no column
            read = {f for _, f in b.read.outputs}
            entries += [(None, f) for f in b.read.features if f not in read]
        for column, feature in entries:
            i = b.read.features.index(feature)
            v = None if values is None else values[i]
            kind = b.read.group.feature(feature).type
            entry = {"column": column, "group": b.group_id, "feature": feature, "key": row_keys.get(b.column),
                     "type": kind, **dict.fromkeys(SLOTS),
                     "event_time": None if values is None else _micros_to_time(values[-1]),
                     "fallback": None if fallbacks is None else fallbacks[i]}
            if v is not None:
                entry[TYPES[kind].slot] = _micros_to_time(v) if kind == "ts" else v
            out.append(entry)
    return out


class FeatureLog:
    """A background writer of log records (see the module's docstring)."""

    def __init__(self, root: str | os.PathLike, *, queue_size: int = 10_000, roll_rows: int = 20_000,
                 roll_seconds: float = 60.0, on_drop=None):
        self.on_drop = on_drop or (lambda n: None)          # told how many records were dropped
        self.root = os.fspath(root)                          # a folder or a URI (s3a://bucket/logs)
        try:
            uris.makedirs(self.root)                         # a bad --log-dir fails at start, not a minute in
        except OSError as e:
            raise LogConfigError(f"--log-dir {self.root}: cannot write there ({e}); name a folder or an s3a:// URI palette can write") from None
        self.roll_rows, self.roll_seconds = roll_rows, roll_seconds
        self.dropped = self.written = self.files = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._seq = 0
        host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())[:63] or "host"
        self._writer = f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._thread = threading.Thread(target=self._run, name="palette-feature-log", daemon=True)
        self._thread.start()

    def submit(self, record: dict) -> bool:
        """Queue a record; False (and counted in ``dropped``) when the queue is full."""
        try:
            self._queue.put_nowait(record)
            return True
        except queue.Full:
            self.dropped += 1
            self.on_drop(1)
            return False

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop."""
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                log.error("feature log: the writer did not drain its queue within %.0fs", timeout)
                return
            self._thread.join(timeout)

    def _run(self) -> None:
        buffer: list[dict] = []
        started = None
        while True:
            wait = 0.5 if started is None else max(0.0, started + self.roll_seconds - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is not None and item is not _STOP:
                buffer.append(item)
                started = started or time.monotonic()
            due = buffer and (len(buffer) >= self.roll_rows or item is _STOP or
                              time.monotonic() - started >= self.roll_seconds)
            if due:
                try:
                    self._write(buffer)
                except Exception:                 # a full disk must not take the service down
                    log.exception("feature log: %d records could not be written to %s", len(buffer), self.root)
                    self.dropped += len(buffer)
                    self.on_drop(len(buffer))
                buffer, started = [], None
            if item is _STOP:
                return

    def _write(self, records: list[dict]) -> None:
        parts: dict[tuple[str, str], list[dict]] = {}
        for r in records:
            parts.setdefault((f"{r['request_time']:%Y-%m-%d}", r["model"]), []).append(r)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        for (day, model), rows in parts.items():
            self._seq += 1
            name = f"part-{stamp}-{self._writer}-{self._seq:06d}.parquet"
            buffer = pa.BufferOutputStream()
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buffer)
            uris.write_bytes(uris.join(self.root, f"date={day}", f"model={model}", name), buffer.getvalue().to_pybytes())
            self.written += len(rows)
            self.files += 1


def new_request_id() -> str:
    return uuid.uuid4().hex


__all__ = ["FeatureLog", "Sampler", "SCHEMA", "FEATURE", "feature_entries", "LogConfigError", "new_request_id"]
