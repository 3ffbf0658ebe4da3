"""``palette monitor model``: what a served model was fed in the last minutes against its
training profile, with its importance-weighted drift — from the served profiles a serving
process wrote (``--log-dir``) and the reference saved with the model. No JVM, no Spark:
an answer in well under a second.

>>> report = model_report("eta", "/logs/served", last=timedelta(minutes=60))   # doctest: +SKIP
>>> report.latest_iwd, [t.feature for t in report.alerts]                       # doctest: +SKIP
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from palette import uris
from palette.errors import InvalidArgument
from palette.registry import format_age, parse_age
from palette.reports import Limit, Measure

from .drift import Q
from .profile import merge_into
from .reference import NoReference, load_reference
from .report import MonitorReport, monitor
from .served import read_served


def profiles_dir(logs: str | os.PathLike) -> str:
    """Where served profiles are: ``<log dir>/_profiles`` (or the directory itself); a folder or a URI."""
    inner = uris.join(os.fspath(logs), "_profiles")
    return inner if uris.exists(inner) else os.fspath(logs)


def model_report(model: str, logs: str | os.PathLike, *, last: timedelta = timedelta(minutes=60),
                 every: timedelta | None = None, reference: str | None = None, now: datetime | None = None,
                 q: float = Q, max_iwd: float | None = None, max_age_p95: float | None = None,
                 max_fallback_rate: float | None = None) -> MonitorReport:
    """Served model ``model`` (its name in ``palette serve``) over the ``last`` period
    (one window, or one per ``every``) against a reference: its training profile (the
    default: of the version that served the newest window; or ``reference``, the model's
    path or URI), or ``reference="trailing:2h"``: what it was served in the 2 hours before
    the period (the importances still come from the training profile, when there is one)."""
    now = now or datetime.now(timezone.utc)
    since = now - last
    served = read_served(profiles_dir(logs), model, since=since, until=now)
    if not served:
        raise InvalidArgument(f"no served profiles of model {model!r} in {profiles_dir(logs)} since "
                              f"{since:%Y-%m-%d %H:%M:%S}: is it served with --log-dir {logs}?")
    trailing = parse_age(reference.split(":", 1)[1]) if reference and reference.startswith("trailing:") else None
    source = served[-1]["version"] if reference is None or trailing is not None else reference
    try:
        ref = load_reference(source)
    except NoReference:
        if trailing is None:
            raise
        ref = {"profiles": {}, "importance": {}, "importance_method": None}
    label = f"its training profile ({source})"
    if trailing is not None:
        before = read_served(profiles_dir(logs), model, since=since - trailing, until=since)
        before = [w for w in before if w["window_end"] <= since]
        if not before:
            raise InvalidArgument(f"no served profiles of model {model!r} in the {format_age(trailing)} before "
                                  f"{since:%Y-%m-%d %H:%M:%S} to compare with")
        merged_before: dict = {}
        for w in before:
            merge_into(merged_before, w["profiles"])
        ref = {**ref, "profiles": merged_before}
        label = f"what it was served in the {format_age(trailing)} before ({sum(w['requests'] for w in before):,} requests)"
    step = every or last
    windows = []
    for i in range(max(1, int(last / step))):
        lo, hi = since + i * step, since + (i + 1) * step
        merged: dict = {}
        for w in served:
            if lo <= w["window_start"] < hi or (lo < w["window_end"] <= hi and w["window_start"] < lo):
                merge_into(merged, w["profiles"])
        if merged:
            windows.append((f"{lo:%H:%M}" if step < timedelta(days=1) else f"{lo:%Y-%m-%d}", merged))
    quality = []
    if windows:
        current = windows[-1][1]
        for name, p in sorted(current.items()):
            if name.endswith(":age_s") and p.n:
                quality.append(Measure("age p95 (s)", name[1:-len(":age_s")], round(p.quantiles([0.95])[0], 1),
                                       None if max_age_p95 is None else Limit("<=", max_age_p95)))
            if name.endswith(":fallback"):
                fetched = dict(p.category_bounds()).get("fetched", (0, 0))[0]
                rate = 1 - fetched / p.n if p.n else None
                quality.append(Measure("rpc fallback rate", name[1:-len(":fallback")], rate,
                                       None if max_fallback_rate is None else Limit("<=", max_fallback_rate)))
    profiled = ref.get("monitored") or [n for n in ref["profiles"] if not n.startswith("@")]
    report = monitor(f"model {model}", ref["profiles"], windows, q=q, importance=ref.get("importance"),
                     importance_method=ref.get("importance_method"), iwd_limit=max_iwd, features=profiled,
                     quality=quality, reference_label=label)
    report.notes.append(f"{sum(w['requests'] for w in served):,} requests in {len(served)} served windows since "
                        f"{since:%Y-%m-%d %H:%M:%S} UTC; importances: {ref.get('importance_method') or 'none'}")
    return report
