"""Served profiles: what a serving process fed each model, profiled per window in
bounded memory, and flushed as files a monitor reads (and ``ingest_served`` appends to
``palette_profiles``).

On the request path a model's ``ServedProfiler.record`` only appends the scored rows and
what the lookups read to a bounded buffer (``max_pending`` requests; beyond it requests
are counted as dropped, never queued without bound). A background thread folds the buffer
into per-window profiles every ``fold_seconds`` with vectorized sketch updates, and writes
each finished window (``window_seconds``, aligned to the epoch) as one JSON file per model,
window and process: ``<directory>/<model>/<window start>-<window end>-<host>-<pid>.json``.

Profiled per model: every scalar column of the scored rows (the request's fields, the
features looked up, what the DSL stages computed, the prediction), and per feature group
read ``@<group>:age_s`` (request time - the served record's event
time; null when no value was served) and, per feature of an RPC group,
``@<group>:<feature>:fallback`` (a category: ``fetched``, or why a fallback was served).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from datetime import datetime, timezone
from operator import itemgetter

import numpy as np

from palette import uris

from .profile import Profile, merge_into
from . import table

log = logging.getLogger("palette.monitor.served")
FETCHED = "fetched"


def _kind(v) -> str | None:
    if isinstance(v, (bool, np.bool_, str)):
        return "cat"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return "num"
    if isinstance(v, datetime):
        return "num"
    return None                                   # vectors, dicts: not profiled


def _reason(values, i: int) -> str:
    """Why feature ``i`` of an RPC read is a fallback, or ``fetched``."""
    reasons = getattr(values, "fallbacks", None)
    return (reasons[i] if reasons is not None and i < len(reasons) else None) or FETCHED


def _number(v):
    return v.timestamp() if isinstance(v, datetime) else v


class ServedProfiler:
    """One served model's profiles (see the module)."""

    def __init__(self, model: str, scorer, window_seconds: float = 60.0, max_pending: int = 16_384):
        self.model, self.window = model, float(window_seconds)
        self.max_pending = max_pending
        # read column -> (its group's age profile, its RPC features' fallback profiles)
        self._plan = {b.column: (f"@{b.group_id}:age_s", [f"@{b.group_id}:{f}:fallback" for f in b.read.features]
                                 if b.rpc is not None else [])
                      for reads in scorer.fetch_points.values() for b in reads}
        self.kinds: dict[str, str | None] = {}
        self.windows: dict[float, dict[str, Profile]] = {}
        self.requests: dict[float, int] = {}
        self.dropped = 0
        self._pending: deque = deque()
        self._lock = threading.Lock()

    # -- the request path: an append ----------------------------------------------------------
    def record(self, rows: list, fetched: list, at: float) -> None:
        pending = self._pending
        if len(pending) < self.max_pending:
            pending.append((at, rows, fetched))
        else:
            self.dropped += 1

    # -- the background thread --------------------------------------------------------------
    def fold(self) -> None:
        """Fold what was recorded into the windows' profiles."""
        with self._lock:
            pending = [self._pending.popleft() for _ in range(len(self._pending))]
            by_window: dict[float, list] = {}
            for entry in pending:
                by_window.setdefault(entry[0] - entry[0] % self.window, []).append(entry)
            for start, entries in by_window.items():
                self._fold_window(start, entries)

    def _fold_window(self, start: float, entries: list) -> None:
        profiles = self.windows.setdefault(start, {})
        self.requests[start] = self.requests.get(start, 0) + len(entries)
        rows = [r for _, rs, _ in entries for r in rs if r is not None]
        names = []
        for name in (rows[0] if rows else ()):
            kind = self.kinds.get(name, "?")
            if kind == "?":
                kind = next((_kind(r.get(name)) for r in rows if r.get(name) is not None), "?")
                if kind == "?":                              # only nulls so far: decided by a later window
                    continue
                self.kinds[name] = kind
            if kind is not None:
                names.append(name)
        if names:
            try:                                             # one C-level pass per row, then columns
                columns = zip(*map(itemgetter(*names), rows)) if len(names) > 1 else \
                    [[r[names[0]] for r in rows]]
                columns = list(columns)
            except KeyError:                                 # a row without some column: the slow way
                columns = [[r.get(n) for r in rows] for n in names]
            for name, values in zip(names, columns):
                kind = self.kinds[name]
                p = profiles.get(name) or profiles.setdefault(name, Profile(kind))
                if kind == "num":
                    try:
                        p.update(np.array(values, dtype=float))
                    except TypeError:                        # timestamps
                        p.update(np.array([None if v is None else _number(v) for v in values], dtype=float))
                else:
                    p.update(list(values))
        ages: dict[str, list] = {}
        fallbacks: dict[str, list] = {}
        plan = self._plan
        reads: dict[tuple, list] = {}                        # fetch points, by the columns they read
        for at, _, fetched in entries:
            for got in fetched:
                reads.setdefault(tuple(got), []).append((at, got))
        for columns, gots in reads.items():
            at = [a for a, _ in gots]
            for column in columns:
                spec = plan.get(column)
                if spec is None:
                    continue
                age_name, fallback_names = spec
                values = [g[column] for _, g in gots]
                times = at
                if any(type(v) is list for v in values):     # scoreBatch: a tuple per row
                    pairs = [(a, t) for a, v in zip(at, values) for t in (v if type(v) is list else (v,))]
                    times, values = [a for a, _ in pairs], [t for _, t in pairs]
                event = np.array([np.nan if t is None or t[-1] is None else t[-1] for t in values], dtype=float)
                ages.setdefault(age_name, []).append(np.asarray(times) - event / 1e6)
                for i, name in enumerate(fallback_names):
                    fallbacks.setdefault(name, []).extend(_reason(t, i) for t in values)
        for name, parts in ages.items():
            p = profiles.get(name) or profiles.setdefault(name, Profile("num"))
            p.update(np.concatenate(parts))
            p.nulls, p.nans = p.nulls + p.nans, 0          # no value served: a null age, not a NaN
        for name, values in fallbacks.items():
            (profiles.get(name) or profiles.setdefault(name, Profile("cat"))).update(values)

    def finished(self, now: float, everything: bool = False) -> list[tuple[float, float, int, dict]]:
        """Remove and return the windows that ended by ``now`` (every window when
        ``everything``): (start, end, requests, {feature: Profile})."""
        with self._lock:
            done = [s for s in self.windows if everything or s + self.window <= now]
            return [(s, s + self.window, self.requests.pop(s, 0), self.windows.pop(s)) for s in sorted(done)]


