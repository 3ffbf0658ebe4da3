"""Drift and quality of feature groups from their offline profiles (``palette_profiles``):
the current period's windows against a trailing reference period, per feature and
slice, with the group's freshness and null rates (Spark reads the table; the tests run on
the driver over sketches, never rows)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from palette.errors import InvalidArgument
from palette.registry import format_age
from palette.reports import Limit, Measure

from .drift import Q
from .profile import Profile, merge_into
from .report import MonitorReport, monitor
from .table import profiled, profiles_path


def _load(spark: SparkSession, table: str, subject: str, start: datetime, end: datetime) -> list:
    """The subject's offline profiles of windows that end within (start, end]."""
    from delta.tables import DeltaTable
    if not DeltaTable.isDeltaTable(spark, table):
        raise InvalidArgument(f"no profiles at {table}: run palette monitor profile {subject} first")
    return (spark.read.format("delta").load(table)
            .where((F.col("subject") == subject) & (F.col("source") == "offline")
                   & (F.col("window_end") > F.lit(start)) & (F.col("window_end") <= F.lit(end)))
            .select("window_start", "window_end", "feature", "slice", "sketch",
                    (F.unix_seconds("window_end") - F.unix_seconds("window_start")).alias("width")).collect())


def _one_width(rows: list, window: timedelta | None, group_id: str) -> list:
    """The rows of one window width: ``window``'s, or the only one there is."""
    widths = sorted({r.width for r in rows})
    if window is not None:
        return [r for r in rows if r.width == int(window.total_seconds())]
    if len(widths) > 1:
        raise InvalidArgument(f"{group_id} has profiles of several window widths "
                              f"({', '.join(format_age(timedelta(seconds=w)) for w in widths)}): choose one "
                              "(--window)")
    return rows


def _label(feature: str, slice_: str) -> str:
    return feature if not slice_ else f"{feature} [{slice_}]"


def _merge(rows, key) -> dict[str, Profile]:
    out: dict[str, Profile] = {}
    for r in rows:
        merge_into(out, {key(r): Profile.from_bytes(bytes(r.sketch))})
    return out


def group_report(spark: SparkSession, store, group_id: str, *, last: timedelta, reference: timedelta,
                 every: timedelta | None = None, now: datetime | None = None, q: float = Q,
                 max_staleness: timedelta | None = None, max_null_rate: float | None = None,
                 window: timedelta | None = None) -> MonitorReport:
    """Windows of ``group_id`` ending in the ``last`` period (or still open; merged per
    ``every``, or into one) against those ending in the ``reference`` period before it;
    ``window``: the width of the profiles to read, when the group has several."""
    group = store.group(group_id)
    now = now or datetime.now(timezone.utc)
    table = profiles_path(store.root)
    start = now - last
    current_rows = _one_width(_load(spark, table, group_id, start, now + timedelta(days=36500)), window, group_id)
    reference_rows = _one_width(_load(spark, table, group_id, start - reference, start), window, group_id)
    ts = group.timestamp_col
    key = lambda r: _label(r.feature, r.slice)                       # noqa: E731
    ref = {k: v for k, v in _merge(reference_rows, key).items() if not k.startswith(f"{ts}")}
    step = every or last
    windows = []
    n = max(1, int(last / step))
    for i in range(n):
        lo, hi = start + i * step, start + (i + 1) * step
        part = [r for r in current_rows if lo < r.window_end.replace(tzinfo=timezone.utc) <= hi
                or (i == n - 1 and r.window_end.replace(tzinfo=timezone.utc) > hi)]
        if part:
            windows.append((f"{lo:%Y-%m-%d %H:%M}", {k: v for k, v in _merge(part, key).items()
                                                     if not k.startswith(f"{ts}")}))
    limits = {f.name: dict(f.drift) for f in group.features if f.drift}
    quality = []
    stamps = _merge([r for r in reference_rows + current_rows if r.feature == ts and not r.slice], key)
    newest = stamps.get(ts)
    staleness = None if newest is None or not newest.n else (now.timestamp() - newest.max)
    allowed = max_staleness or group.max_age
    quality.append(Measure("freshness: seconds since the newest event", group_id,
                           None if staleness is None else round(staleness, 1),
                           None if allowed is None else Limit("<=", allowed.total_seconds()),
                           "no event in the profiles" if staleness is None else ""))
    first = group.timestamp_col                        # profiled with every group (a vector is not)
    rows = sum(ps[first].count for _, ps in windows if first in ps)
    quality.append(Measure("rows in the current period", group_id, rows, Limit(">", 0),
                           "" if rows else "nothing arrived: a stale feed"))
    if windows:
        for name, p in sorted(windows[-1][1].items()):
            if max_null_rate is not None:
                quality.append(Measure("null rate", f"{windows[-1][0]} {name}", p.null_rate, Limit("<=", max_null_rate)))
        missing = sorted({f.name for f in profiled(group)} - {k for k in windows[-1][1]})
        for f in missing:
            quality.append(Measure("schema: feature present", f"{windows[-1][0]} {f}", 0, Limit(">=", 1),
                                   "declared in the registry, absent from the profiles"))
    report = monitor(f"group {group_id}", ref, windows, q=q, limits=limits, quality=quality,
                     reference_label=f"the {format_age(reference)} before {start:%Y-%m-%d %H:%M}")
    if not windows:
        report.notes.append(f"no profiled rows in the last {format_age(last)} (since {start:%Y-%m-%d %H:%M}): the feed may be "
                            "stale, or not profiled yet")
    return report