def write_window(directory: str | os.PathLike, model: str, version: str, start: float, end: float, requests: int,
                 profiles: dict[str, Profile]) -> str:
    """One window of one model's served profiles as a JSON file (written whole: a reader
    never sees half of one)."""
    folder = uris.join(os.fspath(directory), model)
    stamp = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m%dT%H%M%SZ")      # noqa: E731
    path = uris.join(folder, f"{stamp(start)}-{stamp(end)}-{socket.gethostname()}-{os.getpid()}.json")
    if uris.exists(path):                       # a second flush of one window by one process: merge the two
        old = read_file(path)
        profiles = merge_into(old["profiles"], profiles)
        requests += old["requests"]
    doc = {"subject": model, "source": "served", "version": version, "requests": requests,
           "window_start": datetime.fromtimestamp(start, timezone.utc).isoformat(),
           "window_end": datetime.fromtimestamp(end, timezone.utc).isoformat(),
           "profiles": table.entries(profiles)}
    uris.write_text(path, json.dumps(doc, default=str))
    return path


def read_file(path) -> dict:
    doc = json.loads(uris.read_bytes(os.fspath(path)))
    doc["profiles"] = table.from_entries(doc["profiles"])
    doc["window_start"] = datetime.fromisoformat(doc["window_start"])
    doc["window_end"] = datetime.fromisoformat(doc["window_end"])
    return doc


def read_served(directory: str | os.PathLike, model: str, since: datetime | None = None,
                until: datetime | None = None) -> list[dict]:
    """The served windows of ``model`` (every process's files of a window merged), oldest
    first: ``{"window_start", "window_end", "requests", "profiles": {feature: Profile}}``."""
    windows: dict[tuple, dict] = {}
    folder = uris.join(os.fspath(directory), model)
    for name in (n for n in uris.listdir(folder) if n.endswith(".json")):
        head = name.split("-", 2)
        try:
            start = datetime.strptime(head[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            end = datetime.strptime(head[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except (ValueError, IndexError):
            continue
        if (since is not None and end <= since) or (until is not None and start >= until):
            continue
        doc = read_file(uris.join(folder, name))
        w = windows.get((start, end))
        if w is None:
            windows[(start, end)] = doc
        else:
            w["requests"] += doc["requests"]
            merge_into(w["profiles"], doc["profiles"])
    return [windows[k] for k in sorted(windows)]


class ProfileFlusher:
    """The serving process's background thread: folds every model's profiler and writes
    its finished windows (``on_window(model, profiles, dropped)`` is told each, for gauges,
    with the requests left out since the last window)."""

    def __init__(self, directory: str | os.PathLike, fold_seconds: float = 1.0, on_window=None):
        self.directory, self.fold_seconds = directory, fold_seconds
        self.on_window = on_window or (lambda model, profiles, dropped: None)
        self.profilers: dict[str, tuple[ServedProfiler, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="palette-profiles", daemon=True)
        self._thread.start()

    def watch(self, profiler: ServedProfiler, version: str) -> None:
        old = self.profilers.get(profiler.model)
        self.profilers[profiler.model] = (profiler, version)
        if old is not None and old[0] is not profiler:
            self._flush(old[0], old[1], everything=True)   # a reloaded model's last windows

    def _flush(self, profiler: ServedProfiler, version: str, everything: bool = False) -> None:
        profiler.fold()
        for start, end, requests, profiles in profiler.finished(time.time(), everything):
            if profiles:
                write_window(self.directory, profiler.model, version, start, end, requests, profiles)
                dropped, profiler.dropped = profiler.dropped, 0
                self.on_window(profiler.model, profiles, dropped)

    def _run(self) -> None:
        while not self._stop.wait(self.fold_seconds):
            for profiler, version in list(self.profilers.values()):
                try:
                    self._flush(profiler, version)
                except Exception:                 # a profile is never worth a serving process
                    log.exception("served profiles of %s could not be written", profiler.model)

    def close(self) -> None:
        """Stop, and write every window in progress."""
        self._stop.set()
        self._thread.join(timeout=10)
        for profiler, version in list(self.profilers.values()):
            self._flush(profiler, version, everything=True)
